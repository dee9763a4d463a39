/* ring.h: a bounded lock-free multi-producer single-consumer queue of pointers
 * (Vyukov's bounded MPMC queue with a single consumer; C11 atomics). Producers on any
 * thread; one consumer. A full ring answers -EAGAIN: back-pressure, never a loss. */
#ifndef CHATD_RING_H
#define CHATD_RING_H

#include <stddef.h>

struct ring;
/* capacity is rounded up to a power of two. */
int   ring_new(struct ring **out, size_t capacity);
void  ring_free(struct ring *r);
int   ring_push(struct ring *r, void *item);       /* 0 or -EAGAIN (full) */
void *ring_pop(struct ring *r);                     /* NULL when empty (or not yet visible) */
size_t ring_size(const struct ring *r);            /* approximate */
size_t ring_capacity(const struct ring *r);

#endif
