/* events.c: bus events turned into frames. Each frame is encoded once and a reference
 * queued on every recipient connection; events carry their recipients (member_ids,
 * recipient_ids), so nothing here asks anybody who is in a room. The bus dispatches in
 * publish order and the writer commits in seq order, and the queues never reorder,
 * so each connection sees a room's messages in seq order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/bus.h"
#include "chatd/events.h"
#include "chatd/metrics.h"
#include "ws_internal.h"

static int64_t get_id(const cJSON *obj, const char *key)
{
    int64_t v = 0;
    return json_get_i64(obj, key, &v) == 0 ? v : 0;
}

/* The connection an answer goes to, from "origin":{"conn":id}; 0 when none. */
static uint64_t origin_conn(const cJSON *payload)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(payload, "origin");
    int64_t id = o ? get_id(o, "conn") : 0;
    return id > 0 ? (uint64_t)id : 0;
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

/* Queues b on every open connection of the users in ids (a JSON array), except the
 * connections of skip_user and the connection skip. Message frames (room_id > 0) go
 * through a running sync's hold-back. Returns the number of connections reached. */
static uint64_t broadcast(struct ws_module *m, const cJSON *ids, struct ws_buf *b, int prio,
                          int64_t skip_user, const struct ws_conn *skip, int64_t room_id,
                          int64_t seq)
{
    const cJSON *it;
    uint64_t n = 0;

    cJSON_ArrayForEach(it, ids) {
        if (!cJSON_IsNumber(it))
            continue;
        int64_t uid = (int64_t)it->valuedouble;
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

/* len is read through a pointer: it is set by the call that makes json, an argument
 * evaluated in no particular order. */
static void send_to(struct ws_conn *c, char *json, const size_t *len)
{
    if (json) {
        ws_conn_send_json(c, json, *len);
        free(json);
    }
}

static int on_stored(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct ws_module *m = ctx;
    const cJSON *p = ev->payload;
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(p, "message");
    const cJSON *members = cJSON_GetObjectItemCaseSensitive(p, "member_ids");
    uint64_t conn_id = origin_conn(p);
    struct ws_conn *origin = ws_registry_conn(m, conn_id);
    const char *cmid = NULL;
    (void)d;

    if (!cJSON_IsObject(msg))
        return 0;
    json_get_str(msg, "client_msg_id", &cmid);
    int bcast = !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "duplicate")) &&
                cJSON_IsArray(members);
    /* The message is printed once, for the ack and for the broadcast. */
    m->json.len = 0;
    if ((origin || bcast) && ws_json_put(&m->json, msg) == 0) {
        if (origin) {
            struct ws_buf *ack = ws_buf_wrap("ack", "message", m->json.data, m->json.len,
                                             cmid);
            if (ack) {
                ws_conn_queue(origin, ack, WS_PRIO_NORMAL);
                ws_buf_unref(ack);
            }
        }
        /* A repeated client_msg_id was stored before: the first ack's message already
         * went to everybody. */
        struct ws_buf *b = bcast ? ws_buf_wrap("message", "message", m->json.data,
                                               m->json.len, NULL) : NULL;
        if (b) {
            uint64_t n = broadcast(m, members, b, WS_PRIO_NORMAL, 0, origin,
                                   get_id(msg, "room_id"), get_id(msg, "seq"));
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
    const cJSON *p = ev->payload;
    uint64_t conn_id = origin_conn(p);
    struct ws_conn *origin = ws_registry_conn(m, conn_id);
    const char *code = "invalid_argument", *msg = "the message was refused", *cmid = NULL;
    size_t len;
    (void)d;

    if (!conn_id)
        return 0;
    json_get_str(p, "code", &code);
    json_get_str(p, "message", &msg);
    json_get_str(p, "client_msg_id", &cmid);
    if (origin)
        send_to(origin, ws_json_error_retry(code, msg, cmid, get_id(p, "retry_after_ms"), &len),
                &len);
    ws_send_finished(m, origin);
    return 0;
}

static void broadcast_json(struct ws_module *m, const cJSON *ids, char *json,
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
    const cJSON *p = ev->payload;
    int64_t uid = get_id(p, "user_id");
    size_t len;
    char *json = ws_json_printf(&len, "{\"type\":\"typing\",\"room_id\":%lld,\"user_id\":%lld}",
                                (long long)get_id(p, "room_id"), (long long)uid);
    (void)d;

    broadcast_json(ctx, cJSON_GetObjectItemCaseSensitive(p, "member_ids"), json, &len,
                   WS_PRIO_TYPING, uid);
    return 0;
}

static int on_read(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    const cJSON *p = ev->payload;
    int64_t uid = get_id(p, "user_id");
    size_t len;
    char *json = ws_json_printf(&len,
                                "{\"type\":\"read\",\"room_id\":%lld,\"user_id\":%lld,"
                                "\"seq\":%lld}", (long long)get_id(p, "room_id"),
                                (long long)uid, (long long)get_id(p, "seq"));
    (void)d;

    broadcast_json(ctx, cJSON_GetObjectItemCaseSensitive(p, "member_ids"), json, &len,
                   WS_PRIO_NORMAL, uid);
    return 0;
}

/* Copies the listed fields of src after "type". */
static char *frame_from(const char *type, const cJSON *src, const char *const *keys,
                        size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    char *s;

    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "type", type);
    for (; *keys; keys++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, *keys);
        if (v)
            cJSON_AddItemReferenceToObject(o, *keys, (cJSON *)v);
    }
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s)
        *len = strlen(s);
    return s;
}

static int on_room_changed(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    static const char *const keys[] = { "event", "room", "user_id", NULL };
    const cJSON *p = ev->payload;
    size_t len = 0;
    (void)d;

    broadcast_json(ctx, cJSON_GetObjectItemCaseSensitive(p, "member_ids"),
                   frame_from("room", p, keys, &len), &len, WS_PRIO_NORMAL, 0);
    return 0;
}

static int on_presence(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    static const char *const keys[] = { "user_id", "status", "last_seen_at", NULL };
    const cJSON *p = ev->payload;
    size_t len = 0;
    (void)d;

    broadcast_json(ctx, cJSON_GetObjectItemCaseSensitive(p, "recipient_ids"),
                   frame_from("presence", p, keys, &len), &len, WS_PRIO_NORMAL,
                   get_id(p, "user_id"));
    return 0;
}

int ws_events_subscribe(struct ws_module *m)
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
