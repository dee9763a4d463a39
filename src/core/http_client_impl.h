/* http_client_impl.h: what the files of core's HTTP client share. The layers, each
 * calling only those below it (upward reports go through function pointers):
 *   http_client.c          the client: requests, their queue and bounds, retry, close
 *   http_client_pool.c     the origins, and the idle connections per origin and in all
 *   http_client_conn.c     a connection up to connected: DNS, the address hook, connect
 *   http_client_io.c       a connected one: TLS pump, exchanges, idle, deadlines
 *   http_client_end.c      the end of any: failures reported, close, free
 *   http_client_tls.c      OpenSSL: the context, a session on memory BIOs, errors
 *   http_client_response.c one answer through llhttp, with its size bounds
 *   http_client_url.c      URL checks and the request bytes */
#ifndef CHATD_HTTP_CLIENT_IMPL_H
#define CHATD_HTTP_CLIENT_IMPL_H

#include <stdint.h>
#include <sys/socket.h>
#include <llhttp.h>
#include <openssl/ssl.h>
#include <uv.h>
#include "chatd/http_client.h"

#define HC_LOG "http_client"

/* ---- http_client_url.c ---- */
struct hc_target {
    struct http_client_origin o;
    char *req;                  /* owned: request line, headers, body */
    size_t req_len;
};
/* 0, -EINVAL (a URL we refuse) or -ENOMEM. */
/* keep_alive 0 adds "Connection: close". */
int  hc_build_request(struct hc_target *t, const struct http_client_request *rq,
                      int keep_alive);

/* ---- http_client_response.c ---- */
struct hc_response {
    llhttp_t parser;
    int status, complete, keep_alive;
    int started;                /* a byte of the answer arrived */
    size_t head_bytes, max_head, max_body;
    char *body;                 /* owned */
    size_t body_len, body_cap;
    const char *error;          /* why the answer was refused */
    int code;                   /* and the error it gives: -EMSGSIZE, -ENOMEM */
};
void hc_response_init(struct hc_response *r, size_t max_head, size_t max_body);
void hc_response_reset(struct hc_response *r);
void hc_response_free(struct hc_response *r);
/* 1 when the answer is complete (*used: its bytes of data; more after them make the
 * connection unusable), 0 when more is needed, -EPROTO / -EMSGSIZE / -ENOMEM with r->error. */
int  hc_response_feed(struct hc_response *r, const char *data, size_t len, size_t *used);
/* The peer closed: 1 when that ended the answer, else 0. */
int  hc_response_eof(struct hc_response *r);
/* Hands the body over (malloc'ed, NUL-terminated, may be NULL). */
char *hc_response_take_body(struct hc_response *r, size_t *len);

/* ---- http_client_tls.c ---- */
/* The context: system bundle plus ca_file. 0 or -ENOMEM / -EINVAL with err; warn
 * (may be NULL) receives a warning to log. */
int  hc_tls_ctx_new(SSL_CTX **out, const char *ca_file, char *err, size_t errlen,
                    char *warn, size_t warnlen);
/* A client session on two memory BIOs for host (SNI and name, or IP, checks). */
int  hc_tls_session_new(SSL_CTX *ctx, const struct http_client_origin *o, SSL **ssl,
                        BIO **rbio, BIO **wbio);
/* "tls: certificate: ..." or "tls: what: reason" into buf; clears the error queue. */
void hc_tls_error_text(SSL *ssl, const char *what, char *buf, size_t len);

/* ---- the shared structs ---- */
struct http_client;
struct hc_conn;

/* One origin (scheme, host, port) under one address policy: the reuse key, and what
 * its bound counts. It lives while a request or connection refers to it, so there are
 * never more than requests plus connections. */
struct hc_origin {
    struct hc_origin *prev, *next;         /* the client's origins */
    struct http_client_origin o;
    http_client_addr_pick pick;
    int conns;                             /* open: connecting, exchanging or idle */
    int idle;                              /* of which in the pool */
    int refs;                              /* requests and connections referring to it */
};

struct hc_req {
    struct http_client *client;
    struct hc_req *next;        /* the wait queue */
    struct hc_origin *origin;   /* counted in its refs */
    http_client_cb cb;
    void *arg;
    struct hc_target t;
    http_client_addr_pick pick;
    int retried;                /* sent again after a reused connection failed */
    int replayable;             /* may be sent again after it was written */
};

enum hc_conn_state { HC_RESOLVING, HC_CONNECTING, HC_HANDSHAKE, HC_STARTING, HC_BUSY,
                     HC_IDLE, HC_CLOSED };

struct hc_conn {
    struct http_client *client;
    struct hc_conn *prev, *next;           /* the client's open connections */
    struct hc_conn *idle_prev, *idle_next; /* the pool, oldest first */
    struct http_client_origin o;
    http_client_addr_pick pick;
    struct hc_origin *origin;              /* the reuse key; counted while open */
    struct hc_req *req;                    /* the request on it, or NULL */
    enum hc_conn_state state;
    int exchanges;                         /* answers completed on it */
    int reusable;                          /* the last answer left it usable */
    int wrote;                             /* bytes of this request went out */
    uv_getaddrinfo_t gai;
    uv_connect_t connect;
    uv_tcp_t tcp;
    uv_timer_t timer;                      /* connect, answer and idle deadlines */
    int handles, gai_pending, tcp_open;
    int deferred_status;                   /* found while starting: reported by timer */
    SSL *ssl;                              /* owned; owns its two BIOs */
    BIO *rbio, *wbio;
    size_t out_sent;                       /* TLS: request bytes given to SSL_write */
    struct hc_response resp;
    char error[400];                       /* the text of the last failure */
    char rbuf[16384];
};

/* Reports from a connection to the client. status > 0: the answer (c->reusable says
 * whether it may go back to the pool); < 0: the request failed (c->req still set);
 * 0 with c->req NULL: an idle connection was lost or timed out. */
typedef void (*hc_conn_report)(struct hc_conn *c, int status, const char *error);

struct http_client {
    struct chatd *app;                     /* not owned */
    SSL_CTX *ctx;                          /* owned */
    struct http_client_opts opts;
    hc_conn_report report;                 /* http_client.c's */
    struct hc_conn *conns;                 /* open, not closing */
    struct hc_conn *idle_head, *idle_tail; /* the pool */
    struct hc_req *qhead, *qtail;          /* waiting for a slot or their origin */
    struct hc_origin *origins;
    int inflight, queued, idle, live;      /* live: connections not yet freed */
    int closing;
    void (*close_done)(void *);
    void *close_arg;
    struct http_client_stats stats;
};

/* ---- http_client_conn.c ---- */
/* A fresh connection for r (r->t's origin); its outcome comes through c->report. */
int  hc_conn_open(struct http_client *c, struct hc_req *r);

/* ---- http_client_io.c ---- */
/* Connected: reads, then the TLS handshake or the request. */
void hc_conn_connected(struct hc_conn *k);
/* The deadline of whatever k is doing (k->timer's callback). */
void hc_conn_on_timer(uv_timer_t *t);
/* Sends r on an idle connection taken from the pool, from the loop's next turn. */
void hc_conn_exchange(struct hc_conn *k, struct hc_req *r);
/* Idle from now: closed by the peer or after idle_timeout_ms (reported). */
void hc_conn_set_idle(struct hc_conn *k);

/* ---- http_client_end.c ---- */
/* Reports a failure: status and the text made from fmt (kept in k->error). */
void hc_conn_fail(struct hc_conn *k, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void hc_conn_fail_uv(struct hc_conn *k, const char *what, int err);
/* Reports the failure already written in k->error. */
void hc_conn_report_error(struct hc_conn *k, int status);
/* Frees k once it is closed and nothing of libuv refers to it. */
void hc_conn_maybe_free(struct hc_conn *k);
/* Closes k (detached from any request); freed once its handles are closed. */
void hc_conn_close(struct hc_conn *k);

/* ---- http_client_pool.c ---- */
/* The origin of o under pick, found or made, with one more reference; NULL: -ENOMEM. */
struct hc_origin *hc_origin_ref(struct http_client *c, const struct http_client_origin *o,
                                http_client_addr_pick pick);
/* One reference less; freed at none. */
void hc_origin_unref(struct http_client *c, struct hc_origin *g);
void hc_origins_free(struct http_client *c);
/* An idle connection for r's origin and policy, taken out of the pool, or NULL. */
struct hc_conn *hc_pool_take(struct http_client *c, const struct hc_req *r);
/* Puts k in the pool; returns the connection to close to keep the bounds (k itself,
 * the oldest idle one, or NULL). */
struct hc_conn *hc_pool_put(struct http_client *c, struct hc_conn *k);
void hc_pool_remove(struct http_client *c, struct hc_conn *k);

#endif
