/* conn_wslay.c: wslay's side of a connection. One set of callbacks serves every
 * connection: they find theirs through m->cur, set around each wslay call. The recv
 * callback serves the bytes of the current read; when they run out it says
 * WOULDBLOCK. The send callback copies wslay's output (a close) into the connection's
 * queue; its pongs are dropped there, since msg_cb queued ours in order (control.c).
 * Messages' bytes are gathered by inbound.c (wslay does not buffer data frames). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/metrics.h"
#include "ws_internal.h"

/* Header bytes of a client frame (always masked) with this payload length. */
static uint64_t frame_head_len(uint64_t payload)
{
    return 2 + (payload < 126 ? 0 : payload <= 0xffff ? 2 : 8) + 4;
}

/* --- wslay callbacks ----------------------------------------------------------------- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user)
{
    struct ws_module *m = user;
    struct ws_input *in = m->input;
    (void)flags;

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

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                       int flags, void *user)
{
    struct ws_conn *c = ((struct ws_module *)user)->cur;
    struct ws_buf *b;

    if (c && ws_conn_drop_wslay_pong(c, data, flags))
        return (ssize_t)len;   /* msg_cb queued the pong already, in order */
    b = c ? ws_buf_raw(data, len) : NULL;
    if (!b) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    /* A refused control frame (socket already dead) is simply dropped. */
    ws_conn_queue(c, b, WS_PRIO_CONTROL);
    ws_buf_unref(b);
    return (ssize_t)len;
}

static void frame_start_cb(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
    struct ws_conn *c = ((struct ws_module *)user)->cur;
    (void)ctx;

    c->frame_bytes = frame_head_len(arg->payload_length) + arg->payload_length;
    if ((arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) && !arg->fin)
        c->in_message = 1;
    if (ws_rx_frame_start(c, arg->opcode, arg->fin, arg->payload_length) == -EMSGSIZE)
        ws_conn_close(c, WSLAY_CODE_MESSAGE_TOO_BIG, "message too big");
    if (arg->opcode == WSLAY_BINARY_FRAME)
        ws_conn_close(c, WSLAY_CODE_UNSUPPORTED_DATA, "binary frames are not supported");
    /* wslay takes a 1-byte close payload for "no status" and echoes an empty close;
     * RFC 6455 5.5.1 has 0 bytes or a 2-byte code first. Our close goes first, so its
     * echo is never queued. */
    if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->payload_length == 1)
        ws_conn_close(c, WSLAY_CODE_PROTOCOL_ERROR, "a close payload of 1 byte");
}

static void frame_chunk_cb(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
    struct ws_conn *c = ((struct ws_module *)user)->cur;
    (void)ctx;

    if (ws_rx_chunk(c, arg->data, arg->data_length) < 0)
        ws_conn_close(c, 1011, "out of memory");
}

static void frame_end_cb(wslay_event_context_ptr ctx, void *user)
{
    struct ws_conn *c = ((struct ws_module *)user)->cur;
    (void)ctx;

    c->consumed += c->frame_bytes;
    c->frame_bytes = 0;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    struct ws_module *m = user;
    struct ws_conn *c = m->cur;
    (void)ctx;

    METRIC_INC(m->metrics.frames_in);
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        c->in_message = 0;
    switch (arg->opcode) {
    case WSLAY_CONNECTION_CLOSE:
        /* wslay queued the answering close itself. */
        if (c->state == WS_OPEN)
            ws_conn_begin_closing(c, arg->status_code ? arg->status_code : 1005);
        break;
    case WSLAY_TEXT_FRAME:
        if (c->state == WS_OPEN) {
            size_t len;
            const char *text = ws_rx_text(c, &len);
            if (m->on_text)
                m->on_text(c, text, len);
            else
                ws_dispatch_text(c, text, len);
        }
        ws_rx_done(c);
        break;
    case WSLAY_PING:
        if (ws_conn_queue_pong(c, arg->msg, arg->msg_length) == -ENOMEM)
            ws_conn_close(c, 1011, "out of memory");
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

/* --- wslay contexts on loan ------------------------------------------------------------
 * A wslay context is about 8.8 KB (two 4 KB buffers), ten times the rest of a
 * connection. Between frames it holds no state a fresh one lacks, so an idle
 * connection gives its context back to a small pool and borrows one when bytes
 * arrive. "Between frames" is known by counting: every byte fed is accounted to a
 * complete frame (header + payload), no fragmented message is open, nothing waits to
 * be sent, and the connection is open. The callbacks find their connection through
 * m->cur, since a pooled context serves many. */

int ws_wslay_acquire(struct ws_conn *c)
{
    struct ws_module *m = c->m;

    if (c->wslay)
        return 0;
    if (m->npool) {
        c->wslay = m->pool[--m->npool];
        return 0;
    }
    if (wslay_event_context_server_init(&c->wslay, &wslay_cbs, m) != 0) {
        c->wslay = NULL;
        return -ENOMEM;
    }
    /* wslay holds control frames to this limit too, and a ping may carry 125 bytes;
     * data frames are held to max_message_bytes by inbound.c, fragments added up. */
    wslay_event_config_set_max_recv_msg_length(
        c->wslay, m->max_message_bytes < 125 ? 125 : (uint64_t)m->max_message_bytes);
    wslay_event_config_set_no_buffering(c->wslay, 1);   /* inbound.c gathers messages */
    return 0;
}

void ws_wslay_release(struct ws_conn *c)
{
    struct ws_module *m = c->m;
    wslay_event_context_ptr ctx = c->wslay;

    if (!ctx || c->state != WS_OPEN || c->consumed != c->fed || c->in_message ||
        c->frame_bytes || wslay_event_want_write(ctx) || !wslay_event_get_read_enabled(ctx) ||
        !wslay_event_get_write_enabled(ctx) || wslay_event_get_close_received(ctx) ||
        wslay_event_get_close_sent(ctx))
        return;
    c->wslay = NULL;
    c->fed = c->consumed = 0;
    if (m->npool < WS_WSLAY_POOL)
        m->pool[m->npool++] = ctx;
    else
        wslay_event_context_free(ctx);
}

/* Frees a context that may be mid-frame (never pooled). */
void ws_wslay_drop(struct ws_conn *c)
{
    if (c->wslay)
        wslay_event_context_free(c->wslay);
    c->wslay = NULL;
}
