/* Client connections of the load generator: WebSocket (handshake by hand, client
 * frames through wslay, the server's unmasked frames parsed in place) or RESP
 * (Redis). Both read into the loop's shared buffer and hand each whole message to
 * c->on_frame without copying it; see lg.h for why. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>
#include <wslay/wslay.h>
#include "lg.h"

#define WS_MAX_MESSAGE (16u << 20)      /* a frame larger than this is a broken peer */

enum { WS_CONT = 0, WS_TEXT = 1, WS_BINARY = 2, WS_CLOSE = 8, WS_PING = 9, WS_PONG = 10 };

struct lg_io *lg_io_of(uv_loop_t *loop)
{
    struct lg_io *io = loop->data;
    const char *want = getenv("LG_IO");

    if (io == NULL && (io = loop->data = calloc(1, sizeof(*io))) != NULL &&
        (want == NULL || strcmp(want, "epoll") != 0))
        io->uring = lg_uring_new(loop, lg_conn_feed);
    return io;
}

const char *lg_io_name(uv_loop_t *loop)
{
    return lg_io_of(loop)->uring ? "io_uring" : "epoll";
}

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

/* ---- WebSocket frames ---- */

/* Client frames are encoded and masked by wslay's frame layer into one buffer, then
 * sent with one write. Received frames are parsed in place below instead: wslay's
 * receive path copies every payload, and the generator must cost less per delivery
 * than the servers it measures. */
static ssize_t frame_out(const uint8_t *data, size_t len, int flags, void *user)
{
    struct lg_io *io = user;
    (void)flags;
    if (io->out_len + len > io->out_cap)
        return WSLAY_ERR_NOMEM;
    memcpy(io->out + io->out_len, data, len);
    io->out_len += len;
    return (ssize_t)len;
}

static int frame_mask(uint8_t *buf, size_t len, void *user)
{
    (void)user;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static const struct wslay_frame_callbacks frame_callbacks = {frame_out, NULL, frame_mask};

static int ws_send_frame(struct lg_conn *c, int opcode, const char *p, size_t n)
{
    struct lg_io *io = lg_io_of(c->tcp.loop);
    struct wslay_frame_iocb iocb = {1, 0, (uint8_t)opcode, n, 1, (const uint8_t *)p, n};
    size_t need = (n < 126 ? 2 : n < 65536 ? 4 : 10) + 4 + n;   /* header, mask, payload */
    ssize_t r;

    if (!io->wsf && wslay_frame_context_init(&io->wsf, &frame_callbacks, io) != 0)
        return -ENOMEM;
    if (need > io->out_cap) {
        uint8_t *grown = realloc(io->out, need);
        if (!grown)
            return -ENOMEM;
        io->out = grown;
        io->out_cap = need;
    }
    io->out_len = 0;
    r = wslay_frame_send(io->wsf, &iocb);
    if (r < 0 || io->out_len != need)
        return -EIO;    /* the buffer holds a whole frame, so wslay never stops short */
    return lg_raw_send(c, (const char *)io->out, io->out_len);
}

int lg_ws_send_text(struct lg_conn *c, const char *p, size_t n)
{
    return ws_send_frame(c, WS_TEXT, p, n);
}

static int msg_append(struct lg_conn *c, const uint8_t *p, size_t n)
{
    if (c->msg_len + n > c->msg_cap) {
        size_t cap = c->msg_cap ? c->msg_cap * 2 : 4096;
        uint8_t *m;
        while (cap < c->msg_len + n)
            cap *= 2;
        if ((m = realloc(c->msg, cap)) == NULL)
            return -ENOMEM;
        c->msg = m;
        c->msg_cap = cap;
    }
    memcpy(c->msg + c->msg_len, p, n);
    c->msg_len += n;
    return 0;
}

/* One whole frame. Fragmented messages (chatd sends none, but the protocol allows
 * them) are the only ones copied. */
static void ws_frame(struct lg_conn *c, int fin, int op, const uint8_t *p, size_t n, uint64_t now)
{
    if (op == WS_PING) {
        ws_send_frame(c, WS_PONG, (const char *)p, n);
    } else if (op == WS_CLOSE) {
        lg_conn_close(c);
    } else if (op == WS_PONG) {
        return;
    } else if (fin && op != WS_CONT && c->msg_len == 0) {
        if (op == WS_TEXT && c->on_frame)
            c->on_frame(c, p, n, now);
    } else {
        if (op != WS_CONT)
            c->msg_op = op;
        if (msg_append(c, p, n) < 0) {
            lg_conn_close(c);
            return;
        }
        if (fin) {
            if (c->msg_op == WS_TEXT && c->on_frame)
                c->on_frame(c, c->msg, c->msg_len, now);
            c->msg_len = 0;
        }
    }
}

/* Parses every whole frame in p; returns the bytes used (the rest is an incomplete frame). */
static size_t ws_parse(struct lg_conn *c, const uint8_t *p, size_t len, uint64_t now)
{
    size_t off = 0;

    while (!c->closing && len - off >= 2) {
        const uint8_t *h = p + off;
        size_t avail = len - off, hl = 2;
        uint64_t n = h[1] & 0x7f;

        if (n == 126) {
            hl = 4;
            if (avail < hl)
                break;
            n = (uint64_t)h[2] << 8 | h[3];
        } else if (n == 127) {
            hl = 10;
            if (avail < hl)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | h[2 + i];
        }
        if ((h[1] & 0x80) || n > WS_MAX_MESSAGE) {     /* a server never masks */
            fprintf(stderr, "loadgen: bad frame from server\n");
            lg_conn_close(c);
            break;
        }
        if (avail - hl < n)
            break;
        off += hl + (size_t)n;
        ws_frame(c, h[0] & 0x80, h[0] & 0x0f, h + hl, (size_t)n, now);
        lg_io_of(c->tcp.loop)->frames++;
    }
    return off;
}

/* The 101 answer; returns the bytes it took, 0 if incomplete. */
static size_t ws_handshake(struct lg_conn *c, const uint8_t *p, size_t len)
{
    const uint8_t *end = memmem(p, len, "\r\n\r\n", 4);
    int status = 0;

    if (end == NULL)
        return 0;
    if (len > 12)
        status = atoi((const char *)p + 9);
    c->upgrade_status = status;
    if (status != 101) {
        fprintf(stderr, "loadgen: upgrade refused: %.*s\n", (int)(len < 80 ? len : 80), p);
        lg_conn_close(c);
        return 0;
    }
    c->handshake_done = 1;
    if (c->on_open)
        c->on_open(c, 0);
    return (size_t)(end + 4 - p);
}

/* ---- RESP: parse whole replies; hand the last bulk string of each to on_frame ---- */

/* Parses the value at p[at..n); returns the offset past it, -1 if incomplete, -2 if
 * malformed. */
static long resp_value(const uint8_t *p, size_t n, size_t at, const uint8_t **last, size_t *lastn)
{
    const uint8_t *eol;
    long v = 0, pos;
    int neg = 0;
    size_t i;

    if (at >= n)
        return -1;
    eol = memchr(p + at, '\r', n - at);
    if (eol == NULL || eol + 1 >= p + n)
        return -1;
    pos = eol + 2 - p;
    if (p[at] == '+' || p[at] == '-' || p[at] == ':') {
        *last = p + at + 1;
        *lastn = (size_t)(eol - p) - at - 1;
        return pos;
    }
    i = at + 1;
    if (i < n && p[i] == '-') {
        neg = 1;
        i++;
    }
    for (; p + i < eol; i++)
        v = v * 10 + (p[i] - '0');
    if (neg)
        v = -v;
    if (p[at] == '$') {
        if (v < 0)
            return pos;
        if ((size_t)pos + (size_t)v + 2 > n)
            return -1;
        *last = p + pos;
        *lastn = (size_t)v;
        return pos + v + 2;
    }
    if (p[at] == '*') {
        for (long k = 0; k < v; k++) {
            pos = resp_value(p, n, (size_t)pos, last, lastn);
            if (pos < 0)
                return pos;
        }
        return pos;
    }
    return -2;
}

static size_t resp_parse(struct lg_conn *c, const uint8_t *p, size_t len, uint64_t now)
{
    size_t off = 0;

    while (!c->closing) {
        const uint8_t *last = NULL;
        size_t lastn = 0;
        long end = resp_value(p, len, off, &last, &lastn);
        if (end == -1)
            break;
        if (end < 0) {
            lg_conn_close(c);
            break;
        }
        off = (size_t)end;
        lg_io_of(c->tcp.loop)->frames++;
        if (c->on_frame && last)
            c->on_frame(c, last, lastn, now);
    }
    return off;
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct lg_io *io = lg_io_of(h->loop);
    (void)hint;
    *buf = uv_buf_init((char *)io->buf, sizeof(io->buf));
}

static int keep_tail(struct lg_conn *c, const uint8_t *p, size_t n)
{
    if (n > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : 4096;
        uint8_t *m;
        while (cap < n)
            cap *= 2;
        if ((m = malloc(cap)) == NULL)
            return -ENOMEM;
        free(c->in);
        c->in = m;
        c->in_cap = cap;
    }
    memmove(c->in, p, n);
    c->in_len = n;
    return 0;
}

static size_t parse(struct lg_conn *c, const uint8_t *p, size_t len, uint64_t now)
{
    size_t used = 0;

    if (c->kind == CONN_RESP)
        return resp_parse(c, p, len, now);
    if (!c->handshake_done) {
        used = ws_handshake(c, p, len);
        if (!c->handshake_done || c->closing)
            return used;
    }
    return used + ws_parse(c, p + used, len - used, now);
}

/* Input of one read (or recv completion): parsed where it lies, every whole message
 * handed on, an incomplete tail kept for the next. */
void lg_conn_feed(struct lg_conn *c, const uint8_t *p, size_t len, uint64_t now)
{
    struct lg_io *io = lg_io_of(c->tcp.loop);
    size_t used;

    io->reads++;
    io->bytes += len;
    if (c->in_len > 0) {
        /* A frame was split across reads: join it to what came before. */
        if (c->in_len + len > c->in_cap) {
            size_t cap = c->in_cap * 2;
            uint8_t *m;
            while (cap < c->in_len + len)
                cap *= 2;
            if ((m = realloc(c->in, cap)) == NULL) {
                lg_conn_close(c);
                return;
            }
            c->in = m;
            c->in_cap = cap;
        }
        memcpy(c->in + c->in_len, p, len);
        c->in_len += len;
        p = c->in;
        len = c->in_len;
    }
    used = parse(c, p, len, now);
    if (c->closing)
        return;
    if (p == c->in) {
        memmove(c->in, c->in + used, len - used);
        c->in_len = len - used;
    } else if (used < len && keep_tail(c, p + used, len - used) < 0) {
        lg_conn_close(c);
    }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct lg_conn *c = s->data;

    if (n <= 0) {
        if (n < 0)
            lg_conn_close(c);
        return;
    }
    lg_conn_feed(c, (const uint8_t *)buf->base, (size_t)n, lg_now_ns());
}

void lg_conn_read_plain(struct lg_conn *c)
{
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- connecting and closing ---- */

static void on_connect(uv_connect_t *req, int status)
{
    struct lg_conn *c = req->handle->data;
    struct lg_io *io = lg_io_of(req->handle->loop);
    free(req);
    if (status < 0) {
        fprintf(stderr, "loadgen: connect: %s\n", uv_strerror(status));
        lg_conn_close(c);
        return;
    }
    c->open = 1;
    uv_tcp_nodelay(&c->tcp, 1);
    if (io->uring == NULL || lg_uring_recv(io->uring, c) < 0)
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

    if (req == NULL || r == NULL || lg_io_of(loop) == NULL) {
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
    if (rc < 0) {
        free(req);
        lg_conn_close(c);
    }
    return rc;
}

static void on_closed(uv_handle_t *h)
{
    struct lg_conn *c = h->data;
    free(c->in);
    free(c->msg);
    free(c->request);
    c->in = c->msg = NULL;
    c->request = NULL;
    c->in_len = c->in_cap = c->msg_len = c->msg_cap = 0;
    if (c->on_close)
        c->on_close(c, 0);
}

void lg_conn_finish_close(struct lg_conn *c)
{
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* A socket the ring still reads is closed once the ring has let it go (the cancel's
 * last completion calls lg_conn_finish_close): closing the fd alone would leave the
 * connection open under the ring's reference. */
void lg_conn_close(struct lg_conn *c)
{
    struct lg_io *io = lg_io_of(c->tcp.loop);

    if (c->closing)
        return;
    c->closing = 1;
    c->open = 0;
    if (c->uring_armed && io->uring && lg_uring_cancel(io->uring, c) == 0)
        return;
    lg_conn_finish_close(c);
}
