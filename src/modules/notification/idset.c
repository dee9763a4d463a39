/* idset.c: a set of positive int64 ids, each with a small value, by linear probing
 * with backward-shift deletion (no tombstones). It grows by doubling up to a bound;
 * at the bound idset_put answers -ENOSPC and the caller decides what that means. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "notification_internal.h"

static size_t slot_of(const struct idset *s, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;   /* Fibonacci hashing */
    return (size_t)(h >> 32) & (s->cap - 1);
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

int idset_init(struct idset *s, size_t initial, size_t max)
{
    memset(s, 0, sizeof(*s));
    s->max = pow2_at_least(max);
    s->cap = pow2_at_least(initial < max ? initial : max);
    s->keys = calloc(s->cap, sizeof(*s->keys));
    s->vals = calloc(s->cap, sizeof(*s->vals));
    if (!s->keys || !s->vals) {
        idset_free(s);
        return -ENOMEM;
    }
    return 0;
}

void idset_free(struct idset *s)
{
    free(s->keys);
    free(s->vals);
    s->keys = NULL;
    s->vals = NULL;
    s->cap = s->len = 0;
}

void idset_clear(struct idset *s)
{
    if (!s->keys)
        return;
    memset(s->keys, 0, s->cap * sizeof(*s->keys));
    memset(s->vals, 0, s->cap * sizeof(*s->vals));
    s->len = 0;
}

static int grow(struct idset *s)
{
    struct idset n = { .max = s->max, .cap = s->cap * 2 };
    if (n.cap > s->max)
        return -ENOSPC;
    n.keys = calloc(n.cap, sizeof(*n.keys));
    n.vals = calloc(n.cap, sizeof(*n.vals));
    if (!n.keys || !n.vals) {
        idset_free(&n);
        return -ENOSPC;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->keys[i])
            continue;
        size_t j = slot_of(&n, s->keys[i]);
        while (n.keys[j])
            j = (j + 1) & (n.cap - 1);
        n.keys[j] = s->keys[i];
        n.vals[j] = s->vals[i];
        n.len++;
    }
    idset_free(s);
    *s = n;
    return 0;
}

int idset_put(struct idset *s, int64_t id, uint32_t val)
{
    if (id <= 0 || !s->keys)
        return -EINVAL;
    size_t i = slot_of(s, id);
    for (; s->keys[i]; i = (i + 1) & (s->cap - 1)) {
        if (s->keys[i] == id) {
            s->vals[i] = val;
            return 0;
        }
    }
    if ((s->len + 1) * 4 > s->cap * 3) {
        if (grow(s) < 0)
            return -ENOSPC;
        return idset_put(s, id, val);
    }
    s->keys[i] = id;
    s->vals[i] = val;
    s->len++;
    return 0;
}

int idset_get(const struct idset *s, int64_t id, uint32_t *val)
{
    if (id <= 0 || !s->keys)
        return 0;
    for (size_t i = slot_of(s, id); s->keys[i]; i = (i + 1) & (s->cap - 1)) {
        if (s->keys[i] == id) {
            if (val)
                *val = s->vals[i];
            return 1;
        }
    }
    return 0;
}

void idset_del(struct idset *s, int64_t id)
{
    if (id <= 0 || !s->keys)
        return;
    size_t mask = s->cap - 1, i = slot_of(s, id);
    while (s->keys[i] && s->keys[i] != id)
        i = (i + 1) & mask;
    if (!s->keys[i])
        return;
    /* Backward shift: pull later members of the cluster into the hole when their
     * home slot does not lie (cyclically) between the hole and where they are. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; s->keys[j]; j = (j + 1) & mask) {
        size_t home = slot_of(s, s->keys[j]);
        int movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            s->keys[hole] = s->keys[j];
            s->vals[hole] = s->vals[j];
            hole = j;
        }
    }
    s->keys[hole] = 0;
    s->vals[hole] = 0;
    s->len--;
}
