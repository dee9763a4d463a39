/* control.c: the control frames we write ourselves rather than leave to wslay.
 *
 * Pongs: wslay queues its answer to a ping in its own queue, which reaches ours only
 * when the read is over (conn.c pumps it then); a reply to a message that followed the
 * ping in the same read would be queued first and overtake the pong. So the pong is
 * queued here, from the message callback, in the order of the frames read, and wslay's
 * copy is dropped on its way out (conn.c's send callback).
 *
 * The close after a failed stream: a protocol error caught by wslay's frame layer (a
 * control frame over 125 bytes or fragmented, a length with its top bit set or not in
 * its shortest form) makes wslay_event_recv return an error, after which the context
 * must not be used again, so the close it queued (without a status code) never comes
 * out of it. Ours, 2 bytes of status, goes in its place. */
#include <errno.h>
#include <string.h>

#include "ws_internal.h"

int ws_conn_queue_pong(struct ws_conn *c, const uint8_t *payload, size_t len)
{
    uint8_t *p;
    struct ws_buf *b;
    int rc;

    if (c->state != WS_OPEN)
        return 0;   /* nothing may follow our close frame */
    b = ws_buf_new(len, WSLAY_PONG, &p);
    if (!b)
        return -ENOMEM;
    if (len)
        memcpy(p, payload, len);
    rc = ws_conn_queue(c, b, WS_PRIO_CONTROL);
    ws_buf_unref(b);
    return rc;
}

int ws_conn_queue_close_frame(struct ws_conn *c, uint16_t code)
{
    uint8_t *p;
    struct ws_buf *b = ws_buf_new(2, WSLAY_CONNECTION_CLOSE, &p);
    int rc;

    if (!b)
        return -ENOMEM;
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    rc = ws_conn_queue(c, b, WS_PRIO_CONTROL);
    ws_buf_unref(b);
    return rc;
}

/* 1 when the bytes wslay hands its send callback are its own pong (header or payload),
 * to be dropped. wslay gives a frame's header and its payload in two calls, the payload
 * whole (server frames are unmasked and our callback always takes everything); the
 * header says whether a payload follows (WSLAY_MSG_MORE). */
int ws_conn_drop_wslay_pong(struct ws_conn *c, const uint8_t *data, int flags)
{
    if (c->wslay_payload_next) {
        c->wslay_payload_next = 0;
        return c->wslay_dropping;
    }
    c->wslay_dropping = (data[0] & 0x0f) == WSLAY_PONG;
    c->wslay_payload_next = (flags & WSLAY_MSG_MORE) != 0;
    return c->wslay_dropping;
}
