/* The int64 map: deletion inside probe runs (crafted keys sharing a home slot, runs
 * wrapping past the end of the table, every order of deletion), growth while keys
 * collide, the bound, iteration with deletion, and a random walk against an array. */
#include <errno.h>
#include <stdlib.h>
#include "test.h"
#include "chatd/i64map.h"

static uint64_t rng_state;

static uint64_t rng(void)               /* xorshift64*, fixed seeds: reproducible */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* A key (not in avoid[0..navoid)) whose hash has top bits `top` over `bits` bits:
 * with bits = 4 its home is slot `top` of a 16-slot table; keys sharing their top 12
 * bits collide in every table up to 4096 slots. */
static int64_t key_with_top(const struct i64map *m, uint64_t top, unsigned bits,
                            const int64_t *avoid, int navoid)
{
    for (;;) {
        int64_t k = (int64_t)(rng() >> 1) - (int64_t)(rng() >> 2);
        if (k == I64MAP_NO_KEY || i64map_hash(m, k) >> (64 - bits) != top)
            continue;
        int dup = 0;
        for (int i = 0; i < navoid && !dup; i++)
            dup = avoid[i] == k;
        if (!dup)
            return k;
    }
}

/* Every key of keys[0..n) with present[i] is found with its value, the others not,
 * and the count agrees. */
static void check_keys(const struct i64map *m, const int64_t *keys, const int *present,
                       int n)
{
    size_t count = 0;
    for (int i = 0; i < n; i++) {
        struct i64map_ent *e = i64map_find(m, keys[i]);
        if (present[i]) {
            ASSERT(e != NULL);
            ASSERT_EQ(e->val.u64, (uint64_t)i + 100);
            count++;
        } else {
            ASSERT(e == NULL);
        }
    }
    ASSERT_EQ(i64map_count(m), count);
}

TEST(i64map_basic)
{
    struct i64map m = {0};               /* zeroed: empty, unbounded */
    int v = 1;

    ASSERT(i64map_get(&m, 5) == NULL);
    ASSERT_EQ(i64map_del(&m, 5), -ENOENT);
    ASSERT(i64map_take(&m, 5) == NULL);
    ASSERT_EQ(i64map_put(&m, I64MAP_NO_KEY, &v), -EINVAL);
    ASSERT(i64map_find(&m, I64MAP_NO_KEY) == NULL);
    ASSERT_EQ(i64map_put(&m, 0, &v), 0);            /* 0 and negatives are keys */
    ASSERT_EQ(i64map_put_u64(&m, -1, 7), 0);
    ASSERT_EQ(i64map_put_u64(&m, INT64_MAX, 8), 0);
    ASSERT_EQ(i64map_put_u64(&m, INT64_MIN + 1, 9), 0);
    ASSERT(i64map_get(&m, 0) == &v);
    ASSERT_EQ(i64map_find(&m, -1)->val.u64, 7);
    ASSERT_EQ(i64map_find(&m, INT64_MAX)->val.u64, 8);
    ASSERT_EQ(i64map_find(&m, INT64_MIN + 1)->val.u64, 9);
    ASSERT_EQ(i64map_put_u64(&m, -1, 70), 0);       /* replaces */
    ASSERT_EQ(i64map_find(&m, -1)->val.u64, 70);
    ASSERT_EQ(i64map_count(&m), 4);
    ASSERT(i64map_take(&m, 0) == &v);
    ASSERT_EQ(i64map_del(&m, 0), -ENOENT);
    ASSERT_EQ(i64map_count(&m), 3);
    i64map_clear(&m);
    ASSERT_EQ(i64map_count(&m), 0);
    ASSERT(i64map_find(&m, -1) == NULL);
    ASSERT_EQ(i64map_put_u64(&m, 3, 3), 0);
    i64map_free(&m);
    ASSERT(i64map_find(&m, 3) == NULL);
    ASSERT_EQ(i64map_put_u64(&m, 3, 3), 0);         /* usable after free */
    ASSERT_EQ(i64map_find(&m, 3)->val.u64, 3);
    i64map_free(&m);
}

/* Homes for one run of 6 keys in a 16-slot table: one shared home, a run that wraps
 * past the last slot, and interleaved homes (some entries sit at home, some not). */
static const uint64_t HOMES[][6] = {
    { 5, 5, 5, 5, 5, 5 },
    { 13, 13, 13, 13, 13, 13 },          /* occupies 13..15 and 0..2 */
    { 15, 15, 0, 14, 1, 15 },            /* wraps, homes on both sides of the end */
    { 14, 0, 14, 1, 0, 15 },
    { 3, 4, 3, 5, 4, 3 },
};

static int next_perm(int *a, int n)
{
    int i = n - 2, j = n - 1;
    while (i >= 0 && a[i] >= a[i + 1])
        i--;
    if (i < 0)
        return 0;
    while (a[j] <= a[i])
        j--;
    int t = a[i]; a[i] = a[j]; a[j] = t;
    for (int l = i + 1, r = n - 1; l < r; l++, r--) {
        t = a[l]; a[l] = a[r]; a[r] = t;
    }
    return 1;
}

static void craft(struct i64map *m, const uint64_t *homes, int64_t *keys, int n)
{
    for (int i = 0; i < n; i++)
        keys[i] = key_with_top(m, homes[i], 4, keys, i);
}

TEST(i64map_delete_every_order_in_one_run)
{
    rng_state = 0x1234567;
    for (size_t h = 0; h < sizeof(HOMES) / sizeof(HOMES[0]); h++) {
        struct i64map m;
        int64_t keys[6];
        i64map_init(&m, 0);
        craft(&m, HOMES[h], keys, 6);
        int order[6] = { 0, 1, 2, 3, 4, 5 };
        do {
            int present[6];
            for (int i = 0; i < 6; i++) {
                ASSERT_EQ(i64map_put_u64(&m, keys[i], (uint64_t)i + 100), 0);
                present[i] = 1;
            }
            ASSERT_EQ(m.cap, 16);
            for (int d = 0; d < 6; d++) {
                ASSERT_EQ(i64map_del(&m, keys[order[d]]), 0);
                present[order[d]] = 0;
                check_keys(&m, keys, present, 6);
                ASSERT_OK_SO_FAR();
            }
        } while (next_perm(order, 6));
        i64map_free(&m);
    }
}

TEST(i64map_delete_then_reinsert_in_a_run)
{
    rng_state = 0xabcdef;
    for (size_t h = 0; h < sizeof(HOMES) / sizeof(HOMES[0]); h++) {
        struct i64map m;
        int64_t keys[6];
        int present[6] = { 1, 1, 1, 1, 1, 1 };
        i64map_init(&m, 0);
        craft(&m, HOMES[h], keys, 6);
        for (int i = 0; i < 6; i++)
            ASSERT_EQ(i64map_put_u64(&m, keys[i], (uint64_t)i + 100), 0);
        for (int round = 0; round < 200; round++) {
            int i = (int)(rng() % 6);
            if (present[i]) {
                ASSERT_EQ(i64map_del(&m, keys[i]), 0);
            } else {
                ASSERT_EQ(i64map_put_u64(&m, keys[i], (uint64_t)i + 100), 0);
            }
            present[i] = !present[i];
            check_keys(&m, keys, present, 6);
            ASSERT_OK_SO_FAR();
        }
        i64map_free(&m);
    }
}

TEST(i64map_growth_while_colliding)
{
    enum { N = 600 };
    static int64_t keys[N];
    static int present[N];
    struct i64map m;

    rng_state = 42;
    i64map_init(&m, 0);
    /* Three clusters that collide at every size the table passes through (up to
     * 4096 slots), one of them at the very end of the table, plus keys anywhere. */
    for (int i = 0; i < N; i++) {
        static const uint64_t tops[] = { 0xfff, 0, 0x800 };
        keys[i] = i % 4 < 3 ? key_with_top(&m, tops[i % 4], 12, keys, i)
                            : key_with_top(&m, rng() & 1, 1, keys, i);
        ASSERT_EQ(i64map_put_u64(&m, keys[i], (uint64_t)i + 100), 0);
        present[i] = 1;
        if (i % 37 == 0) {
            check_keys(&m, keys, present, i + 1);
            ASSERT_OK_SO_FAR();
        }
    }
    ASSERT(m.cap >= 1024);
    check_keys(&m, keys, present, N);
    for (int i = 0; i < N; i += 2) {
        ASSERT_EQ(i64map_del(&m, keys[i]), 0);
        present[i] = 0;
    }
    check_keys(&m, keys, present, N);
    i64map_free(&m);
}

TEST(i64map_bound)
{
    struct i64map m;
    i64map_init(&m, 5);
    for (int64_t k = 1; k <= 5; k++)
        ASSERT_EQ(i64map_put_u64(&m, k, (uint64_t)k), 0);
    ASSERT_EQ(i64map_put_u64(&m, 6, 6), -ENOSPC);
    ASSERT(i64map_find(&m, 6) == NULL);
    ASSERT_EQ(i64map_put_u64(&m, 3, 33), 0);       /* replacing at the bound works */
    ASSERT_EQ(i64map_find(&m, 3)->val.u64, 33);
    ASSERT_EQ(i64map_count(&m), 5);
    ASSERT_EQ(i64map_del(&m, 1), 0);
    ASSERT_EQ(i64map_put_u64(&m, 6, 6), 0);
    ASSERT_EQ(i64map_put_u64(&m, 7, 7), -ENOSPC);
    i64map_free(&m);
    ASSERT_EQ(m.max, 5);                              /* free keeps the bound */

    i64map_init(&m, 1000);
    ASSERT_EQ(i64map_reserve(&m, 1000), 0);
    size_t cap = m.cap;
    for (int64_t k = 0; k < 1000; k++)
        ASSERT_EQ(i64map_put_u64(&m, k * 4096, 1), 0);
    ASSERT_EQ(m.cap, cap);                            /* reserved: no growth */
    ASSERT_EQ(i64map_put_u64(&m, -5, 1), -ENOSPC);
    i64map_free(&m);
}

/* Walks the map, deleting the entries `doomed` picks; each entry must be seen once. */
static void iterate_deleting(struct i64map *m, const int64_t *keys, int *present, int n,
                             int (*doomed)(int i))
{
    int seen[64] = {0};
    struct i64map_iter it;
    for (struct i64map_ent *e = i64map_first(m, &it); e; e = i64map_next(m, &it)) {
        int i = (int)(e->val.u64 - 100);
        ASSERT(i >= 0 && i < n && keys[i] == e->key && present[i]);
        ASSERT_EQ(seen[i], 0);
        seen[i] = 1;
        if (doomed(i)) {
            i64map_del_current(m, &it);
            present[i] = 0;
        }
    }
    for (int i = 0; i < n; i++)
        ASSERT(seen[i] || !present[i]);
    check_keys(m, keys, present, n);
}

static int doom_all(int i) { (void)i; return 1; }
static int doom_even(int i) { return i % 2 == 0; }
static int doom_odd(int i) { return i % 2 == 1; }
static int doom_none(int i) { (void)i; return 0; }
static int doom_random(int i) { (void)i; return (int)(rng() & 1); }

TEST(i64map_iterate_and_delete)
{
    int (*const dooms[])(int) = { doom_all, doom_even, doom_odd, doom_none, doom_random };
    rng_state = 777;
    for (size_t h = 0; h < sizeof(HOMES) / sizeof(HOMES[0]); h++) {
        for (size_t d = 0; d < sizeof(dooms) / sizeof(dooms[0]); d++) {
            struct i64map m;
            int64_t keys[12];
            int present[12];
            uint64_t homes[12];
            i64map_init(&m, 0);
            for (int i = 0; i < 12; i++)        /* two runs, 6 keys each, both wrapping */
                homes[i] = i < 6 ? HOMES[h][i] : (HOMES[h][i - 6] + 8) % 16;
            craft(&m, homes, keys, 12);
            for (int i = 0; i < 12; i++) {
                ASSERT_EQ(i64map_put_u64(&m, keys[i], (uint64_t)i + 100), 0);
                present[i] = 1;
            }
            ASSERT_EQ(m.cap, 16);
            iterate_deleting(&m, keys, present, 12, dooms[d]);
            ASSERT_OK_SO_FAR();
            iterate_deleting(&m, keys, present, 12, doom_none);
            ASSERT_OK_SO_FAR();
            i64map_free(&m);
        }
    }
    struct i64map empty = {0};
    struct i64map_iter it;
    ASSERT(i64map_first(&empty, &it) == NULL);
}

TEST(i64map_random_against_array)
{
    enum { N = 700, STEPS = 300000 };
    static int64_t keys[N];
    static uint64_t vals[N];
    static int present[N];
    struct i64map m;

    rng_state = 20261207;
    i64map_init(&m, 0);
    /* Small ids, negative ones, and a share crafted to collide. */
    for (int i = 0; i < N; i++)
        keys[i] = i % 3 == 0 ? key_with_top(&m, i % 2 ? 0xfff : 0x7, 12, keys, i)
                             : (int64_t)i * (i % 2 ? 1 : -7919);
    for (int step = 0; step < STEPS; step++) {
        int i = (int)(rng() % N);
        uint64_t r = rng() % 8;
        if (r < 4) {
            vals[i] = rng();
            ASSERT_EQ(i64map_put_u64(&m, keys[i], vals[i]), 0);
            present[i] = 1;
        } else if (r < 7) {
            ASSERT_EQ(i64map_del(&m, keys[i]), present[i] ? 0 : -ENOENT);
            present[i] = 0;
        } else {
            struct i64map_ent *e = i64map_find(&m, keys[i]);
            ASSERT(present[i] ? e && e->val.u64 == vals[i] : e == NULL);
        }
    }
    size_t count = 0;
    for (int i = 0; i < N; i++) {
        struct i64map_ent *e = i64map_find(&m, keys[i]);
        ASSERT(present[i] ? e && e->val.u64 == vals[i] : e == NULL);
        count += (size_t)present[i];
    }
    ASSERT_EQ(i64map_count(&m), count);
    size_t walked = 0;
    struct i64map_iter it;
    for (struct i64map_ent *e = i64map_first(&m, &it); e; e = i64map_next(&m, &it))
        walked++;
    ASSERT_EQ(walked, count);
    i64map_free(&m);
}

/* Keys with a stride (ids of one kind spaced alike) spread, and deleting every third
 * keeps the rest reachable. */
TEST(i64map_strided_keys)
{
    struct i64map m;
    static int v[2000];

    i64map_init(&m, 0);
    for (int i = 1; i < 2000; i++)
        ASSERT_EQ(i64map_put(&m, (int64_t)i * 64, &v[i]), 0);
    for (int i = 1; i < 2000; i += 3)
        ASSERT_EQ(i64map_del(&m, (int64_t)i * 64), 0);
    for (int i = 1; i < 2000; i++)
        ASSERT(i64map_get(&m, (int64_t)i * 64) == ((i - 1) % 3 ? &v[i] : NULL));
    i64map_free(&m);
}
