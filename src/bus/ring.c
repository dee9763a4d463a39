/* ring.c: Dmitry Vyukov's bounded MPMC queue, used with one consumer.
 *
 * Every slot carries a sequence number. A producer claims position pos by moving the
 * enqueue counter with a CAS when slot[pos].seq == pos, writes the item, then
 * publishes it by storing seq = pos + 1 (release). The consumer takes slot[pos] when
 * seq == pos + 1 and hands the slot back to the producers of the next lap with
 * seq = pos + capacity.
 *
 * A producer that has claimed a position but not yet published it makes the ring
 * look empty at that position even when later slots are full: ring_pop answers
 * NULL ("not yet"). The producer wakes the consumer after it publishes, so nothing
 * is stranded. */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include "chatd/ring.h"

#define RING_CACHE_LINE 64
#define RING_MAX_CAPACITY ((size_t)1 << 30)

struct ring_cell {
    atomic_size_t seq;
    void *item;            /* written before seq is released, read after it is acquired */
};

struct ring {
    struct ring_cell *cells;   /* owned */
    size_t mask;
    /* The two counters live on their own cache lines: producers hammer one, the
     * consumer the other. */
    alignas(RING_CACHE_LINE) atomic_size_t enq;
    alignas(RING_CACHE_LINE) atomic_size_t deq;
};

int ring_new(struct ring **out, size_t capacity)
{
    size_t cap = 2;
    struct ring *r;

    if (capacity == 0 || capacity > RING_MAX_CAPACITY)
        return -EINVAL;
    while (cap < capacity)
        cap <<= 1;
    r = aligned_alloc(RING_CACHE_LINE, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->cells = calloc(cap, sizeof(*r->cells));
    if (!r->cells) {
        free(r);
        return -ENOMEM;
    }
    r->mask = cap - 1;
    for (size_t i = 0; i < cap; i++) {
        atomic_init(&r->cells[i].seq, i);
        r->cells[i].item = NULL;
    }
    atomic_init(&r->enq, 0);
    atomic_init(&r->deq, 0);
    *out = r;
    return 0;
}

void ring_free(struct ring *r)
{
    if (!r)
        return;
    free(r->cells);
    free(r);
}

int ring_push(struct ring *r, void *item)
{
    size_t pos = atomic_load_explicit(&r->enq, memory_order_relaxed);
    struct ring_cell *c;

    for (;;) {
        c = &r->cells[pos & r->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t diff = (intptr_t)seq - (intptr_t)pos;
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&r->enq, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
            /* pos now holds the current counter: try again there */
        } else if (diff < 0) {
            return -EAGAIN;   /* the slot still holds last lap's item: full */
        } else {
            pos = atomic_load_explicit(&r->enq, memory_order_relaxed);
        }
    }
    c->item = item;
    atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
    return 0;
}

void *ring_pop(struct ring *r)
{
    /* Only the consumer moves deq: a relaxed load of our own counter is enough. */
    size_t pos = atomic_load_explicit(&r->deq, memory_order_relaxed);
    struct ring_cell *c = &r->cells[pos & r->mask];
    size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
    void *item;

    if ((intptr_t)seq - (intptr_t)(pos + 1) < 0)
        return NULL;      /* empty, or claimed and not yet published */
    item = c->item;
    atomic_store_explicit(&r->deq, pos + 1, memory_order_relaxed);
    atomic_store_explicit(&c->seq, pos + r->mask + 1, memory_order_release);
    return item;
}

size_t ring_size(const struct ring *r)
{
    size_t d = atomic_load_explicit(&((struct ring *)r)->deq, memory_order_relaxed);
    size_t e = atomic_load_explicit(&((struct ring *)r)->enq, memory_order_relaxed);

    if (e <= d)
        return 0;
    return e - d > r->mask + 1 ? r->mask + 1 : e - d;
}

size_t ring_capacity(const struct ring *r)
{
    return r->mask + 1;
}
