/* outbound.c: a small HTTP/1.1 client on the loop thread, for push services and
 * webhooks. One request per connection (Connection: close): these requests are
 * rare next to chat traffic and a pool would buy little.
 *
 * Nothing blocks: DNS through uv_getaddrinfo (thread pool), TCP through libuv, TLS
 * through OpenSSL with two memory BIOs (OpenSSL never touches the socket: we feed it
 * what libuv read and write out what it produced), the response through llhttp.
 * Certificates are checked against the system bundle plus [notification] ca_file,
 * with SNI and the host name (or IP address) checked against the certificate.
 *
 * A push (OUTBOUND_PUBLIC_ONLY) connects only to a public address (netcheck.c),
 * judged after resolution on the very sockaddr handed to connect.
 *
 * Bounds: max_inflight requests connecting or connected, max_queued waiting for a
 * slot; past that outbound_send says -EAGAIN and the caller retries later. Each
 * request has a deadline for DNS + connect + handshake and one for the whole answer.
 *
 * A request's memory lives until its callback ran AND every handle it used is closed
 * (libuv calls pending connect/write callbacks with UV_ECANCELED before the close
 * callback, so the uv_connect_t inside the request stays valid). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <llhttp.h>
#include "chatd/chatd.h"
#include "chatd/log.h"
#include "notification_internal.h"

#define OB_MAX_BODY_SEEN (64 * 1024)   /* response bodies are read and dropped */

enum ob_phase { OB_RESOLVING, OB_CONNECTING, OB_HANDSHAKE, OB_EXCHANGE };

struct obreq {
    struct outbound *o;
    struct obreq *prev, *next;        /* the active list, or the wait queue (next only) */
    outbound_cb cb;
    void *arg;
    struct outbound_target t;         /* host, port, TLS; t.req owned: head + body */
    size_t out_sent;
    uv_getaddrinfo_t gai;
    uv_connect_t connect;
    uv_tcp_t tcp;
    uv_timer_t timer;
    int flags;                        /* OUTBOUND_PUBLIC_ONLY */
    int handles;                      /* open libuv handles (timer, tcp) */
    int gai_pending, tcp_open, finished, complete, phase;
    int deferred_status;              /* failure found while starting: reported by timer */
    const char *deferred_error;
    SSL *ssl;                         /* owned; owns its two BIOs */
    BIO *rbio, *wbio;                 /* network -> OpenSSL, OpenSSL -> network */
    llhttp_t parser;
    int status;
    char rbuf[16384];
};

struct outbound {
    struct chatd *app;                /* not owned */
    SSL_CTX *ctx;                     /* owned */
    struct outbound_opts opts;
    struct obreq *active;             /* connecting or connected */
    struct obreq *qhead, *qtail;      /* waiting for a slot */
    int inflight, queued, live;       /* live: allocated and not yet freed */
    int closing;
    void (*close_done)(void *);
    void *close_arg;
};

struct ob_write {
    uv_write_t req;
    struct obreq *r;
    char *buf;                        /* owned, or NULL when it points into r->t.req */
};

static void start(struct obreq *r);
static void tls_pump(struct obreq *r);
static void on_timeout(uv_timer_t *t);

/* ---- teardown ---- */

static void maybe_free(struct obreq *r)
{
    if (!r->finished || r->handles > 0 || r->gai_pending)
        return;
    struct outbound *o = r->o;
    SSL_free(r->ssl);
    free(r->t.req);
    free(r);
    o->live--;
    if (o->closing && o->live == 0 && o->close_done) {
        void (*done)(void *) = o->close_done;
        o->close_done = NULL;
        done(o->close_arg);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct obreq *r = h->data;
    r->handles--;
    maybe_free(r);
}

static void pump_queue(struct outbound *o)
{
    while (!o->closing && o->qhead && o->inflight < o->opts.max_inflight) {
        struct obreq *r = o->qhead;
        o->qhead = r->next;
        if (!o->qhead)
            o->qtail = NULL;
        o->queued--;
        start(r);
    }
}

/* Reports the outcome once, then closes what the request opened. */
static void finish(struct obreq *r, int status, const char *error)
{
    if (r->finished)
        return;
    r->finished = 1;
    struct outbound *o = r->o;
    if (r->prev)
        r->prev->next = r->next;
    else
        o->active = r->next;
    if (r->next)
        r->next->prev = r->prev;
    o->inflight--;
    uv_close((uv_handle_t *)&r->timer, on_handle_closed);
    if (r->tcp_open)
        uv_close((uv_handle_t *)&r->tcp, on_handle_closed);
    r->cb(r->arg, status, error);
    pump_queue(o);
    maybe_free(r);
}

static void fail_uv(struct obreq *r, const char *what, int err)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "%s: %s", what, uv_strerror(err));
    finish(r, err, msg);
}

/* ---- HTTP response ---- */

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    (void)p; (void)at; (void)len;      /* we only need the status */
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct obreq *r = p->data;
    int status = llhttp_get_status_code(p);
    if (status >= 100 && status < 200)
        return 0;                      /* interim (100 Continue...): the answer follows */
    r->complete = 1;
    r->status = status;
    return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void feed(struct obreq *r, const char *data, size_t len)
{
    llhttp_errno_t e = llhttp_execute(&r->parser, data, len);
    if (r->complete) {
        finish(r, r->status, NULL);
    } else if (e != HPE_OK) {
        char msg[160];
        snprintf(msg, sizeof(msg), "bad response: %s", llhttp_get_error_reason(&r->parser));
        finish(r, -EPROTO, msg);
    }
}

static void at_eof(struct obreq *r)
{
    llhttp_finish(&r->parser);        /* ends a body delimited by the close */
    if (r->complete)
        finish(r, r->status, NULL);
    else
        finish(r, -ECONNRESET, "connection closed before the response ended");
}

/* ---- socket I/O ---- */

static void on_written(uv_write_t *req, int status)
{
    struct ob_write *w = (struct ob_write *)req;
    struct obreq *r = w->r;
    free(w->buf);
    free(w);
    if (status < 0 && !r->finished)
        fail_uv(r, "write", status);
}

/* Writes len bytes; own = 1 hands buf over (freed after the write). */
static void send_bytes(struct obreq *r, char *buf, size_t len, int own)
{
    struct ob_write *w = malloc(sizeof(*w));
    if (!w) {
        if (own)
            free(buf);
        finish(r, -ENOMEM, "out of memory");
        return;
    }
    w->r = r;
    w->buf = own ? buf : NULL;
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&r->tcp, &b, 1, on_written);
    if (rc < 0) {
        free(w->buf);
        free(w);
        fail_uv(r, "write", rc);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct obreq *r = h->data;
    (void)hint;
    *buf = uv_buf_init(r->rbuf, sizeof(r->rbuf));   /* one read at a time per socket */
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct obreq *r = s->data;
    if (r->finished || nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF && r->phase == OB_EXCHANGE)
            at_eof(r);
        else if (nread == UV_EOF)
            finish(r, -ECONNRESET, r->t.tls ? "tls: connection closed during the handshake"
                                          : "connection closed");
        else
            fail_uv(r, "read", (int)nread);
        return;
    }
    if (!r->t.tls) {
        feed(r, buf->base, (size_t)nread);
        return;
    }
    if (BIO_write(r->rbio, buf->base, (int)nread) != (int)nread) {
        finish(r, -ENOMEM, "tls: buffer");
        return;
    }
    tls_pump(r);
}

/* ---- TLS ---- */

static void tls_fail(struct obreq *r, const char *what)
{
    char msg[256];
    long v = SSL_get_verify_result(r->ssl);
    if (v != X509_V_OK) {
        snprintf(msg, sizeof(msg), "tls: certificate: %s", X509_verify_cert_error_string(v));
    } else {
        unsigned long e = ERR_peek_last_error();
        char reason[160] = "unknown";
        if (e)
            ERR_error_string_n(e, reason, sizeof(reason));
        snprintf(msg, sizeof(msg), "tls: %s: %s", what, reason);
    }
    ERR_clear_error();
    finish(r, -EPROTO, msg);
}

static void flush_tls(struct obreq *r)
{
    size_t pending = BIO_ctrl_pending(r->wbio);
    if (pending == 0 || r->finished)
        return;
    char *buf = malloc(pending);
    if (!buf) {
        finish(r, -ENOMEM, "out of memory");
        return;
    }
    int n = BIO_read(r->wbio, buf, (int)pending);
    if (n <= 0) {
        free(buf);
        return;
    }
    send_bytes(r, buf, (size_t)n, 1);
}

static int tls_exchange(struct obreq *r)
{
    while (r->out_sent < r->t.req_len) {
        int n = SSL_write(r->ssl, r->t.req + r->out_sent, (int)(r->t.req_len - r->out_sent));
        if (n <= 0) {
            int e = SSL_get_error(r->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                break;
            tls_fail(r, "write");
            return -1;
        }
        r->out_sent += (size_t)n;
    }
    char buf[8192];
    for (;;) {
        int n = SSL_read(r->ssl, buf, sizeof(buf));
        if (n > 0) {
            feed(r, buf, (size_t)n);
            if (r->finished)
                return -1;
            continue;
        }
        int e = SSL_get_error(r->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return 0;
        if (e == SSL_ERROR_ZERO_RETURN) {
            at_eof(r);
            return -1;
        }
        tls_fail(r, "read");
        return -1;
    }
}

static void tls_pump(struct obreq *r)
{
    ERR_clear_error();
    if (r->phase == OB_HANDSHAKE) {
        int rc = SSL_do_handshake(r->ssl);
        if (rc == 1) {
            r->phase = OB_EXCHANGE;
            uv_timer_start(&r->timer, on_timeout, (uint64_t)r->o->opts.response_timeout_ms, 0);
        } else {
            int e = SSL_get_error(r->ssl, rc);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                tls_fail(r, "handshake");
                return;
            }
        }
    }
    if (r->phase == OB_EXCHANGE && tls_exchange(r) < 0)
        return;
    flush_tls(r);
}

static int tls_setup(struct obreq *r)
{
    r->ssl = SSL_new(r->o->ctx);
    r->rbio = BIO_new(BIO_s_mem());
    r->wbio = BIO_new(BIO_s_mem());
    if (!r->ssl || !r->rbio || !r->wbio) {
        BIO_free(r->rbio);
        BIO_free(r->wbio);
        return -ENOMEM;
    }
    BIO_set_mem_eof_return(r->rbio, -1);      /* empty means "wait", not EOF */
    SSL_set_bio(r->ssl, r->rbio, r->wbio);
    SSL_set_connect_state(r->ssl);
    if (r->t.host_is_ip) {
        /* No SNI for addresses (RFC 6066); the certificate must name the IP. */
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(r->ssl), r->t.host) != 1)
            return -EINVAL;
    } else if (SSL_set_tlsext_host_name(r->ssl, r->t.host) != 1 ||
               SSL_set1_host(r->ssl, r->t.host) != 1) {
        return -EINVAL;
    }
    return 0;
}

/* ---- connect ---- */

static void on_timeout(uv_timer_t *t)
{
    struct obreq *r = t->data;
    if (r->deferred_status) {
        finish(r, r->deferred_status, r->deferred_error);
        return;
    }
    finish(r, -ETIMEDOUT, r->phase == OB_EXCHANGE ? "timeout waiting for the response"
                                                  : "timeout connecting");
}

static void on_connect(uv_connect_t *c, int status)
{
    struct obreq *r = c->data;
    if (r->finished)
        return;
    if (status < 0) {
        fail_uv(r, "connect", status);
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_read);
    if (rc < 0) {
        fail_uv(r, "read", rc);
        return;
    }
    if (!r->t.tls) {
        r->phase = OB_EXCHANGE;
        uv_timer_start(&r->timer, on_timeout, (uint64_t)r->o->opts.response_timeout_ms, 0);
        send_bytes(r, r->t.req, r->t.req_len, 0);
        return;
    }
    r->phase = OB_HANDSHAKE;
    if (tls_setup(r) < 0) {
        finish(r, -ENOMEM, "tls: setup");
        return;
    }
    tls_pump(r);
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    struct obreq *r = g->data;
    r->gai_pending = 0;
    if (r->finished || status < 0) {
        if (res)
            uv_freeaddrinfo(res);
        if (!r->finished)
            fail_uv(r, "dns", status);
        maybe_free(r);
        return;
    }
    char why[sizeof(r->t.host) + INET6_ADDRSTRLEN + 96];
    /* The address judged is the one connected to: a name resolving differently a
     * moment later changes nothing. */
    const struct addrinfo *ai = !(r->flags & OUTBOUND_PUBLIC_ONLY) ? res
                                : net_first_public(res, r->t.host, why, sizeof(why));
    if (!ai) {
        uv_freeaddrinfo(res);
        finish(r, OUTBOUND_NOT_PUBLIC, why);
        maybe_free(r);
        return;
    }
    r->phase = OB_CONNECTING;
    int rc = uv_tcp_init(r->o->app->loop, &r->tcp);
    if (rc == 0) {
        r->tcp.data = r;
        r->tcp_open = 1;
        r->handles++;
        r->connect.data = r;
        uv_tcp_nodelay(&r->tcp, 1);
        rc = uv_tcp_connect(&r->connect, &r->tcp, ai->ai_addr, on_connect);
    }
    uv_freeaddrinfo(res);
    if (rc < 0)
        fail_uv(r, "connect", rc);
}

static void start(struct obreq *r)
{
    struct outbound *o = r->o;
    r->prev = NULL;
    r->next = o->active;
    if (o->active)
        o->active->prev = r;
    o->active = r;
    o->inflight++;
    uv_timer_init(o->app->loop, &r->timer);
    r->timer.data = r;
    r->handles++;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    r->gai.data = r;
    int rc = uv_getaddrinfo(o->app->loop, &r->gai, on_resolved, r->t.host, r->t.port, &hints);
    if (rc < 0) {
        /* Never call back from inside outbound_send: report from the timer. */
        r->deferred_status = rc;
        r->deferred_error = "dns: cannot start the lookup";
        uv_timer_start(&r->timer, on_timeout, 0, 0);
        return;
    }
    r->gai_pending = 1;
    uv_timer_start(&r->timer, on_timeout, (uint64_t)o->opts.connect_timeout_ms, 0);
}

int outbound_send(struct outbound *o, const char *method, const char *url,
                  const char *headers, const void *body, size_t len, int flags,
                  outbound_cb cb, void *arg)
{
    if (o->closing)
        return -ECANCELED;
    if (o->inflight >= o->opts.max_inflight && o->queued >= o->opts.max_queued)
        return -EAGAIN;
    struct obreq *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->o = o;
    r->cb = cb;
    r->arg = arg;
    r->flags = flags;
    int rc = outbound_build_request(&r->t, method, url, headers, body, len);
    if (rc < 0) {
        free(r->t.req);
        free(r);
        return rc;
    }
    llhttp_init(&r->parser, HTTP_RESPONSE, &parser_settings);
    r->parser.data = r;
    o->live++;
    if (o->inflight < o->opts.max_inflight) {
        start(r);
    } else {
        if (o->qtail)
            o->qtail->next = r;
        else
            o->qhead = r;
        o->qtail = r;
        o->queued++;
    }
    return 0;
}

int outbound_pending(const struct outbound *o)
{
    return o->inflight + o->queued;
}

/* ---- lifecycle ---- */

int outbound_new(struct outbound **out, struct chatd *app, const struct outbound_opts *opts,
                 char *err, size_t errlen)
{
    struct outbound *o = calloc(1, sizeof(*o));
    if (!o)
        return -ENOMEM;
    o->app = app;
    o->opts = *opts;
    o->ctx = SSL_CTX_new(TLS_client_method());
    if (!o->ctx) {
        free(o);
        snprintf(err, errlen, "cannot create a TLS context");
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(o->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(o->ctx, SSL_VERIFY_PEER, NULL);
    /* The system bundle is read now, at start-up, in one go: a hashed directory
     * would make OpenSSL open files during handshakes, on the loop thread. */
    const char *bundle = getenv(X509_get_default_cert_file_env());
    if (!bundle || !*bundle)
        bundle = X509_get_default_cert_file();
    if (SSL_CTX_load_verify_locations(o->ctx, bundle, NULL) != 1)
        LOG_WARN(app, NOTIF_MOD, "no system CA bundle file=%s", bundle);
    ERR_clear_error();
    if (opts->ca_file && opts->ca_file[0] &&
        SSL_CTX_load_verify_locations(o->ctx, opts->ca_file, NULL) != 1) {
        snprintf(err, errlen, "ca_file %s: cannot load PEM certificates", opts->ca_file);
        ERR_clear_error();
        SSL_CTX_free(o->ctx);
        free(o);
        return -EINVAL;
    }
    *out = o;
    return 0;
}

void outbound_close(struct outbound *o, void (*done)(void *arg), void *arg)
{
    o->closing = 1;
    o->close_done = done;
    o->close_arg = arg;
    o->live++;                         /* hold: done must not run before we return */
    while (o->qhead) {
        struct obreq *r = o->qhead;
        o->qhead = r->next;
        o->queued--;
        r->finished = 1;
        r->cb(r->arg, -ECANCELED, "shutting down");
        free(r->t.req);
        free(r);
        o->live--;
    }
    o->qtail = NULL;
    while (o->active)
        finish(o->active, -ECANCELED, "shutting down");
    o->live--;
    if (o->live == 0 && o->close_done) {
        o->close_done = NULL;
        done(arg);
    }
}

void outbound_free(struct outbound *o)
{
    if (!o)
        return;
    SSL_CTX_free(o->ctx);
    free(o);
}
