/* keycount.c: how many holders each string key has (open connections per client
 * address), in a table of at most max_keys keys. A key is there only while it has a
 * holder, so the table never holds more keys than there are holders; a caller whose
 * holders are bounded (sockets, by max_connections) sizes max_keys to that bound, and
 * a key that would pass it is refused rather than another forgotten: a count cannot be
 * dropped while its holders live. Chained hashing, the slots doubling with the keys;
 * the hash is seeded per table, so keys chosen to collide in one process do not in
 * another. Loop thread only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "chatd/util.h"

struct keycount_ent {
    struct keycount_ent *next;       /* hash chain */
    uint32_t count;
    char key[];
};

struct keycount {
    struct keycount_ent **slots;     /* owned; nslots a power of two */
    size_t nslots, nkeys, max_keys;
    uint64_t seed;
};

static uint64_t key_hash(const struct keycount *kc, const char *s)
{
    uint64_t h = 1469598103934665603ull ^ kc->seed;   /* FNV-1a, seeded */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ^ (h >> 29);
}

int keycount_new(struct keycount **out, size_t max_keys)
{
    struct keycount *kc = calloc(1, sizeof(*kc));

    if (!kc)
        return -ENOMEM;
    kc->nslots = 64;
    kc->slots = calloc(kc->nslots, sizeof(*kc->slots));
    if (!kc->slots) {
        free(kc);
        return -ENOMEM;
    }
    kc->max_keys = max_keys;
    kc->seed = uv_hrtime() * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)kc;
    *out = kc;
    return 0;
}

void keycount_free(struct keycount *kc)
{
    if (!kc)
        return;
    for (size_t i = 0; i < kc->nslots; i++) {
        for (struct keycount_ent *e = kc->slots[i], *n; e; e = n) {
            n = e->next;
            free(e);
        }
    }
    free(kc->slots);
    free(kc);
}

static struct keycount_ent **find(struct keycount *kc, const char *key)
{
    struct keycount_ent **pp = &kc->slots[key_hash(kc, key) & (kc->nslots - 1)];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* Doubles the slots; on failure the table stays as it was (chains just grow longer). */
static void grow(struct keycount *kc)
{
    size_t n = kc->nslots * 2;
    struct keycount_ent **slots = calloc(n, sizeof(*slots));

    if (!slots)
        return;
    for (size_t i = 0; i < kc->nslots; i++) {
        for (struct keycount_ent *e = kc->slots[i], *next; e; e = next) {
            next = e->next;
            size_t j = key_hash(kc, e->key) & (n - 1);
            e->next = slots[j];
            slots[j] = e;
        }
    }
    free(kc->slots);
    kc->slots = slots;
    kc->nslots = n;
}

uint32_t keycount_get(struct keycount *kc, const char *key)
{
    struct keycount_ent *e = *find(kc, key);
    return e ? e->count : 0;
}

int keycount_acquire(struct keycount *kc, const char *key, uint32_t limit,
                     struct keycount_ent **out)
{
    struct keycount_ent **pp = find(kc, key), *e = *pp;
    size_t len;

    if (e) {
        if (e->count >= limit)
            return -EBUSY;
        e->count++;
        *out = e;
        return 0;
    }
    if (limit == 0)
        return -EBUSY;
    if (kc->nkeys >= kc->max_keys)
        return -ENOSPC;
    len = strlen(key);
    e = malloc(sizeof(*e) + len + 1);
    if (!e)
        return -ENOMEM;
    memcpy(e->key, key, len + 1);
    e->count = 1;
    e->next = NULL;
    *pp = e;
    if (++kc->nkeys > kc->nslots)
        grow(kc);
    *out = e;
    return 0;
}

void keycount_release(struct keycount *kc, struct keycount_ent *e)
{
    struct keycount_ent **pp;

    if (!e || --e->count > 0)
        return;
    pp = find(kc, e->key);
    if (*pp == e) {
        *pp = e->next;
        kc->nkeys--;
        free(e);
    }
}

size_t keycount_keys(const struct keycount *kc)
{
    return kc->nkeys;
}
