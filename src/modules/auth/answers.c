/* answers.c: the answers the auth routes share (routes.c, login.c, session.c): errors,
 * 503 while busy or draining, and the token pair with its user. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "chatd/config.h"
#include "chatd/http.h"
#include "auth_internal.h"
#include "auth_routes.h"

void auth_respond_error(struct auth_op *op, int status, const char *msg)
{
    http_respond_error(op->req, status, "%s", msg);
    op->req = NULL;
}

void auth_respond_unavailable(struct http_req *req, const char *msg)
{
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"error\":{\"code\":\"unavailable\",\"message\":\"%s\"}}", msg);
    http_respond(req, 503, "application/json", body, (size_t)n, "Retry-After: 1\r\n");
}

#define DB_UNREACHABLE "the database is not available"

void auth_respond_busy(struct auth_op *op, int rc)
{
    if (rc == -EAGAIN || rc == -ECANCELED || rc == -ENOTCONN)
        auth_respond_unavailable(op->req, rc == -EAGAIN      ? "the server is busy"
                                          : rc == -ENOTCONN ? DB_UNREACHABLE
                                                            : "the server is shutting down");
    else
        http_respond_error(op->req, 500, "internal error");
    op->req = NULL;
}

void auth_respond_storage_error(struct auth_op *op, int rc, const char *msg)
{
    if (rc == -ENOTCONN) {
        auth_respond_unavailable(op->req, DB_UNREACHABLE);
        op->req = NULL;
    } else {
        auth_respond_error(op, 500, msg);
    }
}

int auth_refuse_when_draining(struct auth *a, struct http_req *req)
{
    if (!a->draining)
        return 0;
    auth_respond_unavailable(req, "the server is shutting down");
    return 1;
}

cJSON *auth_user_json(int64_t id, const char *username)
{
    cJSON *u = cJSON_CreateObject();
    if (u) {
        cJSON_AddNumberToObject(u, "id", (double)id);
        cJSON_AddStringToObject(u, "username", username);
    }
    return u;
}

void auth_respond_tokens(struct auth_op *op, const char *access, const char *refresh,
                         int64_t user_id, const char *username)
{
    cJSON *j = cJSON_CreateObject();
    char *body = NULL;

    if (j) {
        cJSON_AddStringToObject(j, "access_token", access);
        cJSON_AddStringToObject(j, "token_type", "Bearer");
        cJSON_AddNumberToObject(j, "expires_in", auth_settings(op->a->app->cfg)->access_ttl);
        cJSON_AddStringToObject(j, "refresh_token", refresh);
        cJSON_AddItemToObject(j, "user", auth_user_json(user_id, username));
        body = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
    }
    if (!body) {
        auth_respond_error(op, 500, "out of memory");
        return;
    }
    /* Tokens must not be kept by caches along the way (RFC 6749 section 5.1). */
    http_respond(op->req, 200, "application/json", body, strlen(body),
                 "Cache-Control: no-store\r\nPragma: no-cache\r\n");
    op->req = NULL;
    OPENSSL_cleanse(body, strlen(body));
    free(body);
}
