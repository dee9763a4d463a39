/* ws_test_util.h: helpers for the websocket unit tests: the module on core's WebSocket
 * transport with no bus, each connection's stream over one end of a socketpair (the
 * server's bytes are read back from the other end); client frame builders (masked, as
 * a browser sends them), and a parser for the server's unmasked frames. Bytes are fed
 * to a stream directly (wst_feed), so a test decides how a read is cut. */
#ifndef CHATD_WS_TEST_UTIL_H
#define CHATD_WS_TEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/metrics.h"
#include "../../src/core/ws_stream_internal.h"
#include "../../src/modules/websocket/ws_internal.h"
#include "../../src/modules/websocket/ws_settings.h"
#include "ws_test_transport.h"

struct ws_fixture;

struct ws_sframe { int opcode; int fin; uint8_t *payload; size_t len; };

/* One stream's socket: the server's end in a pipe handle, the client's a plain fd. */
struct wst_sock {
    uv_pipe_t pipe;
    int peer;
    int closed;
    void (*cb)(void *arg);
    void *arg;
    struct wst_sock *next;
};

struct ws_fixture {
    struct chatd app;
    struct chatd_config cfg;
    uv_loop_t loop;
    struct ws_module *m;
    struct ws_transport *t;          /* the module's transport: core's, */
    struct wstt *tt;                 /* or the test transport (wst_use_test_transport) */
    struct strbuf out;               /* server bytes, read back from the sockets */
    struct strbuf texts;             /* text messages received, each + '\n' */
    int ntexts;
    int dispatch;                    /* texts go to the module's dispatch */
    /* when set, texts go here instead */
    void (*on_text)(struct ws_conn *c, const char *text, size_t len);
    struct wst_sock *socks;
};

static inline struct ws_fixture *wst_fx(void *owner)
{
    return (struct ws_fixture *)((struct ws_conn *)owner)->m->app->module_states;
}

static inline void wst_on_text(struct ws_conn *c, const char *text, size_t len)
{
    struct ws_fixture *fx = wst_fx(c);
    strbuf_append(&fx->texts, text, len);
    strbuf_append(&fx->texts, "\n", 1);
    fx->ntexts++;
}

/* The module's own events, but texts to the fixture unless it dispatches. */
static inline void wst_ev_text(void *owner, const char *text, size_t len)
{
    struct ws_fixture *fx = wst_fx(owner);

    if (fx->on_text)
        fx->on_text(owner, text, len);
    else if (fx->dispatch)
        ws_conn_events.text(owner, text, len);
    else
        wst_on_text(owner, text, len);
}
static inline void wst_ev_read_done(void *o) { ws_conn_events.read_done(o); }
static inline void wst_ev_closing(void *o, uint16_t code) { ws_conn_events.closing(o, code); }
static inline void wst_ev_taken(void *o) { ws_conn_events.taken(o); }
static inline void wst_ev_gone(void *o) { ws_conn_events.gone(o); }

static const struct ws_stream_events wst_events = {
    .text = wst_ev_text, .read_done = wst_ev_read_done, .closing = wst_ev_closing,
    .taken = wst_ev_taken, .gone = wst_ev_gone,
};

static inline void wst_sock_closed(uv_handle_t *h)
{
    struct wst_sock *ws = (struct wst_sock *)h;
    if (ws->cb)
        ws->cb(ws->arg);
}

static inline void wst_close_sock(uv_stream_t *sock, void (*cb)(void *arg), void *arg)
{
    struct wst_sock *ws = (struct wst_sock *)sock;
    ws->cb = cb;
    ws->arg = arg;
    ws->closed = 1;
    uv_close((uv_handle_t *)sock, wst_sock_closed);
}

/* dispatch: 1 = real frame dispatch (no bus: only frames that fail to decode). */
static inline int wst_init(struct ws_fixture *fx, int max_msg, size_t queue_bytes, int dispatch)
{
    memset(fx, 0, sizeof(*fx));
    config_defaults(&fx->cfg);
    struct ws_settings *ws = config_module_settings(&fx->cfg, &ws_settings_table);
    if (max_msg)
        ws->max_message_bytes = max_msg;
    if (queue_bytes)
        ws->send_queue_bytes = (int)queue_bytes;
    fx->app.cfg = &fx->cfg;
    if (uv_loop_init(&fx->loop) < 0 || metrics_new(&fx->app.metrics) < 0)
        return -1;
    fx->app.loop = &fx->loop;
    fx->app.module_states = (void **)fx;   /* lets the events find the fixture */
    fx->dispatch = dispatch;
    if (ws_module_new(&fx->app, &fx->m) < 0)
        return -1;
    struct ws_transport_config tc = { .max_message_bytes = fx->m->max_message_bytes,
                                      .close_socket = wst_close_sock,
                                      .frames_in = fx->m->metrics.frames_in,
                                      .frames_out = fx->m->metrics.frames_out };
    if (ws_transport_new(&fx->loop, &tc, &wst_events, &fx->t) < 0)
        return -1;
    ws_module_use_transport(fx->m, &ws_stream_socket_ops, fx->t);
    strbuf_init(&fx->out, 64 << 20);
    strbuf_init(&fx->texts, 64 << 20);
    return 0;
}

/* The module on the test transport from here on (before any connection). */
static inline int wst_use_test_transport(struct ws_fixture *fx)
{
    if (!(fx->tt = wstt_new(&wst_events)))
        return -1;
    ws_module_use_transport(fx->m, &wstt_ops, fx->tt);
    fx->t = NULL;
    return 0;
}

/* The client's end of c's socket. */
static inline int wst_peer(struct ws_conn *c)
{
    return ((struct wst_sock *)c->stream->sock)->peer;
}

/* Runs the loop once: closes complete (a stream gone frees its connection). */
static inline void wst_run(struct ws_fixture *fx)
{
    uv_run(&fx->loop, UV_RUN_NOWAIT);
}

/* Appends what the server wrote since the last read, every socket in turn. */
static inline void wst_read(struct ws_fixture *fx)
{
    char buf[65536];

    for (struct wst_sock *ws = fx->socks; ws; ws = ws->next) {
        ssize_t n;
        while ((n = read(ws->peer, buf, sizeof(buf))) > 0)
            strbuf_append(&fx->out, buf, (size_t)n);
    }
}

/* Writes every queue, lets the loop finish what the socket did not take at once, and
 * reads it all back. */
static inline void wst_flush(struct ws_fixture *fx)
{
    size_t before;

    if (fx->tt) {
        ws_flush_all(fx->m);
        strbuf_append(&fx->out, fx->tt->out.data, fx->tt->out.len);
        fx->tt->out.len = 0;
        wstt_settle(fx->tt);
        return;
    }
    do {
        before = fx->out.len;
        ws_flush_all(fx->m);
        wst_run(fx);
        wst_read(fx);
    } while (fx->out.len != before);
}

static inline void wst_free(struct ws_fixture *fx)
{
    wst_run(fx);             /* closes under way complete first */
    if (fx->tt)
        wstt_settle(fx->tt);
    ws_module_free(fx->m);   /* streams freed, sockets left to us */
    for (struct wst_sock *ws = fx->socks; ws; ws = ws->next)
        if (!ws->closed) {
            ws->cb = NULL;
            ws->closed = 1;
            uv_close((uv_handle_t *)&ws->pipe, NULL);
        }
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    uv_loop_close(&fx->loop);
    while (fx->socks) {
        struct wst_sock *ws = fx->socks;
        fx->socks = ws->next;
        close(ws->peer);
        free(ws);
    }
    metrics_free(fx->app.metrics);
    strbuf_free(&fx->out);
    strbuf_free(&fx->texts);
}

/* A stream over a new socketpair, with owner_size bytes for its owner at *owner. */
static inline struct ws_stream *wst_stream(struct ws_fixture *fx, size_t owner_size,
                                           void **owner, const char *first)
{
    struct wst_sock *ws = calloc(1, sizeof(*ws));
    struct ws_stream *s = NULL;
    int fd[2];

    if (!ws || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd) < 0) {
        free(ws);
        return NULL;
    }
    ws->peer = fd[1];
    ws->next = fx->socks;
    fx->socks = ws;
    uv_pipe_init(&fx->loop, &ws->pipe, 0);
    if (uv_pipe_open(&ws->pipe, fd[0]) < 0 ||
        ws_stream_open(fx->t, (uv_stream_t *)&ws->pipe, first, first ? strlen(first) : 0,
                       NULL, 0, owner_size, owner, &s) < 0)
        return NULL;
    return s;
}

static inline struct ws_conn *wst_conn(struct ws_fixture *fx, int64_t user_id)
{
    struct http_user u;
    struct ws_conn *c = NULL;
    struct ws_stream *s;

    memset(&u, 0, sizeof(u));
    u.id = user_id;
    snprintf(u.name, sizeof(u.name), "user%lld", (long long)user_id);
    u.token_exp = 0;
    s = fx->tt ? wstt_stream(fx->tt, sizeof(*c), (void **)&c)
               : wst_stream(fx, sizeof(*c), (void **)&c, NULL);
    if (!s || ws_conn_init(fx->m, c, s, &u) < 0)
        return NULL;
    ws_conn_open(c);
    return c;
}

/* The client's bytes, as one read. */
static inline void wst_feed(struct ws_conn *c, const uint8_t *data, size_t len)
{
    ws_stream_feed(c->stream, data, len);
}

/* The client shuts its side after our close (its EOF): the lingering stream ends.
 * 0 once the connection is gone. */
static inline int wst_peer_eof(struct ws_fixture *fx, struct ws_conn *c)
{
    int alive = fx->m->nalive;

    if (shutdown(wst_peer(c), SHUT_WR) < 0)
        return -1;
    for (int i = 0; i < 100 && fx->m->nalive == alive; i++)
        uv_run(&fx->loop, UV_RUN_ONCE);
    return fx->m->nalive == alive - 1 ? 0 : -1;
}

/* The connection's socket goes (as an EOF would end it); its memory after wst_run. */
static inline void wst_drop(struct ws_conn *c)
{
    ws_stream_lost(c->stream);
}

/* A client frame: masked with key unless masked == 0. Returns its length in out. */
static inline size_t wst_frame(uint8_t *out, int fin, int opcode, const void *payload,
                               size_t len, int masked, const uint8_t key[4])
{
    size_t n = 0;
    out[n++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    uint8_t mbit = masked ? 0x80 : 0;
    if (len < 126) {
        out[n++] = (uint8_t)(mbit | len);
    } else if (len <= 0xffff) {
        out[n++] = mbit | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = mbit | 127;
        for (int i = 0; i < 8; i++)
            out[n++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    if (masked) {
        memcpy(out + n, key, 4);
        n += 4;
    }
    for (size_t i = 0; i < len; i++)
        out[n + i] = ((const uint8_t *)payload)[i] ^ (masked ? key[i % 4] : 0);
    return n + len;
}

static const uint8_t wst_key[4] = { 0x37, 0xfa, 0x21, 0x3d };

/* Parses the next server frame from *buf; 1 when one was read, 0 at the end, -1 bad. */
static inline int wst_next(const uint8_t **buf, size_t *left, struct ws_sframe *f)
{
    const uint8_t *p = *buf;
    size_t n = *left, h = 2;
    uint64_t len;

    if (n == 0)
        return 0;
    if (n < 2 || (p[1] & 0x80))
        return -1;   /* truncated, or masked (a server must not mask) */
    len = p[1] & 0x7f;
    if (len == 126) {
        if (n < 4) return -1;
        len = ((uint64_t)p[2] << 8) | p[3];
        h = 4;
    } else if (len == 127) {
        if (n < 10) return -1;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | p[2 + i];
        h = 10;
    }
    if (n < h + len)
        return -1;
    f->fin = (p[0] & 0x80) != 0;
    f->opcode = p[0] & 0x0f;
    f->payload = (uint8_t *)p + h;
    f->len = (size_t)len;
    *buf = p + h + len;
    *left = n - h - len;
    return 1;
}

/* Flushes and returns the close code in the server's output (0 when no close frame),
 * counting text frames holding needle in *matches (may be NULL). */
static inline int wst_scan(struct ws_fixture *fx, const char *needle, int *matches)
{
    const uint8_t *p;
    size_t left;
    struct ws_sframe f;
    int code = 0;

    wst_flush(fx);
    p = (const uint8_t *)fx->out.data;
    left = fx->out.len;
    if (matches)
        *matches = 0;
    while (wst_next(&p, &left, &f) == 1) {
        if (f.opcode == 8 && f.len >= 2)
            code = (f.payload[0] << 8) | f.payload[1];
        if (f.opcode == 1 && needle && matches &&
            memmem(f.payload, f.len, needle, strlen(needle)))
            (*matches)++;
    }
    return code;
}

#endif
