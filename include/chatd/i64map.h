/* i64map.h: a hash map from int64 keys to a pointer or a uint64 (user, room,
 * connection, request and subscription ids). Open addressing with linear probing,
 * deletion by backward shift (no tombstones), doubling past 3/4 full; it never
 * shrinks until i64map_free. One thread at a time; the caller locks if it shares one.
 *
 * Keys: any int64 except I64MAP_NO_KEY (INT64_MIN), which marks empty slots and is
 * refused with -EINVAL. The ids of this server are positive (counters and row ids
 * start at 1; a uint64 counter cast to int64 reaches INT64_MIN only after 2^63 ids).
 *
 * Hashing: Fibonacci (multiply by 2^64/phi, keep the top bits), applied to the key
 * XOR a seed. Ids handed out in sequence then land evenly spread, with shorter runs
 * than any random placement. The seed is random per process (i64map_init): a client
 * that chooses keys which end up inserted (room ids of typing events for rooms that
 * do not exist) cannot aim them at one slot without knowing it. A zeroed struct is a
 * valid empty, unbounded map with seed 0, for tables whose keys only the server picks.
 *
 * Bound: max > 0 refuses a new key once max keys are held (-ENOSPC); replacing the
 * value of a held key always works. max 0: no bound of its own, for callers that
 * bound their entries themselves (say where at each use). */
#ifndef CHATD_I64MAP_H
#define CHATD_I64MAP_H

#include <stddef.h>
#include <stdint.h>

#define I64MAP_NO_KEY INT64_MIN

union i64map_val {
    void *ptr;
    uint64_t u64;
};

struct i64map_ent {
    int64_t key;                     /* I64MAP_NO_KEY: empty */
    union i64map_val val;
};

struct i64map {
    struct i64map_ent *ents;         /* owned; NULL until the first insert */
    size_t cap;                      /* 0 or a power of two, >= 16 */
    size_t count, max;
    unsigned shift;                  /* 64 - log2(cap): the hash's top bits index */
    uint64_t seed;
};

/* An empty map holding at most max keys (0: unbounded). Allocates nothing. */
void   i64map_init(struct i64map *m, size_t max);
/* Releases the slots; the map is empty and usable again, with its bound and seed. */
void   i64map_free(struct i64map *m);
/* Empties the map, keeping its slots. */
void   i64map_clear(struct i64map *m);
/* Allocates room for n keys now, so that inserts up to n do not allocate.
 * 0 or -ENOMEM. */
int    i64map_reserve(struct i64map *m, size_t n);

/* The entry of key, or NULL. The pointer is valid until the next insert or delete. */
struct i64map_ent *i64map_find(const struct i64map *m, int64_t key);
/* Inserts key or replaces its value: 0, -EINVAL (I64MAP_NO_KEY), -ENOSPC (a new key
 * past the bound), -ENOMEM. */
int    i64map_set(struct i64map *m, int64_t key, union i64map_val val);
/* Removes key: 0, or -ENOENT when it was not there. */
int    i64map_del(struct i64map *m, int64_t key);

static inline size_t i64map_count(const struct i64map *m) { return m->count; }

static inline void *i64map_get(const struct i64map *m, int64_t key)
{
    struct i64map_ent *e = i64map_find(m, key);
    return e ? e->val.ptr : NULL;
}

static inline int i64map_put(struct i64map *m, int64_t key, void *ptr)
{
    return i64map_set(m, key, (union i64map_val){ .ptr = ptr });
}

static inline int i64map_put_u64(struct i64map *m, int64_t key, uint64_t v)
{
    return i64map_set(m, key, (union i64map_val){ .u64 = v });
}

/* Removes key and returns its pointer value (NULL when absent). */
void  *i64map_take(struct i64map *m, int64_t key);

/* Iteration, each held entry once, in no defined order:
 *     struct i64map_iter it;
 *     for (struct i64map_ent *e = i64map_first(m, &it); e; e = i64map_next(m, &it))
 * The loop may delete the entry it stands on with i64map_del_current (and only that
 * one); it may change values; it may not insert (an insert may move every entry). */
struct i64map_iter {
    size_t pos, left;                /* the slot last returned; slots still to look at */
};
struct i64map_ent *i64map_first(const struct i64map *m, struct i64map_iter *it);
struct i64map_ent *i64map_next(const struct i64map *m, struct i64map_iter *it);
void   i64map_del_current(struct i64map *m, struct i64map_iter *it);

/* The 64-bit hash whose top log2(cap) bits give the key's home slot (for tests that
 * craft collisions, and diagnostics). */
static inline uint64_t i64map_hash(const struct i64map *m, int64_t key)
{
    return ((uint64_t)key ^ m->seed) * 0x9E3779B97F4A7C15ull;
}

#endif
