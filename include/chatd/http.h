/* http.h: the HTTP/1.1 gateway. One listener on the loop; llhttp parses; a router
 * matches method + path pattern ("/v1/rooms/{id}/messages"); the gateway enforces
 * limits (header bytes 431, body 413, header-read and idle timeouts, max_connections)
 * and checks bearer tokens for protected routes itself, with the public keys the auth
 * module publishes (chatd/token.h). Handlers receive the authenticated user and may answer later
 * (asynchronously): the request lives until one http_respond* call. Requests on one
 * connection are answered in order (pipelining): the next is parsed after the answer. */
#ifndef CHATD_HTTP_H
#define CHATD_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <cjson/cJSON.h>

struct chatd;
struct http_server;
struct http_conn;

enum http_verb { HTTP_VERB_GET = 1, HTTP_VERB_HEAD, HTTP_VERB_POST, HTTP_VERB_PUT,
                 HTTP_VERB_DELETE, HTTP_VERB_PATCH, HTTP_VERB_OPTIONS, HTTP_VERB_OTHER };

#define HTTP_MAX_PARAMS 4
#define HTTP_MAX_HEADERS 64          /* more: 431 */

struct http_user {
    int64_t id;                      /* > 0 when authenticated */
    char    name[40];
    int64_t token_exp;               /* access token's exp, seconds since the epoch */
};

struct http_header { const char *name, *value; };

struct http_req {
    struct http_server *server;
    struct http_conn *conn;          /* private; NULL once the client went away */
    uint64_t id;                     /* unique per process run */
    int      verb;                   /* enum http_verb */
    const char *path;                /* raw path, no query, NUL-terminated */
    const char *query;               /* raw query without '?', "" when none */
    const char *body;                /* NUL-terminated copy (body_len bytes) */
    size_t   body_len;
    const struct http_header *headers; int nheaders;
    const char *params[HTTP_MAX_PARAMS]; int nparams;  /* {name} segments, in order */
    const char *route;               /* the matched pattern, for metrics and logs */
    struct http_user user;           /* set for HTTP_ROUTE_AUTH routes */
    char client_ip[48];
    uint64_t started_ns;
};

typedef void (*http_handler_fn)(struct http_req *req, void *ctx);

#define HTTP_ROUTE_AUTH 0x1          /* requires a valid bearer token (401 otherwise) */
#define HTTP_ROUTE_RAW_TOKEN 0x2     /* with AUTH: also accept ?access_token= (WebSocket) */

/* Register a route; pattern segments "{name}" match one non-empty segment.
 * A path that matches a pattern with another method answers 405 with Allow. */
int  http_route(struct http_server *s, int verb, const char *pattern, unsigned flags,
                http_handler_fn fn, void *ctx);

/* The token check. Returns 0 and fills *user, or a negative error with *reason a
 * short static string ("expired", "bad_signature", ...). The server starts with the
 * gateway's own (token_gateway.c, keys from gateway_keys_set); tests may swap it. */
typedef int (*http_verify_fn)(void *ctx, const char *token, struct http_user *user,
                              const char **reason);
void http_set_verifier(struct http_server *s, http_verify_fn fn, void *ctx);
/* For modules checking tokens outside a request (WebSocket "auth" frame): the same
 * check as a protected route's, so no module needs the auth module's code for it. */
int  http_verify_token(struct http_server *s, const char *token, struct http_user *user,
                       const char **reason);

/* Request helpers. */
const char *http_header(const struct http_req *r, const char *name);  /* case-insensitive */
/* URL-decoded query parameter into out; 0, -ENOENT, or -ENOBUFS. */
int  http_query(const struct http_req *r, const char *name, char *out, size_t outlen);
/* params[i] as a positive id (1..JSON_INT_MAX, no sign, no leading zero, no more
 * digits); -1 when absent or anything else. */
int64_t http_param_id(const struct http_req *r, int i);
/* The body as a JSON object, or NULL after answering 400 invalid_argument itself. */
cJSON *http_json_body(struct http_req *r);

/* Answers. Each frees the request; exactly one per request. extra_headers is
 * "Name: value\r\n..." or NULL. Safe when the client already went away. */
void http_respond(struct http_req *r, int status, const char *content_type,
                  const void *body, size_t len, const char *extra_headers);
void http_respond_json(struct http_req *r, int status, cJSON *json);  /* frees json */
void http_respond_json_str(struct http_req *r, int status, const char *json, size_t len);
void http_respond_empty(struct http_req *r, int status);              /* e.g. 204 */
/* {"error":{"code","message"}} with the code for the status (400 invalid_argument...). */
void http_respond_error(struct http_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 429 rate_limited with Retry-After in whole seconds (at least 1). */
void http_respond_rate_limited(struct http_req *r, int64_t retry_after_ms);
const char *http_error_code(int status);   /* 400 -> "invalid_argument" ... */

/* WebSocket hand-over. From a handler: writes "HTTP/1.1 101 Switching Protocols\r\n"
 * + response_headers + "\r\n", frees the request, and gives the socket to the caller:
 * *tcp is the open socket (reading stopped; set tcp->data and uv_read_start it),
 * *head and *head_len the bytes already received after the request (malloc'ed, caller
 * frees; may be NULL/0). The caller closes it with http_upgraded_close(). */
int  http_upgrade(struct http_req *r, const char *response_headers,
                  uv_tcp_t **tcp, char **head, size_t *head_len);
/* The status line http_upgrade writes first. */
#define HTTP_101_LINE "HTTP/1.1 101 Switching Protocols\r\n"
/* As http_upgrade, but writes nothing: the caller sends the 101 answer itself (e.g. in
 * the same write as its first frame), before anything else on the socket. */
int  http_upgrade_detach(struct http_req *r, uv_tcp_t **tcp, char **head, size_t *head_len);
/* Closes an upgraded socket; cb (may be NULL) runs from the uv_close callback, after
 * which the handle memory is gone. Keeps the connection count right. */
void http_upgraded_close(uv_tcp_t *tcp, void (*cb)(void *arg), void *arg);

/* Server lifecycle (core/main.c). */
int  http_server_new(struct http_server **out, struct chatd *app);
int  http_server_listen(struct http_server *s, char *bound, size_t boundlen); /* "host:port" */
void http_server_stop_accepting(struct http_server *s);
void http_server_close(struct http_server *s, void (*done)(void *arg), void *arg);
void http_server_free(struct http_server *s);
int  http_server_connections(const struct http_server *s);

#endif
