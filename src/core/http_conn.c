/* http_conn.c: one HTTP/1.1 connection's socket: writes (one uv_write per answer),
 * reading on and off, its timer, an error answer of its own, the lingering close, and
 * the memory of it all. The bytes read go up to http_parse.c (http_parse_ops), which
 * makes requests of them.
 *
 * Timers, one per connection: a fresh or kept-alive connection waits for its next
 * request at most idle_timeout_ms (header_timeout_ms when fresh); once a request's
 * first byte arrives the whole head must be in within header_timeout_ms; a body must
 * keep moving (idle_timeout_ms between reads). A final answer (an error, Connection:
 * close) is followed by a lingering close: our side shuts down and input is drained
 * for a moment, so the client reads the answer instead of a reset. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/log.h"
#include "http_internal.h"

void http_req_free(struct http_req_priv *r)
{
    if (!r)
        return;
    strbuf_free(&r->url);
    strbuf_free(&r->hdr);
    strbuf_free(&r->body);
    free(r->pathbuf);
    free(r);
}

/* ---- I/O ---- */

struct http_wreq {
    uv_write_t w;
    struct http_sock *sock;
    char *buf;
};

static void on_write(uv_write_t *w, int status)
{
    struct http_wreq *wr = (struct http_wreq *)w;
    struct http_sock *sock = wr->sock;
    free(wr->buf);
    free(wr);
    /* The socket lives until its close callback, which runs after every write's. */
    struct http_conn *c = sock->conn;
    if (!c || c->state == HTTP_CONN_CLOSING)
        return;
    if (status < 0) {
        http_conn_close(c);
        return;
    }
    if (c->write_blocked && sock->tcp.write_queue_size < HTTP_WRITE_HIGH / 2) {
        c->write_blocked = 0;
        c->server->parse->resume(c);
    }
}

int http_sock_write(struct http_sock *sock, char *buf, size_t len)
{
    struct http_wreq *wr = malloc(sizeof(*wr));
    if (!wr) {
        free(buf);
        return -ENOMEM;
    }
    wr->sock = sock;
    wr->buf = buf;
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    int rc = uv_write(&wr->w, (uv_stream_t *)&sock->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(buf);
        free(wr);
    }
    return rc;
}

int http_conn_write(struct http_conn *c, char *buf, size_t len)
{
    if (c->capture) {
        int rc = strbuf_append(&c->capture->out, buf, len);
        free(buf);
        return rc;
    }
    if (c->state == HTTP_CONN_CLOSING || !c->sock) {
        free(buf);
        return -EPIPE;
    }
    int rc = http_sock_write(c->sock, buf, len);
    if (rc < 0)
        http_conn_close(c);
    return rc;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct http_sock *sock = (struct http_sock *)h;
    /* libuv reads one socket at a time on this thread: one buffer serves them all. */
    buf->base = sock->server->rbuf;
    buf->len = sizeof(sock->server->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct http_sock *sock = (struct http_sock *)st;
    struct http_conn *c = sock->conn;
    if (!c || nread == 0)
        return;
    if (nread < 0) {
        /* EOF or error: nothing more will come, and nobody is waiting for an answer
         * (reading is stopped while a handler runs). */
        http_conn_close(c);
        return;
    }
    if (c->state == HTTP_CONN_LINGER)
        return;
    c->server->parse->feed(c, buf->base, (size_t)nread);
}

void http_conn_read(struct http_conn *c, int on)
{
    if (!c->sock || c->reading == on)
        return;
    c->reading = on;
    if (on)
        uv_read_start((uv_stream_t *)&c->sock->tcp, on_alloc, on_read);
    else
        uv_read_stop((uv_stream_t *)&c->sock->tcp);
}

/* ---- timers and closing ---- */

static void on_timer(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    switch (c->state) {
    case HTTP_CONN_HEAD:
        http_conn_fail(c, 408, "request head not received in time");
        break;
    case HTTP_CONN_BODY:
        http_conn_fail(c, 408, "request body not received in time");
        break;
    case HTTP_CONN_IDLE:
    case HTTP_CONN_LINGER:
        http_conn_close(c);
        break;
    default:
        break;
    }
}

void http_conn_timer(struct http_conn *c, int ms)
{
    if (ms <= 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
}

/* The server's close is done when its listener and every HTTP connection are gone:
 * both end here (the listener's close callback calls this too). */
void http_server_check_closed(struct http_server *s)
{
    if (!s->closing || !s->close_done || s->nhttp > 0 || !s->listener_closed)
        return;
    void (*done)(void *) = s->close_done;
    s->close_done = NULL;
    done(s->close_arg);
}

static void conn_free_part(struct http_conn *c)
{
    if (--c->closes_left > 0)
        return;
    struct http_server *s = c->server;
    free(c->pending);
    free(c);
    s->nhttp--;
    http_server_check_closed(s);
}

static void on_timer_closed(uv_handle_t *h)
{
    conn_free_part(h->data);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct http_sock *sock = (struct http_sock *)h;
    struct http_server *s = sock->server;
    struct http_conn *c = sock->conn;
    if (sock->close_cb)
        sock->close_cb(sock->close_arg);
    s->nconns--;
    free(sock);
    if (c)
        conn_free_part(c);
    else
        http_server_check_closed(s);
}

static void conn_unlink(struct http_conn *c)
{
    struct http_server *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else if (s->conns == c)
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

void http_conn_close(struct http_conn *c)
{
    if (c->state == HTTP_CONN_CLOSING)
        return;
    int handled = c->state == HTTP_CONN_HANDLER;
    c->state = HTTP_CONN_CLOSING;
    if (c->req) {
        if (handled)
            c->req->pub.conn = NULL;   /* the handler still owns it and answers into the void */
        else
            http_req_free(c->req);
        c->req = NULL;
    }
    conn_unlink(c);
    if (c->capture)
        c->capture->closed = 1;
    c->closes_left = 1;
    if (c->sock) {
        c->closes_left++;
        uv_close((uv_handle_t *)&c->sock->tcp, on_sock_closed);
    }
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    free(req);
}

/* The last answer is written: shut our side, drain what the client still sends for a
 * moment (so it reads the answer rather than a reset), then close. */
void http_conn_linger(struct http_conn *c)
{
    if (c->state == HTTP_CONN_CLOSING)
        return;
    if (c->capture || !c->sock) {
        http_conn_close(c);
        return;
    }
    c->state = HTTP_CONN_LINGER;
    free(c->pending);
    c->pending = NULL;
    c->pending_len = 0;
    uv_shutdown_t *sh = malloc(sizeof(*sh));
    if (!sh || uv_shutdown(sh, (uv_stream_t *)&c->sock->tcp, on_shutdown) < 0) {
        free(sh);
        http_conn_close(c);
        return;
    }
    http_conn_read(c, 1);
    http_conn_timer(c, HTTP_LINGER_MS);
}

void http_conn_fail(struct http_conn *c, int status, const char *msg)
{
    if (c->state == HTTP_CONN_CLOSING || c->state == HTTP_CONN_LINGER)
        return;
    struct http_server *s = c->server;
    uint64_t started = c->req ? c->req->pub.started_ns : mono_ns();
    http_req_free(c->req);
    c->req = NULL;
    if (status >= 500 || status == 408 || status == 431 || status == 413)
        LOG_WARN(s->app, "http", "request refused status=%d reason=\"%s\" ip=%s",
                 status, msg, c->client_ip);
    else
        LOG_DEBUG(s->app, "http", "request refused status=%d reason=\"%s\" ip=%s",
                  status, msg, c->client_ip);
    http_count(s, NULL, status, started);
    size_t len;
    char *bytes = http_error_bytes(status, msg, NULL, 1, &len);
    c->state = HTTP_CONN_IDLE;   /* not CLOSING: the write must go out */
    if (bytes)
        http_conn_write(c, bytes, len);
    http_conn_linger(c);
}

/* ---- creation ---- */

int http_conn_new(struct http_server *s, struct http_sock *sock, struct http_conn **out)
{
    struct http_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->server = s;
    c->sock = sock;
    llhttp_init(&c->parser, HTTP_REQUEST, s->parse->settings);
    c->parser.data = c;
    uv_timer_init(s->app->loop, &c->timer);
    c->timer.data = c;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nhttp++;
    if (sock)
        sock->conn = c;
    *out = c;
    return 0;
}

void http_conn_start(struct http_conn *c)
{
    c->state = HTTP_CONN_IDLE;
    http_conn_timer(c, c->server->app->cfg->server.header_timeout_ms);
    http_conn_read(c, 1);
}

int http_test_conn(struct http_server *s, struct http_capture *cap, struct http_conn **out)
{
    int rc = http_conn_new(s, NULL, out);
    if (rc < 0)
        return rc;
    (*out)->capture = cap;
    snprintf((*out)->client_ip, sizeof((*out)->client_ip), "test");
    http_conn_start(*out);
    return 0;
}

/* The socket passes to a new owner (an upgrade): the connection goes, the socket stays
 * open and counted until http_sock_close. */
struct http_sock *http_conn_release_sock(struct http_conn *c)
{
    struct http_sock *sock = c->sock;

    sock->conn = NULL;
    sock->tcp.data = NULL;
    c->sock = NULL;
    c->state = HTTP_CONN_CLOSING;
    conn_unlink(c);
    c->closes_left = 1;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    return sock;
}

void http_sock_close(struct http_sock *sock, void (*cb)(void *arg), void *arg)
{
    if (uv_is_closing((uv_handle_t *)&sock->tcp))
        return;
    sock->close_cb = cb;
    sock->close_arg = arg;
    uv_close((uv_handle_t *)&sock->tcp, on_sock_closed);
}
