/* session.c: POST /v1/auth/refresh and POST /v1/auth/logout. A refresh spends the
 * presented token and stores its successor in one writer job (one transaction). A
 * spent token presented again revokes its family in that same job, so the revocation
 * is durable before the client hears 401.
 *
 * The new access token is signed while that job runs, not after it: a read on the
 * thread pool finds whose token it is and signs for them at once. The writer's
 * answer decides: the early token is sent only when the rotation succeeded for the
 * same user and name, else it is dropped (and signed again after, when the rotation
 * succeeded for someone the read did not see). The read signs only for a token that
 * exists, is unspent, has not expired and whose family is not revoked, so a replayed
 * spent token costs no signature (unless it races its own first use). On a single core the
 * two would only take turns, so there the extra read is not paid for. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "auth_internal.h"
#include "auth_routes.h"

#define INVALID_REFRESH "refresh token is invalid, expired or revoked"

struct session_op {
    struct auth_op op;
    struct auth_session sess;
    char *access;                      /* owned */
    int sign_rc;
    /* refresh only: the access token signed while the rotation runs */
    struct auth_op early;              /* its trip: read + sign on the pool */
    int64_t early_user;                /* 0: nothing signed early */
    char early_name[AUTH_USERNAME_MAX + 1];
    char *early_access;                /* owned */
    int early_out, rotated;            /* the read is out; the writer has answered */
};

static void session_free(struct auth_op *op)
{
    struct session_op *s = (struct session_op *)op;
    free(s->access);
    free(s->early_access);
    free(s);
}

/* Reads {"refresh_token"} and hashes it. NULL after answering. *valid is 0 when the
 * string cannot be one of our tokens. */
static struct session_op *session_new(struct http_req *req, int *valid)
{
    const char *tok;
    struct session_op *s;
    cJSON *body = http_json_body(req);

    if (!body)
        return NULL;
    if (json_get_str(body, "refresh_token", &tok) < 0) {
        cJSON_Delete(body);
        http_respond_error(req, 400, "refresh_token is a required string");
        return NULL;
    }
    if (!(s = calloc(1, sizeof *s))) {
        cJSON_Delete(body);
        http_respond_error(req, 500, "out of memory");
        return NULL;
    }
    *valid = auth_refresh_hash(tok, s->sess.old_hash) == 0;
    cJSON_Delete(body);
    return s;
}

/* --- refresh ------------------------------------------------------------------------ */

static void refresh_signed(struct auth_op *op)
{
    struct session_op *s = (struct session_op *)op;
    struct auth *a = op->a;

    if (op->status < 0 || s->sign_rc < 0) {
        LOG_ERROR(a->app, AUTH_MOD, "signing failed err=%d", op->status < 0 ? op->status
                                                                            : s->sign_rc);
        auth_respond_error(op, 500, "could not issue a token");
    } else {
        METRIC_INC(a->m.refresh_ok);
        METRIC_INC(a->m.tokens_issued);
        auth_respond_tokens(op, s->access, s->sess.new_token, s->sess.user_id,
                            s->sess.username);
    }
    auth_op_done(op);
}

static void refresh_sign(struct auth_op *op)
{
    struct session_op *s = (struct session_op *)op;
    struct auth *a = op->a;
    s->sign_rc = auth_token_sign(&a->key, a->app->cfg->auth.issuer, s->sess.user_id,
                                 s->sess.username, now_ms() / 1000,
                                 auth_settings(a->app->cfg)->access_ttl, &s->access);
}

static int refresh_apply(struct auth_op *op, struct db_conn *conn)
{
    struct session_op *s = (struct session_op *)op;
    return auth_session_rotate(&op->a->store, conn, &s->sess, now_ms(),
                               auth_settings(op->a->app->cfg)->refresh_ttl);
}

/* Thread pool: whose token is this, and is it still live? Then sign for them. */
/* Touches only the early fields and reads old_hash: the rotation runs meanwhile. */
static int early_read(struct auth_op *op, struct db_conn *conn)
{
    struct session_op *s = (struct session_op *)((char *)op - offsetof(struct session_op, early));
    struct auth *a = s->op.a;
    struct auth_token_row t;
    int rc = auth_session_live(&a->store, conn, s->sess.old_hash, now_ms(), &t);

    if (rc < 0)
        return rc;
    if (rc == 1) {
        s->early_user = t.user_id;
        snprintf(s->early_name, sizeof s->early_name, "%s", t.username);
    }
    if (s->early_user > 0 &&
        auth_token_sign(&a->key, a->app->cfg->auth.issuer, s->early_user, s->early_name,
                        now_ms() / 1000, auth_settings(a->app->cfg)->access_ttl,
                        &s->early_access) < 0)
        s->early_user = 0;
    return 0;
}

static void refresh_finish(struct session_op *s);

static void early_back(struct auth_op *early)
{
    struct session_op *s = (struct session_op *)((char *)early - offsetof(struct session_op, early));
    s->early_out = 0;
    if (s->rotated)
        refresh_finish(s);
}

static void refresh_rotated(struct auth_op *op)
{
    struct session_op *s = (struct session_op *)op;
    s->rotated = 1;
    if (!s->early_out)
        refresh_finish(s);
}

/* Both the writer and the early read have answered. */
static void refresh_finish(struct session_op *s)
{
    struct auth_op *op = &s->op;
    struct auth *a = op->a;
    int rc;

    if (op->status < 0) {
        LOG_ERROR(a->app, AUTH_MOD, "refresh failed err=%d", op->status);
        auth_respond_storage_error(op, op->status, "could not rotate the session");
    } else if (s->sess.result == AUTH_SESSION_REUSED) {
        METRIC_INC(a->m.refresh_reused);
        LOG_WARN(a->app, AUTH_MOD, "spent refresh token presented again: family revoked"
                 " user=%lld family=%lld ip=%s", (long long)s->sess.user_id,
                 (long long)s->sess.family_id, op->req->client_ip);
        auth_respond_error(op, 401, INVALID_REFRESH);
    } else if (s->sess.result != AUTH_SESSION_OK) {
        METRIC_INC(a->m.refresh_invalid);
        auth_respond_error(op, 401, INVALID_REFRESH);
    } else if (s->early_access && s->early_user == s->sess.user_id &&
               strcmp(s->early_name, s->sess.username) == 0) {
        auth_note_user(a, s->sess.user_id);
        s->access = s->early_access;
        s->early_access = NULL;
        refresh_signed(op);
        return;
    } else {
        auth_note_user(a, s->sess.user_id);
        if ((rc = auth_op_work(op, refresh_sign, refresh_signed)) == 0)
            return;
        auth_respond_error(op, 500, "could not queue signing");
    }
    auth_op_done(op);
}

void auth_refresh(struct http_req *req, void *ctx)
{
    struct auth *a = ctx;
    struct session_op *s;
    int valid = 0, rc;

    if (auth_refuse_when_draining(a, req) || !(s = session_new(req, &valid)))
        return;
    if (!valid) {
        METRIC_INC(a->m.refresh_invalid);
        http_respond_error(req, 401, INVALID_REFRESH);
        free(s);
        return;
    }
    auth_op_init(&s->op, a, req, session_free);
    if ((rc = auth_refresh_new(s->sess.new_token, s->sess.new_hash)) < 0) {
        auth_respond_error(&s->op, 500, "could not draw a token");
        auth_op_done(&s->op);
        return;
    }
    if ((rc = auth_op_write(&s->op, refresh_apply, refresh_rotated)) < 0) {
        auth_respond_busy(&s->op, rc);
        auth_op_done(&s->op);
        return;
    }
    /* Not counted on its own: the op above is, and it waits for this one. Without it
     * (one core, or the pool's queue full), the token is signed after the rotation. */
    s->early.a = a;
    s->early_out = a->early_sign && auth_op_read(&s->early, early_read, early_back) == 0;
}

/* --- logout ------------------------------------------------------------------------- */

static int logout_apply(struct auth_op *op, struct db_conn *conn)
{
    struct session_op *s = (struct session_op *)op;
    return auth_session_revoke(&op->a->store, conn, &s->sess, now_ms());
}

static void logout_done(struct auth_op *op)
{
    struct session_op *s = (struct session_op *)op;
    struct auth *a = op->a;

    if (op->status < 0) {
        LOG_ERROR(a->app, AUTH_MOD, "logout failed err=%d", op->status);
        auth_respond_storage_error(op, op->status, "could not revoke the session");
    } else {
        if (s->sess.result == AUTH_SESSION_OK)
            LOG_INFO(a->app, AUTH_MOD, "logout user=%lld family=%lld",
                     (long long)s->sess.user_id, (long long)s->sess.family_id);
        http_respond_empty(op->req, 204);
        op->req = NULL;
    }
    auth_op_done(op);
}

/* Logout answers 204 whether or not the token named a live session of the caller:
 * the outcome the client wants (that token no longer works) holds either way. */
void auth_logout(struct http_req *req, void *ctx)
{
    struct auth *a = ctx;
    struct session_op *s;
    int valid = 0, rc;

    if (auth_refuse_when_draining(a, req) || !(s = session_new(req, &valid)))
        return;
    if (!valid) {
        http_respond_empty(req, 204);
        free(s);
        return;
    }
    s->sess.user_id = req->user.id;
    auth_op_init(&s->op, a, req, session_free);
    if ((rc = auth_op_write(&s->op, logout_apply, logout_done)) < 0) {
        auth_respond_busy(&s->op, rc);
        auth_op_done(&s->op);
    }
}
