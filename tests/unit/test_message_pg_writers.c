/* Messages on PostgreSQL with the real writer threads: two struct db on one database
 * (two nodes) committing batches to the same rooms at once keep each room's seq
 * gapless and in commit order, and a client_msg_id repeated by both at once is
 * stored once; the module end to end picks the PostgreSQL store and answers as on
 * SQLite. Skips without a server (pg_fixture.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "chatd/events.h"
#include "message_store_fixture.h"
#include "../../src/modules/message/message_internal.h"
#include "../../src/modules/message/message_settings.h"

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

static long long pw_int(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    long long v = -1;
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
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
    ASSERT_EQ(pw_int(t.url, "SELECT count(*) FROM messages"), stored);
    ASSERT_EQ(pw_int(t.url, "SELECT count(*) FROM (SELECT client_msg_id FROM messages"
                     " GROUP BY sender_id, client_msg_id HAVING count(*) > 1) d"), 0);
    /* Per room: seqs 1..last_seq, each once. */
    ASSERT_EQ(pw_int(t.url, "SELECT count(*) FROM rooms r WHERE r.last_seq <> (SELECT"
                     " count(DISTINCT seq) FROM messages m WHERE m.room_id = r.id) OR"
                     " r.last_seq <> (SELECT coalesce(max(seq), 0) FROM messages m"
                     " WHERE m.room_id = r.id)"), 0);
    ASSERT_EQ(pw_int(t.url, "SELECT sum(last_seq) FROM rooms"), stored);
    /* In commit order: each transaction's messages of a room are one run of seqs (a
     * second writer got the room only after the first one's COMMIT). */
    ASSERT_EQ(pw_int(t.url, "SELECT count(*) FROM (SELECT room_id, xmin::text, min(seq) AS lo,"
                     " max(seq) AS hi, count(*) AS n FROM messages GROUP BY 1, 2) x"
                     " WHERE hi - lo + 1 <> n"), 0);
    ASSERT(pw_int(t.url, "SELECT count(DISTINCT xmin::text) FROM messages") > PW_JOBS);
    db_close(f2.app.db);
    f2.app.db = NULL;
    msg_store_free(&s2);
    fx_stop(&f2);
    store_close(&t);
}

/* ---------- the module end to end on PostgreSQL ---------- */
#define PM_N 300

struct pm_seen {
    int stored, duplicates, rejected, forbidden, bad;
    unsigned char seq[PM_N + 2];
};

static int pm_on_stored(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct pm_seen *s = ctx;
    int64_t seq = 0;
    int dup = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev->payload, "duplicate"));
    json_get_i64(cJSON_GetObjectItemCaseSensitive(ev->payload, "message"), "seq", &seq);
    if (seq < 1 || seq > PM_N || (!dup && s->seq[seq]++))
        s->bad++;
    s->stored += !dup;
    s->duplicates += dup;
    return 0;
}

static int pm_on_rejected(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct pm_seen *s = ctx;
    const char *code = "";
    json_get_str(ev->payload, "code", &code);
    s->rejected++;
    s->forbidden += strcmp(code, "forbidden") == 0;
    return 0;
}

static void pm_submit(struct fx *f, int64_t sender, const char *cmid)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "room_id", 1);
    cJSON_AddNumberToObject(p, "sender_id", (double)sender);
    cJSON_AddStringToObject(p, "sender", "u");
    cJSON_AddStringToObject(p, "body", "hello");
    cJSON_AddStringToObject(p, "client_msg_id", cmid);
    cJSON_AddItemToObject(p, "origin", cJSON_CreateObject());
    bus_publish(f->app.bus, bus_event_new(TOPIC_MESSAGE_SUBMITTED, p));
}

static void pm_tick(uv_timer_t *h)
{
    (void)h;
}

static void pm_flag(void *arg)
{
    *(int *)arg = 1;
}

TEST(message_pg_module_stores_batches_through_the_pg_store)
{
    struct sfx t;
    MSF_OPEN(&t, &msf_engines[1]);
    ASSERT_EQ(pw_setup_rooms(&t), 0);
    msg_store_free(&t.s);
    struct fx *f = &t.f;
    static struct pm_seen seen;
    memset(&seen, 0, sizeof seen);
    struct msg_state *st = NULL;
    int finalized = 0;
    ASSERT_EQ(bus_new(&f->app.bus, &f->app), 0);
    ASSERT_EQ(db_start(f->app.db), 0);
    /* Dead letters are not this test's: the bus starts without the database. */
    struct db *db = f->app.db;
    f->app.db = NULL;
    ASSERT_EQ(bus_start(f->app.bus), 0);
    f->app.db = db;
    struct msg_settings *ms = config_module_settings(&f->cfg, &msg_settings_table);
    ms->messages_per_s = 1e9;
    ms->messages_burst = 1000000000;
    ASSERT_EQ(msg_state_new(&st, &f->app), 0);
    ASSERT(st->store.ops->post_batch != NULL);              /* the PostgreSQL store */
    ASSERT_EQ(msg_subscribe(st), 0);
    struct bus_sub_opts o = { .consumer = "test.stored" };
    ASSERT_EQ(bus_subscribe(f->app.bus, TOPIC_MESSAGE_STORED, &o, pm_on_stored, &seen), 0);
    o.consumer = "test.rejected";
    ASSERT_EQ(bus_subscribe(f->app.bus, TOPIC_MESSAGE_REJECTED, &o, pm_on_rejected, &seen), 0);
    uv_timer_t keepalive;
    uv_timer_init(&f->loop, &keepalive);
    uv_timer_start(&keepalive, pm_tick, 60000, 60000);

    char cmid[32];
    for (int i = 0; i < PM_N; i++) {
        snprintf(cmid, sizeof cmid, "pm-%d", i);
        pm_submit(f, 1 + i % 4, cmid);
    }
    pm_submit(f, 1, "pm-0");         /* a repeat: answered with the first */
    pm_submit(f, 9, "pm-x");         /* not a member: refused, no seq */
    ASSERT(FX_RUN_UNTIL(f, seen.stored + seen.duplicates + seen.rejected == PM_N + 2, 30000));
    ASSERT_EQ(seen.stored, PM_N);
    ASSERT_EQ(seen.duplicates, 1);
    ASSERT_EQ(seen.rejected, 1);
    ASSERT_EQ(seen.forbidden, 1);
    ASSERT_EQ(seen.bad, 0);
    ASSERT(st->w_batches < PM_N / 4);                       /* batches, not messages */
    ASSERT(FX_RUN_UNTIL(f, __atomic_load_n(&st->jobs_inflight, __ATOMIC_ACQUIRE) == 0, 5000));
    ASSERT_EQ(writer_finalize(st, pm_flag, &finalized), 0);
    msg_batch_close(st, NULL);
    ASSERT(FX_RUN_UNTIL(f, finalized, 5000));
    ASSERT_EQ(pw_int(t.url, "SELECT last_seq FROM rooms WHERE id = 1"), PM_N);
    ASSERT_EQ(pw_int(t.url, "SELECT read_seq FROM room_members WHERE room_id = 1"
                     " AND user_id = 4"), PM_N);
    uv_close((uv_handle_t *)&keepalive, NULL);
    store_close(&t);
    msg_state_free(st);
}
