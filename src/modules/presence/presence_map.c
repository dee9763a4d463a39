/* presence_map.c: an int64 -> pointer map (open addressing, linear probing,
 * backward-shift deletion), for the store's users and the module's announcements. */
#include <errno.h>
#include <stdlib.h>

#include "presence_internal.h"

static size_t slot_of(const struct pmap *m, int64_t key)
{
    uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (m->cap - 1);
}

int pmap_init(struct pmap *m)
{
    m->cap = 64;
    m->count = 0;
    m->ents = calloc(m->cap, sizeof(*m->ents));
    return m->ents ? 0 : -ENOMEM;
}

void pmap_free(struct pmap *m)
{
    free(m->ents);
    m->ents = NULL;
    m->cap = m->count = 0;
}

void *pmap_get(const struct pmap *m, int64_t key)
{
    if (!m->ents)
        return NULL;
    for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (m->ents[i].key == key)
            return m->ents[i].val;
        if (m->ents[i].key == 0)
            return NULL;
    }
}

static int grow(struct pmap *m)
{
    struct pmap n = { .cap = m->cap * 2 };

    n.ents = calloc(n.cap, sizeof(*n.ents));
    if (!n.ents)
        return -ENOMEM;
    for (size_t j = 0; j < m->cap; j++) {
        if (!m->ents[j].key)
            continue;
        size_t i = slot_of(&n, m->ents[j].key);
        while (n.ents[i].key)
            i = (i + 1) & (n.cap - 1);
        n.ents[i] = m->ents[j];
        n.count++;
    }
    free(m->ents);
    *m = n;
    return 0;
}

int pmap_put(struct pmap *m, int64_t key, void *val)
{
    if (key == 0)
        return -EINVAL;
    if ((m->count + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return -ENOMEM;
    size_t i = slot_of(m, key);
    while (m->ents[i].key && m->ents[i].key != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->ents[i].key)
        m->count++;
    m->ents[i].key = key;
    m->ents[i].val = val;
    return 0;
}

void pmap_del(struct pmap *m, int64_t key)
{
    size_t mask = m->cap - 1, i;

    if (!m->ents)
        return;
    for (i = slot_of(m, key); m->ents[i].key != key; i = (i + 1) & mask)
        if (!m->ents[i].key)
            return;
    m->count--;
    for (size_t j = (i + 1) & mask; m->ents[j].key; j = (j + 1) & mask) {
        size_t home = slot_of(m, m->ents[j].key);
        int between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            m->ents[i] = m->ents[j];
            i = j;
        }
    }
    m->ents[i].key = 0;
    m->ents[i].val = NULL;
}
