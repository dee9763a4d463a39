/* login.c: POST /v1/auth/login. The trip: throttle check (loop) -> read the user row
 * (pool thread) -> verify the password, and when it matches sign the access token and
 * draw the refresh token (pool thread) -> store the session (writer thread, durable
 * before the client sees the token) -> answer (loop). An unknown user costs the same
 * scrypt run, against a dummy hash, as a wrong password, and gets the same answer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "auth_internal.h"
#include "auth_routes.h"

#define BAD_CREDENTIALS "wrong username or password"

struct login_op {
    struct auth_op op;                 /* first: the op is freed through it */
    char username[AUTH_USERNAME_MAX + 1];
    int name_ok;
    int admitted;                      /* in flight in the throttle until freed */
    char ip[sizeof(((struct http_req *)0)->client_ip)];  /* the throttle's address */
    char *password;                    /* owned; wiped before free */
    size_t pwlen;
    int found;
    char stored[AUTH_PWHASH_MAX];
    char rehash[AUTH_PWHASH_MAX];      /* "" unless the stored hash used old parameters */
    int verified;                      /* 1 match, 0 no, < 0 unreadable stored hash */
    int sign_rc;
    char *access;                      /* owned */
    int64_t iat;
    double hash_seconds;
    struct auth_session sess;
};

/* Every way out of a login passes here: a try the throttle admitted is settled once,
 * whether it was counted, succeeded or came to nothing (a 500, a shutdown). */
static void login_free(struct auth_op *op)
{
    struct login_op *l = (struct login_op *)op;
    if (l->admitted)
        login_throttle_settle(&op->a->throttle, l->name_ok ? l->username : NULL, l->ip);
    if (l->password) {
        OPENSSL_cleanse(l->password, l->pwlen);
        free(l->password);
    }
    free(l->access);
    free(l);
}

static int login_read(struct auth_op *op, struct db_conn *conn)
{
    struct login_op *l = (struct login_op *)op;
    struct auth_user_row u;
    int rc = auth_store_user_find(&op->a->store, conn, l->username, &u);

    if (rc == 1) {
        l->found = 1;
        l->sess.user_id = u.id;
        snprintf(l->stored, sizeof l->stored, "%s", u.password_hash);
    }
    return rc < 0 ? rc : 0;
}

/* Pool thread. */
static void login_work(struct auth_op *op)
{
    struct login_op *l = (struct login_op *)op;
    struct auth *a = op->a;
    uint64_t t0 = mono_ns();
    int v = auth_password_verify(l->password, l->pwlen, l->found ? l->stored : a->dummy_hash);

    l->hash_seconds = (double)(mono_ns() - t0) / 1e9;
    l->verified = l->found ? v : 0;
    int cost = auth_settings(a->app->cfg)->password_cost;
    if (l->verified == 1 && auth_password_needs_rehash(l->stored, cost) &&
        auth_password_hash(l->password, l->pwlen, cost, l->rehash, sizeof l->rehash) < 0)
        l->rehash[0] = '\0';
    OPENSSL_cleanse(l->password, l->pwlen);
    if (l->verified != 1)
        return;
    l->iat = now_ms() / 1000;
    l->sign_rc = auth_token_sign(&a->key, a->app->cfg->auth.issuer, l->sess.user_id,
                                 l->username, l->iat, auth_settings(a->app->cfg)->access_ttl,
                                 &l->access);
    if (l->sign_rc == 0)
        l->sign_rc = auth_refresh_new(l->sess.new_token, l->sess.new_hash);
}

static int login_apply(struct auth_op *op, struct db_conn *conn)
{
    struct login_op *l = (struct login_op *)op;
    const struct auth_store *st = &op->a->store;
    int rc;

    if (l->rehash[0] &&
        (rc = auth_store_user_set_hash(st, conn, l->sess.user_id, l->rehash)) < 0)
        return rc;
    return auth_session_create(st, conn, &l->sess, now_ms(),
                               auth_settings(op->a->app->cfg)->refresh_ttl);
}

static void login_stored(struct auth_op *op)
{
    struct login_op *l = (struct login_op *)op;
    struct auth *a = op->a;

    if (op->status < 0) {
        LOG_ERROR(a->app, AUTH_MOD, "storing a session failed user=%lld err=%d",
                  (long long)l->sess.user_id, op->status);
        auth_respond_storage_error(op, op->status, "could not store the session");
    } else {
        METRIC_INC(a->m.logins_ok);
        METRIC_INC(a->m.tokens_issued);
        LOG_INFO(a->app, AUTH_MOD, "login user=%lld ip=%s", (long long)l->sess.user_id,
                 op->req->client_ip);
        auth_respond_tokens(op, l->access, l->sess.new_token, l->sess.user_id, l->username);
    }
    auth_op_done(op);
}

static void login_hashed(struct auth_op *op)
{
    struct login_op *l = (struct login_op *)op;
    struct auth *a = op->a;
    int rc;

    a->hashing--;
    metrics_observe(a->m.hash_seconds, l->hash_seconds);
    if (op->status < 0) {
        auth_respond_error(op, 503, "the server is shutting down");
        auth_op_done(op);
        return;
    }
    if (l->verified < 0)
        LOG_ERROR(a->app, AUTH_MOD, "unreadable password hash user=%lld",
                  (long long)l->sess.user_id);
    if (l->verified != 1) {
        METRIC_INC(a->m.logins_bad);
        login_throttle_failed(&a->throttle, l->name_ok ? l->username : NULL, l->ip,
                              mono_ms());
        LOG_INFO(a->app, AUTH_MOD, "login refused ip=%s", op->req->client_ip);
        auth_respond_error(op, 401, BAD_CREDENTIALS);
        auth_op_done(op);
        return;
    }
    login_throttle_succeeded(&a->throttle, l->username, l->ip, mono_ms());
    auth_note_user(a, l->sess.user_id);
    if (l->sign_rc < 0) {
        LOG_ERROR(a->app, AUTH_MOD, "signing failed err=%d", l->sign_rc);
        auth_respond_error(op, 500, "could not issue a token");
        auth_op_done(op);
        return;
    }
    if ((rc = auth_op_write(op, login_apply, login_stored)) < 0) {
        auth_respond_busy(op, rc);
        auth_op_done(op);
    }
}

static void login_found(struct auth_op *op)
{
    struct auth *a = op->a;

    if (op->status < 0) {
        a->hashing--;
        LOG_ERROR(a->app, AUTH_MOD, "reading a user failed err=%d", op->status);
        auth_respond_storage_error(op, op->status, "could not read the user");
        auth_op_done(op);
        return;
    }
    auth_op_hash(op, login_work, login_hashed);
}

/* Copies what the op needs out of the request body. NULL after answering. */
static struct login_op *login_new(struct auth *a, struct http_req *req)
{
    const char *name, *pw, *why;
    struct login_op *l;
    cJSON *body = http_json_body(req);

    if (!body)
        return NULL;
    if (json_get_str(body, "username", &name) < 0 || json_get_str(body, "password", &pw) < 0) {
        cJSON_Delete(body);
        http_respond_error(req, 400, "username and password are required strings");
        return NULL;
    }
    l = calloc(1, sizeof *l);
    if (!l || !(l->password = strdup(pw))) {
        free(l);
        cJSON_Delete(body);
        http_respond_error(req, 500, "out of memory");
        return NULL;
    }
    l->pwlen = strlen(pw);
    l->name_ok = auth_username_normalize(name, l->username, &why) == 0;
    /* The parsed copy held the password: wipe it. */
    OPENSSL_cleanse((void *)pw, l->pwlen);
    cJSON_Delete(body);
    return l;
}

void auth_login(struct http_req *req, void *ctx)
{
    struct auth *a = ctx;
    struct login_op *l;
    int64_t wait;
    int rc;

    if (auth_refuse_when_draining(a, req) || !(l = login_new(a, req)))
        return;
    /* Before the throttle: a 503 must not spend a try it would admit. */
    if (a->hashing >= AUTH_HASHING_MAX) {
        auth_respond_unavailable(req, "too many logins in progress");
        login_free(&l->op);
        return;
    }
    snprintf(l->ip, sizeof l->ip, "%s", req->client_ip);
    wait = login_throttle_admit(&a->throttle, l->name_ok ? l->username : NULL, l->ip,
                                mono_ms());
    if (wait > 0) {
        METRIC_INC(a->m.logins_throttled);
        LOG_INFO(a->app, AUTH_MOD, "login throttled ip=%s retry_ms=%lld", req->client_ip,
                 (long long)wait);
        http_respond_rate_limited(req, wait);
        login_free(&l->op);
        return;
    }
    auth_op_init(&l->op, a, req, login_free);
    l->admitted = 1;
    a->hashing++;
    if (!l->name_ok) {          /* no such user can exist: straight to the dummy hash */
        login_found(&l->op);
        return;
    }
    if ((rc = auth_op_read(&l->op, login_read, login_found)) < 0) {
        l->op.status = rc;
        login_found(&l->op);
    }
}
