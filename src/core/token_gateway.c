/* token_gateway.c: the bearer check the gateway runs for every protected route and
 * that the WebSocket module reaches through http_verify_token. It holds what a check
 * needs and nothing that could sign: the public keys the auth module publishes (a JWK
 * Set, given to gateway_keys_set in this process, or carried by the auth.keys event to
 * a process without the auth module), the cache of verified tokens, the highest user
 * id known to exist, and the rejection counters. Owned by the HTTP server; loop
 * thread only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/events.h"
#include "chatd/http.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/token.h"
#include "chatd/util.h"
#include "http_internal.h"
#include "token_internal.h"

struct token_gateway {
    struct chatd *app;                 /* not owned */
    struct token_keys *keys;           /* owned; NULL until the keys are published */
    struct token_cache *cache;         /* owned; tokens that passed with these keys */
    int64_t users_max;                 /* users 1..max exist; -1 while not known */
    uint64_t *rejections[TOKEN_REJECT_COUNT];   /* in the registry, or in unregistered */
    uint64_t unregistered[TOKEN_REJECT_COUNT];  /* counters when there is no registry */
};

static void register_metrics(struct token_gateway *g)
{
    struct metrics *m = g->app->metrics;
    char labels[64];

    for (int i = 0; i < TOKEN_REJECT_COUNT; i++) {
        snprintf(labels, sizeof labels, "reason=\"%s\"", token_reject_name(i));
        g->rejections[i] = m ? metrics_counter(m, "chatd_token_rejections_total", labels,
                                               "Bearer tokens refused, by reason")
                             : NULL;
        if (!g->rejections[i])
            g->rejections[i] = &g->unregistered[i];
    }
}

int token_gateway_new(struct token_gateway **out, struct chatd *app)
{
    struct token_gateway *g = calloc(1, sizeof *g);

    *out = NULL;
    if (!g)
        return -ENOMEM;
    g->app = app;
    g->users_max = -1;
    if (token_cache_new(&g->cache) < 0) {
        free(g);
        return -ENOMEM;
    }
    register_metrics(g);
    *out = g;
    return 0;
}

void token_gateway_free(struct token_gateway *g)
{
    if (!g)
        return;
    token_keys_free(g->keys);
    token_cache_free(g->cache);
    free(g);
}

static const char *issuer_of(const struct token_gateway *g)
{
    return g->app->cfg ? g->app->cfg->auth.issuer : "chatd";
}

int token_gateway_verify(void *ctx, const char *token, struct http_user *user,
                         const char **reason)
{
    struct token_gateway *g = ctx;
    int rc;

    if (!g->keys) {
        *reason = "no_keys";
        return -ENOSYS;
    }
    rc = token_cache_check(g->cache, g->keys, issuer_of(g), token, now_ms() / 1000, user,
                           reason);
    if (rc == 0 && g->users_max >= 0 && user->id > g->users_max) {
        memset(user, 0, sizeof *user);
        *reason = token_reject_name(TOKEN_REJECT_unknown_user);
        rc = -EACCES;
    }
    if (rc < 0)
        METRIC_INC(g->rejections[token_reject_index(*reason)]);
    return rc;
}

/* The server's gateway, read from its struct: the gateway sits below the server, which
 * makes and frees it, and calls nothing of it. */
static struct token_gateway *gateway_of(struct chatd *app)
{
    return app->http ? app->http->tokens : NULL;
}

/* Takes ks (owned) as the gateway's keys. */
static void keys_take(struct chatd *app, struct token_gateway *g, struct token_keys *ks)
{
    if (token_keys_same(ks, g->keys)) {
        token_keys_free(ks);           /* published again: the cache stays good */
        return;
    }
    token_keys_free(g->keys);
    g->keys = ks;
    token_cache_clear(g->cache);       /* a key that left the set verifies nothing */
    LOG_INFO(app, "http", "token keys set keys=%d", token_keys_count(ks));
}

int gateway_keys_set(struct chatd *app, const char *jwks, size_t len, char *err,
                     size_t errlen)
{
    struct token_gateway *g = gateway_of(app);
    struct token_keys *ks;
    int rc;

    if (!g) {
        snprintf(err, errlen, "no gateway");
        return -ENODEV;
    }
    if ((rc = token_keys_from_jwks(&ks, jwks, len, err, errlen)) < 0)
        return rc;
    keys_take(app, g, ks);
    return 0;
}

void gateway_users_known(struct chatd *app, int64_t max_id)
{
    struct token_gateway *g = gateway_of(app);

    if (g && max_id > g->users_max)
        g->users_max = max_id;
}

/* ---- from the bus: a process without the auth module ---- */

/* The set as the auth.keys struct carries it (events.h). */
static int keys_from_event(struct token_keys **out, const struct ev_auth_keys *m, char *err,
                           size_t errlen)
{
    struct token_jwk jwks[TOKEN_KEYS_MAX];

    if (m->nkeys > TOKEN_KEYS_MAX)     /* token_keys_from_list says so */
        return token_keys_from_list(out, NULL, m->nkeys, err, errlen);
    for (size_t i = 0; i < m->nkeys; i++)
        jwks[i] = (struct token_jwk){ .kty = m->keys[i].kty, .kid = m->keys[i].kid,
                                      .n = m->keys[i].n, .e = m->keys[i].e,
                                      .alg = m->keys[i].alg, .use = m->keys[i].use,
                                      .private_members = m->keys[i].d != NULL };
    return token_keys_from_list(out, jwks, m->nkeys, err, errlen);
}

static int on_keys(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct chatd *app = ctx;
    struct token_gateway *g = gateway_of(app);
    struct token_keys *ks;
    char err[160] = "no gateway";
    int rc = g ? keys_from_event(&ks, ev->data, err, sizeof err) : -ENODEV;

    if (rc < 0) {
        LOG_WARN(app, "http", "token keys refused: %s", err);
        bus_delivery_set_error(d, err);
        return rc;
    }
    keys_take(app, g, ks);
    return 0;
}

static int on_users(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    const struct ev_auth_users *m = ev->data;

    if (m->max_user_id < 0) {
        bus_delivery_set_error(d, "max_user_id missing or not an id");
        return -EINVAL;
    }
    gateway_users_known(ctx, m->max_user_id);
    return 0;
}

int gateway_tokens_subscribe(struct chatd *app)
{
    static const struct bus_sub_opts keys_opts = { .consumer = "gateway.keys" };
    static const struct bus_sub_opts users_opts = { .consumer = "gateway.users" };
    int rc = bus_subscribe(app->bus, TOPIC_AUTH_KEYS, &keys_opts, on_keys, app);

    return rc < 0 ? rc : bus_subscribe(app->bus, TOPIC_AUTH_USERS, &users_opts, on_users, app);
}
