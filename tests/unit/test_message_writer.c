/* The message writer job applied as the writer thread does it: many jobs inside one
 * transaction (group commit), seq per room without gaps, dedupe on
 * (sender_id, client_msg_id), membership checks; and the batch bookkeeping. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include "test.h"
#include "chatd/db_sqlite.h"
#include "chatd/event_codec.h"
#include "chatd/util.h"
#include "../../src/modules/message/message_internal.h"

static sqlite3 *open_schema(void)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK)
        return NULL;
    for (int i = 0; i < msg_sqlite_migrations_count; i++)
        if (sqlite3_exec(db, msg_sqlite_migrations[i].sql, NULL, NULL, NULL) != SQLITE_OK) {
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

/* Applies a batch of jobs in its own savepoint, as the writer does. The batch (and
 * the jobs in it) stay the caller's: msg_batch_free. */
static struct msg_batch *apply(sqlite3 *db, struct msg_state *st, struct msg_job **jobs, int n,
                               int *rc)
{
    struct msg_batch *b = msg_batch_new(st);
    if (!b)
        return NULL;
    for (int i = 0; i < n; i++)
        msg_batch_add(b, jobs[i]);
    sqlite3_exec(db, "SAVEPOINT job", NULL, NULL, NULL);
    *rc = b->base.apply(db_conn_of_sqlite(db), &b->base);
    if (*rc < 0)
        sqlite3_exec(db, "ROLLBACK TO job", NULL, NULL, NULL);
    sqlite3_exec(db, "RELEASE job", NULL, NULL, NULL);
    return b;
}

static void state_init(struct msg_state *st)
{
    memset(st, 0, sizeof(*st));
    st->max_body_bytes = 4096;
    msg_store_sqlite_new(&st->store);
}

static void state_done(struct msg_state *st)
{
    st->store.ops->writer_release(st->store.impl);
    msg_store_free(&st->store);
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
    struct msg_state st;
    state_init(&st);
    sqlite3 *db = open_schema();
    ASSERT(db != NULL);
    enum { N = 300 };
    int64_t next[3] = { 0, 1, 1 };
    int rc;
    /* Three transactions of one batch each; messages alternate rooms. */
    for (int batch = 0; batch < 3; batch++) {
        ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        struct msg_job *jobs[N / 3];
        for (int i = 0; i < N / 3; i++) {
            jobs[i] = msg_job_new(&st, 1 + (i % 2), 1, "ann", "hello", NULL, NULL);
            ASSERT(jobs[i] != NULL);
        }
        struct msg_batch *b = apply(db, &st, jobs, N / 3, &rc);
        ASSERT(b != NULL);
        ASSERT_EQ(rc, 0);
        for (int i = 0; i < N / 3; i++) {
            int64_t room = 1 + (i % 2);
            ASSERT_EQ(jobs[i]->status, 201);
            ASSERT_EQ(jobs[i]->row.seq, next[room]++);
            ASSERT_EQ(jobs[i]->nmembers, 2);
        }
        ASSERT_EQ(b->nrooms, 2);                     /* each room read once */
        ASSERT_EQ(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
        msg_batch_free(b);
    }
    ASSERT_EQ(scalar(db, "SELECT count(*) FROM messages"), N);
    ASSERT_EQ(scalar(db, "SELECT last_seq FROM rooms WHERE id = 1"), N / 2);
    ASSERT_EQ(scalar(db, "SELECT last_seq FROM rooms WHERE id = 2"), N / 2);
    ASSERT_EQ(scalar(db, "SELECT max(seq) - min(seq) + 1 - count(*) FROM messages"
                         " WHERE room_id = 2"), 0);
    /* The sender's own messages are read. */
    ASSERT_EQ(scalar(db, "SELECT read_seq FROM room_members WHERE room_id = 1 AND user_id = 1"),
              N / 2);
    ASSERT_EQ(scalar(db, "SELECT read_seq FROM room_members WHERE room_id = 2 AND user_id = 1"),
              N / 2);
    state_done(&st);
    sqlite3_close(db);
}

TEST(message_writer_dedupe_and_access)
{
    struct msg_state st;
    state_init(&st);
    sqlite3 *db = open_schema();
    ASSERT(db != NULL);
    int rc;
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    struct msg_job *v[] = {
        msg_job_new(&st, 1, 2, "bob", "first", "c-1", NULL),
        msg_job_new(&st, 1, 2, "bob", "again", "c-1", NULL),
        msg_job_new(&st, 1, 1, "ann", "same id, other sender", "c-1", NULL),
        msg_job_new(&st, 2, 1, "ann", "same id, other room", "c-1", NULL),
        msg_job_new(&st, 2, 2, "bob", "not a member", NULL, NULL),
        msg_job_new(&st, 99, 1, "ann", "no such room", NULL, NULL),
        msg_job_new(&st, 3, 1, "ann", "room without me", NULL, NULL),
    };
    struct msg_job *a = v[0], *b = v[1], *c = v[2], *d = v[3], *e = v[4], *f = v[5], *g = v[6];
    ASSERT(a && b && c && d && e && f && g);
    /* One batch: refusals write nothing and do not undo the others. */
    struct msg_batch *bt = apply(db, &st, v, 7, &rc);
    ASSERT(bt != NULL);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(a->status, 201);
    ASSERT_EQ(b->status, 200);                        /* the first message, again */
    ASSERT_EQ(b->row.id, a->row.id);
    ASSERT_EQ(b->row.seq, a->row.seq);
    ASSERT_STR_EQ(b->row.body, "first");
    ASSERT_EQ(c->status, 201);                        /* dedupe is per sender */
    ASSERT_EQ(c->row.seq, 2);
    ASSERT_EQ(d->status, 409);                        /* reused in another room */
    ASSERT_EQ(e->status, 403);
    ASSERT_EQ(f->status, 404);
    ASSERT_EQ(g->status, 403);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    ASSERT_EQ(scalar(db, "SELECT count(*) FROM messages"), 2);
    ASSERT_EQ(scalar(db, "SELECT last_seq FROM rooms WHERE id = 1"), 2);
    ASSERT_EQ(scalar(db, "SELECT last_seq FROM rooms WHERE id = 2"), 0);   /* no gap left */

    /* The result events as they go on the wire. */
    struct msg_outcome o;
    struct ev_message_stored sm;
    struct ev_msg mm;
    msg_job_outcome(b, &o);
    msg_stored_ev(&o, &sm, &mm);
    cJSON *p = ev_encode(&EV_MESSAGE_STORED, &sm);
    ASSERT(p != NULL);
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(p, "duplicate")));
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(p, "member_ids")), 2);
    ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "message"), "body")->valuestring,
                  "first");
    cJSON_Delete(p);
    struct ev_message_rejected rj;
    msg_job_outcome(e, &o);
    msg_rejected_ev(&o, &rj);
    p = ev_encode(&EV_MESSAGE_REJECTED, &rj);
    ASSERT(p != NULL);
    ASSERT_STR_EQ(cJSON_GetObjectItem(p, "code")->valuestring, "forbidden");
    ASSERT_STR_EQ(cJSON_GetObjectItem(p, "message")->valuestring, "not a member of this room");
    cJSON_Delete(p);

    msg_batch_free(bt);
    state_done(&st);
    sqlite3_close(db);
}

TEST(message_writer_refused_insert_fails_that_message_alone)
{
    struct msg_state st;
    state_init(&st);
    sqlite3 *db = open_schema();
    ASSERT(db != NULL);
    int rc;
    /* The database refuses one row (here a trigger; a constraint would do the same). */
    ASSERT_EQ(sqlite3_exec(db, "CREATE TRIGGER boom BEFORE INSERT ON messages"
                               " WHEN NEW.body = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END",
                           NULL, NULL, NULL), SQLITE_OK);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    struct msg_job *v[] = {
        msg_job_new(&st, 1, 1, "ann", "one", "x-1", NULL),
        msg_job_new(&st, 1, 2, "bob", "boom", NULL, NULL),
        msg_job_new(&st, 1, 2, "bob", "after", NULL, NULL),
    };
    struct msg_batch *b = apply(db, &st, v, 3, &rc);
    ASSERT(b != NULL);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(v[0]->status, 201);
    ASSERT_EQ(v[1]->status, 500);
    ASSERT_EQ(v[2]->status, 201);
    ASSERT_EQ(v[2]->row.seq, 2);                      /* no gap where it failed */
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    ASSERT_EQ(scalar(db, "SELECT count(*) FROM messages"), 2);
    ASSERT_EQ(scalar(db, "SELECT last_seq FROM rooms WHERE id = 1"), 2);
    msg_batch_free(b);
    state_done(&st);
    sqlite3_close(db);
}

TEST(message_writer_failed_write_fails_the_batch)
{
    struct msg_state st;
    state_init(&st);
    sqlite3 *db = open_schema();
    ASSERT(db != NULL);
    int rc;
    char body[3001];
    memset(body, 'x', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    /* A full disk in the middle of a batch. */
    int64_t pages = scalar(db, "PRAGMA page_count");
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%lld", (long long)pages + 4);
    ASSERT_EQ(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    enum { N = 20 };
    struct msg_job *v[N];
    for (int i = 0; i < N; i++)
        ASSERT((v[i] = msg_job_new(&st, 1 + i % 2, 1, "ann", body, NULL, NULL)) != NULL);
    struct msg_batch *b = apply(db, &st, v, N, &rc);
    ASSERT(b != NULL);
    ASSERT_EQ(rc, -ENOSPC);
    ASSERT_EQ(b->failed, -ENOSPC);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    ASSERT_EQ(scalar(db, "SELECT count(*) FROM messages"), 0);
    ASSERT_EQ(scalar(db, "SELECT last_seq FROM rooms WHERE id = 1"), 0);
    ASSERT_EQ(scalar(db, "SELECT read_seq FROM room_members WHERE room_id = 1 AND user_id = 1"),
              0);
    msg_batch_free(b);
    /* Room again: the same messages go in, from seq 1. */
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA max_page_count=1000000", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (int i = 0; i < N; i++)
        ASSERT((v[i] = msg_job_new(&st, 1 + i % 2, 1, "ann", body, NULL, NULL)) != NULL);
    b = apply(db, &st, v, N, &rc);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(v[0]->row.seq, 1);
    ASSERT_EQ(v[N - 1]->row.seq, N / 2);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    ASSERT_EQ(scalar(db, "SELECT last_seq FROM rooms WHERE id = 2"), N / 2);
    msg_batch_free(b);
    state_done(&st);
    sqlite3_close(db);
}

TEST(message_validation_rules)
{
    struct msg_state st = { .max_body_bytes = 8 };
    ASSERT_EQ(msg_validate(&st, 1, "hi", NULL), MSG_VALID);
    ASSERT_EQ(msg_validate(&st, 0, "hi", NULL), MSG_FAULT_ROOM_ID);
    ASSERT_EQ(msg_validate(&st, -3, NULL, NULL), MSG_FAULT_ROOM_ID);   /* the room first */
    ASSERT_EQ(msg_validate(&st, 1, NULL, NULL), MSG_FAULT_BODY_TYPE);
    ASSERT_EQ(msg_validate(&st, 1, MSG_NOT_A_STRING, NULL), MSG_FAULT_BODY_TYPE);
    ASSERT_EQ(msg_validate(&st, 1, "", NULL), MSG_FAULT_BODY_EMPTY);
    ASSERT_EQ(msg_validate(&st, 1, "12345678", NULL), MSG_VALID);
    ASSERT_EQ(msg_validate(&st, 1, "123456789", NULL), MSG_FAULT_BODY_LONG);
    ASSERT_EQ(msg_validate(&st, 1, "\xc3\xa9", NULL), MSG_VALID);
    ASSERT_EQ(msg_validate(&st, 1, "\xc3", NULL), MSG_FAULT_BODY_UTF8);
    ASSERT_EQ(msg_validate(&st, 1, "\xed\xa0\x80", NULL), MSG_FAULT_BODY_UTF8); /* surrogate */
    ASSERT_EQ(msg_validate(&st, 1, "a\tb\nc", NULL), MSG_VALID);
    ASSERT_EQ(msg_validate(&st, 1, "a\rb", NULL), MSG_FAULT_BODY_CONTROL);
    ASSERT_EQ(msg_validate(&st, 1, "a\xe2\x80\xae" "b", NULL), MSG_FAULT_BODY_BIDI);
    ASSERT_EQ(msg_validate(&st, 1, "", MSG_NOT_A_STRING), MSG_FAULT_BODY_EMPTY); /* body first */
    ASSERT_EQ(msg_validate(&st, 1, "hi", "abc-1"), MSG_VALID);
    ASSERT_EQ(msg_validate(&st, 1, "hi", MSG_NOT_A_STRING), MSG_FAULT_CMID_TYPE);
    ASSERT_EQ(msg_validate(&st, 1, "hi", ""), MSG_FAULT_CMID_LENGTH);
    char long_id[130];
    memset(long_id, 'x', 129);
    long_id[129] = '\0';
    ASSERT_EQ(msg_validate(&st, 1, "hi", long_id), MSG_FAULT_CMID_LENGTH);
    long_id[128] = '\0';
    ASSERT_EQ(msg_validate(&st, 1, "hi", long_id), MSG_VALID);
    ASSERT_EQ(msg_validate(&st, 1, "hi", "a\nb"), MSG_FAULT_CMID_CONTROL);
    ASSERT_EQ(msg_validate(&st, 1, "hi", "\xff"), MSG_FAULT_CMID_UTF8);
    ASSERT_EQ(msg_validate(&st, 1, "hi", "\xe2\x81\xa6"), MSG_FAULT_CMID_BIDI);
    /* The words clients have always been given (api.md's errors). */
    ASSERT_STR_EQ(msg_fault_text(MSG_FAULT_BODY_LONG), "body is too long");
    ASSERT_STR_EQ(msg_fault_text(MSG_FAULT_BODY_CONTROL),
                  "body must not hold control characters other than tab and newline");
    ASSERT_STR_EQ(msg_fault_text(MSG_FAULT_CMID_CONTROL),
                  "client_msg_id must not hold control characters");
    ASSERT_STR_EQ(msg_fault_text(MSG_FAULT_CMID_LENGTH), "client_msg_id must be 1 to 128 bytes");
    for (int f = MSG_VALID + 1; f < MSG_FAULT__COUNT; f++)
        ASSERT(msg_fault_text((enum msg_fault)f) != NULL);
    char fold[40];
    ASSERT_EQ(username_fold("Bob_1", fold, sizeof(fold)), 0);
    ASSERT_STR_EQ(fold, "bob_1");
    ASSERT_EQ(username_fold("ab", fold, sizeof(fold)), -EINVAL);
    ASSERT_EQ(username_fold("bob smith", fold, sizeof(fold)), -EINVAL);
}
