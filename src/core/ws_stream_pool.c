/* ws_stream_pool.c: wslay contexts on loan. A wslay context is about 8.8 KB (two 4 KB
 * buffers), ten times the rest of a connection. Between frames it holds no state a
 * fresh one lacks, so an idle stream gives its context back to a small pool and
 * borrows one when bytes arrive. "Between frames" is known by counting: every byte fed
 * is accounted to a complete frame (header + payload), no fragmented message is open,
 * nothing waits to be sent, and the stream is open. Each context comes with a slot,
 * its user_data, naming the stream it serves now: wslay's callbacks find their stream
 * there. */
#include <errno.h>
#include <stdlib.h>

#include "ws_stream_internal.h"

int ws_pool_acquire(struct ws_stream *s, const struct wslay_event_callbacks *cbs)
{
    struct ws_transport *t = s->t;
    struct ws_slot *slot;
    int max = t->cfg.max_message_bytes;

    if (s->wslay)
        return 0;
    if (t->npool) {
        s->wslay = t->pool[--t->npool];
        s->wslay->s = s;
        return 0;
    }
    if (!(slot = calloc(1, sizeof(*slot))))
        return -ENOMEM;
    if (wslay_event_context_server_init(&slot->ctx, cbs, slot) != 0) {
        free(slot);
        return -ENOMEM;
    }
    slot->s = s;
    s->wslay = slot;
    /* wslay holds control frames to this limit too, and a ping may carry 125 bytes;
     * data frames are held to max_message_bytes by ws_stream_rx.c, fragments added up. */
    wslay_event_config_set_max_recv_msg_length(slot->ctx, max < 125 ? 125 : (uint64_t)max);
    wslay_event_config_set_no_buffering(slot->ctx, 1);   /* ws_stream_rx.c gathers */
    return 0;
}

static void slot_free(struct ws_slot *slot)
{
    wslay_event_context_free(slot->ctx);
    free(slot);
}

void ws_pool_release(struct ws_stream *s)
{
    struct ws_transport *t = s->t;
    struct ws_slot *slot = s->wslay;
    wslay_event_context_ptr ctx = slot ? slot->ctx : NULL;

    if (!ctx || s->state != WS_OPEN || slot->consumed != slot->fed || slot->in_message ||
        slot->frame_bytes || wslay_event_want_write(ctx) || !wslay_event_get_read_enabled(ctx) ||
        !wslay_event_get_write_enabled(ctx) || wslay_event_get_close_received(ctx) ||
        wslay_event_get_close_sent(ctx))
        return;
    s->wslay = NULL;
    *slot = (struct ws_slot){ .ctx = ctx };
    if (t->npool < WS_WSLAY_POOL)
        t->pool[t->npool++] = slot;
    else
        slot_free(slot);
}

/* Frees a context that may be mid-frame (never pooled). */
void ws_pool_drop(struct ws_stream *s)
{
    if (s->wslay)
        slot_free(s->wslay);
    s->wslay = NULL;
}

void ws_pool_free(struct ws_transport *t)
{
    while (t->npool)
        slot_free(t->pool[--t->npool]);
}
