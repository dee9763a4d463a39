/* ws_stream.c: one WebSocket stream's protocol and life.
 *
 * Inbound: bytes from the socket (and first the bytes read past the upgrade request)
 * are fed to wslay, which checks masking, fragmentation, control frames between
 * fragments, UTF-8 of text (1007), the size limit (1009) and protocol errors (1002),
 * and hands us messages (their bytes: ws_stream_rx.c). All of a read is consumed
 * before the read callback returns, so one read buffer serves every stream. wslay's
 * callbacks find their stream through their user_data (a ws_slot: ws_stream_pool.c).
 *
 * Outbound: see ws_stream_tx.c. wslay's own close comes through its send callback and
 * is copied into the same queue as the owner's frames; pongs are queued here, from the
 * message callback, in the order of the frames read (ws_stream_rx.c says why).
 *
 * The close path, the only way a stream's life moves on:
 *   leave_open   OPEN -> CLOSING: the code is recorded, the owner hears "closing"
 *                (asked for by the owner, the peer's close, a protocol error; with
 *                WS_CLOSE_ABNORMAL when the stream just ends)
 *   finish       the close frame is written: -> SHUT (our side shut down, waiting for
 *                the peer's close or EOF, WS_STREAM_LINGER_MS at most), or straight on
 *                to end when the peer's close came already
 *   end          -> GONE: the socket closes (EOF, read or write error, the linger's
 *                end); the memory goes in its close callback, never inside a callback
 *                of the stream's own, and the owner hears "gone" last. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/metrics.h"
#include "chatd/util.h"
#include "ws_stream_internal.h"

static void end(struct ws_stream *s);
static const struct wslay_event_callbacks wslay_cbs;

/* --- the close path ------------------------------------------------------------------ */

static int feeding(const struct ws_stream *s)
{
    return s->t->input && s->t->input->s == s;
}

static void leave_open(struct ws_stream *s, uint16_t code)
{
    if (s->state != WS_OPEN)
        return;
    s->state = WS_CLOSING;
    s->close_code = code;
    s->close_deadline = mono_ms() + WS_STREAM_LINGER_MS;
    if (!feeding(s))
        ws_rx_done(s);   /* nothing more is handed over (a feed frees it after) */
    s->t->ev.closing(WS_OWNER(s), code);
}

void ws_stream_close(struct ws_stream *s, uint16_t code, const char *reason)
{
    if (s->state != WS_OPEN)
        return;
    if (ws_pool_acquire(s, &wslay_cbs) < 0) {
        end(s);
        return;
    }
    leave_open(s, code);
    if (code == 1013)
        ws_tx_drop_unsent(s);   /* its memory goes now, not when the peer reads */
    wslay_event_queue_close(s->wslay->ctx, code, (const uint8_t *)reason,
                            reason ? strlen(reason) : 0);
    ws_tx_mark_dirty(s);        /* the close frame is produced at the next flush */
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    free(req);
}

/* Moves wslay's pending output (pong, close) into the queue. Never called from inside
 * a wslay callback, so no wslay call is ever inside another. */
static void pump(struct ws_stream *s)
{
    if (s->state == WS_GONE || !s->wslay || !wslay_event_want_write(s->wslay->ctx))
        return;
    if (wslay_event_send(s->wslay->ctx) < 0)
        end(s);
}

/* Everything queued went out; once not open, that includes the close frame. */
static void finish(struct ws_stream *s)
{
    if (s->state == WS_OPEN || s->state == WS_GONE)
        return;
    pump(s);
    if (s->q_len || s->state == WS_GONE)
        return;   /* the close frame is queued now: back here once it is written */
    if (s->wslay ? wslay_event_get_close_received(s->wslay->ctx) : !s->wslay_dead) {
        end(s);
        return;
    }
    if (s->state == WS_CLOSING) {
        s->state = WS_SHUT;
        s->close_deadline = mono_ms() + WS_STREAM_LINGER_MS;
        uv_shutdown_t *req = malloc(sizeof(*req));
        if (!req || uv_shutdown(req, s->sock, shutdown_cb) != 0)
            free(req);
    }
}

/* What of a stream lives in its transport: queue, flush list place, wslay context. */
static void let_go(struct ws_stream *s)
{
    ws_tx_free(s);
    ws_tx_unmark_dirty(s);
    free(s->rx);
    s->rx = NULL;
    ws_pool_drop(s);
}

static void freed(void *arg)
{
    struct ws_stream *s = arg;

    if (!s->orphan) {
        let_go(s);
        s->t->ev.gone(WS_OWNER(s));
    }
    free(s);
}

static void end(struct ws_stream *s)
{
    if (s->state == WS_GONE)
        return;
    leave_open(s, WS_CLOSE_ABNORMAL);
    s->state = WS_GONE;
    ws_tx_drop_unsent(s);
    uv_read_stop(s->sock);
    s->t->cfg.close_socket(s->sock, freed, s);
}

void ws_stream_lost(struct ws_stream *s)
{
    end(s);
}

void ws_stream_expire(struct ws_stream *s, uint64_t now_ms)
{
    if ((s->state == WS_CLOSING || s->state == WS_SHUT) && now_ms >= s->close_deadline)
        end(s);
}

/* A write finished (status 0: the queue is empty) or failed. */
static void written(struct ws_stream *s, int status)
{
    if (status == -ENOMEM)
        leave_open(s, 1011);
    if (status < 0)
        end(s);
    else
        finish(s);
}

void ws_stream_install(struct ws_transport *t)
{
    t->pump = pump;
    t->written = written;
}

void ws_stream_release(struct ws_stream *s)
{
    /* The transport's part goes now, while it is there; the socket's callbacks may
     * still come (a read, a write, a close) and find s an orphan until it is closed. */
    let_go(s);
    if (!s->sock) {                  /* never opened */
        free(s);
        return;
    }
    s->orphan = 1;
    if (s->state == WS_GONE)
        return;                      /* its close is on the way */
    s->state = WS_GONE;
    uv_read_stop(s->sock);
    s->t->cfg.close_socket(s->sock, freed, s);
}

void ws_stream_free_now(struct ws_stream *s)
{
    let_go(s);
    free(s);
}

/* --- wslay's callbacks --------------------------------------------------------------- */

static struct ws_stream *stream_of(void *user)
{
    return ((struct ws_slot *)user)->s;
}

/* Header bytes of a client frame (always masked) with this payload length. */
static uint64_t frame_head_len(uint64_t payload)
{
    return 2 + (payload < 126 ? 0 : payload <= 0xffff ? 2 : 8) + 4;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user)
{
    struct ws_input *in = stream_of(user)->t->input;

    if (!in || in->off >= in->len) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = in->len - in->off;
    if (n > len)
        n = len;
    memcpy(buf, in->data + in->off, n);
    in->off += n;
    return (ssize_t)n;
}

/* A control frame of ours; past the queue's memory the stream closes with 1011. */
static int queue_control(struct ws_stream *s, int rc)
{
    if (rc == -ENOMEM)
        ws_stream_close(s, 1011, "out of memory");
    return rc;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                       int flags, void *user)
{
    struct ws_stream *s = stream_of(user);
    struct ws_buf *b;

    if (ws_rx_is_wslay_pong(s, data, flags))
        return (ssize_t)len;   /* msg_cb queued the pong already, in order */
    if (!(b = ws_buf_raw(data, len))) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    /* A refused control frame (socket already dead) is simply dropped. */
    queue_control(s, ws_tx_queue(s, b));
    ws_buf_unref(b);
    return (ssize_t)len;
}

static void frame_start_cb(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
    struct ws_stream *s = stream_of(user);

    s->wslay->frame_bytes = frame_head_len(arg->payload_length) + arg->payload_length;
    if ((arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) && !arg->fin)
        s->wslay->in_message = 1;
    if (ws_rx_frame_start(s, arg->opcode, arg->fin, arg->payload_length) == -EMSGSIZE)
        ws_stream_close(s, WSLAY_CODE_MESSAGE_TOO_BIG, "message too big");
    if (arg->opcode == WSLAY_BINARY_FRAME)
        ws_stream_close(s, WSLAY_CODE_UNSUPPORTED_DATA, "binary frames are not supported");
    /* wslay takes a 1-byte close payload for "no status" and echoes an empty close;
     * RFC 6455 5.5.1 has 0 bytes or a 2-byte code first. Our close goes first, so its
     * echo is never queued. */
    if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->payload_length == 1)
        ws_stream_close(s, WSLAY_CODE_PROTOCOL_ERROR, "a close payload of 1 byte");
}

static void frame_chunk_cb(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
    struct ws_stream *s = stream_of(user);

    if (ws_rx_chunk(s, arg->data, arg->data_length) < 0)
        ws_stream_close(s, 1011, "out of memory");
}

static void frame_end_cb(wslay_event_context_ptr ctx, void *user)
{
    struct ws_stream *s = stream_of(user);

    s->wslay->consumed += s->wslay->frame_bytes;
    s->wslay->frame_bytes = 0;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    struct ws_stream *s = stream_of(user);
    size_t len;

    if (s->t->cfg.frames_in)
        METRIC_INC(s->t->cfg.frames_in);
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        s->wslay->in_message = 0;
    switch (arg->opcode) {
    case WSLAY_CONNECTION_CLOSE:
        /* wslay queued the answering close itself. */
        leave_open(s, arg->status_code ? arg->status_code : 1005);
        break;
    case WSLAY_TEXT_FRAME:
        if (s->state == WS_OPEN) {
            const char *text = ws_rx_text(s, &len);
            s->t->ev.text(WS_OWNER(s), text, len);
        }
        ws_rx_done(s);
        break;
    case WSLAY_PING:
        /* nothing may follow our close frame */
        if (s->state == WS_OPEN)
            queue_control(s, ws_rx_queue_pong(s, arg->msg, arg->msg_length));
        break;
    default:
        break;   /* pong (liveness only), binary (closing) */
    }
}

static const struct wslay_event_callbacks wslay_cbs = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_frame_recv_start_callback = frame_start_cb,
    .on_frame_recv_chunk_callback = frame_chunk_cb,
    .on_frame_recv_end_callback = frame_end_cb,
    .on_msg_recv_callback = msg_cb,
};

/* --- feeding a read through wslay ------------------------------------------------------ */

/* wslay gave up on the stream: after a negative return its context must not be used
 * again, so the close it queued never comes out of it. A protocol error caught by its
 * frame layer (a control frame over 125 bytes or fragmented, a length with its top bit
 * set or not in its shortest form) is one. Our close, 2 bytes of status, goes in its
 * place unless one was sent already; the context goes, and the stream closes as any
 * other, its further input dropped. */
static void fail(struct ws_stream *s, int rc)
{
    uint16_t code = rc == WSLAY_ERR_NOMEM ? 1011 : WSLAY_CODE_PROTOCOL_ERROR;
    int close_sent = wslay_event_get_close_sent(s->wslay->ctx);

    if (s->state == WS_OPEN)
        leave_open(s, code);
    else
        code = s->close_code;   /* the close we had decided on, still inside wslay */
    ws_pool_drop(s);
    s->wslay_dead = 1;
    if (!close_sent && ws_rx_queue_close(s, code) == -ENOMEM)
        end(s);
}

/* After wslay_event_recv: what it shut, what it queued, whether the context goes back. */
static void after_recv(struct ws_stream *s)
{
    wslay_event_context_ptr ctx = s->wslay->ctx;

    /* wslay shut reading: it queued a close for a protocol error, a bad UTF-8 text
     * (1007) or an oversized message (1009), or answered the peer's close. */
    if (s->state == WS_OPEN && !wslay_event_get_read_enabled(ctx)) {
        pump(s);
        leave_open(s, wslay_event_get_status_code_sent(ctx));
    }
    pump(s);
    if (s->state == WS_GONE)
        return;
    if (s->state == WS_OPEN)
        s->t->ev.read_done(WS_OWNER(s));
    if (s->state == WS_SHUT && wslay_event_get_close_received(ctx))
        end(s);
    else
        ws_pool_release(s);
}

void ws_stream_feed(struct ws_stream *s, const uint8_t *data, size_t len)
{
    struct ws_transport *t = s->t;
    struct ws_input in = { .s = s, .data = data, .len = len };
    int rc;

    if (s->state == WS_GONE || !len)
        return;
    s->last_rx_ms = mono_ms();
    if (s->wslay_dead)
        return;   /* after a failed stream: bytes are read and dropped until EOF */
    if (ws_pool_acquire(s, &wslay_cbs) < 0) {
        end(s);
        return;
    }
    if (!wslay_event_get_read_enabled(s->wslay->ctx))
        return;   /* after a close: bytes are read and dropped until EOF */
    s->wslay->fed += len;
    ws_rx_feed_begin(&in);
    t->input = &in;
    rc = wslay_event_recv(s->wslay->ctx);
    t->input = NULL;
    ws_rx_feed_end(s);
    if (rc < 0)
        fail(s, rc);
    else
        after_recv(s);
    if (s->state != WS_OPEN)
        ws_rx_done(s);   /* closing: nothing more is handed over */
}
