/* bus.c: the bus's life cycle: made, started (the dead-letter table and its replay
 * poll), closed (what is queued runs first) and freed, with the loop handles it owns.
 * Events, topics, publishing and dispatch are the other files' (bus_internal.h). */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/random.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/ring.h"
#include "chatd/util.h"
#include "bus_internal.h"

static void on_async(uv_async_t *a)
{
    /* Wake-ups coalesce: the check of this same turn takes everything there is. */
    bus_wake(a->data);
}

/* --- life cycle ---------------------------------------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
    struct bus_handles *hs = h->data;
    if (--hs->open == 0)
        free(hs);
}

static int handles_init(struct bus *b)
{
    struct bus_handles *h = calloc(1, sizeof(*h));
    int rc;

    if (!h)
        return -ENOMEM;
    if ((rc = uv_async_init(b->loop, &h->async, on_async)) < 0) {
        free(h);
        return rc;
    }
    uv_check_init(b->loop, &h->check);
    uv_idle_init(b->loop, &h->idle);
    uv_timer_init(b->loop, &h->retry_timer);
    uv_timer_init(b->loop, &h->request_timer);
    uv_timer_init(b->loop, &h->poll_timer);
    h->dispatch = bus_dispatch_check;
    h->async.data = h->check.data = h->idle.data = b;
    h->retry_timer.data = h->request_timer.data = h->poll_timer.data = b;
    /* The async handle stays referenced: results from other threads (a commit's
     * done()) may still be on their way while nothing else is active, e.g. when a
     * module drains. bus_close releases the loop. The idle handle is referenced
     * too, active only while work waits, so the loop does not end with work queued. */
    uv_unref((uv_handle_t *)&h->check);
    h->open = 6;
    b->h = h;
    return 0;
}

static void handles_close(struct bus *b)
{
    struct bus_handles *h = b->h;
    uv_handle_t *all[] = { (uv_handle_t *)&h->async, (uv_handle_t *)&h->check,
                           (uv_handle_t *)&h->idle, (uv_handle_t *)&h->retry_timer,
                           (uv_handle_t *)&h->request_timer, (uv_handle_t *)&h->poll_timer };

    b->h = NULL;
    for (int i = 0; i < 6; i++) {
        all[i]->data = h;
        uv_close(all[i], handle_closed);
    }
}

/* 48 random bits (never 0): exact in a JSON number, and two runs of one node meet
 * the same id once in 2^24 pairs of runs. */
static int64_t bus_draw_run_id(void)
{
    uint64_t r = 0;

    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
    r &= (1ull << 48) - 1;
    return r ? (int64_t)r : 1;
}

int bus_new(struct bus **out, struct chatd *app)
{
    struct bus *b = calloc(1, sizeof(*b));
    int rc;

    if (!b)
        return -ENOMEM;
    b->app = app;
    b->loop = app->loop;
    b->loop_thread = uv_thread_self();
    b->node = 0;
    b->run = bus_draw_run_id();
    atomic_init(&b->closing, 0);
    atomic_init(&b->senders, 0);
    heap_init(&b->retries, BUS_RETRY_MAX);
    heap_init(&b->requests, BUS_REQUESTS_MAX);
    if ((rc = ring_new(&b->ring, BUS_RING_CAPACITY)) < 0 || (rc = handles_init(b)) < 0) {
        ring_free(b->ring);
        free(b);
        return rc;
    }
    bus_register_metrics(b);
    *out = b;
    return 0;
}

int bus_migrate(struct db *db)
{
    return dlq_migrate(db);
}

int bus_start(struct bus *b)
{
    int rc;

    if (!b->app->db)
        return 0;   /* no database (tests): dead letters are logged, not stored */
    if ((rc = dlq_migrate(b->app->db)) < 0)
        return rc;
    b->db_ready = 1;
    return dlq_start_polling(b);
}

/* Stops producers, then empties the ring and the dispatch queue, dispatching what is
 * left in order with whatever the handlers publish meanwhile. Requesters still waiting
 * hear -ECANCELED; what they publish then is dispatched too. */
static void shut(struct bus *b)
{
    atomic_store(&b->closing, 1);
    while (atomic_load(&b->senders) > 0)
        sched_yield();
    uv_timer_stop(&b->h->poll_timer);
    bus_dispatch_rest(b);
    delivery_close(b);
    request_close(b);
    bus_dispatch_rest(b);
    b->db_ready = 0;
    b->closed = 1;
    handles_close(b);
}

void bus_close(struct bus *b)
{
    if (!b || b->closed)
        return;
    shut(b);
}

void bus_free(struct bus *b)
{
    if (!b)
        return;
    if (!b->closed) {
        /* The calls still queued carry what only running them releases, and the
         * modules they would run in may be gone: neither running nor dropping them is
         * right. The order is the caller's to keep (bus.h). */
        fprintf(stderr, "chatd: bus_free before bus_close: queued calls would leak\n");
        abort();
    }
    bus_queue_drop(b);
    /* Deliveries a handler kept (BUS_ASYNC) and never completed. */
    while (b->live)
        delivery_free(b->live);
    heap_free(&b->retries);
    heap_free(&b->requests);
    request_free(b);
    bus_topics_free(b);
    ring_free(b->ring);
    free(b);
}
