/* Dead letters through a running server, on every engine (dlq_store_fixture.h): a
 * failed delivery becomes a row, a replay that fails again updates it, one that
 * succeeds removes it; two servers (two buses, each with its own struct db, loop and
 * writer) on one database deliver each marked row exactly once between them; a row
 * claimed by a process that died is replayed once its claim has ended, not before. */
#include <errno.h>
#include "test.h"
#include "dlq_store_fixture.h"

#define ROWS 300                     /* more than one claim takes (BUS_REPLAY_BATCH) */
#define BUS_POLL_MS 1000             /* the servers' poll interval (BUS_REPLAY_POLL_MS) */

struct node {
    struct fx f;
    struct dlq_fx *home;             /* the database's fixture */
    int delivered;
};

#define HELD_MAX (4 * ROWS)

struct hits {
    int n[ROWS + 1];
    int64_t last_at;                 /* now_ms() of the last delivery */
    int hold;                        /* 1: deliveries wait in held[] to be completed */
    int nheld;
    struct bus_delivery *held[HELD_MAX];
};

static struct hits hits;

static int count_delivery(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct node *node = ctx;
    cJSON *n = cJSON_GetObjectItem(ev->payload, "n");
    if (cJSON_IsNumber(n) && n->valueint >= 1 && n->valueint <= ROWS)
        hits.n[n->valueint]++;
    hits.last_at = now_ms();
    node->delivered++;
    if (hits.hold && hits.nheld < HELD_MAX) {
        hits.held[hits.nheld++] = d;
        return BUS_ASYNC;
    }
    return 0;
}

/* A server on the fixture's database: its own loop, struct db, writer and bus. */
static int node_start(struct node *node, struct dlq_fx *home, const struct dlq_engine *e)
{
    static const struct bus_sub_opts o = { "test.replayed", 1, 1, NULL };
    memset(node, 0, sizeof *node);
    node->home = home;
    if (fx_init(&node->f) < 0 || bus_new(&node->f.app.bus, &node->f.app) < 0)
        return -1;
    if (dlq_fx_open_db(home, e, &node->f.app, &node->f.app.db) < 0 || db_start(node->f.app.db) < 0)
        return -1;
    if (bus_subscribe(node->f.app.bus, "t.replayed", &o, count_delivery, node) < 0)
        return -1;
    return bus_start(node->f.app.bus);
}

static int fail_first(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    int *fail = ctx;
    (void)ev;
    hits.n[0]++;
    if (*fail > 0) {
        (*fail)--;
        bus_delivery_set_error(d, "refused by the test");
        return -EIO;
    }
    return 0;
}

static int rows_left(struct dlq_fx *s)
{
    int64_t rows = -1, bytes;
    int claimable;
    return s->store->poll(s->conn, now_ms(), &rows, &bytes, &claimable) < 0 ? -1 : (int)rows;
}

/* Turns both loops until cond holds or ms pass. */
#define RUN_BOTH_UNTIL(a, b, cond, ms) __extension__ ({                          \
        uint64_t deadline_ = mono_ms() + (ms);                                  \
        while (!(cond) && mono_ms() < deadline_) {                              \
            uv_run(&(a)->f.loop, UV_RUN_NOWAIT);                                \
            uv_run(&(b)->f.loop, UV_RUN_NOWAIT);                                \
            fx_nap();                                                           \
        }                                                                       \
        (cond);                                                                 \
    })

static int add_marked(struct dlq_fx *s, int n)
{
    char payload[32];
    int64_t evicted;
    snprintf(payload, sizeof payload, "{\"n\":%d}", n);
    struct dlq_letter l = { .topic = "t.replayed", .consumer = "test.replayed",
                            .error = "boom", .payload = payload, .attempts = 1,
                            .first_failed_at = 1, .last_failed_at = 1 };
    return s->store->insert(s->conn, &l, ROWS * 2, INT64_C(1) << 40, &evicted);
}

static struct seen_row {
    int n, attempts, marked;
    char error[64], payload[64];
} seen;

static int see(void *arg, const struct dlq_letter *l)
{
    (void)arg;
    seen.n++;
    seen.attempts = l->attempts;
    seen.marked = l->replay_requested;
    snprintf(seen.error, sizeof seen.error, "%s", l->error);
    snprintf(seen.payload, sizeof seen.payload, "%s", l->payload);
    return 0;
}

static int one_row(struct dlq_fx *s)
{
    memset(&seen, 0, sizeof seen);
    return s->store->each(s->conn, 0, see, NULL) == 1;
}

static void case_lifecycle(struct dlq_fx *s, const struct dlq_engine *e)
{
    static const struct bus_sub_opts o = { "test.failing", 2, 1, NULL };
    struct node a;
    int fail = 2 + 2;                /* the first series and the first replay fail */
    memset(&hits, 0, sizeof hits);
    ASSERT_EQ(node_start(&a, s, e), 0);
    ASSERT_EQ(bus_subscribe(a.f.app.bus, "t.failing", &o, fail_first, &fail), 0);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "text", "it's \"quoted\" \u00e9");
    ASSERT_EQ(bus_publish(a.f.app.bus, bus_event_new("t.failing", p)), 0);
    ASSERT(FX_RUN_UNTIL(&a.f, rows_left(s) == 1, 5000));
    ASSERT(one_row(s));
    ASSERT_EQ(seen.attempts, 2);
    ASSERT_STR_EQ(seen.error, "refused by the test");
    ASSERT_STR_EQ(seen.payload, "{\"text\":\"it's \\\"quoted\\\" \u00e9\"}");
    ASSERT_EQ(s->store->mark(s->conn, 0), 1);
    ASSERT(FX_RUN_UNTIL(&a.f, hits.n[0] == 4 && one_row(s) && !seen.marked, 5000));
    ASSERT_EQ(seen.attempts, 4);
    ASSERT_EQ(s->store->mark(s->conn, 0), 1);
    ASSERT(FX_RUN_UNTIL(&a.f, rows_left(s) == 0, 5000));
    ASSERT_EQ(hits.n[0], 5);
    fx_stop(&a.f);
}

TEST(bus_dlq_replay_lifecycle)
{
    dlq_each_engine(case_lifecycle);
}

/* The replays are held in flight until every row is claimed and each server has
 * polled once more: a server that took rows claimed by the other would deliver them
 * too. */
static void case_once_across_servers(struct dlq_fx *s, const struct dlq_engine *e)
{
    struct node a, b;
    memset(&hits, 0, sizeof hits);
    hits.hold = 1;
    /* The rows, made and marked before either server starts (as `chatd dlq replay`). */
    for (int i = 1; i <= ROWS; i++)
        ASSERT_EQ(add_marked(s, i), 0);
    ASSERT_EQ(s->store->mark(s->conn, 0), ROWS);
    ASSERT_EQ(node_start(&a, s, e), 0);
    ASSERT_EQ(node_start(&b, s, e), 0);
    ASSERT(RUN_BOTH_UNTIL(&a, &b, hits.nheld >= ROWS, 15000));
    RUN_BOTH_UNTIL(&a, &b, 0, BUS_POLL_MS + 200);    /* each polls once more */
    ASSERT_EQ(hits.nheld, ROWS);
    ASSERT(a.delivered > 0 && b.delivered > 0);   /* ROWS is more than one claim takes */
    hits.hold = 0;
    for (int i = 0; i < hits.nheld; i++)
        bus_complete(hits.held[i], 0, NULL);
    ASSERT(RUN_BOTH_UNTIL(&a, &b, rows_left(s) == 0, 15000));
    fx_stop(&a.f);
    fx_stop(&b.f);
    ASSERT_EQ(a.delivered + b.delivered, ROWS);
    for (int i = 1; i <= ROWS; i++)
        ASSERT_EQ(hits.n[i], 1);
}

TEST(bus_dlq_replay_once_across_servers)
{
    dlq_each_engine(case_once_across_servers);
}

/* A row claimed by a run that is gone (no renewals): replayed once the claim ends. */
static void case_dead_claimer(struct dlq_fx *s, const struct dlq_engine *e)
{
    struct node a, idle;
    struct dlq_claim got[1];
    memset(&hits, 0, sizeof hits);
    ASSERT_EQ(add_marked(s, 1), 0);
    ASSERT_EQ(s->store->mark(s->conn, 0), 1);
    int64_t until = now_ms() + 400;
    ASSERT_EQ(s->store->claim(s->conn, 4242, now_ms(), until, 1, got), 1);
    dlq_claims_free(got, 1);
    ASSERT_EQ(node_start(&a, s, e), 0);
    ASSERT_EQ(node_start(&idle, s, e), 0);
    ASSERT(RUN_BOTH_UNTIL(&a, &idle, rows_left(s) == 0, 10000));
    fx_stop(&a.f);
    fx_stop(&idle.f);
    ASSERT_EQ(hits.n[1], 1);
    ASSERT(hits.last_at > until);
}

TEST(bus_dlq_replay_after_a_dead_claimer)
{
    dlq_each_engine(case_dead_claimer);
}
