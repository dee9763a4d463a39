/* i64map.c: the int64 hash map of i64map.h. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "chatd/i64map.h"
#include "chatd/util.h"

#define I64MAP_MIN_CAP 16

static uint64_t process_seed;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

/* Without randomness the map still works; it only loses its guard against chosen
 * keys, so a failure here is not worth failing an init for. */
static void seed_pick(void)
{
    if (random_bytes(&process_seed, sizeof(process_seed)) < 0)
        process_seed = (uint64_t)mono_ns() * 0x9E3779B97F4A7C15ull;
}

void i64map_init(struct i64map *m, size_t max)
{
    pthread_once(&seed_once, seed_pick);
    *m = (struct i64map){ .max = max, .seed = process_seed };
}

void i64map_free(struct i64map *m)
{
    free(m->ents);
    m->ents = NULL;
    m->cap = m->count = 0;
    m->shift = 0;
}

static void mark_empty(struct i64map_ent *ents, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ents[i] = (struct i64map_ent){ .key = I64MAP_NO_KEY };
}

void i64map_clear(struct i64map *m)
{
    mark_empty(m->ents, m->cap);
    m->count = 0;
}

static size_t home_of(const struct i64map *m, int64_t key)
{
    return (size_t)(i64map_hash(m, key) >> m->shift);
}

static unsigned log2_of(size_t pow2)
{
    unsigned b = 0;
    while ((size_t)1 << b < pow2)
        b++;
    return b;
}

/* Moves every entry into a table of cap slots (a power of two). */
static int rehash(struct i64map *m, size_t cap)
{
    struct i64map_ent *old = m->ents, *ents = malloc(cap * sizeof(*ents));
    size_t oldcap = m->cap;

    if (!ents)
        return -ENOMEM;
    mark_empty(ents, cap);
    m->ents = ents;
    m->cap = cap;
    m->shift = 64 - log2_of(cap);
    for (size_t j = 0; j < oldcap; j++) {
        if (old[j].key == I64MAP_NO_KEY)
            continue;
        size_t i = home_of(m, old[j].key);
        while (ents[i].key != I64MAP_NO_KEY)
            i = (i + 1) & (cap - 1);
        ents[i] = old[j];
    }
    free(old);
    return 0;
}

/* The load factor: at most 3/4 of the slots hold a key, so runs stay short and an
 * empty slot always ends a probe. */
static int fits(size_t n, size_t cap)
{
    return n * 4 <= cap * 3;
}

int i64map_reserve(struct i64map *m, size_t n)
{
    size_t cap = m->cap ? m->cap : I64MAP_MIN_CAP;

    while (!fits(n, cap))
        cap *= 2;
    return cap == m->cap ? 0 : rehash(m, cap);
}

/* The slot holding key, or the empty slot ending its probe. */
static size_t probe(const struct i64map *m, int64_t key)
{
    size_t mask = m->cap - 1, i = home_of(m, key);

    while (m->ents[i].key != key && m->ents[i].key != I64MAP_NO_KEY)
        i = (i + 1) & mask;
    return i;
}

struct i64map_ent *i64map_find(const struct i64map *m, int64_t key)
{
    if (!m->ents || key == I64MAP_NO_KEY)
        return NULL;
    struct i64map_ent *e = &m->ents[probe(m, key)];
    return e->key == key ? e : NULL;
}

int i64map_set(struct i64map *m, int64_t key, union i64map_val val)
{
    struct i64map_ent *e;
    int rc;

    if (key == I64MAP_NO_KEY)
        return -EINVAL;
    if ((e = i64map_find(m, key)) != NULL) {
        e->val = val;
        return 0;
    }
    if (m->max && m->count >= m->max)
        return -ENOSPC;
    if ((!m->ents || !fits(m->count + 1, m->cap)) &&
        (rc = i64map_reserve(m, m->count + 1)) < 0)
        return rc;
    m->ents[probe(m, key)] = (struct i64map_ent){ .key = key, .val = val };
    m->count++;
    return 0;
}

/* Empties slot hole, then walks the rest of its run: an entry may fill the hole when
 * the hole lies on its probe path, i.e. no nearer to where it sits than its home is
 * (distances taken forward, modulo the table). The entry's old slot becomes the hole. */
static void delete_at(struct i64map *m, size_t hole)
{
    size_t mask = m->cap - 1;

    for (size_t j = (hole + 1) & mask; m->ents[j].key != I64MAP_NO_KEY; j = (j + 1) & mask) {
        size_t from_home = (j - home_of(m, m->ents[j].key)) & mask;
        if (from_home >= ((j - hole) & mask)) {
            m->ents[hole] = m->ents[j];
            hole = j;
        }
    }
    m->ents[hole] = (struct i64map_ent){ .key = I64MAP_NO_KEY };
    m->count--;
}

int i64map_del(struct i64map *m, int64_t key)
{
    struct i64map_ent *e = i64map_find(m, key);

    if (!e)
        return -ENOENT;
    delete_at(m, (size_t)(e - m->ents));
    return 0;
}

void *i64map_take(struct i64map *m, int64_t key)
{
    struct i64map_ent *e = i64map_find(m, key);
    void *ptr;

    if (!e)
        return NULL;
    ptr = e->val.ptr;
    delete_at(m, (size_t)(e - m->ents));
    return ptr;
}

/* The walk starts just after an empty slot and goes once round the table. No run
 * crosses that slot, and deleting only empties slots and moves entries backwards
 * within their run, so the entries a deletion moves come from slots not yet visited
 * into slots not yet visited or the current one, which is looked at again. */
struct i64map_ent *i64map_first(const struct i64map *m, struct i64map_iter *it)
{
    size_t start = 0;

    it->pos = 0;
    it->left = 0;
    if (!m->ents || m->count == 0)
        return NULL;
    while (m->ents[start].key != I64MAP_NO_KEY)
        start++;
    it->pos = start;
    it->left = m->cap;
    return i64map_next(m, it);
}

struct i64map_ent *i64map_next(const struct i64map *m, struct i64map_iter *it)
{
    while (it->left > 0) {
        it->pos = (it->pos + 1) & (m->cap - 1);
        it->left--;
        if (m->ents[it->pos].key != I64MAP_NO_KEY)
            return &m->ents[it->pos];
    }
    return NULL;
}

void i64map_del_current(struct i64map *m, struct i64map_iter *it)
{
    delete_at(m, it->pos);
    it->pos = (it->pos - 1) & (m->cap - 1);
    it->left++;
}
