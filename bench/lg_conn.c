/* Client connections of the load generator: WebSocket (handshake by hand, frames
 * through wslay's frame layer) or RESP (Redis). Input is parsed in place from one
 * growing buffer per connection; each whole message goes to c->on_frame. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lg.h"

#define IN_CHUNK 65536

static void write_done(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

int lg_raw_send(struct lg_conn *c, const char *p, size_t n)
{
    uv_buf_t buf = uv_buf_init((char *)p, (unsigned)n);
    uv_write_t *w;
    int rc;

    if (!c->open || c->closing)
        return -ENOTCONN;
    rc = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (rc == (int)n)
        return 0;
    if (rc < 0 && rc != UV_EAGAIN)
        return rc;
    if (rc < 0)
        rc = 0;
    w = malloc(sizeof(*w) + n - (size_t)rc);    /* copy: uv_write needs it alive */
    if (w == NULL)
        return -ENOMEM;
    memcpy(w + 1, p + rc, n - (size_t)rc);
    buf = uv_buf_init((char *)(w + 1), (unsigned)(n - (size_t)rc));
    return uv_write(w, (uv_stream_t *)&c->tcp, &buf, 1, write_done);
}

/* ---- wslay frame layer callbacks ---- */
static ssize_t ws_send_cb(const uint8_t *data, size_t len, int flags, void *user)
{
    struct lg_conn *c = user;
    (void)flags;
    return lg_raw_send(c, (const char *)data, len) == 0 ? (ssize_t)len : -1;
}

static ssize_t ws_recv_cb(uint8_t *buf, size_t len, int flags, void *user)
{
    struct lg_conn *c = user;
    size_t avail = c->in_len - c->in_off;
    (void)flags;
    if (avail == 0)
        return WSLAY_ERR_WANT_READ;
    if (len > avail)
        len = avail;
    memcpy(buf, c->in + c->in_off, len);
    c->in_off += len;
    return (ssize_t)len;
}

static int ws_genmask_cb(uint8_t *buf, size_t len, void *user)
{
    static const uint8_t k[4] = {0x37, 0xfa, 0x21, 0x3d};  /* masking is not secrecy here */
    (void)user;
    for (size_t i = 0; i < len; i++)
        buf[i] = k[i % 4];
    return 0;
}

static const struct wslay_frame_callbacks ws_callbacks = {
    ws_send_cb, ws_recv_cb, ws_genmask_cb,
};

static int ws_send_frame(struct lg_conn *c, int opcode, const char *p, size_t n)
{
    struct wslay_frame_iocb io = {1, 0, (uint8_t)opcode, n, 1, (const uint8_t *)p, n};
    ssize_t r = wslay_frame_send(c->ws, &io);
    return r < 0 ? -EIO : 0;
}

int lg_ws_send_text(struct lg_conn *c, const char *p, size_t n)
{
    return ws_send_frame(c, WSLAY_TEXT_FRAME, p, n);
}

static int msg_append(struct lg_conn *c, const uint8_t *p, size_t n)
{
    if (c->msg_len + n > c->msg_cap) {
        size_t cap = c->msg_cap ? c->msg_cap * 2 : 4096;
        while (cap < c->msg_len + n)
            cap *= 2;
        uint8_t *m = realloc(c->msg, cap);
        if (m == NULL)
            return -ENOMEM;
        c->msg = m;
        c->msg_cap = cap;
    }
    memcpy(c->msg + c->msg_len, p, n);
    c->msg_len += n;
    return 0;
}

/* wslay's frame layer hands out payload in pieces; a frame ends when the bytes
 * received reach payload_length. */
static void ws_parse(struct lg_conn *c)
{
    struct wslay_frame_iocb io;

    for (;;) {
        ssize_t r = wslay_frame_recv(c->ws, &io);
        if (r == WSLAY_ERR_WANT_READ)
            return;
        if (r < 0) {
            lg_conn_close(c);
            return;
        }
        if (msg_append(c, io.data, io.data_length) < 0) {
            lg_conn_close(c);
            return;
        }
        c->frame_got += io.data_length;
        if (c->frame_got < io.payload_length)
            continue;
        c->frame_got = 0;
        if (!io.fin && io.opcode <= WSLAY_BINARY_FRAME)
            continue;               /* a fragmented message: keep assembling */
        if (io.opcode == WSLAY_PING) {
            ws_send_frame(c, WSLAY_PONG, (const char *)c->msg, c->msg_len);
        } else if (io.opcode == WSLAY_CONNECTION_CLOSE) {
            c->msg_len = 0;
            lg_conn_close(c);
            return;
        } else if (io.opcode == WSLAY_TEXT_FRAME && io.fin && c->on_frame) {
            c->on_frame(c, c->msg, c->msg_len);
        }
        c->msg_len = 0;
    }
}

static void ws_handshake(struct lg_conn *c)
{
    uint8_t *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (end == NULL)
        return;
    if (c->in_len < 12 || memcmp(c->in + 9, "101", 3) != 0) {
        fprintf(stderr, "loadgen: upgrade refused: %.*s\n", (int)(c->in_len < 80 ? c->in_len : 80), c->in);
        lg_conn_close(c);
        return;
    }
    c->in_off = (size_t)(end + 4 - c->in);
    c->handshake_done = 1;
    if (wslay_frame_context_init(&c->ws, &ws_callbacks, c) != 0) {
        lg_conn_close(c);
        return;
    }
    if (c->on_open)
        c->on_open(c, 0);
}

/* ---- RESP: parse whole replies; hand the last bulk string of each to on_frame ---- */
static long resp_line(const uint8_t *p, size_t n, size_t at)
{
    const uint8_t *e = memmem(p + at, n - at, "\r\n", 2);
    return e == NULL ? -1 : (long)(e - p);
}

static long resp_value(const uint8_t *p, size_t n, size_t at, const uint8_t **last, size_t *lastn)
{
    long eol;
    long v;

    if (at >= n)
        return -1;
    eol = resp_line(p, n, at);
    if (eol < 0)
        return -1;
    v = strtol((const char *)p + at + 1, NULL, 10);
    switch (p[at]) {
    case '+': case '-': case ':':
        *last = p + at + 1;
        *lastn = (size_t)eol - at - 1;
        return eol + 2;
    case '$':
        if (v < 0)
            return eol + 2;
        if ((size_t)eol + 2 + (size_t)v + 2 > n)
            return -1;
        *last = p + eol + 2;
        *lastn = (size_t)v;
        return eol + 2 + v + 2;
    case '*': {
        long pos = eol + 2;
        for (long i = 0; i < v; i++) {
            pos = resp_value(p, n, (size_t)pos, last, lastn);
            if (pos < 0)
                return -1;
        }
        return pos;
    }
    default:
        return -2;
    }
}

static void resp_parse(struct lg_conn *c)
{
    for (;;) {
        const uint8_t *last = NULL;
        size_t lastn = 0;
        long end = resp_value(c->in, c->in_len, c->in_off, &last, &lastn);
        if (end == -1)
            return;
        if (end < 0) {
            lg_conn_close(c);
            return;
        }
        c->in_off = (size_t)end;
        if (c->on_frame && last)
            c->on_frame(c, last, lastn);
    }
}

static void compact_input(struct lg_conn *c)
{
    if (c->in_off == 0)
        return;
    memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
    c->in_len -= c->in_off;
    c->in_off = 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct lg_conn *c = h->data;
    (void)hint;
    if (c->in_cap - c->in_len < IN_CHUNK) {
        size_t cap = c->in_cap ? c->in_cap * 2 : 2 * IN_CHUNK;
        uint8_t *n = realloc(c->in, cap);
        if (n == NULL) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        c->in = n;
        c->in_cap = cap;
    }
    *buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct lg_conn *c = s->data;
    (void)buf;
    if (n < 0) {
        lg_conn_close(c);
        return;
    }
    c->in_len += (size_t)n;
    if (c->kind == CONN_WS) {
        if (!c->handshake_done)
            ws_handshake(c);
        if (c->handshake_done && !c->closing)
            ws_parse(c);
    } else {
        resp_parse(c);
    }
    if (!c->closing)
        compact_input(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct lg_conn *c = req->handle->data;
    free(req);
    if (status < 0) {
        fprintf(stderr, "loadgen: connect: %s\n", uv_strerror(status));
        c->closing = 1;
        if (c->on_close)
            c->on_close(c, status);
        uv_close((uv_handle_t *)&c->tcp, NULL);
        return;
    }
    c->open = 1;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (c->request) {
        lg_raw_send(c, c->request, strlen(c->request));
        free(c->request);
        c->request = NULL;
    }
    if (c->kind == CONN_RESP && c->on_open)
        c->on_open(c, 0);
}

int lg_conn_open(uv_loop_t *loop, struct lg_conn *c, const char *host, int port, int kind,
                 const char *path_or_cmd, const char *token)
{
    struct sockaddr_in sa;
    uv_connect_t *req = malloc(sizeof(*req));
    char *r = malloc(4096);
    int rc;

    if (req == NULL || r == NULL) {
        free(req);
        free(r);
        return -ENOMEM;
    }
    c->kind = kind;
    if (kind == CONN_WS)
        snprintf(r, 4096, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
                 path_or_cmd, host, port, token);
    else
        snprintf(r, 4096, "%s", path_or_cmd ? path_or_cmd : "");
    c->request = r;
    uv_ip4_addr(host, port, &sa);
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    rc = uv_tcp_connect(req, &c->tcp, (struct sockaddr *)&sa, on_connect);
    if (rc < 0)
        free(req);
    return rc;
}

static void on_closed(uv_handle_t *h)
{
    struct lg_conn *c = h->data;
    if (c->ws)
        wslay_frame_context_free(c->ws);
    c->ws = NULL;
    free(c->in);
    free(c->msg);
    free(c->request);
    c->in = c->msg = NULL;
    c->request = NULL;
    c->in_len = c->in_cap = c->in_off = c->msg_len = c->msg_cap = 0;
    if (c->on_close)
        c->on_close(c, 0);
}

void lg_conn_close(struct lg_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->open = 0;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}
