/* The message writer job applied as the writer thread does it: many jobs inside one
 * transaction (group commit), seq per room without gaps, dedupe on
 * (sender_id, client_msg_id), membership checks; and the batch bookkeeping. */
#include <errno.h>
#include <stdlib.h>
#include <sqlite3.h>
#include "test.h"
#include "chatd/util.h"
#include "../../src/modules/message/message_internal.h"

static sqlite3 *open_schema(void)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK)
        return NULL;
    for (int i = 0; i < msg_migrations_count; i++)
        if (sqlite3_exec(db, msg_migrations[i].sql, NULL, NULL, NULL) != SQLITE_OK) {
            sqlite3_close(db);
            return NULL;
        }
    /* Room 1: users 1 and 2. Room 2: users 1 and 3. Room 3: nobody. */
    if (sqlite3_exec(db,
            "INSERT INTO rooms (id, name, kind, owner_id, created_at) VALUES"
            " (1, 'a', 'group', 1, 0), (2, 'b', 'group', 1, 0), (3, 'c', 'group', 9, 0);"
            "INSERT INTO room_members (room_id, user_id, username, joined_at) VALUES"
            " (1, 1, 'ann', 0), (1, 2, 'bob', 0), (2, 1, 'ann', 0), (2, 3, 'cyd', 0);",
            NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* Applies one job in its own savepoint, as the writer does. */
static int apply(sqlite3 *db, struct msg_job *j)
{
    sqlite3_exec(db, "SAVEPOINT job", NULL, NULL, NULL);
    int rc = msg_job_apply(db, &j->base);
    if (rc < 0)
        sqlite3_exec(db, "ROLLBACK TO job", NULL, NULL, NULL);
    sqlite3_exec(db, "RELEASE job", NULL, NULL, NULL);
    return rc;
}

static int64_t scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

TEST(message_writer_group_commit_gapless_seq)
{
    struct msg_state st = { .max_body_bytes = 4096 };
    sqlite3 *db = open_schema();
    ASSERT(db != NULL);
    enum { N = 300 };
    int64_t next[3] = { 0, 1, 1 };
    int commits = 0;
    /* Three batches, as the writer would group them; jobs alternate rooms. */
    for (int batch = 0; batch < 3; batch++) {
        ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        struct msg_job *jobs[N / 3];
        for (int i = 0; i < N / 3; i++) {
            int64_t room = 1 + (i % 2);
            jobs[i] = msg_job_new(&st, room, 1, "ann", "hello", NULL, NULL);
            ASSERT(jobs[i] != NULL);
            ASSERT_EQ(apply(db, jobs[i]), 0);
            ASSERT_EQ(jobs[i]->status, 201);
            ASSERT_EQ(jobs[i]->row.seq, next[room]++);
            ASSERT_EQ(jobs[i]->nmembers, 2);
        }
        ASSERT_EQ(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
        commits++;
        for (int i = 0; i < N / 3; i++) {
            writer_batch_done(&st);
            msg_job_free(jobs[i]);
        }
    }
    ASSERT_EQ(commits, 3);
    ASSERT_EQ((long long)st.w_batches, 3);           /* one batch per transaction */
    ASSERT_EQ(scalar(db, "SELECT count(*) FROM messages"), N);
    ASSERT_EQ(scalar(db, "SELECT last_seq FROM rooms WHERE id = 1"), N / 2);
    ASSERT_EQ(scalar(db, "SELECT max(seq) - min(seq) + 1 - count(*) FROM messages"
                         " WHERE room_id = 2"), 0);
    /* The sender's own messages are read. */
    ASSERT_EQ(scalar(db, "SELECT read_seq FROM room_members WHERE room_id = 1 AND user_id = 1"),
              N / 2);
    wstmts_free(&st);
    sqlite3_close(db);
}

TEST(message_writer_dedupe_and_access)
{
    struct msg_state st = { .max_body_bytes = 4096 };
    sqlite3 *db = open_schema();
    ASSERT(db != NULL);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    struct msg_job *a = msg_job_new(&st, 1, 2, "bob", "first", "c-1", NULL);
    struct msg_job *b = msg_job_new(&st, 1, 2, "bob", "again", "c-1", NULL);
    struct msg_job *c = msg_job_new(&st, 1, 1, "ann", "same id, other sender", "c-1", NULL);
    struct msg_job *d = msg_job_new(&st, 2, 1, "ann", "same id, other room", "c-1", NULL);
    struct msg_job *e = msg_job_new(&st, 2, 2, "bob", "not a member", NULL, NULL);
    struct msg_job *f = msg_job_new(&st, 99, 1, "ann", "no such room", NULL, NULL);
    struct msg_job *g = msg_job_new(&st, 3, 1, "ann", "room without me", NULL, NULL);
    ASSERT(a && b && c && d && e && f && g);
    ASSERT_EQ(apply(db, a), 0);
    ASSERT_EQ(a->status, 201);
    ASSERT_EQ(apply(db, b), 0);
    ASSERT_EQ(b->status, 200);                        /* the first message, again */
    ASSERT_EQ(b->row.id, a->row.id);
    ASSERT_EQ(b->row.seq, a->row.seq);
    ASSERT_STR_EQ(b->row.body, "first");
    ASSERT_EQ(apply(db, c), 0);
    ASSERT_EQ(c->status, 201);                        /* dedupe is per sender */
    ASSERT_EQ(c->row.seq, 2);
    ASSERT(apply(db, d) < 0);
    ASSERT_EQ(d->status, 409);                        /* reused in another room */
    ASSERT(apply(db, e) < 0);
    ASSERT_EQ(e->status, 403);
    ASSERT(apply(db, f) < 0);
    ASSERT_EQ(f->status, 404);
    ASSERT(apply(db, g) < 0);
    ASSERT_EQ(g->status, 403);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    ASSERT_EQ(scalar(db, "SELECT count(*) FROM messages"), 2);
    ASSERT_EQ(scalar(db, "SELECT last_seq FROM rooms WHERE id = 2"), 0);   /* no gap left */

    cJSON *p = msg_job_stored_payload(b);
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(p, "duplicate")));
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(p, "member_ids")), 2);
    cJSON_Delete(p);
    p = msg_job_rejected_payload(e);
    ASSERT_STR_EQ(cJSON_GetObjectItem(p, "code")->valuestring, "forbidden");
    cJSON_Delete(p);

    msg_job_free(a); msg_job_free(b); msg_job_free(c); msg_job_free(d);
    msg_job_free(e); msg_job_free(f); msg_job_free(g);
    wstmts_free(&st);
    sqlite3_close(db);
}

TEST(message_writer_batch_bookkeeping)
{
    struct msg_state st = {0};
    /* apply x3, commit, done x3, apply x2, commit, done x2 */
    for (int i = 0; i < 3; i++) writer_batch_apply(&st);
    ASSERT_EQ(st.w_batch_jobs, 3);
    for (int i = 0; i < 3; i++) writer_batch_done(&st);
    for (int i = 0; i < 2; i++) writer_batch_apply(&st);
    ASSERT_EQ(st.w_batch_jobs, 2);
    for (int i = 0; i < 2; i++) writer_batch_done(&st);
    ASSERT_EQ((long long)st.w_batches, 2);
}

TEST(message_validation_rules)
{
    struct msg_state st = { .max_body_bytes = 8 };
    ASSERT(msg_check_body(&st, NULL) != NULL);
    ASSERT(msg_check_body(&st, "") != NULL);
    ASSERT(msg_check_body(&st, "12345678") == NULL);
    ASSERT(msg_check_body(&st, "123456789") != NULL);
    ASSERT(msg_check_body(&st, "\xc3\xa9") == NULL);
    ASSERT(msg_check_body(&st, "\xc3") != NULL);
    ASSERT(msg_check_body(&st, "\xed\xa0\x80") != NULL);   /* a UTF-8 encoded surrogate */
    ASSERT(msg_check_client_id("abc-1") == NULL);
    ASSERT(msg_check_client_id("") != NULL);
    ASSERT(msg_check_client_id("a\nb") != NULL);
    char fold[40];
    ASSERT_EQ(username_fold("Bob_1", fold, sizeof(fold)), 0);
    ASSERT_STR_EQ(fold, "bob_1");
    ASSERT_EQ(username_fold("ab", fold, sizeof(fold)), -EINVAL);
    ASSERT_EQ(username_fold("bob smith", fold, sizeof(fold)), -EINVAL);
}
