/* Messages on PostgreSQL with the real writer threads: two struct db on one database
 * (two nodes) committing batches to the same rooms at once keep each room's seq
 * gapless and in commit order, and a client_msg_id repeated by both at once is
 * stored once. Skips without a server (pg_fixture.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "message_store_fixture.h"

#define PW_ROOMS 3
#define PW_JOBS 40                   /* per writer */
#define PW_BATCH 24                  /* messages per job */

/* One batch as a writer job: post_batch inside the group transaction. */
struct pw_job {
    struct db_job base;
    struct msg_store *store;
    struct msg_post p[PW_BATCH];
    struct msg_post_room rooms[PW_BATCH];
    char cmid[PW_BATCH][24];
    int nrooms, status, done;
};

static void pw_drop(struct pw_job *j)
{
    for (int i = 0; i < PW_BATCH; i++) {
        free(j->p[i].copy);
        j->p[i].copy = NULL;
    }
    for (int i = 0; i < j->nrooms; i++)
        free(j->rooms[i].ids);
    j->nrooms = 0;
}

static int pw_apply(struct db_conn *c, struct db_job *job)
{
    struct pw_job *j = (struct pw_job *)job;
    pw_drop(j);                      /* a retried group runs apply again */
    return j->store->ops->post_batch(j->store->impl, c, j->p, PW_BATCH, j->rooms, &j->nrooms);
}

static void pw_done(struct db_job *job, int status)
{
    struct pw_job *j = (struct pw_job *)job;
    j->status = status;
    __atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
}

/* Writer w's job k: messages over the rooms from senders 1..4; every fourth message
 * carries a client_msg_id that the other writer sends too (same sender, maybe
 * another room), the others one of its own. */
static void pw_fill(struct pw_job *j, struct msg_store *s, int w, int k)
{
    memset(j, 0, sizeof(*j));
    j->base = (struct db_job){ .apply = pw_apply, .done = pw_done, .flags = DB_JOB_UNGUARDED };
    j->store = s;
    for (int i = 0; i < PW_BATCH; i++) {
        int n = k * PW_BATCH + i;
        int shared = n % 4 == 0;
        snprintf(j->cmid[i], sizeof j->cmid[i], shared ? "both-%d" : "w%d-%d",
                 shared ? n : w, n);
        j->p[i] = (struct msg_post){
            .room_id = 1 + (n + (shared ? w : 0)) % PW_ROOMS, .sender_id = 1 + n % 4,
            .created_at = 1000 + n, .sender = "s", .body = "hello",
            .client_msg_id = j->cmid[i],
        };
    }
}

static int pw_setup_rooms(struct sfx *t)
{
    for (int r = 1; r <= PW_ROOMS; r++) {
        struct room_new rn = { .name = "room", .kind = "group", .owner_id = 1,
                               .created_at = 1 };
        int64_t id;
        if (MSF_OP(t, room_insert, t->c, &rn, &id) < 0 || id != r)
            return -1;
        for (int u = 1; u <= 4; u++) {
            struct member_ref m = { .id = u };
            snprintf(m.username, sizeof m.username, "u%d", u);
            if (MSF_OP(t, member_insert, t->c, id, &m, 1) != 1)
                return -1;
        }
    }
    return 0;
}

TEST(message_pg_two_writers_keep_seq_gapless_and_store_a_repeat_once)
{
    struct sfx t;
    MSF_OPEN(&t, &msf_engines[1]);
    ASSERT_EQ(pw_setup_rooms(&t), 0);
    struct fx f2;
    struct msg_store s2;
    ASSERT_EQ(fx_init(&f2), 0);
    ASSERT_EQ(db_open_url(&f2.app.db, &f2.app, t.url), 0);
    ASSERT_EQ(msg_store_pg_new(&s2), 0);
    ASSERT_EQ(s2.ops->migrate(s2.impl, f2.app.db), 0);      /* already there: no-op */
    ASSERT_EQ(db_start(t.f.app.db), 0);
    ASSERT_EQ(db_start(f2.app.db), 0);

    /* Each writer gets its next job once the last one is committed: a transaction per
     * job, the two writers' transactions interleaved on the same rooms. */
    static struct pw_job jobs[2][PW_JOBS];
    int next[2] = { 0, 0 }, busy = 1;
    uint64_t deadline = mono_ms() + 60000;
    while (busy && mono_ms() < deadline) {
        busy = 0;
        for (int w = 0; w < 2; w++) {
            int k = next[w];
            int idle = k == 0 || __atomic_load_n(&jobs[w][k - 1].done, __ATOMIC_ACQUIRE);
            if (idle && k < PW_JOBS) {
                pw_fill(&jobs[w][k], w ? &s2 : &t.s, w, k);
                ASSERT_EQ(db_write(w ? f2.app.db : t.f.app.db, &jobs[w][k].base), 0);
                next[w]++;
            }
            busy += !idle || k < PW_JOBS;
        }
        fx_nap();
    }
    ASSERT_EQ(busy, 0);

    /* Every batch committed; each shared id stored by one writer, answered to the
     * other (200 in the same room, 409 in another); nothing else refused. */
    int stored = 0, repeats = 0;
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < PW_JOBS; k++) {
            ASSERT_EQ(jobs[w][k].status, 0);
            for (int i = 0; i < PW_BATCH; i++) {
                int st = jobs[w][k].p[i].status;
                ASSERT(st == 201 || st == 200 || st == 409);
                stored += st == 201;
                repeats += st != 201;
                ASSERT(st == 201 || strncmp(jobs[w][k].cmid[i], "both-", 5) == 0);
            }
            pw_drop(&jobs[w][k]);
        }
    ASSERT_EQ(repeats, PW_JOBS * PW_BATCH / 4);
    ASSERT_EQ(pg_test_int(t.url, "SELECT count(*) FROM messages"), stored);
    ASSERT_EQ(pg_test_int(t.url, "SELECT count(*) FROM (SELECT client_msg_id FROM messages"
                     " GROUP BY sender_id, client_msg_id HAVING count(*) > 1) d"), 0);
    /* Per room: seqs 1..last_seq, each once. */
    ASSERT_EQ(pg_test_int(t.url, "SELECT count(*) FROM rooms r WHERE r.last_seq <> (SELECT"
                     " count(DISTINCT seq) FROM messages m WHERE m.room_id = r.id) OR"
                     " r.last_seq <> (SELECT coalesce(max(seq), 0) FROM messages m"
                     " WHERE m.room_id = r.id)"), 0);
    ASSERT_EQ(pg_test_int(t.url, "SELECT sum(last_seq) FROM rooms"), stored);
    /* In commit order: each transaction's messages of a room are one run of seqs (a
     * second writer got the room only after the first one's COMMIT). */
    ASSERT_EQ(pg_test_int(t.url, "SELECT count(*) FROM (SELECT room_id, xmin::text, min(seq) AS lo,"
                     " max(seq) AS hi, count(*) AS n FROM messages GROUP BY 1, 2) x"
                     " WHERE hi - lo + 1 <> n"), 0);
    ASSERT(pg_test_int(t.url, "SELECT count(DISTINCT xmin::text) FROM messages") > PW_JOBS);
    db_close(f2.app.db);
    f2.app.db = NULL;
    msg_store_free(&s2);
    fx_stop(&f2);
    store_close(&t);
}
