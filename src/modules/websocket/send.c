/* send.c: what a connection may queue, and the one way a frame the module encoded
 * reaches its stream. The bound is the module's: the bytes the kernel has not taken
 * yet plus the live messages a running sync holds back stay under send_queue_bytes,
 * or the connection is closed with 1013 and its unsent frames dropped at once (the
 * slow consumer loses; nobody else waits). Memory held per connection is thus at most
 * send_queue_bytes plus what the kernel took of the write in flight. Typing frames,
 * hints only, are dropped past half of it. */
#include <errno.h>
#include <stdlib.h>

#include "ws_internal.h"

size_t ws_conn_unsent(const struct ws_conn *c)
{
    return c->m->ops->unsent(c->stream);
}

uint64_t ws_conn_taken(const struct ws_conn *c)
{
    return c->m->ops->taken(c->stream);
}

/* Held-back messages are counted whole, though other recipients may share them: the
 * bound holds whatever the others do. */
size_t ws_conn_backlog(const struct ws_conn *c)
{
    return ws_conn_unsent(c) + (c->sync ? c->sync->held_bytes : 0);
}

void ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason)
{
    if (c->open)
        c->m->ops->close(c->stream, code, reason);
}

int ws_conn_queue(struct ws_conn *c, struct ws_buf *b, int prio)
{
    struct ws_module *m = c->m;

    if (!c->stream)
        return -EPIPE;
    if (prio != WS_PRIO_CONTROL) {
        if (!c->open)
            return -EPIPE;
        size_t backlog = ws_conn_backlog(c);
        if (prio == WS_PRIO_TYPING && backlog > m->send_queue_bytes / 2)
            return -EAGAIN;
        if (backlog + b->len > m->send_queue_bytes) {
            ws_conn_close(c, 1013, "slow consumer");
            return -ENOBUFS;
        }
    }
    return m->ops->send(c->stream, b, prio == WS_PRIO_CONTROL);
}

int ws_conn_send_json(struct ws_conn *c, const char *json, size_t len)
{
    struct ws_buf *b = ws_buf_text(json, len);
    int rc;

    if (!b)
        return -ENOMEM;
    rc = ws_conn_queue(c, b, WS_PRIO_NORMAL);
    ws_buf_unref(b);
    return rc;
}

int ws_conn_send_frame(struct ws_conn *c, char *json, const size_t *len)
{
    int rc;

    if (!json)
        return -ENOMEM;
    rc = ws_conn_send_json(c, json, *len);
    free(json);
    return rc;
}

void ws_flush_all(struct ws_module *m)
{
    m->ops->flush_all(m->tx);
}
