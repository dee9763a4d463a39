/* auth_routes.h: the HTTP side of the auth module, shared by its route files:
 * routes.c (register, me, jwks, the table), login.c, session.c (refresh, logout),
 * all over answers.c (the answers they share). */
#ifndef CHATD_AUTH_ROUTES_H
#define CHATD_AUTH_ROUTES_H

#include "chatd/http.h"
#include "auth_internal.h"

/* Handlers (ctx is the struct auth). */
void auth_register(struct http_req *req, void *ctx);
void auth_login(struct http_req *req, void *ctx);
void auth_refresh(struct http_req *req, void *ctx);
void auth_logout(struct http_req *req, void *ctx);
void auth_me(struct http_req *req, void *ctx);
void auth_jwks(struct http_req *req, void *ctx);

/* answers.c. Answers for an op's request; each clears op->req. */
void auth_respond_error(struct auth_op *op, int status, const char *msg);
/* 503 for a full write queue, a closing or an unreachable database, 500 for anything
 * else. */
void auth_respond_busy(struct auth_op *op, int rc);
/* A read or write that failed with rc: 503 while the database is unreachable
 * (-ENOTCONN: nothing was stored, the client may retry), else 500 with msg. */
void auth_respond_storage_error(struct auth_op *op, int rc, const char *msg);
/* 200 {"access_token","token_type","expires_in","refresh_token","user"}. */
void auth_respond_tokens(struct auth_op *op, const char *access, const char *refresh,
                         int64_t user_id, const char *username);
/* 503 unavailable with Retry-After: 1. */
void auth_respond_unavailable(struct http_req *req, const char *msg);
/* Answers 503 and returns 1 while the module drains. */
int  auth_refuse_when_draining(struct auth *a, struct http_req *req);
/* {"id","username"}, or NULL out of memory. */
cJSON *auth_user_json(int64_t id, const char *username);

#endif
