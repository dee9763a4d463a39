/* accounts.c: the users table, name rules, and the users.lookup request other
 * modules use to turn usernames into ids. Users are never deleted through the API,
 * and the store gives each new user an id above every earlier one (auth_store.h), so
 * no user has an id above max_user_id: that one number is what the bearer check keeps
 * in memory to bind a token to an existing user. A user made by `chatd user add` while the server runs
 * becomes known at its first login (the login reads the row). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/log.h"
#include "chatd/util.h"
#include "auth_internal.h"

#define LOOKUP_MAX 1000               /* usernames per users.lookup request */

int auth_store_open(struct auth_store *s, struct db *db)
{
    int rc = db_engine(db) == DB_ENGINE_PG ? auth_store_pg_new(s) : auth_store_sqlite_new(s);

    if (rc == 0 && (rc = auth_store_migrate(s, db)) < 0)
        auth_store_free(s);
    return rc;
}

int auth_migrate(struct chatd *app)
{
    struct auth_store s;
    int rc = auth_store_open(&s, app->db);

    if (rc == 0)
        auth_store_free(&s);
    return rc;
}

int auth_username_normalize(const char *in, char *out, const char **why)
{
    *why = "username must be 3 to 32 characters of a-z, 0-9, '_', '.' and '-'";
    if (username_fold(in, out, AUTH_USERNAME_MAX + 1) < 0)
        return -EINVAL;
    *why = NULL;
    return 0;
}

int auth_password_check(const char *pw, size_t len, const char **why)
{
    *why = NULL;
    if (len < AUTH_PASSWORD_MIN || len > AUTH_PASSWORD_MAX) {
        *why = "password must be 8 to 1024 bytes";
        return -EINVAL;
    }
    if (memchr(pw, '\0', len)) {
        *why = "password must not contain NUL characters";
        return -EINVAL;
    }
    return 0;
}

/* Start-up only (blocking, before the loop runs). */
int auth_load_max_user_id(struct auth *a)
{
    struct db_conn *conn = db_conn_for_cli(a->app->db);

    if (!conn)
        return -EIO;
    return auth_store_users_max_id(&a->store, conn, &a->max_user_id);
}

void auth_note_user(struct auth *a, int64_t id)
{
    if (id > a->max_user_id) {
        a->max_user_id = id;
        auth_gateway_publish_users(a);
    }
}

/* --- users.lookup ------------------------------------------------------------------ */

struct lookup {
    struct auth *a;
    struct bus_event *request;         /* one reference, held until the reply */
    char (*names)[AUTH_USERNAME_MAX + 1];   /* owned; normalized, valid ones only */
    int n;
    struct auth_user_name *found;      /* owned; room for n, filled on the pool thread */
    int n_found;
};

static int lookup_read(struct db_conn *conn, void *arg)
{
    struct lookup *l = arg;
    const char (*names)[AUTH_USERNAME_MAX + 1] = (const char (*)[AUTH_USERNAME_MAX + 1])l->names;
    int rc = auth_store_users_find(&l->a->store, conn, names, l->n, l->found);

    if (rc < 0)
        return rc;
    l->n_found = rc;
    return 0;
}

static void lookup_free(struct lookup *l)
{
    bus_event_unref(l->request);
    free(l->found);
    free(l->names);
    free(l);
}

/* The answer, or the failure with its reason; one way or another the asker hears. */
static void lookup_reply(struct lookup *l, int status)
{
    struct bus *bus = l->a->app->bus;
    struct ev_users_lookup_reply reply = { .nusers = (size_t)l->n_found };
    struct ev_error why = { .code = "internal", .message = "user lookup failed" };
    int rc = -ENOMEM;

    if (status == 0 && (reply.users = calloc((size_t)(l->n_found ? l->n_found : 1),
                                             sizeof *reply.users))) {
        for (int i = 0; i < l->n_found; i++)
            reply.users[i] = (struct ev_user){ .id = l->found[i].id,
                                               .username = l->found[i].username };
        rc = bus_reply_ev(bus, l->request, 0, &reply);
        free(reply.users);
    }
    if (rc < 0) {
        status = status < 0 ? status : -ENOMEM;
        LOG_WARN(l->a->app, AUTH_MOD, "users.lookup failed err=%d", status);
        if (bus_reply_ev(bus, l->request, status, &why) < 0)
            bus_reply_ev(bus, l->request, status, NULL);
    }
}

static void lookup_after(void *arg, int status)
{
    struct lookup *l = arg;
    struct auth *a = l->a;

    lookup_reply(l, status);
    lookup_free(l);
    auth_inflight_end(a);
}

/* The usernames asked for, the valid ones normalized, up to LOOKUP_MAX of them (the
 * rest are not looked up). The payload is the decoded struct (events.h). */
static int on_lookup(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct auth *a = ctx;
    const struct ev_users_lookup *m = ev->data;
    struct lookup *l = calloc(1, sizeof *l);
    size_t cap = m->nusernames < LOOKUP_MAX ? m->nusernames : LOOKUP_MAX;
    const char *why;
    int rc;

    if (!l || !(l->names = calloc(cap ? cap : 1, sizeof *l->names)) ||
        !(l->found = calloc(cap ? cap : 1, sizeof *l->found))) {
        if (l) {
            free(l->names);
            free(l);
        }
        bus_reply_ev(a->app->bus, ev, -ENOMEM, NULL);
        return 0;
    }
    l->a = a;
    for (size_t i = 0; i < m->nusernames && (size_t)l->n < cap; i++)
        if (auth_username_normalize(m->usernames[i], l->names[l->n], &why) == 0)
            l->n++;
    bus_event_ref(ev);
    l->request = ev;
    auth_inflight_begin(a);
    rc = db_read(a->app->db, lookup_read, lookup_after, l);
    if (rc < 0)
        lookup_after(l, rc);
    return 0;
}

int auth_users_start(struct auth *a)
{
    static const struct bus_sub_opts opts = { .consumer = "auth.users_lookup" };
    return bus_subscribe(a->app->bus, TOPIC_USERS_LOOKUP, &opts, on_lookup, a);
}
