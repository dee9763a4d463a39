/* throttle.c: login failure counting with exponential lockouts, per key (a username,
 * a client address, or the pair of both: see login_throttle.c). A fixed array of
 * entries, a chained hash index over it and a least-recently-used list: when every
 * entry is taken, the one touched longest ago is forgotten, so memory stays the same
 * whatever an attacker sends. Loop thread only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth_internal.h"

#define KEY_MAX 96                      /* a username, a newline and an IPv6 address */
#define WINDOW_MS 60000u                /* failures are counted per minute */
#define LOCK_BASE_MS 30000u             /* first lockout */
#define LOCK_MAX_MS 3600000u            /* lockouts double up to this */
#define FORGET_MS 3600000u              /* an hour without failures clears the level */
#define NIL UINT32_MAX

struct entry {
    char key[KEY_MAX];
    uint32_t chain;                     /* next in hash bucket */
    uint32_t prev, next;                /* LRU list, most recent first */
    int count, level;
    int pending;                        /* tries admitted, their password not checked yet */
    uint64_t window_start, last_fail, locked_until;
};

struct auth_throttle {
    struct entry *e;                    /* owned; cap entries */
    uint32_t *bucket;                   /* owned; nbuckets heads */
    uint32_t cap, nbuckets, used, free_head, head, tail;
    int limit;
};

static uint32_t hash_key(const char *s)
{
    uint32_t h = 2166136261u;           /* FNV-1a */
    while (*s)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

int auth_throttle_new(struct auth_throttle **out, size_t capacity, int limit)
{
    struct auth_throttle *t = calloc(1, sizeof *t);
    uint32_t i;

    if (!t || capacity == 0 || capacity > (1u << 24))
        goto fail;
    t->cap = (uint32_t)capacity;
    t->nbuckets = t->cap * 2;
    t->limit = limit;
    t->e = calloc(t->cap, sizeof *t->e);
    t->bucket = malloc(t->nbuckets * sizeof *t->bucket);
    if (!t->e || !t->bucket)
        goto fail;
    for (i = 0; i < t->nbuckets; i++)
        t->bucket[i] = NIL;
    for (i = 0; i < t->cap; i++)        /* free list threaded through chain */
        t->e[i].chain = i + 1 < t->cap ? i + 1 : NIL;
    t->free_head = 0;
    t->head = t->tail = NIL;
    *out = t;
    return 0;
fail:
    auth_throttle_free(t);
    return -ENOMEM;
}

void auth_throttle_free(struct auth_throttle *t)
{
    if (!t)
        return;
    free(t->e);
    free(t->bucket);
    free(t);
}

size_t auth_throttle_size(const struct auth_throttle *t) { return t->used; }

static uint32_t find(struct auth_throttle *t, const char *key)
{
    uint32_t i = t->bucket[hash_key(key) % t->nbuckets];
    while (i != NIL && strcmp(t->e[i].key, key) != 0)
        i = t->e[i].chain;
    return i;
}

static void lru_unlink(struct auth_throttle *t, uint32_t i)
{
    struct entry *e = &t->e[i];
    if (e->prev != NIL) t->e[e->prev].next = e->next; else t->head = e->next;
    if (e->next != NIL) t->e[e->next].prev = e->prev; else t->tail = e->prev;
}

static void lru_push(struct auth_throttle *t, uint32_t i)
{
    t->e[i].prev = NIL;
    t->e[i].next = t->head;
    if (t->head != NIL)
        t->e[t->head].prev = i;
    t->head = i;
    if (t->tail == NIL)
        t->tail = i;
}

/* Takes entry i out of the index and the LRU list and puts it on the free list. */
static void drop(struct auth_throttle *t, uint32_t i)
{
    uint32_t *p = &t->bucket[hash_key(t->e[i].key) % t->nbuckets];
    while (*p != i)
        p = &t->e[*p].chain;
    *p = t->e[i].chain;
    lru_unlink(t, i);
    memset(&t->e[i], 0, sizeof t->e[i]);
    t->e[i].chain = t->free_head;
    t->free_head = i;
    t->used--;
}

static uint32_t get_or_add(struct auth_throttle *t, const char *key)
{
    uint32_t i = find(t, key), b;

    if (i != NIL) {
        lru_unlink(t, i);
        lru_push(t, i);
        return i;
    }
    if (t->free_head == NIL)
        drop(t, t->tail);               /* full: forget the least recently used */
    i = t->free_head;
    t->free_head = t->e[i].chain;
    memset(&t->e[i], 0, sizeof t->e[i]);
    strncpy(t->e[i].key, key, KEY_MAX - 1);
    b = hash_key(t->e[i].key) % t->nbuckets;
    t->e[i].chain = t->bucket[b];
    t->bucket[b] = i;
    lru_push(t, i);
    t->used++;
    return i;
}

int64_t auth_throttle_check(struct auth_throttle *t, const char *key, uint64_t now_ms)
{
    uint32_t i = find(t, key);
    if (i == NIL || t->e[i].locked_until <= now_ms)
        return 0;
    return (int64_t)(t->e[i].locked_until - now_ms);
}

void auth_throttle_fail(struct auth_throttle *t, const char *key, uint64_t now_ms)
{
    struct entry *e;
    uint64_t lock;

    if (t->limit <= 0)
        return;
    e = &t->e[get_or_add(t, key)];
    if (e->level > 0 && now_ms - e->last_fail > FORGET_MS)
        e->level = 0;
    if (now_ms - e->window_start >= WINDOW_MS) {
        e->window_start = now_ms;
        e->count = 0;
    }
    e->last_fail = now_ms;
    if (++e->count < t->limit)
        return;
    lock = (uint64_t)LOCK_BASE_MS << (e->level < 7 ? e->level : 7);
    e->locked_until = now_ms + (lock < LOCK_MAX_MS ? lock : LOCK_MAX_MS);
    if (e->level < 16)
        e->level++;
    e->count = 0;
    e->window_start = now_ms;
}

int auth_throttle_seen(struct auth_throttle *t, const char *key, uint64_t now_ms)
{
    uint32_t i = find(t, key);
    return i != NIL && t->e[i].last_fail != 0 && now_ms - t->e[i].last_fail <= FORGET_MS;
}

int auth_throttle_room(struct auth_throttle *t, const char *key, uint64_t now_ms)
{
    uint32_t i = find(t, key);
    if (i == NIL || t->limit <= 0)
        return 1;
    const struct entry *e = &t->e[i];
    int count = now_ms - e->window_start >= WINDOW_MS ? 0 : e->count;
    return count + e->pending < t->limit;
}

int auth_throttle_pending(struct auth_throttle *t, const char *key)
{
    uint32_t i = find(t, key);
    return i == NIL ? 0 : t->e[i].pending;
}

void auth_throttle_begin(struct auth_throttle *t, const char *key)
{
    if (t->limit > 0)
        t->e[get_or_add(t, key)].pending++;
}

/* An entry that only held tries in flight goes when the last one ends. */
void auth_throttle_end(struct auth_throttle *t, const char *key)
{
    uint32_t i = find(t, key);
    if (i == NIL || t->e[i].pending == 0)
        return;                         /* forgotten meanwhile: the table was full */
    struct entry *e = &t->e[i];
    if (--e->pending == 0 && e->last_fail == 0)
        drop(t, i);
}

/* The failures go; tries still in flight stay counted. */
void auth_throttle_forget(struct auth_throttle *t, const char *key)
{
    uint32_t i = find(t, key);
    if (i == NIL)
        return;
    if (t->e[i].pending == 0) {
        drop(t, i);
        return;
    }
    struct entry *e = &t->e[i];
    e->count = e->level = 0;
    e->window_start = e->last_fail = e->locked_until = 0;
}
