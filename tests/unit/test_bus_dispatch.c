/* Tests for the bus's deferred dispatch (src/bus/dispatch.c): no handler runs inside
 * its publisher, what a handler publishes runs after it and after the other
 * subscribers of its event, the order holds across events from the loop, handlers,
 * timers and the ring, what the loop published is dispatched within its turn and
 * before the modules' end-of-turn checks, and a full dispatch queue refuses a
 * publish. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include "bus_fixture.h"
#include "test.h"

struct trace {
    struct bus *b;
    char log[512];
    int in_publish;              /* 1 while the test's bus_publish call runs */
    int ran_inside;              /* a handler ran while in_publish */
};

static int num(const struct bus_event *ev)
{
    return (int)cJSON_GetNumberValue(cJSON_GetObjectItem(ev->payload, "n"));
}

static struct bus_event *ev_n(const char *topic, int n)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "n", n);
    return bus_event_new(topic, p);
}

static void note(struct trace *t, const char *tag, const struct bus_event *ev)
{
    size_t len = strlen(t->log);
    snprintf(t->log + len, sizeof(t->log) - len, "%s%s:%d", len ? " " : "", tag, num(ev));
    if (t->in_publish)
        t->ran_inside = 1;
}

/* Publishes like a module would, recording whether a handler ran meanwhile. */
static int traced_publish(struct trace *t, struct bus_event *ev)
{
    t->in_publish++;
    int rc = bus_publish(t->b, ev);
    t->in_publish--;
    return rc;
}

/* The first subscriber of t.first publishes a t.second for each t.first it gets. */
static int on_first(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct trace *t = ctx;
    note(t, "first", ev);
    traced_publish(t, ev_n("t.second", num(ev) * 10));
    note(t, "first-returns", ev);
    return 0;
}

static int on_first_too(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    note(ctx, "also", ev);
    return 0;
}

static int on_second(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    note(ctx, "second", ev);
    return 0;
}

TEST(bus_dispatch_never_inside_the_publisher)
{
    struct fx f;
    struct trace t = { 0 };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    t.b = f.app.bus;
    ASSERT_EQ(bus_subscribe(t.b, "t.first", NULL, on_first, &t), 0);
    ASSERT_EQ(bus_subscribe(t.b, "t.first", NULL, on_first_too, &t), 0);
    ASSERT_EQ(bus_subscribe(t.b, "t.second", NULL, on_second, &t), 0);
    ASSERT_EQ(traced_publish(&t, ev_n("t.first", 1)), 0);
    ASSERT_EQ(traced_publish(&t, ev_n("t.first", 2)), 0);
    ASSERT_STR_EQ(t.log, "");    /* queued, not run */
    ASSERT(FX_RUN_UNTIL(&f, bus_depth(t.b) == 0, 5000));
    /* Each t.second waits for its handler to return, for the other subscriber of its
     * t.first, and for the t.first published before it. */
    ASSERT_STR_EQ(t.log, "first:1 first-returns:1 also:1 first:2 first-returns:2 also:2"
                         " second:10 second:20");
    ASSERT_EQ(t.ran_inside, 0);
    fx_stop(&f);
}

/* Events reach the FIFO from the loop's callbacks (the test itself, a timer), from
 * handlers, and through the ring from other threads (an event; a call that
 * publishes). Each is dispatched in the order it was queued, what a handler publishes
 * after the other subscribers of its event, a ring item once the FIFO is empty, and
 * no handler inside any of the publishes. Every t.a below 10 publishes n * 10. */
static int on_a(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct trace *t = ctx;
    note(t, "a", ev);
    if (num(ev) < 10)
        traced_publish(t, ev_n("t.a", num(ev) * 10));
    return 0;
}

static int on_a_too(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    note(ctx, "a2", ev);
    return 0;
}

static void publish_two(struct trace *t)
{
    traced_publish(t, ev_n("t.a", 4));
    traced_publish(t, ev_n("t.a", 5));
}

static void call_publishes(void *arg)
{
    publish_two(arg);
}

static void timer_publishes(uv_timer_t *h)
{
    traced_publish(h->data, ev_n("t.a", 2));
}

static void *post_event_and_call(void *arg)
{
    struct trace *t = arg;
    if (bus_post_wait(t->b, ev_n("t.a", 3)) == 0)
        bus_call_on_loop_wait(t->b, call_publishes, t);
    return NULL;
}

TEST(bus_dispatch_order_across_sources)
{
    struct fx f;
    struct trace t = { 0 };
    uv_timer_t timer;
    pthread_t th;

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    t.b = f.app.bus;
    ASSERT_EQ(bus_subscribe(t.b, "t.a", NULL, on_a, &t), 0);
    ASSERT_EQ(bus_subscribe(t.b, "t.a", NULL, on_a_too, &t), 0);
    ASSERT_EQ(traced_publish(&t, ev_n("t.a", 1)), 0);
    ASSERT_EQ(pthread_create(&th, NULL, post_event_and_call, &t), 0);
    pthread_join(th, NULL);
    uv_timer_init(&f.loop, &timer);
    timer.data = &t;
    uv_timer_start(&timer, timer_publishes, 0, 0);   /* fires before the first check */
    ASSERT_STR_EQ(t.log, "");
    ASSERT(FX_RUN_UNTIL(&f, bus_depth(t.b) == 0 && strstr(t.log, "a2:50"), 5000));
    ASSERT_STR_EQ(t.log, "a:1 a2:1 a:2 a2:2 a:10 a2:10 a:20 a2:20"
                         " a:3 a2:3 a:30 a2:30 a:4 a2:4 a:5 a2:5 a:40 a2:40 a:50 a2:50");
    ASSERT_EQ(t.ran_inside, 0);
    uv_close((uv_handle_t *)&timer, NULL);
    fx_stop(&f);
}

/* What the loop published is dispatched whole in the turn it was published in, even
 * when its handlers take many times the ring's slice (400 x 20 us): a dispatch cut
 * into slices carries a backlog that a steady load makes grow. The dispatch runs
 * before an end-of-turn check started earlier (as the websocket flush is), so what
 * its handlers queue there goes out in the same turn; and the next poll does not
 * wait, for checks a handler may have started. */
#define MANY 400

struct many {
    uv_check_t end_of_turn;
    int got, bad, seen_at_end;
};

static int on_many(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct many *m = ctx;
    uint64_t end = uv_hrtime() + 20 * 1000;

    if (num(ev) != m->got + 1)
        m->bad++;
    m->got = num(ev);
    while (uv_hrtime() < end)
        ;
    return 0;
}

static void many_end_of_turn(uv_check_t *h)
{
    struct many *m = h->data;
    if (m->seen_at_end < 0)
        m->seen_at_end = m->got;
}

TEST(bus_dispatch_whole_queue_in_one_turn)
{
    struct fx f;
    struct many m = { .seen_at_end = -1 };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    uv_check_init(&f.loop, &m.end_of_turn);
    m.end_of_turn.data = &m;
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.many", NULL, on_many, &m), 0);
    uv_run(&f.loop, UV_RUN_NOWAIT);   /* the bus has been idle: its check is stopped */
    uv_check_start(&m.end_of_turn, many_end_of_turn);
    for (int n = 1; n <= MANY; n++)
        ASSERT_EQ(bus_publish(f.app.bus, ev_n("t.many", n)), 0);
    ASSERT_EQ(m.got, 0);
    uv_run(&f.loop, UV_RUN_NOWAIT);   /* one turn */
    ASSERT_EQ(m.got, MANY);
    ASSERT_EQ(m.bad, 0);
    ASSERT_EQ(m.seen_at_end, MANY);
    ASSERT_EQ(uv_backend_timeout(&f.loop), 0);
    uv_close((uv_handle_t *)&m.end_of_turn, NULL);
    fx_stop(&f);
}

/* A module's end-of-turn check first started by a handler (as the message batch's is)
 * runs after the dispatch from the next turn on, even while the bus's own check
 * stays started: otherwise every batch gathered by a dispatch would wait a turn. */
struct late_check {
    uv_check_t end_of_turn;
    int got, seen_at_end;
};

static void late_end_of_turn(uv_check_t *h)
{
    struct late_check *l = h->data;
    l->seen_at_end = l->got;
}

static int on_starts_a_check(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct late_check *l = ctx;

    l->got++;
    if (!uv_is_active((uv_handle_t *)&l->end_of_turn))
        uv_check_start(&l->end_of_turn, late_end_of_turn);
    return 0;
}

TEST(bus_dispatch_runs_before_a_check_a_handler_started)
{
    struct fx f;
    struct late_check l = { .seen_at_end = -1 };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    uv_check_init(&f.loop, &l.end_of_turn);
    l.end_of_turn.data = &l;
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.turn", NULL, on_starts_a_check, &l), 0);
    ASSERT_EQ(bus_publish(f.app.bus, ev_n("t.turn", 1)), 0);
    uv_run(&f.loop, UV_RUN_NOWAIT);   /* dispatched; the handler started the check */
    ASSERT_EQ(l.got, 1);
    ASSERT_EQ(l.seen_at_end, -1);     /* started inside a check: from the next turn on */
    for (int n = 2; n <= 4; n++) {
        ASSERT_EQ(bus_publish(f.app.bus, ev_n("t.turn", n)), 0);
        uv_run(&f.loop, UV_RUN_NOWAIT);
        ASSERT_EQ(l.got, n);
        ASSERT_EQ(l.seen_at_end, n);
    }
    uv_close((uv_handle_t *)&l.end_of_turn, NULL);
    fx_stop(&f);
}

/* The dispatch queue holds at most 2^20 items: the next publish is refused (the
 * publisher keeps its error to answer with), and once the loop has dispatched the
 * queue publishing works again. One event, referenced once per publish, keeps the
 * test small. */
static int on_count(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    (*(int *)ctx)++;
    return 0;
}

TEST(bus_dispatch_full_queue_refuses)
{
    struct fx f;
    struct bus_event *ev;
    int got = 0;
    const int max = 1 << 20;

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.full", NULL, on_count, &got), 0);
    ASSERT((ev = bus_event_new("t.full", NULL)) != NULL);
    for (int i = 0; i < max; i++) {
        bus_event_ref(ev);
        if (bus_publish(f.app.bus, ev) != 0)
            break;
    }
    ASSERT_EQ(bus_depth(f.app.bus), max);
    bus_event_ref(ev);
    ASSERT_EQ(bus_publish(f.app.bus, ev), -ENOBUFS);
    ASSERT_EQ(got, 0);
    ASSERT(FX_RUN_UNTIL(&f, bus_depth(f.app.bus) == 0, 60000));
    ASSERT_EQ(got, max);
    ASSERT_EQ(bus_publish(f.app.bus, ev), 0);   /* the last reference */
    ASSERT(FX_RUN_UNTIL(&f, got == max + 1, 5000));
    fx_stop(&f);
}

/* Events still queued at close are dispatched, in order, with what their handlers
 * publish; after that publishing is refused. */
TEST(bus_dispatch_close_runs_the_queue)
{
    struct fx f;
    struct trace t = { 0 };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    t.b = f.app.bus;
    ASSERT_EQ(bus_subscribe(t.b, "t.first", NULL, on_first, &t), 0);
    ASSERT_EQ(bus_subscribe(t.b, "t.second", NULL, on_second, &t), 0);
    ASSERT_EQ(bus_publish(t.b, ev_n("t.first", 1)), 0);
    ASSERT_EQ(bus_publish(t.b, ev_n("t.second", 2)), 0);
    bus_close(t.b);
    ASSERT_STR_EQ(t.log, "first:1 first-returns:1 second:2 second:10");
    ASSERT_EQ(bus_publish(t.b, ev_n("t.second", 3)), -ECANCELED);
    fx_stop(&f);
}

/* A handler may close the bus (the last module's drain ending in a stop): the rest of
 * that turn's dispatch goes on, nothing touches the closed handles, and publishing is
 * refused from then on. */
struct closer {
    struct bus *b;
    int calls, refused;
};

static int on_close_here(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct closer *c = ctx;

    if (c->calls++ == 0) {
        bus_close(c->b);
        c->refused = bus_publish(c->b, ev_n("t.close", 99)) == -ECANCELED;
    }
    return 0;
}

TEST(bus_dispatch_close_inside_a_handler)
{
    struct fx f;
    struct closer c = { 0 };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    c.b = f.app.bus;
    ASSERT_EQ(bus_subscribe(c.b, "t.close", NULL, on_close_here, &c), 0);
    ASSERT_EQ(bus_publish(c.b, ev_n("t.close", 1)), 0);
    ASSERT_EQ(bus_publish(c.b, ev_n("t.close", 2)), 0);
    ASSERT(FX_RUN_UNTIL(&f, c.calls == 2, 5000));
    ASSERT(c.refused);
    FX_RUN_UNTIL(&f, 0, 20);
    ASSERT_EQ(c.calls, 2);
    fx_stop(&f);
}

/* At close, what the loop queued goes before what the ring holds (as in any turn): an
 * event published on the loop, then a call posted from a thread. */
static void note_call(void *arg)
{
    struct trace *t = arg;
    size_t len = strlen(t->log);
    snprintf(t->log + len, sizeof(t->log) - len, "%scall", len ? " " : "");
}

static void *post_call(void *arg)
{
    struct trace *t = arg;
    bus_call_on_loop_wait(t->b, note_call, t);
    return NULL;
}

TEST(bus_dispatch_close_keeps_the_order)
{
    struct fx f;
    struct trace t = { 0 };
    pthread_t th;

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    t.b = f.app.bus;
    ASSERT_EQ(bus_subscribe(t.b, "t.second", NULL, on_second, &t), 0);
    ASSERT_EQ(bus_publish(t.b, ev_n("t.second", 1)), 0);
    ASSERT_EQ(pthread_create(&th, NULL, post_call, &t), 0);
    pthread_join(th, NULL);
    bus_close(t.b);
    ASSERT_STR_EQ(t.log, "second:1 call");
    fx_stop(&f);
}
