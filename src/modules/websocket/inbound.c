/* inbound.c: the bytes of incoming text messages, and the stall check.
 *
 * wslay runs without buffering data frames (control frames it still buffers: 125
 * bytes at most). Buffering, it allocates a frame's announced length when the
 * frame's first byte arrives: 15 bytes announcing 64 KiB held 73 KiB until the
 * connection went. Here a message's bytes are gathered as they arrive, so what a
 * connection holds is what it sent, at most max_message_bytes; the common case, a
 * whole unfragmented frame within one read, is dispatched straight from wslay's read
 * buffer, without a copy. wslay still checks UTF-8 and each frame's length; the
 * length of a message (of its fragments added up) is checked here.
 *
 * Stall: a connection in the middle of a frame or of a fragmented message makes
 * progress when bytes of it arrive (control frames between fragments are not
 * progress, so pings cannot keep a message open). One that made none for a heartbeat
 * period is closed with 4002 (heartbeat.c), which frees what it held. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ws_internal.h"

static int is_data(int opcode)
{
    return opcode == WSLAY_TEXT_FRAME || opcode == WSLAY_CONTINUATION_FRAME;
}

/* wslay starts a frame with its first payload bytes, in one call: a start whose first
 * chunk never came (the frame refused for bad UTF-8 in them) is forgotten here, or the
 * next connection's chunk of the same length would pass for its whole message. */
void ws_rx_feed_begin(struct ws_conn *c)
{
    c->m->rx_direct = NULL;
    c->m->rx_first = 0;
}

/* Outside a fragmented message every byte is progress: of a lone frame, its header
 * included, or the start of something new. Inside one, only the bytes of its data
 * frames are (ws_rx_frame_start, ws_rx_chunk). */
void ws_rx_feed_end(struct ws_conn *c)
{
    if (!c->in_message)
        c->rx_progress_ms = c->last_rx_ms;
}

int ws_rx_frame_start(struct ws_conn *c, int opcode, int fin, uint64_t payload_len)
{
    struct ws_module *m = c->m;

    c->frame_opcode = (uint8_t)opcode;
    m->rx_first = 1;
    m->rx_first_fin = (uint8_t)fin;
    m->rx_first_len = payload_len;
    if (!is_data(opcode))
        return 0;
    c->rx_progress_ms = c->last_rx_ms;
    /* wslay checked this frame alone (against at least 125, for pings); the fragments
     * before it add up */
    if (c->rx_len + payload_len > (uint64_t)m->max_message_bytes)
        return -EMSGSIZE;
    return 0;
}

static int rx_append(struct ws_conn *c, const uint8_t *data, size_t len)
{
    size_t need = (size_t)c->rx_len + len;

    if (need > c->rx_cap) {
        size_t cap = c->rx_cap ? (size_t)c->rx_cap * 2 : 1024;
        if (cap > (size_t)c->m->max_message_bytes)
            cap = (size_t)c->m->max_message_bytes;
        if (cap < need)
            cap = need;
        uint8_t *p = realloc(c->rx, cap);
        if (!p)
            return -ENOMEM;
        c->rx = p;
        c->rx_cap = (uint32_t)cap;
    }
    memcpy(c->rx + c->rx_len, data, len);
    c->rx_len += (uint32_t)len;
    return 0;
}

int ws_rx_chunk(struct ws_conn *c, const uint8_t *data, size_t len)
{
    struct ws_module *m = c->m;
    int first = m->rx_first;

    m->rx_first = 0;
    if (c->state != WS_OPEN || !is_data(c->frame_opcode))
        return 0;
    c->rx_progress_ms = c->last_rx_ms;
    if (first && m->rx_first_fin && c->frame_opcode == WSLAY_TEXT_FRAME &&
        len == m->rx_first_len) {
        /* The whole message, in wslay's buffer until its message callback returns. */
        m->rx_direct = data;
        m->rx_direct_len = len;
        return 0;
    }
    return len ? rx_append(c, data, len) : 0;
}

const char *ws_rx_text(struct ws_conn *c, size_t *len)
{
    struct ws_module *m = c->m;

    if (m->rx_direct) {
        *len = m->rx_direct_len;
        return (const char *)m->rx_direct;
    }
    *len = c->rx_len;
    return c->rx ? (const char *)c->rx : "";
}

void ws_rx_done(struct ws_conn *c)
{
    c->m->rx_direct = NULL;
    free(c->rx);   /* an idle connection holds no buffer */
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
}

int ws_conn_stalled(const struct ws_conn *c, uint64_t now, uint64_t after_ms)
{
    if (!c->wslay || c->wslay_dead || (c->fed == c->consumed && !c->in_message))
        return 0;
    return now - c->rx_progress_ms >= after_ms;
}
