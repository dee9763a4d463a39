/* The queue in front of the thread pool for password hashes: never more than
 * hash_parallel hashes in the pool at once, the others wait first come first served,
 * and every op comes back to the loop. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "test.h"
#include "chatd/chatd.h"
#include "../../src/modules/auth/auth_internal.h"

#define OPS 7

static atomic_int running, most;
static int order[OPS], done_count;

struct fake_op {
    struct auth_op op;
    int index;
};

static void fake_work(struct auth_op *op)
{
    int now = atomic_fetch_add(&running, 1) + 1, seen = atomic_load(&most);
    while (now > seen && !atomic_compare_exchange_weak(&most, &seen, now))
        ;
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    atomic_fetch_sub(&running, 1);
}

static void fake_next(struct auth_op *op)
{
    struct fake_op *f = (struct fake_op *)op;
    order[done_count++] = f->index;
    free(f);
}

TEST(auth_hash_queue_bounds_the_pool)
{
    struct chatd app;
    struct auth a;
    uv_loop_t loop;

    memset(&app, 0, sizeof app);
    memset(&a, 0, sizeof a);
    ASSERT_EQ(uv_loop_init(&loop), 0);
    app.loop = &loop;
    a.app = &app;
    a.hash_parallel = 2;
    atomic_store(&running, 0);
    atomic_store(&most, 0);
    done_count = 0;
    for (int i = 0; i < OPS; i++) {
        struct fake_op *f = calloc(1, sizeof *f);
        ASSERT(f != NULL);
        f->op.a = &a;
        f->index = i;
        auth_op_hash(&f->op, fake_work, fake_next);
    }
    ASSERT_EQ(a.hash_running, 2);
    /* the rest wait in arrival order */
    int expect = 2;
    for (struct auth_op *q = a.hash_head; q; q = q->hash_next)
        ASSERT_EQ(((struct fake_op *)q)->index, expect++);
    ASSERT_EQ(expect, OPS);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(done_count, OPS);
    ASSERT_EQ(a.hash_running, 0);
    ASSERT(a.hash_head == NULL && a.hash_tail == NULL);
    ASSERT(atomic_load(&most) <= 2);
    ASSERT(atomic_load(&most) >= 1);
    uv_loop_close(&loop);
    ASSERT(auth_hash_parallelism() >= 1);
}
