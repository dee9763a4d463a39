/* ratelimit.c: token buckets by key in a bounded table. A hash table finds the key;
 * a doubly linked list in use order picks the victim when the table is full. Memory
 * is capacity entries whatever the number of distinct clients. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/util.h"

struct rl_entry {
    char *key;                      /* owned */
    struct token_bucket bucket;
    struct rl_entry *hnext;         /* hash chain */
    struct rl_entry *prev, *next;   /* use order: head = most recent */
};

struct ratelimit {
    struct rl_entry **slots;        /* owned; nslots is a power of two */
    size_t nslots, count, capacity;
    struct rl_entry *head, *tail;
    double rate, burst;
};

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int ratelimit_new(struct ratelimit **out, size_t capacity, double rate, double burst)
{
    struct ratelimit *rl = calloc(1, sizeof(*rl));

    if (!rl || capacity == 0)
        goto fail;
    rl->nslots = 16;
    while (rl->nslots < capacity * 2)
        rl->nslots *= 2;
    rl->slots = calloc(rl->nslots, sizeof(*rl->slots));
    if (!rl->slots)
        goto fail;
    rl->capacity = capacity;
    rl->rate = rate;
    rl->burst = burst;
    *out = rl;
    return 0;
fail:
    free(rl);
    return capacity == 0 ? -EINVAL : -ENOMEM;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    for (struct rl_entry *e = rl->head, *n; e; e = n) {
        n = e->next;
        free(e->key);
        free(e);
    }
    free(rl->slots);
    free(rl);
}

static void list_unlink(struct ratelimit *rl, struct rl_entry *e)
{
    if (e->prev) e->prev->next = e->next; else rl->head = e->next;
    if (e->next) e->next->prev = e->prev; else rl->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_front(struct ratelimit *rl, struct rl_entry *e)
{
    e->prev = NULL;
    e->next = rl->head;
    if (rl->head)
        rl->head->prev = e;
    rl->head = e;
    if (!rl->tail)
        rl->tail = e;
}

static struct rl_entry **find_slot(struct ratelimit *rl, const char *key)
{
    struct rl_entry **pp = &rl->slots[hash_key(key) & (rl->nslots - 1)];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->hnext;
    return pp;
}

static void remove_entry(struct ratelimit *rl, struct rl_entry *e)
{
    struct rl_entry **pp = find_slot(rl, e->key);
    *pp = e->hnext;
    list_unlink(rl, e);
    rl->count--;
    free(e->key);
    free(e);
}

int64_t ratelimit_take(struct ratelimit *rl, const char *key, uint64_t now_mono_ms)
{
    struct rl_entry **pp = find_slot(rl, key);
    struct rl_entry *e = *pp;

    if (e) {
        list_unlink(rl, e);
        list_push_front(rl, e);
        return token_bucket_take(&e->bucket, rl->rate, rl->burst, now_mono_ms);
    }
    if (rl->count == rl->capacity) {
        remove_entry(rl, rl->tail);
        pp = find_slot(rl, key);   /* the chain may have changed */
    }
    e = calloc(1, sizeof(*e));
    if (!e || !(e->key = strdup(key))) {
        /* Out of memory: let the request through rather than refuse everyone. */
        free(e);
        return 0;
    }
    *pp = e;
    rl->count++;
    list_push_front(rl, e);
    return token_bucket_take(&e->bucket, rl->rate, rl->burst, now_mono_ms);
}

void ratelimit_reset(struct ratelimit *rl, const char *key)
{
    struct rl_entry *e = *find_slot(rl, key);
    if (e)
        remove_entry(rl, e);   /* a forgotten key starts full */
}
