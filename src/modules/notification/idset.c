/* idset.c: a set of positive int64 ids, each with a small value, on an int64 map
 * (chatd/i64map.h). It grows by doubling up to a bound; at the bound idset_put answers
 * -ENOSPC and the caller decides what that means. */
#include <errno.h>
#include <string.h>
#include "notification_internal.h"

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

/* max is rounded up to a power of two of slots, of which 3/4 may hold ids (the map's
 * load factor): the number of ids the set has always held for a given max. */
int idset_init(struct idset *s, size_t initial, size_t max)
{
    size_t slots = pow2_at_least(max);

    i64map_init(&s->map, slots / 4 * 3);
    return i64map_reserve(&s->map, pow2_at_least(initial < max ? initial : max) / 4 * 3);
}

void idset_free(struct idset *s)
{
    i64map_free(&s->map);
}

void idset_clear(struct idset *s)
{
    i64map_clear(&s->map);
}

/* A set not initialised (or freed) has no slots: it refuses ids rather than grow. */
int idset_put(struct idset *s, int64_t id, uint32_t val)
{
    if (id <= 0 || !s->map.ents)
        return -EINVAL;
    return i64map_put_u64(&s->map, id, val) < 0 ? -ENOSPC : 0;
}

int idset_get(const struct idset *s, int64_t id, uint32_t *val)
{
    struct i64map_ent *e = id > 0 ? i64map_find(&s->map, id) : NULL;

    if (e && val)
        *val = (uint32_t)e->val.u64;
    return e != NULL;
}

void idset_del(struct idset *s, int64_t id)
{
    if (id > 0)
        i64map_del(&s->map, id);
}
