/* Requests at the bus's end: the requesters still waiting hear -ECANCELED at
 * bus_close, and what they publish then is still dispatched; a handler of that which
 * asks again, when nobody is left to answer, leaves a request that is freed with the
 * bus (LeakSanitizer checks nothing is left behind). */
#include <errno.h>
#include "bus_fixture.h"
#include "test.h"

struct asker {
    struct bus *b;
    int delivered, cancelled, late_calls;
    int64_t late_id;
};

static int on_ask(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct asker *a = ctx;
    (void)d;
    (void)ev;
    a->delivered++;                  /* and never answers */
    return 0;
}

static void on_late(void *ctx, int status, const cJSON *payload)
{
    struct asker *a = ctx;
    (void)status;
    (void)payload;
    a->late_calls++;
}

static int on_later(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct asker *a = ctx;
    (void)d;
    (void)ev;
    a->late_id = bus_request(a->b, "t.nobody", NULL, 60000, on_late, a);
    return 0;
}

static void on_first(void *ctx, int status, const cJSON *payload)
{
    struct asker *a = ctx;
    (void)payload;
    if (status == -ECANCELED) {
        a->cancelled++;
        bus_publish(a->b, bus_event_new("t.later", NULL));
    }
}

TEST(bus_request_asked_while_closing_is_freed_with_the_bus)
{
    struct fx f;
    static struct asker a;

    a = (struct asker){ 0 };
    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    a.b = f.app.bus;
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.ask", NULL, on_ask, &a), 0);
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.later", NULL, on_later, &a), 0);
    ASSERT(bus_request(f.app.bus, "t.ask", NULL, 60000, on_first, &a) > 0);
    ASSERT(FX_RUN_UNTIL(&f, a.delivered == 1, 5000));
    bus_close(f.app.bus);
    ASSERT_EQ(a.cancelled, 1);
    ASSERT(a.late_id > 0);           /* taken in, though nobody will answer it */
    fx_stop(&f);
    ASSERT_EQ(a.late_calls, 0);
}
