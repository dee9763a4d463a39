/* routes.c: the auth routes, POST /v1/auth/register, GET /v1/me, the JWKS, and the
 * bearer check the gateway runs for every protected route. The answers the route
 * files share are answers.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "chatd/bus.h"
#include "chatd/client_addr.h"
#include "chatd/config.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "auth_internal.h"
#include "auth_routes.h"

/* --- register ---------------------------------------------------------------------- */

struct register_op {
    struct auth_op op;
    char username[AUTH_USERNAME_MAX + 1];
    char *password;                    /* owned; wiped and freed once hashed */
    size_t pwlen;
    char hash[AUTH_PWHASH_MAX];
    int hash_rc;
    double hash_seconds;
    int64_t user_id;
};

static void register_free(struct auth_op *op)
{
    struct register_op *r = (struct register_op *)op;
    if (r->password) {
        OPENSSL_cleanse(r->password, r->pwlen);
        free(r->password);
    }
    free(r);
}

static void register_work(struct auth_op *op)
{
    struct register_op *r = (struct register_op *)op;
    uint64_t t0 = mono_ns();
    r->hash_rc = auth_password_hash(r->password, r->pwlen,
                                    auth_settings(op->a->app->cfg)->password_cost, r->hash,
                                    sizeof r->hash);
    r->hash_seconds = (double)(mono_ns() - t0) / 1e9;
    OPENSSL_cleanse(r->password, r->pwlen);
}

static int register_apply(struct auth_op *op, struct db_conn *conn)
{
    struct register_op *r = (struct register_op *)op;
    return auth_store_user_insert(&op->a->store, conn, r->username, r->hash, now_ms(),
                                  &r->user_id);
}

static void publish_registered(struct auth *a, int64_t id, const char *username)
{
    struct ev_user user = { .id = id, .username = username };
    struct ev_user_registered ev = { .user = &user };

    if (bus_publish_ev(a->app->bus, &EV_USER_REGISTERED, &ev) < 0)
        LOG_WARN(a->app, AUTH_MOD, "publishing user.registered failed");
}

static void register_stored(struct auth_op *op)
{
    struct register_op *r = (struct register_op *)op;
    struct auth *a = op->a;
    cJSON *out;

    if (op->status == -ECONSTRAINT) {
        auth_respond_error(op, 409, "username is taken");
    } else if (op->status < 0) {
        LOG_ERROR(a->app, AUTH_MOD, "storing a user failed err=%d", op->status);
        auth_respond_storage_error(op, op->status, "could not store the user");
    } else {
        auth_note_user(a, r->user_id);
        METRIC_INC(a->m.registrations);
        LOG_INFO(a->app, AUTH_MOD, "registered user=%lld name=%s ip=%s",
                 (long long)r->user_id, r->username, op->req->client_ip);
        publish_registered(a, r->user_id, r->username);
        out = cJSON_CreateObject();
        if (out)
            cJSON_AddItemToObject(out, "user", auth_user_json(r->user_id, r->username));
        http_respond_json(op->req, 201, out);
        op->req = NULL;
    }
    auth_op_done(op);
}

static void register_hashed(struct auth_op *op)
{
    struct register_op *r = (struct register_op *)op;
    struct auth *a = op->a;
    int rc;

    a->hashing--;
    metrics_observe(a->m.hash_seconds, r->hash_seconds);
    if (op->status < 0 || r->hash_rc < 0) {
        LOG_ERROR(a->app, AUTH_MOD, "hashing failed err=%d", op->status ? op->status : r->hash_rc);
        auth_respond_error(op, 500, "could not hash the password");
    } else if ((rc = auth_op_write(op, register_apply, register_stored)) == 0) {
        return;
    } else {
        auth_respond_busy(op, rc);
    }
    auth_op_done(op);
}

/* Validates the body into a new op. NULL after answering. */
static struct register_op *register_new(struct http_req *req)
{
    const char *name, *pw, *why;
    struct register_op *r;
    char folded[AUTH_USERNAME_MAX + 1];
    cJSON *body = http_json_body(req);
    int bad = 1;

    if (!body)
        return NULL;
    if (json_get_str(body, "username", &name) < 0)
        http_respond_error(req, 400, "username is a required string");
    else if (json_get_str(body, "password", &pw) < 0)
        http_respond_error(req, 400, "password is a required string");
    else if (auth_username_normalize(name, folded, &why) < 0 ||
             auth_password_check(pw, strlen(pw), &why) < 0)
        http_respond_error(req, 400, "%s", why);
    else
        bad = 0;
    if (bad) {
        cJSON_Delete(body);
        return NULL;
    }
    r = calloc(1, sizeof *r);
    if (!r || !(r->password = strdup(pw))) {
        free(r);
        cJSON_Delete(body);
        http_respond_error(req, 500, "out of memory");
        return NULL;
    }
    r->pwlen = strlen(pw);
    strcpy(r->username, folded);
    OPENSSL_cleanse((void *)pw, r->pwlen);
    cJSON_Delete(body);
    return r;
}

void auth_register(struct http_req *req, void *ctx)
{
    struct auth *a = ctx;
    struct register_op *r;
    char addr[CLIENT_ADDR_KEY_MAX];
    int64_t wait;

    if (auth_refuse_when_draining(a, req))
        return;
    if (!auth_settings(a->app->cfg)->registration_open) {
        http_respond_error(req, 403, "registration is closed on this server");
        return;
    }
    if (!(r = register_new(req)))
        return;
    if ((wait = ratelimit_take(a->reg_limit, client_addr_key(req->client_ip, addr),
                               mono_ms())) > 0) {
        http_respond_rate_limited(req, wait);
        register_free(&r->op);
        return;
    }
    if (a->hashing >= AUTH_HASHING_MAX) {
        auth_respond_unavailable(req, "too many registrations in progress");
        register_free(&r->op);
        return;
    }
    auth_op_init(&r->op, a, req, register_free);
    a->hashing++;
    auth_op_hash(&r->op, register_work, register_hashed);
}

/* --- me, jwks ---------------------------------------------------------------------- */

void auth_me(struct http_req *req, void *ctx)
{
    cJSON *out = cJSON_CreateObject();
    (void)ctx;
    if (out)
        cJSON_AddItemToObject(out, "user", auth_user_json(req->user.id, req->user.name));
    http_respond_json(req, 200, out);
}

void auth_jwks(struct http_req *req, void *ctx)
{
    struct auth *a = ctx;
    /* Verifiers may cache it; after a key change they refetch on an unknown kid. */
    http_respond(req, 200, "application/json", a->jwks, a->jwks_len,
                 "Cache-Control: public, max-age=300\r\n");
}

int auth_routes_start(struct auth *a)
{
    struct http_server *s = a->app->http;
    int rc;

    if ((rc = http_route(s, HTTP_VERB_POST, "/v1/auth/register", 0, auth_register, a)) < 0 ||
        (rc = http_route(s, HTTP_VERB_POST, "/v1/auth/login", 0, auth_login, a)) < 0 ||
        (rc = http_route(s, HTTP_VERB_POST, "/v1/auth/refresh", 0, auth_refresh, a)) < 0 ||
        (rc = http_route(s, HTTP_VERB_POST, "/v1/auth/logout", HTTP_ROUTE_AUTH, auth_logout,
                         a)) < 0 ||
        (rc = http_route(s, HTTP_VERB_GET, "/v1/me", HTTP_ROUTE_AUTH, auth_me, a)) < 0 ||
        (rc = http_route(s, HTTP_VERB_GET, "/.well-known/jwks.json", 0, auth_jwks, a)) < 0)
        return rc;
    return auth_gateway_publish_keys(a);
}
