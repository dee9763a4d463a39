/* http_test_server.h: a small plain-HTTP server on the test's loop, for the HTTP
 * client's tests. It reads requests (headers + Content-Length body) one after the
 * other on each connection and answers each as its mode says, keeping the connection
 * open unless the mode closes it. It counts connections and requests. */
#ifndef CHATD_HTTP_TEST_SERVER_H
#define CHATD_HTTP_TEST_SERVER_H

#include <stdlib.h>
#include <string.h>
#include <uv.h>

enum srv_mode {
    SRV_LENGTH,          /* 200, Content-Length body, kept alive */
    SRV_CHUNKED,         /* 200, chunked body, kept alive */
    SRV_SAYS_CLOSE,      /* 200 with Connection: close, the socket left open */
    SRV_204_CLOSE,       /* 204 with Connection: close, then closed */
    SRV_500_EOF,         /* 500, body ended by the close */
    SRV_SILENT,          /* never answers */
    SRV_GARBAGE,         /* not HTTP */
    SRV_100_THEN_202,    /* an interim answer, then the answer */
    SRV_REDIRECT,        /* 307 to elsewhere */
    SRV_HUGE_BODY,       /* Content-Length 100000 */
    SRV_HUGE_HEAD,       /* a 20 kB header */
    SRV_DROP_SECOND,     /* the 2nd request on a connection: closed unanswered */
    SRV_DROP_ALL,        /* every request: closed unanswered */
    SRV_TRAILING,        /* an answer followed by stray bytes */
    SRV_STATUS_ZERO,     /* "HTTP/1.1 000": three digits, but no status */
};

#define SRV_MAX_CONNS 64

struct srv_conn;

struct srv {
    uv_tcp_t listener;
    int port;
    enum srv_mode mode;
    int requests;        /* complete requests seen */
    int accepted;        /* connections */
    int open;            /* connections open now */
    char last[4096];     /* the last request's bytes */
    struct srv_conn *conns[SRV_MAX_CONNS];
};

struct srv_conn {
    uv_tcp_t tcp;
    struct srv *s;
    int slot, on_conn;   /* requests seen on this connection */
    char buf[4096];
    size_t len;
};

static void srv_conn_closed(uv_handle_t *h)
{
    struct srv_conn *c = h->data;
    c->s->open--;
    c->s->conns[c->slot] = NULL;
    free(c);
}

static void srv_conn_close(struct srv_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, srv_conn_closed);
}

struct srv_write { uv_write_t w; struct srv_conn *c; int close_after; };

static void srv_written(uv_write_t *w, int status)
{
    struct srv_write *sw = (struct srv_write *)w;
    (void)status;
    if (sw->close_after)
        srv_conn_close(sw->c);
    free(sw);
}

static void srv_send(struct srv_conn *c, const char *text, size_t len, int close_after)
{
    struct srv_write *sw = calloc(1, sizeof(*sw));
    sw->c = c;
    sw->close_after = close_after;
    uv_buf_t b = uv_buf_init((char *)text, (unsigned)len);
    uv_write(&sw->w, (uv_stream_t *)&c->tcp, &b, 1, srv_written);
}

static const char *srv_big(size_t n, const char *head, const char *tail)
{
    static char big[130000];
    size_t hl = strlen(head), tl = strlen(tail);
    memcpy(big, head, hl);
    memset(big + hl, 'x', n);
    memcpy(big + hl + n, tail, tl + 1);
    return big;
}

static void srv_answer(struct srv_conn *c)
{
    static const char *answers[] = {
        [SRV_LENGTH] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        [SRV_CHUNKED] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        [SRV_SAYS_CLOSE] = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        [SRV_204_CLOSE] = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
        [SRV_500_EOF] = "HTTP/1.1 500 Internal Server Error\r\n\r\noops, no length",
        [SRV_GARBAGE] = "SMTP ready\r\n\r\n",
        [SRV_100_THEN_202] = "HTTP/1.1 100 Continue\r\n\r\n"
                             "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok",
        [SRV_REDIRECT] = "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:1/x"
                         "\r\nContent-Length: 0\r\n\r\n",
        [SRV_DROP_SECOND] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
        [SRV_TRAILING] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
        [SRV_STATUS_ZERO] = "HTTP/1.1 000 OK\r\nContent-Length: 0\r\n\r\n",
    };
    struct srv *s = c->s;
    s->requests++;
    c->on_conn++;
    memcpy(s->last, c->buf, c->len + 1);
    enum srv_mode m = s->mode;
    if (m == SRV_SILENT)
        return;
    if (m == SRV_DROP_ALL || (m == SRV_DROP_SECOND && c->on_conn == 2)) {
        srv_conn_close(c);
        return;
    }
    const char *text = m == SRV_HUGE_BODY
        ? srv_big(100000, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", "")
        : m == SRV_HUGE_HEAD
        ? srv_big(20000, "HTTP/1.1 200 OK\r\nX-Big: ", "\r\nContent-Length: 0\r\n\r\n")
        : answers[m];
    int close_after = m == SRV_204_CLOSE || m == SRV_500_EOF || m == SRV_GARBAGE;
    srv_send(c, text, strlen(text), close_after);
}

/* Answers every complete request in the buffer, in order. */
static void srv_requests(struct srv_conn *c)
{
    for (;;) {
        c->buf[c->len] = 0;
        char *end = strstr(c->buf, "\r\n\r\n");
        if (!end)
            return;
        char *cl = strstr(c->buf, "Content-Length: ");
        size_t body = cl && cl < end ? (size_t)atol(cl + 16) : 0;
        size_t total = (size_t)(end + 4 - c->buf) + body;
        if (c->len < total)
            return;
        char saved = c->buf[total];
        c->buf[total] = 0;
        size_t len = c->len;
        c->len = total;
        srv_answer(c);
        c->buf[total] = saved;
        memmove(c->buf, c->buf + total, len - total);
        c->len = len - total;
    }
}

static void srv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct srv_conn *c = h->data;
    (void)hint;
    *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - 1 - c->len));
}

static void srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct srv_conn *c = st->data;
    (void)b;
    if (n < 0) {
        srv_conn_close(c);
        return;
    }
    c->len += (size_t)n;
    if (!uv_is_closing((uv_handle_t *)st))
        srv_requests(c);
}

static void srv_conn_cb(uv_stream_t *l, int status)
{
    struct srv *s = l->data;
    int slot = 0;
    while (slot < SRV_MAX_CONNS && s->conns[slot])
        slot++;
    if (status < 0 || slot == SRV_MAX_CONNS)
        return;
    struct srv_conn *c = calloc(1, sizeof(*c));
    s->accepted++;
    s->open++;
    c->s = s;
    c->slot = slot;
    s->conns[slot] = c;
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    uv_accept(l, (uv_stream_t *)&c->tcp);
    uv_read_start((uv_stream_t *)&c->tcp, srv_alloc, srv_read);
}

static int srv_start(uv_loop_t *loop, struct srv *s, enum srv_mode mode)
{
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof(got);
    memset(s, 0, sizeof(*s));
    s->mode = mode;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    if (uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0) < 0 ||
        uv_listen((uv_stream_t *)&s->listener, 64, srv_conn_cb) < 0 ||
        uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len) < 0)
        return -1;
    s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    return 0;
}

/* Closes every connection the server holds (as a server ending idle ones does). */
static void srv_close_conns(struct srv *s)
{
    for (int i = 0; i < SRV_MAX_CONNS; i++)
        if (s->conns[i])
            srv_conn_close(s->conns[i]);
}

static void srv_stop(struct srv *s)
{
    srv_close_conns(s);
    uv_close((uv_handle_t *)&s->listener, NULL);
}

#endif
