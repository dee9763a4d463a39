/* The message module end to end on PostgreSQL (the real bus and writer): it picks
 * the PostgreSQL store and answers as on SQLite; a batch the database refuses is
 * refused whole (503, nothing stored, no seq spent); a batch whose group deadlocked
 * and ran again is answered by the run that committed. Skips without a server. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "chatd/events.h"
#include "message_store_fixture.h"
#include "../../src/modules/message/message_internal.h"
#include "../../src/modules/message/message_settings.h"

#define PM_N 300

struct pm_seen {
    int stored, duplicates, rejected, forbidden, unavailable, bad;
    unsigned char seq[PM_N + 2];
};

struct pm {
    struct sfx t;
    struct msg_state *st;
    struct pm_seen seen;
    uv_timer_t keepalive;
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
    s->unavailable += strcmp(code, "unavailable") == 0;
    return 0;
}

static void pm_submit(struct pm *m, int64_t sender, const char *body, const char *cmid)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "room_id", 1);
    cJSON_AddNumberToObject(p, "sender_id", (double)sender);
    cJSON_AddStringToObject(p, "sender", "u");
    cJSON_AddStringToObject(p, "body", body);
    cJSON_AddStringToObject(p, "client_msg_id", cmid);
    cJSON_AddItemToObject(p, "origin", cJSON_CreateObject());
    bus_publish(m->t.f.app.bus, bus_event_new(TOPIC_MESSAGE_SUBMITTED, p));
}

static void pm_tick(uv_timer_t *h)
{
    (void)h;
}

static void pm_flag(void *arg)
{
    *(int *)arg = 1;
}

static long long pm_int(struct pm *m, const char *sql)
{
    return pg_test_int(m->t.url, sql);
}

static int pm_exec(struct pm *m, const char *sql)
{
    PGconn *c = PQconnectdb(m->t.url);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

/* Room 1 with members 1..4, the bus, the writer and the module, as the server has
 * them. 1 started, 0 skip (no server), -1 failed. */
static int pm_start(struct pm *m)
{
    memset(m, 0, sizeof(*m));
    int rc = store_open(&m->t, &msf_engines[1]);
    if (rc <= 0)
        return rc;
    struct room_new rn = { .name = "room", .kind = "group", .owner_id = 1, .created_at = 1 };
    int64_t id;
    if (MSF_OP(&m->t, room_insert, m->t.c, &rn, &id) < 0)
        return -1;
    for (int u = 1; u <= 4; u++) {
        struct member_ref mr = { .id = u };
        snprintf(mr.username, sizeof mr.username, "u%d", u);
        if (MSF_OP(&m->t, member_insert, m->t.c, id, &mr, 1) != 1)
            return -1;
    }
    msg_store_free(&m->t.s);
    struct fx *f = &m->t.f;
    if (bus_new(&f->app.bus, &f->app) < 0 || db_start(f->app.db) < 0)
        return -1;
    rc = bus_start(f->app.bus);
    struct msg_settings *ms = config_module_settings(&f->cfg, &msg_settings_table);
    ms->messages_per_s = 1e9;
    ms->messages_burst = 1000000000;
    struct bus_sub_opts o = { .consumer = "test.stored" };
    struct bus_sub_opts r = { .consumer = "test.rejected" };
    if (rc < 0 || msg_state_new(&m->st, &f->app) < 0 || msg_subscribe(m->st) < 0 ||
        bus_subscribe(f->app.bus, TOPIC_MESSAGE_STORED, &o, pm_on_stored, &m->seen) < 0 ||
        bus_subscribe(f->app.bus, TOPIC_MESSAGE_REJECTED, &r, pm_on_rejected, &m->seen) < 0)
        return -1;
    uv_timer_init(&f->loop, &m->keepalive);
    uv_timer_start(&m->keepalive, pm_tick, 60000, 60000);
    return 1;
}

#define PM_START(m) do { int rc_ = pm_start(m); ASSERT(rc_ >= 0); if (!rc_) return; } while (0)

/* Turns the loop until n results are out. */
static int pm_wait(struct pm *m, int n)
{
    struct pm_seen *s = &m->seen;
    return FX_RUN_UNTIL(&m->t.f, s->stored + s->duplicates + s->rejected >= n, 30000);
}

static void pm_stop(struct pm *m)
{
    int finalized = 0;
    struct fx *f = &m->t.f;
    FX_RUN_UNTIL(f, __atomic_load_n(&m->st->jobs_inflight, __ATOMIC_ACQUIRE) == 0, 5000);
    if (writer_finalize(m->st, pm_flag, &finalized) == 0)
        FX_RUN_UNTIL(f, finalized, 5000);
    msg_batch_close(m->st, NULL);
    uv_close((uv_handle_t *)&m->keepalive, NULL);
    store_close(&m->t);
    msg_state_free(m->st);
}

TEST(message_pg_module_stores_batches_through_the_pg_store)
{
    static struct pm m;
    PM_START(&m);
    ASSERT(m.st->store.ops->post_batch != NULL);            /* the PostgreSQL store */
    char cmid[32];
    for (int i = 0; i < PM_N; i++) {
        snprintf(cmid, sizeof cmid, "pm-%d", i);
        pm_submit(&m, 1 + i % 4, "hello", cmid);
    }
    pm_submit(&m, 1, "again", "pm-0");   /* a repeat: answered with the first */
    pm_submit(&m, 9, "hello", "pm-x");   /* not a member: refused, no seq */
    ASSERT(pm_wait(&m, PM_N + 2));
    ASSERT_EQ(m.seen.stored, PM_N);
    ASSERT_EQ(m.seen.duplicates, 1);
    ASSERT_EQ(m.seen.rejected, 1);
    ASSERT_EQ(m.seen.forbidden, 1);
    ASSERT_EQ(m.seen.bad, 0);
    ASSERT(m.st->w_batches < PM_N / 4);                     /* batches, not messages */
    ASSERT_EQ(pm_int(&m, "SELECT last_seq FROM rooms WHERE id = 1"), PM_N);
    ASSERT_EQ(pm_int(&m, "SELECT read_seq FROM room_members WHERE room_id = 1"
                     " AND user_id = 4"), PM_N);
    pm_stop(&m);
}

/* A body the database refuses (a trigger here) fails its whole batch: every message
 * of it is answered 503 and none is stored; the next batch starts at seq 1. */
TEST(message_pg_module_refused_batch_is_refused_whole)
{
    static struct pm m;
    PM_START(&m);
    ASSERT_EQ(pm_exec(&m, "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql"
                      " AS $f$ BEGIN IF NEW.body = 'boom' THEN RAISE EXCEPTION 'no';"
                      " END IF; RETURN NEW; END $f$;"
                      " CREATE TRIGGER refuse_boom BEFORE INSERT ON messages"
                      " FOR EACH ROW EXECUTE FUNCTION refuse_boom()"), 0);
    char cmid[32];
    for (int i = 0; i < 10; i++) {       /* one loop turn: one batch */
        snprintf(cmid, sizeof cmid, "bad-%d", i);
        pm_submit(&m, 1, i == 5 ? "boom" : "fine", cmid);
    }
    ASSERT(pm_wait(&m, 10));
    ASSERT_EQ(m.seen.rejected, 10);
    ASSERT_EQ(m.seen.unavailable, 10);
    ASSERT_EQ(pm_int(&m, "SELECT count(*) FROM messages"), 0);
    for (int i = 0; i < 3; i++) {
        snprintf(cmid, sizeof cmid, "good-%d", i);
        pm_submit(&m, 2, "fine", cmid);
    }
    ASSERT(pm_wait(&m, 13));
    ASSERT_EQ(m.seen.stored, 3);
    ASSERT_EQ(m.seen.bad, 0);
    ASSERT(m.seen.seq[1] == 1 && m.seen.seq[3] == 1);
    ASSERT_EQ(pm_int(&m, "SELECT last_seq FROM rooms WHERE id = 1"), 3);
    pm_stop(&m);
}

/* The first run of the group fails as a deadlock does (40P01); the writer runs it
 * again and that run commits: every message is answered stored, once, seq 1..n. */
TEST(message_pg_module_batch_run_again_after_a_deadlock)
{
    static struct pm m;
    PM_START(&m);
    ASSERT_EQ(pm_exec(&m, "CREATE SEQUENCE deadlock_once;"
                      " CREATE FUNCTION deadlock_once() RETURNS trigger LANGUAGE plpgsql"
                      " AS $f$ BEGIN IF nextval('deadlock_once') = 1 THEN RAISE EXCEPTION"
                      " 'deadlock' USING ERRCODE = '40P01'; END IF; RETURN NEW; END $f$;"
                      " CREATE TRIGGER deadlock_once BEFORE INSERT ON messages"
                      " FOR EACH ROW EXECUTE FUNCTION deadlock_once()"), 0);
    char cmid[32];
    for (int i = 0; i < 20; i++) {
        snprintf(cmid, sizeof cmid, "dl-%d", i);
        pm_submit(&m, 1 + i % 4, "hello", cmid);
    }
    ASSERT(pm_wait(&m, 20));
    ASSERT_EQ(m.seen.stored, 20);
    ASSERT_EQ(m.seen.rejected, 0);
    ASSERT_EQ(m.seen.bad, 0);
    ASSERT(pm_int(&m, "SELECT last_value FROM deadlock_once") > 20);   /* it ran twice */
    ASSERT_EQ(pm_int(&m, "SELECT count(*) FROM messages"), 20);
    ASSERT_EQ(pm_int(&m, "SELECT last_seq FROM rooms WHERE id = 1"), 20);
    pm_stop(&m);
}
