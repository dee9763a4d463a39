/* queue.c: the dispatch queue on the loop (struct work_queue, a FIFO whose capacity
 * is a power of two) and waking the loop to run it. Running it is dispatch.c's, whose
 * check callback bus_wake starts through the handles (b->h->dispatch), so that what
 * queues work needs nothing of what runs it. */
#include <errno.h>
#include <stdlib.h>
#include "chatd/bus.h"
#include "bus_internal.h"

static int queue_grow(struct work_queue *q)
{
    size_t cap = q->cap ? q->cap * 2 : BUS_QUEUE_MIN;
    struct bus_work *v;

    if (q->cap >= BUS_QUEUE_MAX)
        return -ENOBUFS;
    if (!(v = malloc(cap * sizeof(*v))))
        return -ENOMEM;
    for (size_t i = 0; i < q->len; i++)
        v[i] = q->v[(q->head + i) & (q->cap - 1)];
    free(q->v);
    q->v = v;
    q->cap = cap;
    q->head = 0;
    return 0;
}

int bus_queue_push(struct work_queue *q, int kind, void *p)
{
    int rc;

    if (q->len == q->cap && (rc = queue_grow(q)) < 0)
        return rc;
    q->v[(q->head + q->len) & (q->cap - 1)] = (struct bus_work){ kind, p };
    q->len++;
    return 0;
}

int bus_dequeue(struct work_queue *q, struct bus_work *w)
{
    if (q->len == 0)
        return 0;
    *w = q->v[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    return 1;
}

int bus_enqueue(struct bus *b, int kind, void *p)
{
    int rc = bus_queue_push(&b->q, kind, p);

    if (rc == 0)
        bus_wake(b);
    return rc;
}

static void on_dispatch_idle(uv_idle_t *h)
{
    (void)h;   /* its being active is what counts: the next poll does not block */
}

void bus_wake(struct bus *b)
{
    struct bus_handles *h = b->h;

    if (!h)
        return;   /* closed: bus_close dispatches what is left itself */
    if (!uv_is_active((uv_handle_t *)&h->check))
        uv_check_start(&h->check, h->dispatch);
    if (!uv_is_active((uv_handle_t *)&h->idle))
        uv_idle_start(&h->idle, on_dispatch_idle);
}
