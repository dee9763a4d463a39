/* http_client_io.c: a connection of the HTTP client once connected (reaching that is
 * http_client_conn.c's; its end is http_client_end.c's):
 *   HANDSHAKE  TLS over two memory BIOs (http_client_tls.c)
 *   STARTING   taken from the pool for a request, written on the next turn of the
 *              loop (never from inside the caller's send); a byte or EOF meanwhile is
 *              the server having closed it, before anything of the request was sent
 *   BUSY       one request written, its answer read (http_client_response.c)
 *   IDLE       in the pool: any byte or EOF from the server ends it, so does a timer
 *   CLOSED     handles closing; freed once they are closed (http_client_end.c)
 * One timer holds whichever deadline applies (connect, answer, idle). Outcomes go up
 * through c->report (http_client_end.c); the connection never calls back into the
 * client's files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include "chatd/chatd.h"
#include "http_client_impl.h"

struct hc_write {
    uv_write_t req;
    struct hc_conn *k;
    char *buf;                         /* owned */
};

static void tls_pump(struct hc_conn *k);

static void tls_fail(struct hc_conn *k, const char *what)
{
    hc_tls_error_text(k->ssl, what, k->error, sizeof(k->error));
    hc_conn_report_error(k, -EPROTO);
}

static void flush_tls(struct hc_conn *k);

/* Anything after the answer in what TLS holds: records already read into the BIO, a
 * record begun, a close_notify. Session tickets are absorbed by the read. Whatever
 * is read here is dropped: the connection is not used again. */
static int tls_more_after_answer(struct hc_conn *k)
{
    char buf[256];
    int n = SSL_read(k->ssl, buf, sizeof(buf));
    int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(k->ssl, n);
    ERR_clear_error();
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        return 1;
    return SSL_has_pending(k->ssl) || BIO_ctrl_pending(k->rbio) > 0;
}

/* The answer is complete; used of len bytes belonged to it: more after it (or a
 * close) and the connection is not used again. */
static void answered(struct hc_conn *k, size_t used, size_t len)
{
    k->exchanges++;
    k->reusable = k->resp.keep_alive && used == len;
    if (k->reusable && k->ssl && tls_more_after_answer(k))
        k->reusable = 0;
    uv_timer_stop(&k->timer);
    if (k->ssl)
        flush_tls(k);
    if (k->state != HC_CLOSED)         /* flushing may have failed and reported */
        k->client->report(k, k->resp.status, NULL);
}

/* 1 when the exchange ended (reported). */
static int feed(struct hc_conn *k, const char *data, size_t len)
{
    size_t used = len;
    int rc = hc_response_feed(&k->resp, data, len, &used);
    if (rc == 1)
        answered(k, used, len);
    else if (rc < 0)
        hc_conn_fail(k, rc, "bad response: %s", k->resp.error ? k->resp.error : "?");
    return rc != 0;
}

static void at_eof(struct hc_conn *k)
{
    if (hc_response_eof(&k->resp))
        answered(k, 0, 0);
    else
        hc_conn_fail(k, -ECONNRESET, "connection closed before the response ended");
}

/* ---- socket I/O ---- */

static void on_written(uv_write_t *req, int status)
{
    struct hc_write *w = (struct hc_write *)req;
    struct hc_conn *k = w->k;
    free(w->buf);
    free(w);
    if (status < 0 && k->state != HC_CLOSED)
        hc_conn_fail_uv(k, "write", status);
}

/* Writes buf (owned from here: freed after the write). 0, or < 0 (reported). */
static int send_bytes(struct hc_conn *k, char *buf, size_t len)
{
    struct hc_write *w = malloc(sizeof(*w));
    if (!w) {
        free(buf);
        hc_conn_fail(k, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    w->k = k;
    w->buf = buf;
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&k->tcp, &b, 1, on_written);
    if (rc < 0) {
        free(w->buf);
        free(w);
        hc_conn_fail_uv(k, "write", rc);
    }
    return rc;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct hc_conn *k = h->data;
    (void)hint;
    *buf = uv_buf_init(k->rbuf, sizeof(k->rbuf));   /* one read at a time per socket */
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct hc_conn *k = s->data;
    if (k->state == HC_CLOSED || nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF && k->state == HC_BUSY)
            at_eof(k);
        else if (nread == UV_EOF)
            hc_conn_fail(k, -ECONNRESET, "%s", k->state == HC_HANDSHAKE
                 ? "tls: connection closed during the handshake" : "connection closed");
        else
            hc_conn_fail_uv(k, "read", (int)nread);
        return;
    }
    if (!k->ssl) {
        if (k->state == HC_BUSY)
            feed(k, buf->base, (size_t)nread);
        else                           /* idle or starting: nothing to say now */
            hc_conn_fail(k, -EPROTO, "data from the server between answers");
        return;
    }
    if (BIO_write(k->rbio, buf->base, (int)nread) != (int)nread) {
        hc_conn_fail(k, -ENOMEM, "tls: buffer");
        return;
    }
    tls_pump(k);
}

/* ---- exchanges ---- */

static void begin_exchange(struct hc_conn *k)
{
    k->state = HC_BUSY;
    k->out_sent = 0;
    k->reusable = 0;
    k->wrote = 0;
    hc_response_reset(&k->resp);
    uv_timer_start(&k->timer, hc_conn_on_timer, (uint64_t)k->client->opts.response_timeout_ms, 0);
    if (k->ssl)
        return;                        /* tls_pump writes it */
    /* A copy: the request outlives neither its callback nor a retry elsewhere, the
     * write may. */
    char *copy = malloc(k->req->t.req_len);
    if (!copy) {
        hc_conn_fail(k, -ENOMEM, "out of memory");
        return;
    }
    memcpy(copy, k->req->t.req, k->req->t.req_len);
    /* A write refused at once sent nothing (and reported from inside). */
    if (send_bytes(k, copy, k->req->t.req_len) == 0)
        k->wrote = 1;
}

/* The timer, at once: the exchange begins on the loop's next turn. */
void hc_conn_exchange(struct hc_conn *k, struct hc_req *r)
{
    k->req = r;
    k->state = HC_STARTING;
    k->wrote = 0;                      /* nor of this request gone: a close now retries */
    hc_response_reset(&k->resp);       /* nothing of this answer has come */
    uv_timer_start(&k->timer, hc_conn_on_timer, 0, 0);
}

static void start_exchange(struct hc_conn *k)
{
    begin_exchange(k);
    if (k->ssl && k->state == HC_BUSY)
        tls_pump(k);
}

void hc_conn_set_idle(struct hc_conn *k)
{
    k->state = HC_IDLE;
    k->req = NULL;
    uv_timer_start(&k->timer, hc_conn_on_timer, (uint64_t)k->client->opts.idle_timeout_ms, 0);
}

/* ---- TLS ---- */

static void flush_tls(struct hc_conn *k)
{
    size_t pending = BIO_ctrl_pending(k->wbio);
    if (pending == 0 || k->state == HC_CLOSED)
        return;
    char *buf = malloc(pending);
    if (!buf) {
        hc_conn_fail(k, -ENOMEM, "out of memory");
        return;
    }
    int n = BIO_read(k->wbio, buf, (int)pending);
    if (n <= 0) {
        free(buf);
        return;
    }
    send_bytes(k, buf, (size_t)n);
}

/* -1 when the exchange ended (reported). */
static int tls_exchange(struct hc_conn *k)
{
    const struct hc_target *t = &k->req->t;
    while (k->out_sent < t->req_len) {
        int n = SSL_write(k->ssl, t->req + k->out_sent, (int)(t->req_len - k->out_sent));
        if (n <= 0) {
            int e = SSL_get_error(k->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                break;
            tls_fail(k, "write");
            return -1;
        }
        k->out_sent += (size_t)n;
        k->wrote = 1;
    }
    char buf[8192];
    for (;;) {
        int n = SSL_read(k->ssl, buf, sizeof(buf));
        if (n > 0) {
            if (feed(k, buf, (size_t)n))
                return -1;
            continue;
        }
        int e = SSL_get_error(k->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return 0;
        if (e == SSL_ERROR_ZERO_RETURN)
            at_eof(k);
        else
            tls_fail(k, "read");
        return -1;
    }
}

/* Idle: TLS 1.3 session tickets may still come and are fine; application data or a
 * close_notify end the connection. -1 when it ended. */
static int tls_idle(struct hc_conn *k)
{
    char buf[256];
    int n = SSL_read(k->ssl, buf, sizeof(buf));
    if (n > 0) {
        hc_conn_fail(k, -EPROTO, "data from the server between answers");
        return -1;
    }
    int e = SSL_get_error(k->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    ERR_clear_error();
    hc_conn_fail(k, -ECONNRESET, "connection closed");
    return -1;
}

static void tls_pump(struct hc_conn *k)
{
    ERR_clear_error();
    if (k->state == HC_HANDSHAKE) {
        int rc = SSL_do_handshake(k->ssl);
        if (rc == 1) {
            begin_exchange(k);
        } else {
            int e = SSL_get_error(k->ssl, rc);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                tls_fail(k, "handshake");
                return;
            }
        }
    }
    if (k->state == HC_BUSY && tls_exchange(k) < 0)
        return;
    if ((k->state == HC_IDLE || k->state == HC_STARTING) && tls_idle(k) < 0)
        return;
    flush_tls(k);
}

/* ---- deadlines ---- */

void hc_conn_on_timer(uv_timer_t *t)
{
    struct hc_conn *k = t->data;
    if (k->deferred_status) {
        int status = k->deferred_status;
        k->deferred_status = 0;
        hc_conn_fail(k, status, "dns: cannot start the lookup");
        return;
    }
    if (k->state == HC_STARTING) {
        start_exchange(k);
        return;
    }
    if (k->state == HC_IDLE) {
        hc_conn_report_error(k, 0);
        return;
    }
    hc_conn_fail(k, -ETIMEDOUT, "%s", k->state == HC_BUSY ? "timeout waiting for the response"
                                                  : "timeout connecting");
}

void hc_conn_connected(struct hc_conn *k)
{
    int rc = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
    if (rc < 0) {
        hc_conn_fail_uv(k, "read", rc);
        return;
    }
    if (!k->o.tls) {
        begin_exchange(k);
        return;
    }
    k->state = HC_HANDSHAKE;
    if (hc_tls_session_new(k->client->ctx, &k->o, &k->ssl, &k->rbio, &k->wbio) < 0) {
        hc_conn_fail(k, -ENOMEM, "tls: setup");
        return;
    }
    tls_pump(k);
}
