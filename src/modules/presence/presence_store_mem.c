/* presence_store_mem.c: the in-memory presence store. Per online user, the ids of
 * its open connections (a small array: a user has a handful of devices). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "presence_internal.h"

struct mem_user {
    uint64_t *conns;                 /* owned */
    int n, cap;
};

struct mem_store {
    /* user id -> struct mem_user: one per user with an open connection, so bounded by
     * the HTTP layer's max_connections. */
    struct i64map users;
};

static int find(const struct mem_user *u, uint64_t conn_id)
{
    for (int i = 0; i < u->n; i++)
        if (u->conns[i] == conn_id)
            return i;
    return -1;
}

static int mem_add(void *impl, int64_t user_id, uint64_t conn_id)
{
    struct mem_store *s = impl;
    struct mem_user *u = i64map_get(&s->users, user_id);

    if (!u) {
        u = calloc(1, sizeof(*u));
        if (!u || i64map_put(&s->users, user_id, u) < 0) {
            free(u);
            return -ENOMEM;
        }
    }
    if (find(u, conn_id) >= 0)
        return u->n;
    if (u->n == u->cap) {
        int ncap = u->cap ? u->cap * 2 : 4;
        uint64_t *nc = realloc(u->conns, (size_t)ncap * sizeof(*nc));
        if (!nc) {
            if (u->n == 0) {
                i64map_del(&s->users, user_id);
                free(u);
            }
            return -ENOMEM;
        }
        u->conns = nc;
        u->cap = ncap;
    }
    u->conns[u->n++] = conn_id;
    return u->n;
}

static int mem_remove(void *impl, int64_t user_id, uint64_t conn_id)
{
    struct mem_store *s = impl;
    struct mem_user *u = i64map_get(&s->users, user_id);
    int i;

    if (!u || (i = find(u, conn_id)) < 0)
        return -ENOENT;
    u->conns[i] = u->conns[--u->n];
    if (u->n)
        return u->n;
    i64map_del(&s->users, user_id);
    free(u->conns);
    free(u);
    return 0;
}

static int mem_count(void *impl, int64_t user_id)
{
    struct mem_store *s = impl;
    struct mem_user *u = i64map_get(&s->users, user_id);

    return u ? u->n : 0;
}

static size_t mem_users_online(void *impl)
{
    struct mem_store *s = impl;
    return i64map_count(&s->users);
}

static void mem_free(void *impl)
{
    struct mem_store *s = impl;

    if (!s)
        return;
    struct i64map_iter it;
    for (struct i64map_ent *e = i64map_first(&s->users, &it); e;
         e = i64map_next(&s->users, &it)) {
        struct mem_user *u = e->val.ptr;
        free(u->conns);
        free(u);
    }
    i64map_free(&s->users);
    free(s);
}

static const struct presence_store_ops mem_ops = {
    .add = mem_add, .remove = mem_remove, .count = mem_count,
    .users_online = mem_users_online, .free = mem_free,
};

int presence_store_mem_new(struct presence_store *out)
{
    struct mem_store *s = calloc(1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    i64map_init(&s->users, 0);
    out->ops = &mem_ops;
    out->impl = s;
    return 0;
}
