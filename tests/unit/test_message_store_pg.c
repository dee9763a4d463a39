/* The PostgreSQL message store's own parts: post_batch (a batch in one call to the
 * server function) with every answer a message can get, strings that the array
 * parameters must carry unchanged, and a repeat that races another writer's
 * uncommitted first copy. Skips without a server (pg_fixture.h). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "message_store_fixture.h"

static const struct msf_engine *pg_engine(void)
{
    return &msf_engines[1];
}

static int64_t room_with(struct sfx *t, const char *name, const int64_t *members, int n)
{
    struct room_new r = { .name = name, .kind = "group", .owner_id = members[0],
                          .created_at = 1000 };
    int64_t id = 0;
    if (MSF_OP(t, room_insert, t->c, &r, &id) < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        struct member_ref m = { .id = members[i] };
        snprintf(m.username, sizeof(m.username), "u%lld", (long long)members[i]);
        if (MSF_OP(t, member_insert, t->c, id, &m, 1000 + i) != 1)
            return -1;
    }
    return id;
}

static struct msg_post post(int64_t room, int64_t sender, const char *body, const char *cmid)
{
    return (struct msg_post){ .room_id = room, .sender_id = sender, .created_at = 5000,
                              .sender = "sender", .body = body, .client_msg_id = cmid };
}

static void free_results(struct msg_post *p, int n, struct msg_post_room *rooms, int nrooms)
{
    for (int i = 0; i < n; i++)
        free(p[i].copy);
    for (int i = 0; i < nrooms; i++)
        free(rooms[i].ids);
}

TEST(message_store_pg_post_batch_answers)
{
    struct sfx t;
    MSF_OPEN(&t, pg_engine());
    const int64_t ab[] = { 1, 2 }, a[] = { 1 };
    int64_t r1 = room_with(&t, "one", ab, 2), r2 = room_with(&t, "two", a, 1);
    ASSERT(r1 > 0 && r2 > 0);
    struct msg_post p[] = {
        post(r1, 1, "first", "c-1"),          /* 201 seq 1 */
        post(r2, 2, "not in", "c-x"),         /* 403: spends no seq */
        post(999, 1, "nowhere", NULL),        /* 404 */
        post(r1, 2, "second", NULL),          /* 201 seq 2 */
        post(r1, 1, "again", "c-1"),          /* 200: the first message */
        post(r2, 1, "elsewhere", "c-1"),      /* 409: the first is in r1 */
        post(r2, 1, "two-one", "c-x"),        /* 201 seq 1: c-x was refused above */
        post(r1, 1, "third", "c-3"),          /* 201 seq 3 */
    };
    enum { N = sizeof p / sizeof p[0] };
    struct msg_post_room rooms[N];
    int nrooms = -1;
    ASSERT_EQ(MSF_OP(&t, post_batch, t.c, p, N, rooms, &nrooms), 0);
    static const int status[N] = { 201, 403, 404, 201, 200, 409, 201, 201 };
    for (int i = 0; i < N; i++)
        ASSERT_EQ(p[i].status, status[i]);
    ASSERT(p[0].row.seq == 1 && p[3].row.seq == 2 && p[7].row.seq == 3 && p[6].row.seq == 1);
    ASSERT(p[0].row.id > 0 && p[3].row.id > p[0].row.id && p[0].copy == NULL);
    ASSERT(p[0].row.body == p[0].body && p[0].row.created_at == 5000);
    for (int i = 4; i <= 5; i++) {
        ASSERT(p[i].copy != NULL);
        ASSERT(p[i].row.id == p[0].row.id && p[i].row.room_id == r1 && p[i].row.seq == 1);
        ASSERT_STR_EQ(p[i].row.body, "first");
        ASSERT_STR_EQ(p[i].row.client_msg_id, "c-1");
    }
    /* The rooms, with their members for the fan-out; 404 has none. */
    ASSERT_EQ(nrooms, 2);
    ASSERT(p[2].room == -1 && p[0].room >= 0 && p[1].room >= 0 && p[1].room != p[0].room);
    const struct msg_post_room *one = &rooms[p[0].room], *two = &rooms[p[1].room];
    ASSERT(one->room_id == r1 && one->n == 2 && one->ids[0] == 1 && one->ids[1] == 2);
    ASSERT(two->room_id == r2 && two->n == 1 && two->ids[0] == 1);
    free_results(p, N, rooms, nrooms);

    struct room_row rr;
    ASSERT_EQ(MSF_OP(&t, room_get, t.c, r1, &rr), 1);
    ASSERT_EQ(rr.last_seq, 3);
    ASSERT_EQ(MSF_OP(&t, room_get, t.c, r2, &rr), 1);
    ASSERT_EQ(rr.last_seq, 1);
    int64_t v = -1;
    ASSERT_EQ(MSF_OP(&t, member_read_seq, t.c, r1, 1, &v), 1);
    ASSERT_EQ(v, 3);                 /* a sender has read up to its own last message */
    ASSERT_EQ(MSF_OP(&t, member_read_seq, t.c, r1, 2, &v), 1);
    ASSERT_EQ(v, 2);
    ASSERT_EQ(pg_test_int(t.url, "SELECT count(*) FROM messages"), 4);
    /* The batch's functions keep their generic plans (migration 3): planning them
     * anew on every call cost most of a small batch's time. */
    ASSERT_EQ(pg_test_int(t.url, "SELECT count(*) FROM pg_proc WHERE proname IN"
                            " ('message_post_batch', 'message_post_each', 'message_lock_rooms',"
                            " 'message_batch_end') AND 'plan_cache_mode=force_generic_plan'"
                            " = ANY (proconfig) AND 'enable_seqscan=off' = ANY (proconfig)"), 4);
    store_close(&t);
}

/* Bodies and ids that an array literal would mangle if they were not quoted and
 * escaped: they come back from history exactly as sent. */
static int take_body(void *ctx, const struct msg_row *m)
{
    char (*out)[64] = ctx;
    snprintf(out[m->seq - 1], 64, "%s|%s", m->body, m->client_msg_id ? m->client_msg_id : "-");
    return 0;
}

TEST(message_store_pg_post_batch_strings_unchanged)
{
    struct sfx t;
    MSF_OPEN(&t, pg_engine());
    const int64_t a[] = { 7 };
    int64_t r = room_with(&t, "strings", a, 1);
    ASSERT(r > 0);
    static const char *const bodies[] = { "NULL", "a\"b", "back\\slash", "{1,2}", "x, y",
                                          "  spaced  ", "\xc3\xa9t\xc3\xa9 \xe2\x9c\x93", "" };
    static const char *const cmids[] = { "NULL", NULL, "\\", "\"q\"", "{}", "null", ",", NULL };
    enum { N = sizeof bodies / sizeof bodies[0] };
    struct msg_post p[N];
    for (int i = 0; i < N; i++)
        p[i] = post(r, 7, bodies[i], cmids[i]);
    struct msg_post_room rooms[N];
    int nrooms = 0;
    ASSERT_EQ(MSF_OP(&t, post_batch, t.c, p, N, rooms, &nrooms), 0);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(p[i].status, 201);
    free_results(p, N, rooms, nrooms);
    char got[N][64];
    struct msg_range rg = { .room_id = r, .lo = 0, .hi = INT64_MAX, .desc = 0, .limit = N };
    ASSERT_EQ(MSF_OP(&t, messages, t.c, &rg, take_body, got), 0);
    for (int i = 0; i < N; i++) {
        char want[64];
        snprintf(want, sizeof want, "%s|%s", bodies[i], cmids[i] ? cmids[i] : "-");
        ASSERT_STR_EQ(got[i], want);
    }
    /* "NULL" as a client_msg_id is a string like any other: it repeats. */
    struct msg_post again = post(r, 7, "again", "NULL");
    ASSERT_EQ(MSF_OP(&t, post_batch, t.c, &again, 1, rooms, &nrooms), 0);
    ASSERT_EQ(again.status, 200);
    ASSERT_STR_EQ(again.row.body, "NULL");
    free_results(&again, 1, rooms, nrooms);
    store_close(&t);
}

/* ---------- a repeat racing another writer's uncommitted first copy ---------- */
struct racer {
    struct sfx *t;
    struct msg_post p[2];
    struct msg_post_room rooms[2];
    int nrooms, rc, done;
};

static void *race_post(void *arg)
{
    struct racer *r = arg;
    r->rc = MSF_OP(r->t, post_batch, r->t->c, r->p, 2, r->rooms, &r->nrooms);
    __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static PGresult *exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        PQclear(r);
        return NULL;
    }
    return r;
}

/* The other writer's transaction stores (1, "race") in room one and stays open; ours
 * posts the same id in room two, and waits on the unique index until the other one
 * ends. commit: ours answers the other's message (409); else ours is stored. Either
 * way room two's seq has no gap. */
static void race_once(int commit)
{
    struct sfx t;
    MSF_OPEN(&t, pg_engine());
    const int64_t a[] = { 1 };
    int64_t one = room_with(&t, "one", a, 1), two = room_with(&t, "two", a, 1);
    ASSERT(one > 0 && two > 0);
    PGconn *other = PQconnectdb(t.url);
    ASSERT(PQstatus(other) == CONNECTION_OK);
    PGresult *res = exec_ok(other, "BEGIN");
    ASSERT(res);
    PQclear(res);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT r_status FROM message_post_batch('{%lld}', '{1}',"
             " '{u1}', '{theirs}', '{race}', '{1}') WHERE r_k = 0", (long long)one);
    ASSERT((res = exec_ok(other, sql)) != NULL);
    ASSERT_STR_EQ(PQgetvalue(res, 0, 0), "201");
    PQclear(res);

    static struct racer r;
    memset(&r, 0, sizeof r);
    r.t = &t;
    r.p[0] = post(two, 1, "ours", "race");
    r.p[1] = post(two, 1, "after", NULL);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, race_post, &r), 0);
    /* Ours waits for the other transaction (a lock), whatever the timing. */
    uint64_t deadline = mono_ms() + 10000;
    while (pg_test_int(t.url, "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                  " current_database() AND wait_event_type = 'Lock'") < 1 &&
           mono_ms() < deadline)
        fx_nap();
    ASSERT_EQ(__atomic_load_n(&r.done, __ATOMIC_ACQUIRE), 0);
    ASSERT((res = exec_ok(other, commit ? "COMMIT" : "ROLLBACK")) != NULL);
    PQclear(res);
    pthread_join(th, NULL);
    PQfinish(other);

    ASSERT_EQ(r.rc, 0);
    ASSERT_EQ(r.p[0].status, commit ? 409 : 201);
    if (commit) {
        ASSERT(r.p[0].row.room_id == one && r.p[0].row.seq == 1);
        ASSERT_STR_EQ(r.p[0].row.body, "theirs");
    }
    ASSERT_EQ(r.p[1].status, 201);
    ASSERT_EQ(r.p[1].row.seq, commit ? 1 : 2);
    free_results(r.p, 2, r.rooms, r.nrooms);
    snprintf(sql, sizeof sql, "SELECT last_seq * 100 + count(m.id) FROM rooms r LEFT JOIN"
             " messages m ON m.room_id = r.id WHERE r.id = %lld GROUP BY r.id", (long long)two);
    ASSERT_EQ(pg_test_int(t.url, sql), commit ? 101 : 202);
    ASSERT_EQ(pg_test_int(t.url, "SELECT count(*) FROM messages WHERE client_msg_id = 'race'"), 1);
    store_close(&t);
}

TEST(message_store_pg_repeat_racing_a_commit_answers_it)
{
    race_once(1);
}

TEST(message_store_pg_repeat_racing_a_rollback_is_stored)
{
    race_once(0);
}
