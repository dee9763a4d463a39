/* fuzz_ws.c: the WebSocket frame path after the upgrade. Client bytes go into one
 * connection's stream, core's transport (wslay's frame parser, masking, fragmentation,
 * control frames, the message size limit, close codes), split into pieces at points
 * the input chooses. Complete text messages go through the frame decoder; the ones
 * dispatch can take without a bus (bad frames, which count towards the 1008 close, and
 * pings) go through the module's dispatch too. With the first byte's top bit set the
 * pieces go to two connections in turn, since some of the receive state is the
 * transport's, shared by every stream (the read buffer's input, the wslay pool). Every
 * message handed on must be valid UTF-8 (wslay checked it). Each stream's socket is one
 * end of a socketpair; its output is read back from the other end and parsed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/metrics.h"
#include "chatd/text.h"
#include "../../src/core/ws_stream_internal.h"
#include "../../src/modules/websocket/ws_internal.h"
#include "../../src/modules/websocket/ws_settings.h"

static void on_text(void *owner, const char *text, size_t len)
{
    struct ws_conn *c = owner;
    struct ws_client_frame f;
    const char *err = NULL;
    int rc;

    if (!utf8_valid(text, len))
        abort();
    rc = ws_frame_decode(text, len, &f, &err);
    ws_frame_free(&f);
    if (rc < 0 || f.type == WS_F_PING)
        ws_dispatch_text(c, text, len);
}

/* The server's frames must parse: unmasked, lengths inside the buffer, final, of the
 * opcodes a server sends; a close frame has no 1-byte payload and, when the output is
 * one connection's, is the last. */
static void check_output(const struct strbuf *out, int one_conn)
{
    const uint8_t *p = (const uint8_t *)out->data;
    size_t n = out->len;
    int closed = 0;

    while (n) {
        size_t h = 2;
        uint64_t len;
        if (n < 2 || (p[1] & 0x80) || (closed && one_conn) || (p[0] & 0xf0) != 0x80)
            abort();
        closed = 0;
        switch (p[0] & 0x0f) {
        case WSLAY_TEXT_FRAME: case WSLAY_PING: case WSLAY_PONG: break;
        case WSLAY_CONNECTION_CLOSE: closed = 1; break;
        default: abort();
        }
        len = p[1] & 0x7f;
        if (len == 126) {
            if (n < 4)
                abort();
            len = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (len == 127) {
            if (n < 10)
                abort();
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | p[2 + i];
            h = 10;
        }
        if (n - h < len || (closed && len == 1))
            abort();
        p += h + len;
        n -= h + len;
    }
}

static void ev_read_done(void *o) { ws_conn_events.read_done(o); }
static void ev_closing(void *o, uint16_t code) { ws_conn_events.closing(o, code); }
static void ev_taken(void *o) { ws_conn_events.taken(o); }
static void ev_gone(void *o) { ws_conn_events.gone(o); }

static const struct ws_stream_events events = {
    .text = on_text, .read_done = ev_read_done, .closing = ev_closing, .taken = ev_taken,
    .gone = ev_gone,
};

struct sock {
    uv_pipe_t pipe;                  /* first: the stream's socket */
    void (*cb)(void *arg);
    void *arg;
    int peer, closed;
};

static void sock_closed(uv_handle_t *h)
{
    struct sock *k = (struct sock *)h;
    if (k->cb)
        k->cb(k->arg);
}

static void close_sock(uv_stream_t *s, void (*cb)(void *arg), void *arg)
{
    struct sock *k = (struct sock *)s;
    k->cb = cb;
    k->arg = arg;
    k->closed = 1;
    uv_close((uv_handle_t *)s, sock_closed);
}

static struct ws_conn *conn_new(struct ws_module *m, struct ws_transport *t, uv_loop_t *loop,
                                struct sock *k, const struct http_user *u)
{
    struct ws_conn *c;
    struct ws_stream *s;
    int fd[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd) < 0)
        abort();
    k->peer = fd[1];
    if (uv_pipe_init(loop, &k->pipe, 0) < 0 || uv_pipe_open(&k->pipe, fd[0]) < 0 ||
        ws_stream_open(t, (uv_stream_t *)&k->pipe, NULL, 0, NULL, 0, sizeof(*c),
                       (void **)&c, &s) < 0 || ws_conn_init(m, c, s, u) < 0)
        abort();
    ws_conn_open(c);
    return c;
}

/* Writes every queue, lets the loop finish what the sockets did not take at once, and
 * reads each stream's output back. */
static void flush(struct ws_module *m, uv_loop_t *loop, struct sock *k, int n,
                  struct strbuf *out)
{
    char buf[65536];
    size_t before;

    do {
        before = out[0].len + out[1].len;
        ws_flush_all(m);
        uv_run(loop, UV_RUN_NOWAIT);
        for (int i = 0; i < n; i++) {
            ssize_t r;
            while ((r = read(k[i].peer, buf, sizeof(buf))) > 0)
                strbuf_append(&out[i], buf, (size_t)r);
        }
    } while (out[0].len + out[1].len != before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chatd app;
    struct chatd_config cfg;
    struct ws_module *m;
    struct ws_transport *t;
    uv_loop_t loop;
    struct sock k[2];
    struct strbuf out[2];
    struct http_user u;
    struct ws_conn *c[2] = { NULL, NULL };
    size_t piece;
    int nconns, turn = 0;

    if (size == 0)
        return 0;
    piece = data[0] & 0x7f;          /* bytes per read; 0: all at once */
    nconns = data[0] & 0x80 ? 2 : 1;
    data++;
    size--;
    memset(&app, 0, sizeof(app));
    memset(k, 0, sizeof(k));
    config_defaults(&cfg);
    /* Small limits, so that short inputs reach them. */
    struct ws_settings *ws = config_module_settings(&cfg, &ws_settings_table);
    ws->max_message_bytes = 1024;
    ws->send_queue_bytes = 8192;
    app.cfg = &cfg;
    if (uv_loop_init(&loop) < 0)
        abort();
    app.loop = &loop;
    if (metrics_new(&app.metrics) < 0 || ws_module_new(&app, &m) < 0)
        abort();
    struct ws_transport_config tc = { .max_message_bytes = m->max_message_bytes,
                                      .close_socket = close_sock };
    if (ws_transport_new(&loop, &tc, &events, &t) < 0)
        abort();
    ws_module_use_transport(m, &ws_stream_socket_ops, t);
    strbuf_init(&out[0], 16 << 20);
    strbuf_init(&out[1], 16 << 20);
    memset(&u, 0, sizeof(u));
    snprintf(u.name, sizeof(u.name), "alice");
    for (int i = 0; i < nconns; i++) {
        u.id = 1 + i;
        c[i] = conn_new(m, t, &loop, &k[i], &u);
    }
    /* Only open connections are fed (the loop does not run meanwhile: none is freed). */
    for (size_t off = 0; off < size;) {
        size_t n = piece && piece < size - off ? piece : size - off;
        struct ws_conn *to = c[turn]->open ? c[turn] : c[turn ^ (nconns - 1)];
        if (!to->open)
            break;
        ws_stream_feed(to->stream, data + off, n);
        off += n;
        turn = (turn + 1) % nconns;
    }
    flush(m, &loop, k, nconns, out);
    for (int i = 0; i < nconns; i++)
        check_output(&out[i], 1);
    uv_run(&loop, UV_RUN_NOWAIT);    /* closes asked for outside the loop complete */
    ws_module_free(m);
    for (int i = 0; i < nconns; i++)
        if (!k[i].closed)
            uv_close((uv_handle_t *)&k[i].pipe, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    for (int i = 0; i < nconns; i++)
        close(k[i].peer);
    metrics_free(app.metrics);
    strbuf_free(&out[0]);
    strbuf_free(&out[1]);
    return 0;
}
