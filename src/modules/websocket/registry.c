/* registry.c: who is connected. A small open-addressing map (int64 key -> pointer,
 * linear probing, backward-shift deletion so no tombstones pile up) serves both
 * user id -> struct ws_user and connection id -> struct ws_conn. A user entry exists
 * while the user holds at least one open connection. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_internal.h"

struct ws_map_ent { int64_t key; void *val; };   /* key 0 = empty */

struct ws_map {
    struct ws_map_ent *ents;         /* owned */
    size_t cap, count;               /* cap a power of two */
};

static size_t slot_of(const struct ws_map *map, int64_t key)
{
    uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (map->cap - 1);
}

int ws_map_new(struct ws_map **out)
{
    struct ws_map *map = calloc(1, sizeof(*map));
    if (!map)
        return -ENOMEM;
    map->cap = 64;
    map->ents = calloc(map->cap, sizeof(*map->ents));
    if (!map->ents) {
        free(map);
        return -ENOMEM;
    }
    *out = map;
    return 0;
}

void ws_map_free(struct ws_map *map)
{
    if (!map)
        return;
    free(map->ents);
    free(map);
}

void *ws_map_get(const struct ws_map *map, int64_t key)
{
    for (size_t i = slot_of(map, key);; i = (i + 1) & (map->cap - 1)) {
        if (map->ents[i].key == key)
            return map->ents[i].val;
        if (map->ents[i].key == 0)
            return NULL;
    }
}

static int map_grow(struct ws_map *map)
{
    struct ws_map_ent *old = map->ents;
    size_t oldcap = map->cap;
    struct ws_map_ent *ents = calloc(oldcap * 2, sizeof(*ents));

    if (!ents)
        return -ENOMEM;
    map->ents = ents;
    map->cap = oldcap * 2;
    for (size_t j = 0; j < oldcap; j++) {
        if (!old[j].key)
            continue;
        size_t i = slot_of(map, old[j].key);
        while (map->ents[i].key)
            i = (i + 1) & (map->cap - 1);
        map->ents[i] = old[j];
    }
    free(old);
    return 0;
}

int ws_map_put(struct ws_map *map, int64_t key, void *val)
{
    if (key == 0)
        return -EINVAL;
    if ((map->count + 1) * 4 > map->cap * 3 && map_grow(map) < 0)
        return -ENOMEM;
    size_t i = slot_of(map, key);
    while (map->ents[i].key && map->ents[i].key != key)
        i = (i + 1) & (map->cap - 1);
    if (!map->ents[i].key)
        map->count++;
    map->ents[i].key = key;
    map->ents[i].val = val;
    return 0;
}

void ws_map_del(struct ws_map *map, int64_t key)
{
    size_t mask = map->cap - 1, i = slot_of(map, key);

    while (map->ents[i].key != key) {
        if (!map->ents[i].key)
            return;
        i = (i + 1) & mask;
    }
    map->count--;
    /* Backward shift: pull later entries of the probe run into the hole, so lookups
     * never stop early at it. */
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        if (!map->ents[j].key)
            break;
        size_t home = slot_of(map, map->ents[j].key);
        /* j's entry may move to i only if its home is not in (i, j] cyclically */
        int between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            map->ents[i] = map->ents[j];
            i = j;
        }
    }
    map->ents[i].key = 0;
    map->ents[i].val = NULL;
}

size_t ws_map_count(const struct ws_map *map)
{
    return map->count;
}

int ws_registry_add(struct ws_module *m, struct ws_conn *c, const char *username)
{
    struct ws_user *u = ws_map_get(m->users, c->user_id);
    int created = 0;

    if (!u) {
        u = calloc(1, sizeof(*u));
        if (!u)
            return -ENOMEM;
        u->id = c->user_id;
        snprintf(u->name, sizeof(u->name), "%s", username ? username : "");
        if (ws_map_put(m->users, u->id, u) < 0) {
            free(u);
            return -ENOMEM;
        }
        created = 1;
    }
    if (ws_map_put(m->conns_by_id, (int64_t)c->id, c) < 0) {
        if (created) {
            ws_map_del(m->users, u->id);
            free(u);
        }
        return -ENOMEM;
    }
    c->user = u;
    c->user_next = u->conns;
    c->user_prev = NULL;
    if (u->conns)
        u->conns->user_prev = c;
    u->conns = c;
    u->nconns++;
    m->nconns++;
    return 0;
}

void ws_registry_remove(struct ws_module *m, struct ws_conn *c)
{
    struct ws_user *u = c->user;

    if (!u)
        return;
    /* A user may hold thousands of connections: unlinking by search made closing them
     * all quadratic (seconds of loop time for 19,000 connections of 20 users). */
    if (c->user_prev)
        c->user_prev->user_next = c->user_next;
    else
        u->conns = c->user_next;
    if (c->user_next)
        c->user_next->user_prev = c->user_prev;
    c->user_next = c->user_prev = NULL;
    c->user = NULL;
    ws_map_del(m->conns_by_id, (int64_t)c->id);
    m->nconns--;
    if (--u->nconns == 0) {
        ws_map_del(m->users, u->id);
        free(u);
    }
}

struct ws_user *ws_registry_user(struct ws_module *m, int64_t user_id)
{
    return user_id > 0 ? ws_map_get(m->users, user_id) : NULL;
}

struct ws_conn *ws_registry_conn(struct ws_module *m, uint64_t conn_id)
{
    return conn_id ? ws_map_get(m->conns_by_id, (int64_t)conn_id) : NULL;
}
