/* The membership cache (bounded LRU) and the table of pending HTTP posts. */
#include <errno.h>
#include <stdlib.h>
#include "test.h"
#include "../../src/modules/message/message_internal.h"

static int has(const int64_t *ids, int n, int64_t id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id)
            return 1;
    return 0;
}

TEST(message_cache_put_get_and_update)
{
    struct mcache *c;
    ASSERT_EQ(mcache_new(&c, 4), 0);
    int64_t ids[] = { 1, 2, 3 };
    int n = -1;
    ASSERT(mcache_get(c, 10, &n) == NULL);
    ASSERT_EQ(mcache_put(c, 10, ids, 3), 0);
    const int64_t *got = mcache_get(c, 10, &n);
    ASSERT(got != NULL);
    ASSERT_EQ(n, 3);
    mcache_add_member(c, 10, 4);
    mcache_add_member(c, 10, 4);     /* twice: still once */
    got = mcache_get(c, 10, &n);
    ASSERT_EQ(n, 4);
    ASSERT(has(got, n, 4));
    mcache_remove_member(c, 10, 2);
    got = mcache_get(c, 10, &n);
    ASSERT_EQ(n, 3);
    ASSERT(!has(got, n, 2));
    mcache_add_member(c, 11, 5);     /* not cached: nothing to keep in step */
    ASSERT(mcache_get(c, 11, &n) == NULL);
    ASSERT_EQ(mcache_put(c, 12, NULL, 0), 0);   /* an empty room is a valid entry */
    ASSERT(mcache_get(c, 12, &n) != NULL);
    ASSERT_EQ(n, 0);
    mcache_free(c);
}

TEST(message_cache_is_bounded_lru)
{
    struct mcache *c;
    ASSERT_EQ(mcache_new(&c, 3), 0);
    int64_t one = 1;
    int n;
    for (int64_t r = 1; r <= 3; r++)
        ASSERT_EQ(mcache_put(c, r, &one, 1), 0);
    ASSERT(mcache_get(c, 1, &n) != NULL);        /* 1 becomes the most recent */
    ASSERT_EQ(mcache_put(c, 4, &one, 1), 0);     /* evicts 2, the least recent */
    ASSERT_EQ((long long)mcache_size(c), 3);
    ASSERT(mcache_get(c, 2, &n) == NULL);
    ASSERT(mcache_get(c, 1, &n) != NULL);
    ASSERT(mcache_get(c, 3, &n) != NULL);
    ASSERT(mcache_get(c, 4, &n) != NULL);
    for (int64_t r = 100; r < 10100; r++)
        ASSERT_EQ(mcache_put(c, r, &one, 1), 0);
    ASSERT_EQ((long long)mcache_size(c), 3);
    uint64_t e = mcache_epoch(c);
    mcache_bump_epoch(c);
    ASSERT(mcache_epoch(c) == e + 1);
    mcache_free(c);
}

/* Many rooms through a small cache, in a scrambled order with repeats: the index and
 * the LRU list stay in step (what is cached is exactly the last `cap` rooms put). */
TEST(message_cache_churn_keeps_the_last_rooms)
{
    enum { CAP = 50, ROOMS = 400, PUTS = 5000 };
    static int64_t order[PUTS];
    struct mcache *c;
    unsigned seed = 99;
    int n;

    ASSERT_EQ(mcache_new(&c, CAP), 0);
    for (int i = 0; i < PUTS; i++) {
        order[i] = 1 + (int64_t)(rand_r(&seed) % ROOMS) * 1000003;
        ASSERT_EQ(mcache_put(c, order[i], &order[i], 1), 0);
        ASSERT(mcache_size(c) <= CAP);
    }
    ASSERT_EQ((long long)mcache_size(c), CAP);
    /* The last CAP distinct rooms, newest first, are there; checking them does not
     * reorder what is left to check. */
    int found = 0;
    for (int i = PUTS - 1; i >= 0 && found < CAP; i--) {
        int seen = 0;
        for (int j = i + 1; j < PUTS && !seen; j++)
            seen = order[j] == order[i];
        if (seen)
            continue;
        const int64_t *ids = mcache_get(c, order[i], &n);
        ASSERT(ids != NULL && n == 1 && ids[0] == order[i]);
        found++;
    }
    ASSERT_EQ(found, CAP);
    ASSERT(mcache_get(c, 2, &n) == NULL);
    mcache_free(c);
}

TEST(message_pending_table_bound_and_removal)
{
    struct pending_table t;
    enum { N = 64 };
    struct http_req reqs[N + 1];
    memset(reqs, 0, sizeof(reqs));
    ASSERT_EQ(pending_init(&t, N), 0);
    for (int i = 0; i <= N; i++)
        reqs[i].id = (uint64_t)i * 7919 + 1;
    for (int i = 0; i < N; i++)
        ASSERT_EQ(pending_put(&t, &reqs[i]), 0);
    ASSERT_EQ(pending_put(&t, &reqs[N]), -ENOSPC);   /* full: the caller answers 503 */
    /* Take every other one, then the rest must still be found (backward shift). */
    for (int i = 0; i < N; i += 2)
        ASSERT(pending_take(&t, reqs[i].id) == &reqs[i]);
    ASSERT(pending_take(&t, reqs[0].id) == NULL);
    for (int i = 1; i < N; i += 2)
        ASSERT(pending_take(&t, reqs[i].id) == &reqs[i]);
    ASSERT_EQ((long long)pending_count(&t), 0);
    ASSERT(pending_take(&t, 12345) == NULL);
    pending_free(&t);
}

TEST(message_pending_table_collisions)
{
    struct pending_table t;
    enum { N = 500 };
    struct http_req *reqs = calloc(N, sizeof(*reqs));
    ASSERT(reqs != NULL);
    ASSERT_EQ(pending_init(&t, N), 0);
    unsigned seed = 7;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N; i++) {
            reqs[i].id = ((uint64_t)rand_r(&seed) << 16) ^ (uint64_t)i;
            ASSERT_EQ(pending_put(&t, &reqs[i]), 0);
        }
        for (int i = N - 1; i >= 0; i -= 3)
            ASSERT(pending_take(&t, reqs[i].id) == &reqs[i]);
        for (int i = 0; i < N; i++) {
            if ((N - 1 - i) % 3 == 0)
                continue;
            ASSERT(pending_take(&t, reqs[i].id) == &reqs[i]);
        }
        ASSERT_EQ((long long)pending_count(&t), 0);
    }
    pending_free(&t);
    free(reqs);
}
