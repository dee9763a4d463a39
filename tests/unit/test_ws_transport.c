/* Core's WebSocket transport on its own, over socketpairs, with an owner that records
 * what it is told: the 101 answer is the first byte out whatever the owner queues,
 * every way out of a stream's life goes through "closing" once and "gone" last, a
 * wslay context lent from the pool names the stream it serves, and the module on the
 * test transport hears the same. */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"
#include "ws_test_util.h"

struct rec {
    int texts, closings, gones, taken, read_dones;
    uint16_t code;
    int order_ok;                    /* gone came after closing */
    char last[64];
};

/* The owner's memory in the stream's block holds a pointer to the test's record. */
#define REC(o) (*(struct rec **)(o))

static void r_text(void *o, const char *t, size_t n)
{
    struct rec *r = REC(o);
    r->texts++;
    snprintf(r->last, sizeof(r->last), "%.*s", (int)n, t);
}
static void r_read_done(void *o) { REC(o)->read_dones++; }
static void r_closing(void *o, uint16_t code)
{
    struct rec *r = REC(o);
    r->closings++;
    r->code = code;
}
static void r_taken(void *o) { REC(o)->taken++; }
static void r_gone(void *o)
{
    struct rec *r = REC(o);
    r->order_ok = r->closings == 1;
    r->gones++;
}

static const struct ws_stream_events rec_events = {
    .text = r_text, .read_done = r_read_done, .closing = r_closing, .taken = r_taken,
    .gone = r_gone,
};

struct tfx {
    uv_loop_t loop;
    struct ws_transport *t;
    uint64_t frames_out;
    struct wst_sock *socks;
    struct ws_stream *streams[8];    /* made here, released at the end unless gone */
    struct rec *recs[8];
    int nstreams;
};

static int tfx_init(struct tfx *f, int max_msg)
{
    struct ws_transport_config cfg = { .max_message_bytes = max_msg ? max_msg : 65536,
                                       .close_socket = wst_close_sock,
                                       .frames_out = &f->frames_out };
    memset(f, 0, sizeof(*f));
    if (uv_loop_init(&f->loop) < 0)
        return -1;
    return ws_transport_new(&f->loop, &cfg, &rec_events, &f->t);
}

static struct ws_stream *tfx_stream(struct tfx *f, struct rec *r, const char *first)
{
    struct wst_sock *ws = calloc(1, sizeof(*ws));
    struct ws_stream *s = NULL;
    void *owner;
    int fd[2];

    if (!ws || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd) < 0)
        return NULL;
    ws->peer = fd[1];
    ws->next = f->socks;
    f->socks = ws;
    uv_pipe_init(&f->loop, &ws->pipe, 0);
    if (uv_pipe_open(&ws->pipe, fd[0]) < 0 ||
        ws_stream_open(f->t, (uv_stream_t *)&ws->pipe, first, first ? strlen(first) : 0,
                       NULL, 0, sizeof(r), &owner, &s) < 0)
        return NULL;
    REC(owner) = r;
    f->recs[f->nstreams] = r;
    f->streams[f->nstreams++] = s;
    ws_stream_socket_ops.start(s);
    return s;
}

static int peer_of(struct ws_stream *s)
{
    return ((struct wst_sock *)s->sock)->peer;
}

static void tfx_free(struct tfx *f)
{
    uv_run(&f->loop, UV_RUN_NOWAIT);
    for (int i = 0; i < f->nstreams; i++)
        if (!f->recs[i]->gones)
            ws_stream_socket_ops.release(f->streams[i]);
    ws_transport_free(f->t);
    for (struct wst_sock *ws = f->socks; ws; ws = ws->next)
        if (!ws->closed) {
            ws->closed = 1;
            ws->cb = NULL;
            uv_close((uv_handle_t *)&ws->pipe, NULL);
        }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    while (f->socks) {
        struct wst_sock *ws = f->socks;
        f->socks = ws->next;
        close(ws->peer);
        free(ws);
    }
}

static void run_until(struct tfx *f, const int *flag)
{
    for (int i = 0; i < 100 && !*flag; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
}

#define ANSWER "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"

/* The owner queues before the stream reads a byte: the answer still comes first, and
 * it counts as no frame. */
TEST(ws_transport_answer_is_first)
{
    struct tfx f;
    struct rec r = { 0 };
    char got[256];

    ASSERT(tfx_init(&f, 0) == 0);
    struct ws_stream *s = tfx_stream(&f, &r, ANSWER);
    ASSERT(s);
    struct ws_buf *b = ws_buf_text("{\"type\":\"hello\"}", 16);
    ASSERT_EQ(ws_stream_socket_ops.send(s, b, 0), 0);
    ws_buf_unref(b);
    ASSERT_EQ(f.frames_out, 1);
    ws_stream_socket_ops.flush_all(f.t);
    ssize_t n = read(peer_of(s), got, sizeof(got));
    ASSERT_EQ(n, (ssize_t)(strlen(ANSWER) + 2 + 16));
    ASSERT(memcmp(got, ANSWER, strlen(ANSWER)) == 0);
    ASSERT_EQ((uint8_t)got[strlen(ANSWER)], 0x81);
    ASSERT(memcmp(got + strlen(ANSWER) + 2, "{\"type\":\"hello\"}", 16) == 0);
    ASSERT_EQ(ws_stream_socket_ops.queue_bytes(f.t), 0);
    tfx_free(&f);
}

/* A 1013 drops what the client has not been sent, but never the answer: a close that
 * comes before the first flush (a pipelined flood of pings with the upgrade) still
 * reaches the client as 101, then the close frame; the hello between is dropped. */
TEST(ws_transport_1013_keeps_the_answer)
{
    struct tfx f;
    struct rec r = { 0 };
    uint8_t got[256];

    ASSERT(tfx_init(&f, 0) == 0);
    struct ws_stream *s = tfx_stream(&f, &r, ANSWER);
    ASSERT(s);
    struct ws_buf *b = ws_buf_text("{\"type\":\"hello\"}", 16);
    ASSERT_EQ(ws_stream_socket_ops.send(s, b, 0), 0);
    ws_buf_unref(b);
    ws_stream_socket_ops.close(s, 1013, "slow");
    ws_stream_socket_ops.flush_all(f.t);
    ssize_t n = read(peer_of(s), got, sizeof(got));
    size_t alen = strlen(ANSWER);
    ASSERT_EQ(n, (ssize_t)(alen + 2 + 2 + 4));
    ASSERT(memcmp(got, ANSWER, alen) == 0);
    ASSERT_EQ(got[alen], 0x88);                  /* close, FIN */
    ASSERT_EQ(got[alen + 1], 6);                 /* code + "slow" */
    ASSERT_EQ((got[alen + 2] << 8) | got[alen + 3], 1013);
    tfx_free(&f);
}

/* Our close: "closing" at once with its code, data refused from then on; the close
 * frame written, our side shut (SHUT, control frames refused too); the client's EOF
 * ends it: "gone", once, after "closing". */
TEST(ws_transport_close_path_ours)
{
    struct tfx f;
    struct rec r = { 0 };
    uint8_t got[64];

    ASSERT(tfx_init(&f, 0) == 0);
    struct ws_stream *s = tfx_stream(&f, &r, NULL);
    ws_stream_socket_ops.close(s, 1000, "bye");
    ws_stream_socket_ops.close(s, 1001, "again");   /* nothing: closing already */
    ASSERT_EQ(r.closings, 1);
    ASSERT_EQ(r.code, 1000);
    struct ws_buf *b = ws_buf_text("x", 1);
    ASSERT_EQ(ws_stream_socket_ops.send(s, b, 0), -EPIPE);
    ws_stream_socket_ops.flush_all(f.t);
    ASSERT_EQ(s->state, WS_SHUT);
    ASSERT_EQ(ws_stream_socket_ops.send(s, b, 1), -EPIPE);
    ws_buf_unref(b);
    ssize_t n = read(peer_of(s), got, sizeof(got));
    ASSERT(n >= 4);
    ASSERT_EQ(got[0], 0x88);
    ASSERT_EQ((got[2] << 8) | got[3], 1000);
    for (int i = 0; i < 10; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);                  /* the shutdown is the loop's */
    ASSERT_EQ(read(peer_of(s), got, sizeof(got)), 0);   /* our FIN */
    ASSERT(shutdown(peer_of(s), SHUT_WR) == 0);
    run_until(&f, &r.gones);
    ASSERT_EQ(r.gones, 1);
    ASSERT(r.order_ok);
    tfx_free(&f);
}

/* The client's close, answered; once our answer is out the stream is gone without a
 * linger (the handshake is complete). */
TEST(ws_transport_close_path_peer)
{
    struct tfx f;
    struct rec r = { 0 };
    uint8_t buf[64];
    static const uint8_t code[2] = { 0x03, 0xe8 };

    ASSERT(tfx_init(&f, 0) == 0);
    struct ws_stream *s = tfx_stream(&f, &r, NULL);
    size_t n = wst_frame(buf, 1, 8, code, 2, 1, wst_key);
    ws_stream_feed(s, buf, n);
    ASSERT_EQ(r.closings, 1);
    ASSERT_EQ(r.code, 1000);
    ws_stream_socket_ops.flush_all(f.t);
    run_until(&f, &r.gones);
    ASSERT_EQ(r.gones, 1);
    ASSERT(r.order_ok);
    tfx_free(&f);
}

/* EOF while open, and a linger that runs out: both end in "closing" (1006 for the
 * EOF) then "gone"; expire before the deadline does nothing. */
TEST(ws_transport_close_path_eof_and_linger)
{
    struct tfx f;
    struct rec a = { 0 }, b = { 0 };

    ASSERT(tfx_init(&f, 0) == 0);
    struct ws_stream *sa = tfx_stream(&f, &a, NULL);
    struct ws_stream *sb = tfx_stream(&f, &b, NULL);
    ASSERT(shutdown(peer_of(sa), SHUT_WR) == 0);
    run_until(&f, &a.gones);
    ASSERT_EQ(a.closings, 1);
    ASSERT_EQ(a.code, WS_CLOSE_ABNORMAL);
    ASSERT_EQ(a.gones, 1);
    ASSERT(a.order_ok);

    ws_stream_socket_ops.close(sb, 4000, "heartbeat timeout");
    ws_stream_socket_ops.flush_all(f.t);
    uint64_t now = mono_ms();
    ws_stream_socket_ops.expire(sb, now);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    ASSERT_EQ(b.gones, 0);
    ws_stream_socket_ops.expire(sb, now + WS_STREAM_LINGER_MS + 1);
    run_until(&f, &b.gones);
    ASSERT_EQ(b.closings, 1);
    ASSERT_EQ(b.code, 4000);
    ASSERT_EQ(b.gones, 1);
    tfx_free(&f);
}

/* A write to a client that went away: the stream ends as if it had read EOF. */
TEST(ws_transport_failed_write_ends_the_stream)
{
    struct tfx f;
    struct rec r = { 0 };

    ASSERT(tfx_init(&f, 0) == 0);
    struct ws_stream *s = tfx_stream(&f, &r, NULL);
    struct wst_sock *ws = (struct wst_sock *)s->sock;
    ASSERT(uv_read_stop(s->sock) == 0);   /* so that the write, not the EOF, sees it */
    close(ws->peer);
    ws->peer = -1;
    struct ws_buf *b = ws_buf_text("x", 1);
    ASSERT_EQ(ws_stream_socket_ops.send(s, b, 0), 0);
    ws_buf_unref(b);
    ws_stream_socket_ops.flush_all(f.t);
    run_until(&f, &r.gones);
    ASSERT_EQ(r.closings, 1);
    ASSERT_EQ(r.code, WS_CLOSE_ABNORMAL);
    ASSERT_EQ(r.gones, 1);
    tfx_free(&f);
}

/* One wslay context serves two streams in turn (the first lends it back between
 * frames): each message reaches its own stream's owner, through the slot. */
TEST(ws_transport_pooled_context_names_its_stream)
{
    struct tfx f;
    struct rec a = { 0 }, b = { 0 };
    uint8_t buf[64];

    ASSERT(tfx_init(&f, 0) == 0);
    struct ws_stream *sa = tfx_stream(&f, &a, NULL);
    struct ws_stream *sb = tfx_stream(&f, &b, NULL);
    size_t n = wst_frame(buf, 1, 1, "from a", 6, 1, wst_key);
    ws_stream_feed(sa, buf, n);
    ASSERT(sa->wslay == NULL);
    ASSERT_EQ(f.t->npool, 1);
    struct ws_slot *slot = f.t->pool[0];
    n = wst_frame(buf, 0, 1, "from", 4, 1, wst_key);   /* b keeps it: mid-message */
    ws_stream_feed(sb, buf, n);
    ASSERT(sb->wslay == slot && slot->s == sb);
    n = wst_frame(buf, 1, 0, " b", 2, 1, wst_key);
    ws_stream_feed(sb, buf, n);
    ASSERT_EQ(a.texts, 1);
    ASSERT_STR_EQ(a.last, "from a");
    ASSERT_EQ(b.texts, 1);
    ASSERT_STR_EQ(b.last, "from b");
    ASSERT_EQ(b.read_dones, 2);
    tfx_free(&f);
}

/* Bytes that are no WebSocket at all: a close with 1002, nothing handed over. */
TEST(ws_transport_garbage_closes_1002)
{
    struct tfx f;
    struct rec r = { 0 };
    static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    ASSERT(tfx_init(&f, 0) == 0);
    struct ws_stream *s = tfx_stream(&f, &r, NULL);
    ws_stream_feed(s, (const uint8_t *)junk, sizeof(junk) - 1);
    ASSERT_EQ(r.texts, 0);
    ASSERT_EQ(r.closings, 1);
    ASSERT_EQ(r.code, 1002);
    ws_stream_feed(s, (const uint8_t *)junk, sizeof(junk) - 1);   /* dropped */
    ASSERT_EQ(r.closings, 1);
    tfx_free(&f);
}

/* The module on the test transport: a close it asks for unregisters the connection
 * at once (closing), and frees it when the stream is gone, not before. */
TEST(ws_transport_module_on_the_test_transport)
{
    struct ws_fixture fx;

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    ASSERT(wst_use_test_transport(&fx) == 0);
    struct ws_conn *c = wst_conn(&fx, 3);
    ASSERT(c);
    ASSERT(wstt_of(c->stream)->started);
    ASSERT_EQ(fx.m->nconns, 1);
    ws_conn_close(c, 1000, "bye");
    ASSERT_EQ(fx.m->nconns, 0);
    ASSERT_EQ(fx.m->nalive, 1);
    ASSERT_EQ(wst_scan(&fx, "\"type\":\"hello\"", NULL), 1000);
    ASSERT_EQ(fx.m->nalive, 0);
    wst_free(&fx);
}

/* Shutdown after a drain cut short: streams are let go of while one still has bytes to
 * read and another's socket is already closing. Neither may call back, and each block
 * goes with its socket's close, after the transport (ASan sees a use after free or a
 * leak otherwise). */
TEST(ws_transport_release_at_shutdown)
{
    struct tfx f;
    struct rec r1 = { 0 }, r2 = { 0 };
    static const uint8_t ping[] = { 0x89, 0x80, 1, 2, 3, 4 };   /* masked, empty */

    ASSERT(tfx_init(&f, 0) == 0);
    struct ws_stream *open = tfx_stream(&f, &r1, ANSWER);
    struct ws_stream *closing = tfx_stream(&f, &r2, ANSWER);
    ASSERT(open && closing);
    ws_stream_socket_ops.flush_all(f.t);
    ASSERT_EQ(write(peer_of(open), ping, sizeof(ping)), (ssize_t)sizeof(ping));
    ws_stream_lost(closing);         /* its socket's close is now on the way */
    ASSERT_EQ(r2.closings, 1);
    ws_stream_socket_ops.release(open);
    ws_stream_socket_ops.release(closing);
    ws_transport_free(f.t);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    ASSERT_EQ(r1.texts + r1.closings + r1.gones + r2.gones, 0);
    for (struct wst_sock *ws = f.socks; ws; ws = ws->next)
        ASSERT(ws->closed);
    ASSERT_EQ(uv_loop_close(&f.loop), 0);
    while (f.socks) {
        struct wst_sock *ws = f.socks;
        f.socks = ws->next;
        close(ws->peer);
        free(ws);
    }
}
