/* Tests for the bus's deferred dispatch (src/bus/dispatch.c): no handler runs inside
 * its publisher, what a handler publishes runs after it and after the other
 * subscribers of its event, many publishes keep their order over several loop turns,
 * and a full dispatch queue refuses a publish. */
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

/* Many publishes from the loop, more than one turn's slice of handlers: every event
 * once, in publish order, and a timer due meanwhile fires before the last. */
#define MANY 400

struct many {
    uv_timer_t timer;
    int got, bad, fired_at;
};

static void many_timer(uv_timer_t *h)
{
    struct many *m = h->data;
    m->fired_at = m->got;
}

static int on_many(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct many *m = ctx;
    uint64_t end = uv_hrtime() + 20 * 1000;   /* 400 x 20 us: 16 slices of 0.5 ms */

    if (num(ev) != m->got + 1)
        m->bad++;
    m->got = num(ev);
    while (uv_hrtime() < end)
        ;
    return 0;
}

TEST(bus_dispatch_many_in_order_over_turns)
{
    struct fx f;
    struct many m = { .fired_at = -1 };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    uv_timer_init(&f.loop, &m.timer);
    m.timer.data = &m;
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.many", NULL, on_many, &m), 0);
    uv_timer_start(&m.timer, many_timer, 0, 0);
    for (int n = 1; n <= MANY; n++)
        ASSERT_EQ(bus_publish(f.app.bus, ev_n("t.many", n)), 0);
    ASSERT_EQ(m.got, 0);
    ASSERT(FX_RUN_UNTIL(&f, m.got == MANY, 10000));
    ASSERT_EQ(m.bad, 0);
    ASSERT(m.fired_at >= 0 && m.fired_at < MANY);
    FX_RUN_UNTIL(&f, 0, 20);     /* nothing arrives twice */
    ASSERT_EQ(m.got, MANY);
    uv_close((uv_handle_t *)&m.timer, NULL);
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
