/* bus_frames.c: bus events turned into frames. Each frame is encoded once and a reference
 * queued on every recipient connection; events carry their recipients (member_ids,
 * recipient_ids), so nothing here asks anybody who is in a room. The bus dispatches in
 * publish order and the writer commits in seq order, and the queues never reorder,
 * so each connection sees a room's messages in seq order.
 *
 * Handlers read the decoded struct (ev->data, events.h). A result whose origin names
 * another process answers no connection here: its members still get the fan-out. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/metrics.h"
#include "ws_internal.h"

/* The connection of ours an answer goes to; 0 when it names none of this process. */
static uint64_t origin_conn(const struct ws_module *m, const struct ev_origin *o)
{
    return bus_origin_is_here(m->app->bus, o) && o->conn > 0 ? (uint64_t)o->conn : 0;
}

void ws_send_finished(struct ws_module *m, struct ws_conn *c)
{
    if (c && c->pending_sends)
        c->pending_sends--;
    if (m->pending_sends)
        m->pending_sends--;
    if (m->draining)
        ws_drain_check(m);
}

/* Queues b on every open connection of the users in ids, except the connections of
 * skip_user and the connection skip. Message frames (room_id > 0) go through a
 * running sync's hold-back. Returns the number of connections reached. */
static uint64_t broadcast(struct ws_module *m, const struct ev_ids *ids, struct ws_buf *b,
                          int prio, int64_t skip_user, const struct ws_conn *skip,
                          int64_t room_id, int64_t seq)
{
    uint64_t n = 0;

    for (size_t i = 0; i < ids->n; i++) {
        int64_t uid = ids->v[i];
        struct ws_user *u = uid != skip_user ? ws_registry_user(m, uid) : NULL;
        struct ws_conn *c, *next;
        if (!u)
            continue;
        /* A queue over its bound closes its connection, which leaves this list:
         * keep the next one first. */
        for (c = u->conns; c; c = next) {
            next = c->user_next;
            if (c == skip)
                continue;
            if (room_id && c->sync && ws_sync_hold(c, b, room_id, seq))
                n++;
            else if (ws_conn_queue(c, b, prio) == 0)
                n++;
        }
    }
    return n;
}

static int on_stored(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct ws_module *m = ctx;
    const struct ev_message_stored *s = ev->data;
    const struct ev_msg *msg = s->message;
    uint64_t conn_id = origin_conn(m, s->origin);
    struct ws_conn *origin = ws_registry_conn(m, conn_id);
    /* A repeated client_msg_id was stored before: the first ack's message already
     * went to everybody. */
    int bcast = !s->duplicate;
    (void)d;

    /* The message is printed once, for the ack and for the broadcast. */
    m->json.len = 0;
    if ((origin || bcast) && ws_json_put_msg(&m->json, msg) == 0) {
        if (origin) {
            struct ws_buf *ack = ws_buf_wrap("ack", "message", m->json.data, m->json.len,
                                             msg->client_msg_id);
            if (ack) {
                ws_conn_queue(origin, ack, WS_PRIO_NORMAL);
                ws_buf_unref(ack);
            }
        }
        struct ws_buf *b = bcast ? ws_buf_wrap("message", "message", m->json.data,
                                               m->json.len, NULL) : NULL;
        if (b) {
            uint64_t n = broadcast(m, &s->member_ids, b, WS_PRIO_NORMAL, 0, origin,
                                   msg->room_id, msg->seq);
            METRIC_ADD(m->metrics.deliveries, n);
            ws_buf_unref(b);
        }
    }
    if (m->json.cap > WS_JSON_SCRATCH_KEEP)
        strbuf_free(&m->json);        /* a huge message: its buffer is not kept */
    if (conn_id)
        ws_send_finished(m, origin);
    return 0;
}

static int on_rejected(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct ws_module *m = ctx;
    const struct ev_message_rejected *r = ev->data;
    uint64_t conn_id = origin_conn(m, r->origin);
    struct ws_conn *origin = ws_registry_conn(m, conn_id);
    size_t len;
    (void)d;

    if (!conn_id)
        return 0;
    if (origin)
        ws_conn_send_frame(origin, ws_json_error_retry(r->code, r->message, r->client_msg_id,
                                            r->retry_after_ms, &len), &len);
    ws_send_finished(m, origin);
    return 0;
}

static void broadcast_json(struct ws_module *m, const struct ev_ids *ids, char *json,
                           const size_t *len, int prio, int64_t skip_user)
{
    struct ws_buf *b = json ? ws_buf_text(json, *len) : NULL;

    free(json);
    if (!b)
        return;
    broadcast(m, ids, b, prio, skip_user, NULL, 0, 0);
    ws_buf_unref(b);
}

static int on_typing(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    const struct ev_room_typing *t = ev->data;
    size_t len;
    char *json = ws_json_printf(&len, "{\"type\":\"typing\",\"room_id\":%lld,\"user_id\":%lld}",
                                (long long)t->room_id, (long long)t->user_id);
    (void)d;

    broadcast_json(ctx, &t->member_ids, json, &len, WS_PRIO_TYPING, t->user_id);
    return 0;
}

static int on_read(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    const struct ev_room_read *r = ev->data;
    size_t len;
    char *json = ws_json_printf(&len,
                                "{\"type\":\"read\",\"room_id\":%lld,\"user_id\":%lld,"
                                "\"seq\":%lld}", (long long)r->room_id,
                                (long long)r->user_id, (long long)r->seq);
    (void)d;

    broadcast_json(ctx, &r->member_ids, json, &len, WS_PRIO_NORMAL, r->user_id);
    return 0;
}

static int on_room_changed(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    const struct ev_room_changed *rc = ev->data;
    size_t len = 0;
    (void)d;

    /* members NULL (a payload without them) prints no members, as it always has. */
    broadcast_json(ctx, &rc->member_ids,
                   ws_json_room_frame(rc, rc->room->members, rc->room->nmembers, &len),
                   &len, WS_PRIO_NORMAL, 0);
    return 0;
}

static int on_presence(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    const struct ev_presence_changed *p = ev->data;
    size_t len = 0;
    (void)d;

    broadcast_json(ctx, &p->recipient_ids, ws_json_presence_frame(p, &len), &len,
                   WS_PRIO_NORMAL, p->user_id);
    return 0;
}

int ws_bus_frames_subscribe(struct ws_module *m)
{
    static const struct { const char *topic; bus_handler_fn fn; } subs[] = {
        { TOPIC_MESSAGE_STORED, on_stored },
        { TOPIC_MESSAGE_REJECTED, on_rejected },
        { TOPIC_ROOM_TYPING, on_typing },
        { TOPIC_ROOM_READ, on_read },
        { TOPIC_ROOM_CHANGED, on_room_changed },
        { TOPIC_PRESENCE_CHANGED, on_presence },
    };
    struct bus_sub_opts opts = { .consumer = "websocket", .max_attempts = 0 };

    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        int rc = bus_subscribe(m->app->bus, subs[i].topic, &opts, subs[i].fn, m);
        if (rc < 0)
            return rc;
    }
    return 0;
}
