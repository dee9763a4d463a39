/* publish.c: the ways into the bus: publishing on the loop, and the hand-over ring
 * that other threads post events, calls and replies through. Both only queue:
 * dispatch.c runs them. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/log.h"
#include "chatd/ring.h"
#include "bus_internal.h"

/* An event takes the ids of the process that first publishes it; one that came
 * from another process keeps its own. */
static void stamp(const struct bus *b, struct bus_event *ev)
{
    if (!ev->run) {
        ev->node = b->node;
        ev->run = b->run;
    }
}

int bus_publish(struct bus *b, struct bus_event *ev)
{
    int rc;

    if (!ev)
        return -EINVAL;
    stamp(b, ev);
    if (b->closed) {
        bus_event_unref(ev);
        return -ECANCELED;
    }
    if ((rc = bus_enqueue(b, WORK_EVENT, ev)) < 0) {
        LOG_ERROR(b->app, "bus", "dispatch queue full topic=%s", ev->topic);
        bus_event_unref(ev);
        return rc;
    }
    return 0;
}

/* --- the ring: hand-over from other threads ------------------------------------------ */

int bus_on_loop_thread(const struct bus *b)
{
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &b->loop_thread);
}

static void short_sleep(void)
{
    struct timespec ts = { 0, 200 * 1000 };
    nanosleep(&ts, NULL);
}

/* Pushes one tagged item and wakes the loop. wait: retry while the ring is full. */
int bus_ring_post(struct bus *b, void *item, int wait)
{
    int rc;

    for (;;) {
        atomic_fetch_add(&b->senders, 1);
        if (atomic_load(&b->closing)) {
            atomic_fetch_sub(&b->senders, 1);
            return -ECANCELED;
        }
        rc = ring_push(b->ring, item);
        if (rc == 0) {
            /* The push must be visible before the wake-up (libuv issue 4584). */
            atomic_thread_fence(memory_order_seq_cst);
            uv_async_send(&b->h->async);
        }
        atomic_fetch_sub(&b->senders, 1);
        if (rc != -EAGAIN || !wait)
            return rc;
        short_sleep();
    }
}

int bus_post_wait(struct bus *b, struct bus_event *ev)
{
    int rc;

    if (!ev)
        return -EINVAL;
    stamp(b, ev);
    if ((rc = bus_ring_post(b, ev, 1)) < 0)
        bus_event_unref(ev);
    return rc;
}

static int call_post(struct bus *b, void (*fn)(void *), void *arg, int wait)
{
    struct bus_call *c = malloc(sizeof(*c));
    int rc;

    if (!c)
        return -ENOMEM;
    c->fn = fn;
    c->arg = arg;
    if ((rc = bus_ring_post(b, (void *)((uintptr_t)c | RING_TAG_CALL), wait)) < 0)
        free(c);
    return rc;
}

int bus_call_on_loop(struct bus *b, void (*fn)(void *arg), void *arg)
{
    return call_post(b, fn, arg, 0);
}

int bus_call_on_loop_wait(struct bus *b, void (*fn)(void *arg), void *arg)
{
    return call_post(b, fn, arg, 1);
}

