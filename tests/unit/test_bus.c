/* Tests for src/bus/: dispatch order, deferred dispatch (no handler inside its
 * publisher), the bounded queue, hand-over from threads,
 * retries with backoff, dead letters and their replay, request/reply. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "bus_fixture.h"
#include "test.h"

/* --- a recorder: handlers append "<tag>:<n>" to a log --------------------------- */

struct rec {
    struct bus *b;
    char log[4096];
    int calls;
    int fail;                    /* handlers fail while > 0 */
    uint64_t at[16];             /* uv_now of each call */
    int depth, max_depth;
};

static void rec_add(struct rec *r, const char *tag, const struct bus_event *ev)
{
    double n = cJSON_GetNumberValue(cJSON_GetObjectItem(ev->payload, "n"));
    size_t len = strlen(r->log);
    snprintf(r->log + len, sizeof(r->log) - len, "%s%s:%g", len ? " " : "", tag, n);
}

static struct bus_event *ev_n(const char *topic, int n)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "n", n);
    return bus_event_new(topic, p);
}

static int on_a(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    rec_add(ctx, "a", ev);
    return 0;
}

static int on_b(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    rec_add(ctx, "b", ev);
    return 0;
}

TEST(bus_dispatch_order)
{
    struct fx f;
    struct rec r = { 0 };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.one", NULL, on_a, &r), 0);
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.one", NULL, on_b, &r), 0);
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.two", NULL, on_b, &r), 0);
    for (int i = 1; i <= 3; i++)
        ASSERT_EQ(bus_publish(f.app.bus, ev_n(i == 2 ? "t.two" : "t.one", i)), 0);
    ASSERT_EQ(bus_publish(f.app.bus, ev_n("t.nobody", 9)), 0);
    ASSERT_STR_EQ(r.log, "");                  /* publishing only queues */
    ASSERT_EQ(bus_depth(f.app.bus), 4);
    ASSERT(FX_RUN_UNTIL(&f, bus_depth(f.app.bus) == 0, 5000));
    ASSERT_STR_EQ(r.log, "a:1 b:1 b:2 a:3 b:3");
    fx_stop(&f);
}

/* A handler that publishes: the new event waits until the current one has reached
 * every subscriber. */
static int on_outer(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct rec *r = ctx;
    if (++r->depth > r->max_depth)
        r->max_depth = r->depth;
    rec_add(r, "outer", ev);
    bus_publish(r->b, ev_n("t.inner", 10));
    bus_publish(r->b, ev_n("t.inner", 11));
    rec_add(r, "outer-end", ev);
    r->depth--;
    return 0;
}

static int on_inner(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct rec *r = ctx;
    if (++r->depth > r->max_depth)
        r->max_depth = r->depth;
    rec_add(r, "inner", ev);
    r->depth--;
    return 0;
}

TEST(bus_no_reentrancy)
{
    struct fx f;
    struct rec r = { 0 };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    r.b = f.app.bus;
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.outer", NULL, on_outer, &r), 0);
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.outer", NULL, on_a, &r), 0);
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.inner", NULL, on_inner, &r), 0);
    ASSERT_EQ(bus_publish(f.app.bus, ev_n("t.outer", 1)), 0);
    ASSERT(FX_RUN_UNTIL(&f, bus_depth(f.app.bus) == 0, 5000));
    ASSERT_STR_EQ(r.log, "outer:1 outer-end:1 a:1 inner:10 inner:11");
    ASSERT_EQ(r.max_depth, 1);
    fx_stop(&f);
}

/* --- other threads -------------------------------------------------------------- */

#define POSTERS 4
#ifdef __SANITIZE_THREAD__
#define POSTS 5000
#else
#define POSTS 50000
#endif

struct seen {
    int last[POSTERS];
    int total;
    int bad;
    int calls;
    uv_thread_t loop_thread;
};

static int on_posted(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct seen *s = ctx;
    int p = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(ev->payload, "p"));
    int n = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(ev->payload, "n"));
    if (p < 0 || p >= POSTERS || n != s->last[p] + 1)
        s->bad++;
    else
        s->last[p] = n;
    s->total++;
    return 0;
}

static void on_call(void *arg)
{
    struct seen *s = arg;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &s->loop_thread))
        s->bad++;
    s->calls++;
}

struct poster {
    struct bus *b;
    struct seen *s;
    int p;
};

static void *post_thread(void *arg)
{
    struct poster *t = arg;
    for (int n = 1; n <= POSTS; n++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "p", t->p);
        cJSON_AddNumberToObject(p, "n", n);
        if (bus_post_wait(t->b, bus_event_new("t.posted", p)) < 0)
            return NULL;
        if (n % 1000 == 0)
            bus_call_on_loop_wait(t->b, on_call, t->s);
    }
    return NULL;
}

TEST(bus_post_from_threads)
{
    struct fx f;
    static struct seen s;
    pthread_t th[POSTERS];
    struct poster ps[POSTERS];

    memset(&s, 0, sizeof(s));
    s.loop_thread = uv_thread_self();
    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.posted", NULL, on_posted, &s), 0);
    for (int i = 0; i < POSTERS; i++) {
        ps[i] = (struct poster){ f.app.bus, &s, i };
        ASSERT_EQ(pthread_create(&th[i], NULL, post_thread, &ps[i]), 0);
    }
    int ok = FX_RUN_UNTIL(&f, s.total == POSTERS * POSTS && s.calls == POSTERS * POSTS / 1000,
                          30000);
    for (int i = 0; i < POSTERS; i++)
        pthread_join(th[i], NULL);
    ASSERT(ok);
    ASSERT_EQ(s.bad, 0);
    for (int i = 0; i < POSTERS; i++)
        ASSERT_EQ(s.last[i], POSTS);
    fx_stop(&f);
}

/* After close, posting is refused; bus_post_wait consumes the event anyway. */
TEST(bus_post_after_close)
{
    struct fx f;

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    bus_close(f.app.bus);
    ASSERT_EQ(bus_post_wait(f.app.bus, ev_n("t.x", 1)), -ECANCELED);
    ASSERT_EQ(bus_publish(f.app.bus, ev_n("t.x", 2)), -ECANCELED);
    fx_stop(&f);
}

/* --- retries and dead letters ---------------------------------------------------- */

static uint64_t now_of(struct fx *f)
{
    uv_update_time(&f->loop);
    return uv_now(&f->loop);
}

struct timed {
    struct fx *f;
    struct rec r;
};

static int on_failing_timed(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct timed *t = ctx;
    if (t->r.calls < 16)
        t->r.at[t->r.calls] = now_of(t->f);
    t->r.calls++;
    if (bus_delivery_attempt(d) != t->r.calls)
        t->r.depth = -1;   /* marks a wrong attempt number */
    if (t->r.fail > 0) {
        t->r.fail--;
        bus_delivery_set_error(d, "boom");
        return -EIO;
    }
    return 0;
}

TEST(bus_retry_succeeds)
{
    struct fx f;
    struct timed t = { .f = &f };
    struct bus_sub_opts o = { "test.flaky", 4, 10, NULL };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 1), 0);
    t.r.fail = 2;
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.flaky", &o, on_failing_timed, &t), 0);
    ASSERT_EQ(bus_publish(f.app.bus, ev_n("t.flaky", 1)), 0);
    ASSERT(FX_RUN_UNTIL(&f, t.r.calls == 1, 5000));
    ASSERT_EQ(bus_depth(f.app.bus), 1);    /* waiting for its retry */
    ASSERT(FX_RUN_UNTIL(&f, t.r.calls == 3, 5000));
    ASSERT(t.r.at[1] - t.r.at[0] >= 10);   /* backoff: base, then doubled */
    ASSERT(t.r.at[2] - t.r.at[1] >= 20);
    ASSERT(t.r.depth == 0);
    ASSERT_EQ(bus_depth(f.app.bus), 0);
    FX_RUN_UNTIL(&f, 0, 50);
    ASSERT_EQ(t.r.calls, 3);
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT count(*) FROM dead_letters"), 0);
    fx_stop(&f);
}

static long long dead_letters(struct fx *f)
{
    return fx_query_int(f->db_path, "SELECT count(*) FROM dead_letters");
}

static char *dead_letter_text(struct fx *f, const char *col, long long id)
{
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    char sql[128], *v = NULL;

    snprintf(sql, sizeof(sql), "SELECT %s FROM dead_letters WHERE id = %lld", col, id);
    if (sqlite3_open_v2(f->db_path, &c, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

static int text_is(struct fx *f, const char *col, long long id, const char *want)
{
    char *v = dead_letter_text(f, col, id);
    int ok = v && strcmp(v, want) == 0;
    if (!ok)
        fprintf(stderr, "dead_letters.%s = %s, want %s\n", col, v ? v : "(null)", want);
    free(v);
    return ok;
}

TEST(bus_dead_letter)
{
    struct fx f;
    struct timed t = { .f = &f };
    struct bus_sub_opts o = { "test.broken", 3, 5, NULL };
    int64_t before = now_ms();

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 1), 0);
    t.r.fail = 1000;
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.broken", &o, on_failing_timed, &t), 0);
    ASSERT_EQ(bus_publish(f.app.bus, ev_n("t.broken", 7)), 0);
    ASSERT(FX_RUN_UNTIL(&f, dead_letters(&f) == 1, 5000));
    ASSERT_EQ(t.r.calls, 3);
    ASSERT(t.r.at[1] - t.r.at[0] >= 5);
    ASSERT(t.r.at[2] - t.r.at[1] >= 10);
    long long id = fx_query_int(f.db_path, "SELECT id FROM dead_letters");
    ASSERT(text_is(&f, "topic", id, "t.broken"));
    ASSERT(text_is(&f, "consumer", id, "test.broken"));
    ASSERT(text_is(&f, "error", id, "boom"));
    ASSERT(text_is(&f, "payload", id, "{\"n\":7}"));
    ASSERT(text_is(&f, "attempts", id, "3"));
    ASSERT(text_is(&f, "replay_requested", id, "0"));
    long long first = fx_query_int(f.db_path, "SELECT first_failed_at FROM dead_letters");
    long long last = fx_query_int(f.db_path, "SELECT last_failed_at FROM dead_letters");
    /* Backoff 5 + 10 ms between the first and the last failure; the columns are
     * whole milliseconds and libuv's timers run on a loop clock cached at the start of
     * each turn, so the gap read back may be up to 2 ms short of 15. */
    ASSERT(first >= before && last >= first + 13 && last <= now_ms());
    FX_RUN_UNTIL(&f, 0, 50);
    ASSERT_EQ(t.r.calls, 3);
    ASSERT_EQ(bus_depth(f.app.bus), 0);
    fx_stop(&f);
}

/* max_attempts 0: one attempt, no retry, no dead letter. */
TEST(bus_no_retry_consumer)
{
    struct fx f;
    struct timed t = { .f = &f };
    struct bus_sub_opts o = { "test.once", 0, 5, NULL };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 1), 0);
    t.r.fail = 1000;
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.once", &o, on_failing_timed, &t), 0);
    ASSERT_EQ(bus_publish(f.app.bus, ev_n("t.once", 1)), 0);
    FX_RUN_UNTIL(&f, 0, 60);
    ASSERT_EQ(t.r.calls, 1);
    ASSERT_EQ(bus_depth(f.app.bus), 0);
    fx_stop(&f);
    /* the table exists and is empty */
}

/* BUS_ASYNC handlers complete later; a failure there is retried the same way. */
struct later {
    struct fx *f;
    uv_timer_t timer;
    struct bus_delivery *d;
    int calls, fail;
};

static void complete_later(uv_timer_t *t)
{
    struct later *l = t->data;
    struct bus_delivery *d = l->d;
    l->d = NULL;
    if (l->fail-- > 0)
        bus_complete(d, -ETIMEDOUT, "upstream timed out");
    else
        bus_complete(d, 0, NULL);
}

static int on_async(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct later *l = ctx;
    l->calls++;
    l->d = d;
    uv_timer_start(&l->timer, complete_later, 1, 0);
    return BUS_ASYNC;
}

TEST(bus_async_handler)
{
    struct fx f;
    struct later l = { .f = &f, .fail = 1 };
    struct bus_sub_opts o = { "test.async", 2, 5, NULL };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 1), 0);
    uv_timer_init(&f.loop, &l.timer);
    l.timer.data = &l;
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.async", &o, on_async, &l), 0);
    ASSERT_EQ(bus_publish(f.app.bus, ev_n("t.async", 1)), 0);
    ASSERT(FX_RUN_UNTIL(&f, l.calls == 2 && l.d == NULL, 5000));
    FX_RUN_UNTIL(&f, 0, 50);
    ASSERT_EQ(l.calls, 2);
    ASSERT_EQ(dead_letters(&f), 0);
    /* Now fail both attempts: a dead letter with the completion's error. */
    l.fail = 2;
    ASSERT_EQ(bus_publish(f.app.bus, ev_n("t.async", 2)), 0);
    ASSERT(FX_RUN_UNTIL(&f, dead_letters(&f) == 1, 5000));
    long long id = fx_query_int(f.db_path, "SELECT id FROM dead_letters");
    ASSERT(text_is(&f, "error", id, "upstream timed out"));
    uv_close((uv_handle_t *)&l.timer, NULL);
    fx_stop(&f);
}

/* --- replay ---------------------------------------------------------------------- */

/* What `chatd dlq ...` does, against the same database (a second handle, like a
 * second process). Output goes to stdout: the exit status is what we check. */
static int dlq(struct fx *f, const char *a1, const char *a2)
{
    struct chatd cli = f->app;
    char *argv[] = { "dlq", (char *)a1, (char *)a2, NULL };
    int rc;

    cli.bus = NULL;
    if (db_open(&cli.db, &cli, f->db_path) < 0)
        return -1;
    /* Quiet unless TEST_VERBOSE: the command prints for people. */
    int quiet = !getenv("TEST_VERBOSE"), out = -1, err = -1, null = -1;
    fflush(stdout);
    fflush(stderr);
    if (quiet && (null = open("/dev/null", O_WRONLY)) >= 0) {
        out = dup(1);
        err = dup(2);
        dup2(null, 1);
        dup2(null, 2);
    }
    rc = bus_dlq_command(&cli, a2 ? 3 : 2, argv);
    fflush(stdout);
    fflush(stderr);
    if (null >= 0) {
        dup2(out, 1);
        dup2(err, 2);
        close(out);
        close(err);
        close(null);
    }
    db_close(cli.db);
    return rc;
}

TEST(bus_replay)
{
    struct fx f;
    struct timed t = { .f = &f };
    struct bus_sub_opts o = { "test.replay", 2, 2, NULL };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 1), 0);
    t.r.fail = 2 + 2;   /* the first series and the first replay fail */
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.replay", &o, on_failing_timed, &t), 0);
    ASSERT_EQ(bus_publish(f.app.bus, ev_n("t.replay", 5)), 0);
    ASSERT(FX_RUN_UNTIL(&f, dead_letters(&f) == 1, 5000));
    long long id = fx_query_int(f.db_path, "SELECT id FROM dead_letters");
    char ids[32];
    snprintf(ids, sizeof(ids), "%lld", id);

    ASSERT_EQ(dlq(&f, "list", NULL), 0);
    ASSERT_EQ(dlq(&f, "show", ids), 0);
    ASSERT_EQ(dlq(&f, "show", "999"), 1);
    ASSERT_EQ(dlq(&f, "replay", "999"), 1);
    ASSERT_EQ(dlq(&f, "replay", "x"), 2);
    ASSERT_EQ(dlq(&f, "frobnicate", NULL), 2);

    /* A replay that fails again: row updated, mark cleared, attempts added. */
    ASSERT_EQ(dlq(&f, "replay", ids), 0);
    ASSERT(FX_RUN_UNTIL(&f, t.r.calls == 4 &&
                        fx_query_int(f.db_path, "SELECT replay_requested FROM dead_letters") == 0,
                        5000));
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT attempts FROM dead_letters"), 4);
    ASSERT_EQ(dead_letters(&f), 1);

    /* A replay that succeeds: the consumer gets the same payload, the row goes. */
    ASSERT_EQ(dlq(&f, "replay", "--all"), 0);
    ASSERT(FX_RUN_UNTIL(&f, dead_letters(&f) == 0, 5000));
    ASSERT_EQ(t.r.calls, 5);
    FX_RUN_UNTIL(&f, 0, 1200);    /* a later poll does not deliver it again */
    ASSERT_EQ(t.r.calls, 5);
    ASSERT_EQ(dlq(&f, "purge", ids), 1);
    fx_stop(&f);
}

/* A marked row whose consumer does not exist here is not retried forever. */
TEST(bus_replay_unknown_consumer)
{
    struct fx f;

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 1), 0);
    sqlite3 *c = NULL;
    ASSERT_EQ(sqlite3_open(f.db_path, &c), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(c, "INSERT INTO dead_letters (topic, payload, consumer, error,"
                           " attempts, first_failed_at, last_failed_at, replay_requested)"
                           " VALUES ('t.gone', '{}', 'nobody', 'x', 1, 1, 1, 1)",
                           NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(c);
    ASSERT(FX_RUN_UNTIL(&f, fx_query_int(f.db_path,
                        "SELECT replay_requested FROM dead_letters") == 0, 5000));
    ASSERT(text_is(&f, "error", 1, "replay: no consumer nobody for topic t.gone"));
    ASSERT_EQ(dlq(&f, "purge", "1"), 0);
    ASSERT_EQ(dead_letters(&f), 0);
    fx_stop(&f);
}

/* Retries still waiting when the server stops are kept as dead letters. */
TEST(bus_close_keeps_waiting_retries)
{
    struct fx f;
    struct timed t = { .f = &f };
    struct bus_sub_opts o = { "test.slow", 5, 60000, NULL };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 1), 0);
    t.r.fail = 1000;
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.slow", &o, on_failing_timed, &t), 0);
    ASSERT_EQ(bus_publish(f.app.bus, ev_n("t.slow", 1)), 0);
    ASSERT(FX_RUN_UNTIL(&f, t.r.calls == 1, 5000));
    ASSERT_EQ(bus_depth(f.app.bus), 1);    /* waiting for its retry */
    bus_close(f.app.bus);
    db_close(f.app.db);
    f.app.db = NULL;
    ASSERT_EQ(dead_letters(&f), 1);
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT attempts FROM dead_letters"), 1);
    fx_stop(&f);
}

/* --- request / reply ------------------------------------------------------------- */

struct answer {
    int calls;
    int status;
    char body[256];
};

static void on_answer(void *ctx, int status, const cJSON *payload)
{
    struct answer *a = ctx;
    char *s = payload ? cJSON_PrintUnformatted(payload) : NULL;
    a->calls++;
    a->status = status;
    snprintf(a->body, sizeof(a->body), "%s", s ? s : "");
    free(s);
}

static int on_echo(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct bus *b = ctx;
    cJSON *p = cJSON_Duplicate(ev->payload, 1);
    cJSON_AddBoolToObject(p, "echoed", 1);
    bus_reply(b, ev, 0, p);
    return 0;
}

TEST(bus_request_reply)
{
    struct fx f;
    struct answer a = { 0 };
    cJSON *p = cJSON_CreateObject();

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.echo", NULL, on_echo, f.app.bus), 0);
    cJSON_AddNumberToObject(p, "n", 1);
    int64_t id = bus_request(f.app.bus, "t.echo", p, 1000, on_answer, &a);
    ASSERT(id > 0);
    ASSERT_EQ(a.calls, 0);   /* never inside bus_request: callers count on it */
    ASSERT(FX_RUN_UNTIL(&f, a.calls == 1, 1000));
    ASSERT_EQ(a.status, 0);
    ASSERT_STR_EQ(a.body, "{\"n\":1,\"echoed\":true}");
    bus_request_cancel(f.app.bus, id);   /* after the answer: harmless */
    FX_RUN_UNTIL(&f, 0, 20);
    ASSERT_EQ(a.calls, 1);
    fx_stop(&f);
}

struct held {
    struct bus *b;
    struct bus_event *ev;
    int status;
};

static int on_hold(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct held *h = ctx;
    bus_event_ref(ev);
    h->ev = ev;
    return 0;
}

static void *reply_thread(void *arg)
{
    struct held *h = arg;
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "code", "not_found");
    h->status = bus_reply(h->b, h->ev, -ENOENT, p);
    return NULL;
}

TEST(bus_request_reply_from_thread)
{
    struct fx f;
    struct answer a = { 0 };
    struct held h = { 0 };
    pthread_t th;

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    h.b = f.app.bus;
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.hold", NULL, on_hold, &h), 0);
    ASSERT(bus_request(f.app.bus, "t.hold", NULL, 5000, on_answer, &a) > 0);
    ASSERT(FX_RUN_UNTIL(&f, h.ev != NULL, 5000));
    ASSERT_EQ(a.calls, 0);
    ASSERT_EQ(pthread_create(&th, NULL, reply_thread, &h), 0);
    pthread_join(th, NULL);
    ASSERT_EQ(h.status, 0);
    ASSERT(FX_RUN_UNTIL(&f, a.calls == 1, 2000));
    ASSERT_EQ(a.status, -ENOENT);
    ASSERT_STR_EQ(a.body, "{\"code\":\"not_found\"}");
    bus_event_unref(h.ev);
    fx_stop(&f);
}

TEST(bus_request_timeout_and_cancel)
{
    struct fx f;
    struct answer timed_out = { 0 }, cancelled = { 0 }, nobody = { 0 }, closing = { 0 };
    struct held h = { 0 };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    h.b = f.app.bus;
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.hold", NULL, on_hold, &h), 0);

    uint64_t t0 = now_of(&f);
    ASSERT(bus_request(f.app.bus, "t.hold", NULL, 30, on_answer, &timed_out) > 0);
    ASSERT(FX_RUN_UNTIL(&f, h.ev != NULL, 5000));
    bus_event_unref(h.ev);
    h.ev = NULL;
    int64_t id = bus_request(f.app.bus, "t.hold", NULL, 30, on_answer, &cancelled);
    ASSERT(id > 0);
    ASSERT(FX_RUN_UNTIL(&f, h.ev != NULL, 5000));
    struct bus_event *late = h.ev;
    bus_request_cancel(f.app.bus, id);
    ASSERT(bus_request(f.app.bus, "t.nobody", NULL, 5000, on_answer, &nobody) > 0);
    ASSERT_EQ(nobody.calls, 0);          /* never inside the caller */
    ASSERT(FX_RUN_UNTIL(&f, timed_out.calls == 1 && nobody.calls == 1, 2000));
    ASSERT(now_of(&f) - t0 >= 30);
    ASSERT_EQ(timed_out.status, -ETIMEDOUT);
    ASSERT_EQ(nobody.status, -ENOENT);
    /* A reply to a cancelled request goes nowhere. */
    ASSERT_EQ(bus_reply(f.app.bus, late, 0, cJSON_CreateObject()), 0);
    FX_RUN_UNTIL(&f, 0, 60);
    ASSERT_EQ(cancelled.calls, 0);
    bus_event_unref(late);
    /* Requests still waiting at close hear -ECANCELED. */
    h.ev = NULL;
    ASSERT(bus_request(f.app.bus, "t.hold", NULL, 5000, on_answer, &closing) > 0);
    ASSERT(FX_RUN_UNTIL(&f, h.ev != NULL, 5000));
    bus_event_unref(h.ev);
    bus_close(f.app.bus);
    ASSERT_EQ(closing.calls, 1);
    ASSERT_EQ(closing.status, -ECANCELED);
    fx_stop(&f);
}

/* A burst from another thread larger than one drain slice: the loop takes it over
 * several turns, every event arrives once and in order, and a timer that falls due
 * in the middle of it fires before the burst is done. */
#define BURST 200

struct burst {
    uv_timer_t timer;
    int got, bad, started, fired_at;
};

static void spin_us(uint64_t us)
{
    uint64_t end = uv_hrtime() + us * 1000;
    while (uv_hrtime() < end)
        ;
}

static void burst_timer(uv_timer_t *t)
{
    struct burst *b = t->data;
    b->fired_at = b->got;
}

static int on_burst(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct burst *b = ctx;
    int n = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(ev->payload, "n"));

    (void)d;
    if (n != b->got + 1)
        b->bad++;
    b->got = n;
    if (!b->started) {
        b->started = 1;
        uv_timer_start(&b->timer, burst_timer, 0, 0);
    }
    spin_us(50);   /* 200 events: 10 ms of handlers, twenty slices */
    return 0;
}

static void *burst_thread(void *arg)
{
    struct bus *bus = arg;
    for (int n = 1; n <= BURST; n++)
        if (bus_post_wait(bus, ev_n("t.burst", n)) < 0)
            break;
    return NULL;
}

/* Runs producer on a thread until it returns, then the loop: every event arrives in
 * order, and a timer started before the burst fires while it is still being handled. */
static int burst_spread_over_turns(void *(*producer)(void *))
{
    struct fx f;
    struct burst b = { .fired_at = -1 };
    pthread_t th;
    int ok;

    if (fx_init(&f) != 0 || fx_start(&f, 0) != 0)
        return 0;
    uv_timer_init(&f.loop, &b.timer);
    b.timer.data = &b;
    ok = bus_subscribe(f.app.bus, "t.burst", NULL, on_burst, &b) == 0 &&
         pthread_create(&th, NULL, producer, f.app.bus) == 0;
    if (ok) {
        pthread_join(th, NULL);
        ok = FX_RUN_UNTIL(&f, b.got == BURST, 10000) && b.bad == 0 &&
             b.fired_at > 0 && b.fired_at < BURST;
        FX_RUN_UNTIL(&f, 0, 20);     /* nothing more arrives later */
        ok = ok && b.got == BURST;
    }
    uv_close((uv_handle_t *)&b.timer, NULL);
    fx_stop(&f);
    return ok;
}

/* The whole burst is in the ring before the loop turns. */
TEST(bus_drain_slices_keep_order)
{
    ASSERT(burst_spread_over_turns(burst_thread));
}

/* One call from another thread that publishes the whole burst on the loop (as a
 * group of write results does): its events too are spread over turns, in order. */
static void publish_burst(void *arg)
{
    struct bus *bus = arg;
    for (int n = 1; n <= BURST; n++)
        bus_publish(bus, ev_n("t.burst", n));
}

static void *call_thread(void *arg)
{
    bus_call_on_loop_wait(arg, publish_burst, arg);
    return NULL;
}

TEST(bus_drain_slices_split_a_call)
{
    ASSERT(burst_spread_over_turns(call_thread));
}

struct marked_call {
    struct bus *bus;
    int done;                        /* the call ran (loop thread only) */
};

static void publish_burst_marked(void *arg)
{
    struct marked_call *c = arg;
    publish_burst(c->bus);
    c->done = 1;
}

static void *marked_call_thread(void *arg)
{
    struct marked_call *c = arg;
    bus_call_on_loop_wait(c->bus, publish_burst_marked, c);
    return NULL;
}

/* Close with a cut-short drain's events still queued: they are dispatched, not lost.
 * The close comes in the turn the call ran: its slice (0.5 ms) holds a few of the
 * burst's 10 ms of handlers at most, however slow the publishing was. */
TEST(bus_close_runs_what_a_drain_left)
{
    struct fx f;
    struct burst b = { .fired_at = -1 };
    struct marked_call c = { 0 };
    pthread_t th;

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    uv_timer_init(&f.loop, &b.timer);
    b.timer.data = &b;
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.burst", NULL, on_burst, &b), 0);
    c.bus = f.app.bus;
    ASSERT_EQ(pthread_create(&th, NULL, marked_call_thread, &c), 0);
    pthread_join(th, NULL);
    ASSERT(FX_RUN_UNTIL(&f, c.done, 10000));
    ASSERT(b.got < BURST);
    bus_close(f.app.bus);
    ASSERT_EQ(b.got, BURST);
    ASSERT_EQ(b.bad, 0);
    uv_close((uv_handle_t *)&b.timer, NULL);
    fx_stop(&f);
}
