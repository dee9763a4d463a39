/* ws_stream_rx.c: the bytes of incoming text messages, and the stall check.
 *
 * wslay runs without buffering data frames (control frames it still buffers: 125
 * bytes at most). Buffering, it allocates a frame's announced length when the
 * frame's first byte arrives: 15 bytes announcing 64 KiB held 73 KiB until the
 * connection went. Here a message's bytes are gathered as they arrive, so what a
 * stream holds is what it sent, at most max_message_bytes; the common case, a whole
 * unfragmented frame within one read, is handed over straight from wslay's read
 * buffer, without a copy. wslay still checks UTF-8 and each frame's length; the
 * length of a message (of its fragments added up) is checked here.
 *
 * Stall: a stream in the middle of a frame or of a fragmented message makes progress
 * when bytes of it arrive (control frames between fragments are not progress, so
 * pings cannot keep a message open). Its owner closes one that made none for long.
 *
 * The control frames input is answered with, built here rather than by wslay:
 * pongs: wslay queues its answer to a ping in its own queue, which reaches ours only
 * when the read is over; a reply to a message that followed the ping in the same read
 * would be queued first and overtake the pong. So the pong is queued from the message
 * callback, in the order of the frames read, and wslay's copy is dropped on its way
 * out. The close after a stream wslay gave up on: see ws_stream.c's fail(). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ws_stream_internal.h"

static int is_data(int opcode)
{
    return opcode == WSLAY_TEXT_FRAME || opcode == WSLAY_CONTINUATION_FRAME;
}

/* wslay starts a frame with its first payload bytes, in one call: a start whose first
 * chunk never came (the frame refused for bad UTF-8 in them) is forgotten here, or the
 * next stream's chunk of the same length would pass for its whole message. */
void ws_rx_feed_begin(struct ws_input *in)
{
    in->direct = NULL;
    in->first = 0;
}

/* Outside a fragmented message every byte is progress: of a lone frame, its header
 * included, or the start of something new. Inside one, only the bytes of its data
 * frames are (ws_rx_frame_start, ws_rx_chunk). */
void ws_rx_feed_end(struct ws_stream *s)
{
    if (!s->wslay->in_message)
        s->rx_progress_ms = s->last_rx_ms;
}

int ws_rx_frame_start(struct ws_stream *s, int opcode, int fin, uint64_t payload_len)
{
    struct ws_input *in = s->t->input;

    s->wslay->frame_opcode = (uint8_t)opcode;
    in->first = 1;
    in->first_fin = (uint8_t)fin;
    in->first_len = payload_len;
    if (!is_data(opcode))
        return 0;
    s->rx_progress_ms = s->last_rx_ms;
    /* wslay checked this frame alone (against at least 125, for pings); the fragments
     * before it add up */
    if (s->rx_len + payload_len > (uint64_t)s->t->cfg.max_message_bytes)
        return -EMSGSIZE;
    return 0;
}

static int rx_append(struct ws_stream *s, const uint8_t *data, size_t len)
{
    size_t need = (size_t)s->rx_len + len, max = (size_t)s->t->cfg.max_message_bytes;

    if (need > s->rx_cap) {
        size_t cap = s->rx_cap ? (size_t)s->rx_cap * 2 : 1024;
        if (cap > max)
            cap = max;
        if (cap < need)
            cap = need;
        uint8_t *p = realloc(s->rx, cap);
        if (!p)
            return -ENOMEM;
        s->rx = p;
        s->rx_cap = (uint32_t)cap;
    }
    memcpy(s->rx + s->rx_len, data, len);
    s->rx_len += (uint32_t)len;
    return 0;
}

int ws_rx_chunk(struct ws_stream *s, const uint8_t *data, size_t len)
{
    struct ws_input *in = s->t->input;
    int first = in->first;

    in->first = 0;
    if (s->state != WS_OPEN || !is_data(s->wslay->frame_opcode))
        return 0;
    s->rx_progress_ms = s->last_rx_ms;
    if (first && in->first_fin && s->wslay->frame_opcode == WSLAY_TEXT_FRAME &&
        len == in->first_len) {
        /* The whole message, in wslay's buffer until its message callback returns. */
        in->direct = data;
        in->direct_len = len;
        return 0;
    }
    return len ? rx_append(s, data, len) : 0;
}

const char *ws_rx_text(struct ws_stream *s, size_t *len)
{
    struct ws_input *in = s->t->input;

    if (in && in->direct) {
        *len = in->direct_len;
        return (const char *)in->direct;
    }
    *len = s->rx_len;
    return s->rx ? (const char *)s->rx : "";
}

void ws_rx_done(struct ws_stream *s)
{
    if (s->t->input && s->t->input->s == s)
        s->t->input->direct = NULL;
    free(s->rx);   /* an idle stream holds no buffer */
    s->rx = NULL;
    s->rx_len = s->rx_cap = 0;
}

int ws_rx_stalled(const struct ws_stream *s, uint64_t now, uint64_t after_ms)
{
    if (!s->wslay || s->wslay_dead ||
        (s->wslay->fed == s->wslay->consumed && !s->wslay->in_message))
        return 0;
    return now - s->rx_progress_ms >= after_ms;
}

static int queue_control(struct ws_stream *s, struct ws_buf *b)
{
    int rc;

    if (!b)
        return -ENOMEM;
    rc = ws_tx_queue(s, b);
    ws_buf_unref(b);
    return rc;
}

int ws_rx_queue_pong(struct ws_stream *s, const uint8_t *payload, size_t len)
{
    uint8_t *p;
    struct ws_buf *b = ws_buf_new(len, WSLAY_PONG, &p);

    if (b && len)
        memcpy(p, payload, len);
    return queue_control(s, b);
}

int ws_rx_queue_close(struct ws_stream *s, uint16_t code)
{
    uint8_t *p;
    struct ws_buf *b = ws_buf_new(2, WSLAY_CONNECTION_CLOSE, &p);

    if (b) {
        p[0] = (uint8_t)(code >> 8);
        p[1] = (uint8_t)code;
    }
    return queue_control(s, b);
}

/* wslay gives a frame's header and its payload in two calls, the payload whole
 * (server frames are unmasked and our callback always takes everything); the header
 * says whether a payload follows (WSLAY_MSG_MORE). */
int ws_rx_is_wslay_pong(struct ws_stream *s, const uint8_t *data, int flags)
{
    struct ws_slot *w = s->wslay;

    if (w->wslay_payload_next) {
        w->wslay_payload_next = 0;
        return w->wslay_dropping;
    }
    w->wslay_dropping = (data[0] & 0x0f) == WSLAY_PONG;
    w->wslay_payload_next = (flags & WSLAY_MSG_MORE) != 0;
    return w->wslay_dropping;
}
