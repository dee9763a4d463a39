/* http_internal.h: the gateway's private structures, shared by http_server.c (listener,
 * lifecycle), http_dispatch.c (a parsed request to its route, the bearer check),
 * http_parse.c (a connection's bytes into requests, pipelining), http_conn.c (one
 * connection's socket, timer, limits and closing), http_upgrade.c (the hand-over of an
 * upgraded socket), http_router.c (route table), http_respond.c (answers, request
 * helpers), http_answer.c (status lines, heads, error bodies, counting) and http_ops.c
 * (built-in routes: health, metrics, the web client). */
#ifndef CHATD_HTTP_INTERNAL_H
#define CHATD_HTTP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <llhttp.h>

#include "chatd/http.h"
#include "chatd/util.h"

struct chatd;
struct metrics_hist;

#define HTTP_READ_BUF        65536   /* the one read buffer the server lends every socket */
#define HTTP_MAX_SEGMENTS    32      /* path segments a route pattern may have */
#define HTTP_LINGER_MS       2000    /* after a closing answer: drain input this long */
#define HTTP_CODE_CACHE      6       /* per route: status codes with a cached counter */
#define HTTP_WRITE_HIGH      (256 * 1024)  /* unsent answers past this: stop parsing */

struct http_code_counter { int code; uint64_t *counter; };

struct http_route_ent {
    int      verb;
    unsigned flags;
    char    *pattern;                /* owned */
    char    *segs[HTTP_MAX_SEGMENTS];/* point into segbuf; "{x}" segments are params */
    char    *segbuf;                 /* owned */
    int      nsegs;
    http_handler_fn fn;
    void    *ctx;
    struct http_code_counter codes[HTTP_CODE_CACHE];
};

struct http_router {
    struct http_route_ent *routes;   /* owned array */
    int nroutes, cap;
};

/* Result of a lookup: a route, or 404, or 405 with the methods that would match. */
struct http_match {
    struct http_route_ent *route;    /* NULL: not found / not allowed */
    int  status;                     /* 0 (found), 404 or 405 */
    char allow[80];                  /* for 405: "GET, HEAD, POST" */
};

int  http_router_add(struct http_router *rt, int verb, const char *pattern, unsigned flags,
                     http_handler_fn fn, void *ctx);
/* path is split into segments in place (segments are NUL-terminated into pathbuf);
 * params of the matched route land in params[]/nparams. */
void http_router_match(struct http_router *rt, int verb, char *pathbuf,
                       const char **params, int *nparams, struct http_match *m);
void http_router_free(struct http_router *rt);
const char *http_verb_name(int verb);
int  http_verb_from_llhttp(int method);

/* The socket memory. It outlives the HTTP connection when the socket is upgraded, so
 * an upgraded connection costs the server only this shell. */
struct http_sock {
    uv_tcp_t tcp;                    /* first: http_upgraded_close() casts back */
    struct http_server *server;
    struct http_conn *conn;          /* NULL once upgraded */
    void (*close_cb)(void *arg);
    void *close_arg;
};

enum http_conn_state {
    HTTP_CONN_IDLE = 0,              /* between requests (idle timeout) */
    HTTP_CONN_HEAD,                  /* reading a request head (header timeout) */
    HTTP_CONN_BODY,                  /* reading a body (idle timeout between reads) */
    HTTP_CONN_HANDLER,               /* a handler owns the request; reading stopped */
    HTTP_CONN_LINGER,                /* final answer written: drain input, then close */
    HTTP_CONN_CLOSING
};

/* A request while it is being parsed and handled. Owned by the connection until
 * dispatched, then by the handler until its one answer. */
struct http_req_priv {
    struct http_req pub;             /* first */
    struct strbuf url;               /* request target, then split into path/query */
    struct strbuf hdr;               /* "name\0value\0" pairs */
    struct strbuf body;
    size_t   hname_off[HTTP_MAX_HEADERS], hval_off[HTTP_MAX_HEADERS];
    struct http_header headers[HTTP_MAX_HEADERS];
    int      nhdr;                   /* headers started (the last may be incomplete) */
    int      in_value;               /* last callback was a header value */
    char    *pathbuf;                /* owned: split path segments for params */
    struct http_route_ent *route_ent;
    int      keep_alive;
    int      head_only;              /* HEAD: answer without the body */
    int      upgrade;                /* client asked for an upgrade */
    int      expect_continue;        /* Expect: 100-continue, with a body to come */
    int      http10;
};

struct http_conn {
    struct http_server *server;
    struct http_sock *sock;          /* NULL in tests that drive the parser directly */
    struct http_conn *prev, *next;   /* server's list of HTTP connections */
    llhttp_t parser;
    uv_timer_t timer;
    int      state;                  /* enum http_conn_state */
    int      err_status;             /* status for HPE_USER errors (413, 431) */
    const char *err_msg;
    size_t   head_bytes;             /* bytes of the current head seen so far */
    int      head_done;
    struct http_req_priv *req;       /* being parsed, or handled */
    char    *pending;                /* bytes read after the current request (owned) */
    size_t   pending_len;
    int      in_process;             /* re-entrancy guard for conn_process */
    int      reading;
    int      write_blocked;          /* the client does not read its answers: wait */
    int      closes_left;            /* uv_close callbacks still to come */
    int      reject;                 /* accepted past max_connections: 503 then close */
    char     client_ip[48];
    size_t   head_raw;               /* raw bytes fed while reading the head */
    struct http_capture *capture;    /* tests: answers go here instead of a socket */
};

/* Tests drive a connection without a socket: answers are appended to out, and closed
 * is set when the connection would have been closed. */
struct http_capture {
    struct strbuf out;
    int closed;
};

struct http_server {
    struct chatd *app;
    uv_tcp_t listener;
    int      listening;
    int      listener_closed;        /* 1 once its close callback ran (or never opened) */
    struct http_router router;
    const struct http_parse_ops *parse;   /* http_parse_ops: the socket layer's calls up */
    http_verify_fn verify;           /* token_gateway_verify unless a test swaps it */
    void    *verify_ctx;
    struct token_gateway *tokens;    /* owned; keys, cache, counters (token_gateway.c) */
    struct http_conn *conns;         /* HTTP (not upgraded) connections */
    int      nconns;                 /* every accepted socket, upgraded ones included */
    int      nhttp;                  /* HTTP connections not yet freed */
    int      closing;
    void   (*close_done)(void *arg);
    void    *close_arg;
    uint64_t next_req_id;
    char     rbuf[HTTP_READ_BUF];    /* shared by every read callback */
    struct http_code_counter none_codes[HTTP_CODE_CACHE];
    struct http_route_ent static_route;   /* metrics label for the web client's files */
    struct metrics_hist *latency;
    char   **asset_etags;            /* per embedded web asset, made on first use */
};

/* http_parse.c */
void http_conn_feed(struct http_conn *c, const char *data, size_t len);
/* After an answer: continue with the next pipelined request, or close. */
void http_conn_answered(struct http_conn *c, int keep_alive);
/* The socket layer's calls up: its parser's settings, bytes read, a client that did
 * not read its answers caught up. */
struct http_parse_ops {
    const llhttp_settings_t *settings;
    void (*feed)(struct http_conn *c, const char *data, size_t len);
    void (*resume)(struct http_conn *c);
};
extern const struct http_parse_ops http_parse_ops;

/* http_conn.c: the socket, its timer, closing */
void http_req_free(struct http_req_priv *r);
int  http_conn_new(struct http_server *s, struct http_sock *sock, struct http_conn **out);
void http_conn_start(struct http_conn *c);
void http_conn_close(struct http_conn *c);
/* Writes bytes on the connection (or into the capture in tests). */
int  http_conn_write(struct http_conn *c, char *buf, size_t len);  /* takes buf */
void http_conn_fail(struct http_conn *c, int status, const char *msg);
void http_conn_read(struct http_conn *c, int on);          /* reading on or off */
void http_conn_timer(struct http_conn *c, int ms);         /* 0: stopped */
/* The last answer is written: shut our side, drain input a moment, then close. */
void http_conn_linger(struct http_conn *c);
int  http_sock_write(struct http_sock *sock, char *buf, size_t len);   /* takes buf */
void http_sock_close(struct http_sock *sock, void (*cb)(void *arg), void *arg);
struct http_sock *http_conn_release_sock(struct http_conn *c);
void http_server_check_closed(struct http_server *s);

/* http_dispatch.c */
void http_dispatch(struct http_conn *c);

/* http_respond.c */
void http_respond_error_hdr(struct http_req *r, int status, const char *extra,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* http_answer.c */
void http_count(struct http_server *s, struct http_route_ent *route, int status,
                uint64_t started_ns);
int  http_has_body(int status);
/* The head of an answer into b: 0 or negative. */
int  http_head_append(struct strbuf *b, int status, const char *ctype, size_t len,
                      const char *extra, int keep_alive, int http10);
/* {"error":{"code","message"}} (malloc'ed; NULL on OOM). */
char *http_error_json(int status, const char *msg);
/* An error answer as bytes: head + JSON body. Returns malloc'ed text and its length. */
char *http_error_bytes(int status, const char *msg, const char *extra, int close,
                       size_t *len);

/* http_ops.c */
int  http_ops_register(struct http_server *s);
/* GET/HEAD for a path no route matched: the web client's files. 1 if answered. */
int  http_static_try(struct http_req *r);
int  http_static_exists(struct http_server *s, const char *path);
void http_ops_free(struct http_server *s);

/* Test hook (tests/unit/test_http.c): a connection fed with http_conn_feed() whose
 * answers land in cap. Close it with http_conn_close() and run the loop once. */
int  http_test_conn(struct http_server *s, struct http_capture *cap, struct http_conn **c);

#endif
