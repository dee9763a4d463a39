/* Tests for ring.c: the bounded MPSC ring. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include "chatd/ring.h"
#include "chatd/util.h"
#include "test.h"

#if defined(__SANITIZE_THREAD__)
#define RING_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RING_UNDER_TSAN 1
#endif
#endif
#ifdef RING_UNDER_TSAN
#define STRESS_PER_PRODUCER 50000
#else
#define STRESS_PER_PRODUCER 1000000
#endif
#define STRESS_PRODUCERS 4

TEST(ring_capacity_and_full)
{
    struct ring *r;
    uintptr_t v;

    ASSERT_EQ(ring_new(&r, 5), 0);
    ASSERT_EQ(ring_capacity(r), 8);
    ASSERT(ring_pop(r) == NULL);
    for (v = 1; v <= 8; v++)
        ASSERT_EQ(ring_push(r, (void *)v), 0);
    ASSERT_EQ(ring_push(r, (void *)(uintptr_t)9), -EAGAIN);
    ASSERT_EQ(ring_size(r), 8);
    for (v = 1; v <= 8; v++)
        ASSERT_EQ((uintptr_t)ring_pop(r), v);
    ASSERT(ring_pop(r) == NULL);
    ASSERT_EQ(ring_size(r), 0);
    ASSERT_EQ(ring_new(&(struct ring *){ NULL }, 0), -EINVAL);
    ring_free(r);
}

TEST(ring_wraps_around)
{
    struct ring *r;
    uintptr_t next_in = 1, next_out = 1;

    ASSERT_EQ(ring_new(&r, 4), 0);
    /* Many laps with the ring kept partly full: slots are reused correctly. */
    for (int lap = 0; lap < 10000; lap++) {
        while (ring_push(r, (void *)next_in) == 0)
            next_in++;
        for (int i = 0; i < 3; i++)
            ASSERT_EQ((uintptr_t)ring_pop(r), next_out++);
    }
    ring_free(r);
}

struct producer {
    struct ring *r;
    uintptr_t id;
    long full;      /* times the ring answered -EAGAIN */
};

static void *produce(void *arg)
{
    struct producer *p = arg;

    for (uintptr_t i = 1; i <= STRESS_PER_PRODUCER; i++) {
        void *item = (void *)((p->id << 32) | i);
        while (ring_push(p->r, item) == -EAGAIN) {
            p->full++;
            sched_yield();
        }
    }
    return NULL;
}

/* 4 producers, one consumer: nothing lost, nothing duplicated, each producer's items
 * in its order. */
TEST(ring_mpsc_stress)
{
    struct ring *r;
    pthread_t th[STRESS_PRODUCERS];
    struct producer p[STRESS_PRODUCERS];
    uintptr_t last[STRESS_PRODUCERS] = { 0 };
    long total = 0, empty = 0;
    uint64_t t0 = mono_ms();

    ASSERT_EQ(ring_new(&r, 1024), 0);
    for (int i = 0; i < STRESS_PRODUCERS; i++) {
        p[i] = (struct producer){ r, (uintptr_t)i + 1, 0 };
        ASSERT_EQ(pthread_create(&th[i], NULL, produce, &p[i]), 0);
    }
    while (total < (long)STRESS_PRODUCERS * STRESS_PER_PRODUCER) {
        uintptr_t v = (uintptr_t)ring_pop(r);
        if (!v) {
            /* Empty, or a producer is between its claim and its publish: let the
             * producers run (this machine may have fewer cores than threads). */
            empty++;
            sched_yield();
            continue;
        }
        uintptr_t id = v >> 32, seq = v & 0xffffffffu;
        ASSERT(id >= 1 && id <= STRESS_PRODUCERS);
        ASSERT_EQ(seq, last[id - 1] + 1);
        last[id - 1] = seq;
        total++;
    }
    for (int i = 0; i < STRESS_PRODUCERS; i++) {
        pthread_join(th[i], NULL);
        ASSERT_EQ(last[i], STRESS_PER_PRODUCER);
    }
    ASSERT(ring_pop(r) == NULL);
    ASSERT_EQ(ring_size(r), 0);
    if (getenv("TEST_VERBOSE"))
        fprintf(stderr, "ring stress: %ld items in %llu ms, %ld empty polls\n", total,
                (unsigned long long)(mono_ms() - t0), empty);
    ring_free(r);
}
