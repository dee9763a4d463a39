/* registry.c: who is connected. Two int64 maps (chatd/i64map.h): user id -> struct
 * ws_user and connection id -> struct ws_conn. A user entry exists
 * while the user holds at least one open connection. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/i64map.h"
#include "ws_internal.h"

int ws_registry_add(struct ws_module *m, struct ws_conn *c, const char *username)
{
    struct ws_user *u;
    int created = 0;

    if (c->user_id <= 0 || c->id == 0)
        return -EINVAL;
    u = i64map_get(&m->users, c->user_id);

    if (!u) {
        u = calloc(1, sizeof(*u));
        if (!u)
            return -ENOMEM;
        u->id = c->user_id;
        snprintf(u->name, sizeof(u->name), "%s", username ? username : "");
        if (i64map_put(&m->users, u->id, u) < 0) {
            free(u);
            return -ENOMEM;
        }
        created = 1;
    }
    if (i64map_put(&m->conns_by_id, (int64_t)c->id, c) < 0) {
        if (created) {
            i64map_del(&m->users, u->id);
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
    i64map_del(&m->conns_by_id, (int64_t)c->id);
    m->nconns--;
    if (--u->nconns == 0) {
        i64map_del(&m->users, u->id);
        free(u);
    }
}

struct ws_user *ws_registry_user(struct ws_module *m, int64_t user_id)
{
    return user_id > 0 ? i64map_get(&m->users, user_id) : NULL;
}

struct ws_conn *ws_registry_conn(struct ws_module *m, uint64_t conn_id)
{
    return conn_id ? i64map_get(&m->conns_by_id, (int64_t)conn_id) : NULL;
}
