/* dispatch.c: when and in what order the bus runs its handlers.
 *
 * Publishing only enqueues: every event, retry and reply on the loop goes into one
 * FIFO (struct work_queue, queue.c), and items handed over by other threads wait in the ring.
 * Both are emptied by one uv_check handle, which runs right after the poll phase: an
 * event published in a read callback is dispatched in the same loop turn, and none
 * is ever dispatched inside its publisher. What a handler publishes goes to the back
 * of the FIFO, so it runs after the handler has returned and after the other
 * subscribers of the current event.
 *
 * One order for everything: the FIFO first, and a ring item is taken only once the
 * FIFO is empty, so the events a ring item's call publishes are dispatched before the
 * next item. Each turn empties the FIFO whatever it holds: what the loop's own
 * callbacks published (a group of write results: every handler of every message in
 * it) is the work it was when publishing dispatched at once, and cutting it into
 * slices only carries a backlog over to later turns, which under a steady load grows
 * faster than the slices drain it. The ring, which other threads can fill faster than
 * the loop empties it, gets at most BUS_DRAIN_BATCH items and BUS_DRAIN_SLICE_NS a
 * turn, what its items publish included; what is left waits for the next turn, in
 * the same order, while an idle handle keeps that turn's poll from waiting for I/O
 * (timers and sockets get their turn in between).
 *
 * libuv runs the check handle started last first. The bus's is started when work
 * arrives after it stopped, and started again at the end of each of its runs, so the
 * dispatch runs before the modules' own end-of-turn checks (the websocket flush, the
 * message batch): what a handler queues there goes out in the same turn. Without the
 * restart, a module's check first started by a handler would run ahead of the
 * dispatch for as long as the load kept the bus's check going, each turn's batch
 * waiting for the next. A check a handler starts runs only in the next turn, so after
 * a turn that dispatched anything the loop turns once more without waiting: nothing
 * a handler started is left until the next I/O. */
#include <errno.h>
#include <stdlib.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/ring.h"
#include "bus_internal.h"

/* --- what is left at close ------------------------------------------------------------- */

static void work_drop(struct bus_work *w)
{
    if (w->kind == WORK_EVENT) {
        bus_event_unref(w->p);
    } else if (w->kind == WORK_DELIVERY) {
        delivery_free(w->p);
    } else {
        cJSON_Delete(((struct bus_reply_msg *)w->p)->payload);
        free(w->p);
    }
}

void bus_queue_drop(struct bus *b)
{
    struct bus_work w;

    while (bus_dequeue(&b->q, &w))
        work_drop(&w);
    free(b->q.v);
    b->q.v = NULL;
    b->q.cap = 0;
}

/* --- dispatch ---------------------------------------------------------------------- */

static void dispatch_event(struct bus *b, struct bus_event *ev)
{
    struct bus_topic *t = bus_topic_find(b, ev->topic);

    METRIC_INC(t ? t->events_total : b->events_other);
    for (struct bus_sub *s = t ? t->subs : NULL; s; s = s->next) {
        struct bus_delivery *d = delivery_new(b, s, ev);
        if (!d) {
            LOG_ERROR(b->app, "bus", "out of memory delivering topic=%s consumer=%s",
                      ev->topic, s->consumer);
            continue;
        }
        delivery_run(d);
    }
    bus_event_unref(ev);
}

/* Runs queued items until the FIFO is empty or, when end is not 0, uv_hrtime() passes
 * end. The FIFO grows while it runs (handlers publish): those items run in this loop
 * too, in order. A bus_close called by a handler finds a pump running and leaves the
 * rest to it. */
static void pump(struct bus *b, uint64_t end)
{
    struct bus_work w;

    if (b->dispatching)
        return;
    b->dispatching = 1;
    while ((!end || uv_hrtime() < end) && bus_dequeue(&b->q, &w)) {
        b->dispatched++;
        if (w.kind == WORK_EVENT)
            dispatch_event(b, w.p);
        else if (w.kind == WORK_DELIVERY)
            delivery_run(w.p);
        else
            request_deliver_reply(b, w.p);
    }
    b->dispatching = 0;
}

/* One ring item. A call runs here (what it publishes is queued): its argument is the
 * caller's, and only the call knows how to release it. An event or a reply joins the
 * FIFO; one that does not fit is dropped (the bus owns both, so it frees them). */
static void ring_item(struct bus *b, void *p)
{
    uintptr_t tag = (uintptr_t)p & RING_TAG_MASK;
    void *item = (void *)((uintptr_t)p & ~RING_TAG_MASK);
    struct bus_work w = { tag == RING_TAG_EVENT ? WORK_EVENT : WORK_REPLY, item };

    b->dispatched++;
    if (tag == RING_TAG_CALL) {
        struct bus_call c = *(struct bus_call *)item;
        free(item);
        c.fn(c.arg);
        return;
    }
    if (bus_queue_push(&b->q, w.kind, item) < 0) {
        LOG_ERROR(b->app, "bus", "dispatch queue full: item from another thread dropped");
        work_drop(&w);
    }
}

/* The whole FIFO, then ring items, each with what it publishes, until the ring is
 * empty or BUS_DRAIN_BATCH items or BUS_DRAIN_SLICE_NS went to them; 1 when work may
 * be left (ring items, or the rest of what the last one published). */
static int drain_some(struct bus *b)
{
    uint64_t end = uv_hrtime() + BUS_DRAIN_SLICE_NS;
    void *p;

    pump(b, 0);
    for (int n = 0; b->q.len == 0; n++) {
        if (n >= BUS_DRAIN_BATCH || uv_hrtime() >= end)
            return 1;
        if ((p = ring_pop(b->ring)) == NULL)
            return 0;
        ring_item(b, p);
        pump(b, end);
    }
    return 1;
}

void bus_dispatch_rest(struct bus *b)
{
    void *p;

    /* The queue first, then each ring item with what it publishes, as in a turn.
     * With no sender left, every claimed slot is published: one pass empties it. */
    pump(b, 0);
    while ((p = ring_pop(b->ring)) != NULL) {
        ring_item(b, p);
        pump(b, 0);
    }
}

/* --- the check that runs it ---------------------------------------------------------- */

void bus_dispatch_check(uv_check_t *h)
{
    struct bus *b = h->data;
    uint64_t before = b->dispatched;
    int more = drain_some(b);

    if (!b->h)
        return;   /* a handler closed the bus: its handles are closing */
    uv_check_stop(h);
    if (!more && b->dispatched == before) {
        uv_idle_stop(&b->h->idle);
        return;
    }
    /* The rest next turn, or one more turn without waiting for checks the handlers
     * started (the idle handle is still active). Started again now, ours is the
     * check started last, so it runs first next turn, ahead of a module's end-of-turn
     * check a handler started meanwhile (the message batch's first start). */
    uv_check_start(h, bus_dispatch_check);
}
