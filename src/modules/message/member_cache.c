/* member_cache.c: room -> member ids, for the loop thread. Typing events need the
 * members of a room on the loop without touching SQLite there; the cache is filled
 * off the loop on a miss and kept in step by the module's own membership commits.
 * Bounded: past the capacity the least recently used room is forgotten. Rooms are
 * found through an int64 map; the LRU list orders them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "message_internal.h"

struct mc_entry {
    int64_t room_id;
    int64_t *ids;                    /* owned */
    int n, cap;
    struct mc_entry *prev, *next;    /* LRU list, most recent first */
};

struct mcache {
    /* room id -> struct mc_entry (owned). No bound of its own: the LRU list keeps
     * at most capacity rooms (capacity + 1 for the moment of a put). Room ids come
     * from clients too (typing in a room that does not exist caches it empty): the
     * map's seed keeps a client from aiming them all at one probe run. */
    struct i64map rooms;
    size_t capacity;
    struct mc_entry head;            /* LRU sentinel */
    uint64_t epoch;
};

int mcache_new(struct mcache **out, size_t capacity)
{
    struct mcache *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->capacity = capacity ? capacity : 1;
    i64map_init(&c->rooms, 0);
    c->head.prev = c->head.next = &c->head;
    *out = c;
    return 0;
}

static void lru_unlink(struct mc_entry *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
}

static void lru_push_front(struct mcache *c, struct mc_entry *e)
{
    e->next = c->head.next;
    e->prev = &c->head;
    c->head.next->prev = e;
    c->head.next = e;
}

static struct mc_entry *find(struct mcache *c, int64_t room_id)
{
    return i64map_get(&c->rooms, room_id);
}

static void remove_entry(struct mcache *c, struct mc_entry *e)
{
    i64map_del(&c->rooms, e->room_id);
    lru_unlink(e);
    free(e->ids);
    free(e);
}

void mcache_free(struct mcache *c)
{
    if (!c)
        return;
    while (c->head.next != &c->head)
        remove_entry(c, c->head.next);
    i64map_free(&c->rooms);
    free(c);
}

const int64_t *mcache_get(struct mcache *c, int64_t room_id, int *n)
{
    struct mc_entry *e = find(c, room_id);
    if (!e)
        return NULL;
    lru_unlink(e);
    lru_push_front(c, e);
    *n = e->n;
    return e->ids;
}

int mcache_put(struct mcache *c, int64_t room_id, const int64_t *ids, int n)
{
    int64_t *copy = malloc((size_t)(n > 0 ? n : 1) * sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    if (n > 0)
        memcpy(copy, ids, (size_t)n * sizeof(*copy));
    struct mc_entry *e = find(c, room_id);
    if (e) {
        free(e->ids);
        lru_unlink(e);
    } else {
        e = calloc(1, sizeof(*e));
        if (!e || i64map_put(&c->rooms, room_id, e) < 0) {
            free(e);
            free(copy);
            return -ENOMEM;
        }
        e->room_id = room_id;
    }
    e->ids = copy;
    e->cap = n > 0 ? n : 1;
    e->n = n;
    lru_push_front(c, e);
    while (i64map_count(&c->rooms) > c->capacity)
        remove_entry(c, c->head.prev);
    return 0;
}

void mcache_add_member(struct mcache *c, int64_t room_id, int64_t user_id)
{
    struct mc_entry *e = find(c, room_id);
    if (!e)
        return;
    for (int i = 0; i < e->n; i++)
        if (e->ids[i] == user_id)
            return;
    if (e->n == e->cap) {
        int64_t *b = realloc(e->ids, (size_t)e->cap * 2 * sizeof(*b));
        if (!b) {
            remove_entry(c, e);      /* cannot keep it exact: forget it */
            return;
        }
        e->ids = b;
        e->cap *= 2;
    }
    e->ids[e->n++] = user_id;
}

void mcache_remove_member(struct mcache *c, int64_t room_id, int64_t user_id)
{
    struct mc_entry *e = find(c, room_id);
    if (!e)
        return;
    for (int i = 0; i < e->n; i++)
        if (e->ids[i] == user_id) {
            e->ids[i] = e->ids[--e->n];
            return;
        }
}

size_t mcache_size(const struct mcache *c) { return i64map_count(&c->rooms); }
uint64_t mcache_epoch(const struct mcache *c) { return c->epoch; }
void mcache_bump_epoch(struct mcache *c) { c->epoch++; }
