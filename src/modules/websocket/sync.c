/* sync.c: "sync" after a reconnect. The message module answers a bus request with
 * every missed message (at most WS_SYNC_LIMIT a room); the answer is replayed onto the
 * connection a little at a time, whenever its queue is under half its bound, so a big
 * backlog never trips the slow-consumer limit and never sits encoded in memory twice.
 *
 * Live messages that arrive for the connection while a sync runs are held back and
 * released after the replay, minus those the replay already carried: so a room's
 * messages still arrive in seq order, each once, and `synced` means caught up. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/bus.h"
#include "chatd/events.h"
#include "chatd/metrics.h"
#include "ws_internal.h"

/* len through a pointer: set by the call making json, evaluated in no set order. */
static void sync_send_json(struct ws_conn *c, char *json, const size_t *len)
{
    if (json) {
        ws_conn_send_json(c, json, *len);
        free(json);
    }
}

static struct ws_sync_room *room_slot(struct ws_sync *s, int64_t room_id)
{
    for (int i = 0; i < s->nrooms; i++)
        if (s->rooms[i].room_id == room_id)
            return &s->rooms[i];
    return NULL;
}

/* The replay is over: release the held-back live messages the replay did not carry,
 * in their arrival order, then say so. */
static void sync_finish(struct ws_conn *c)
{
    struct ws_sync *s = c->sync;
    struct ws_module *m = c->m;
    size_t len;

    c->sync = NULL;
    for (size_t i = 0; i < s->nheld; i++) {
        struct ws_held *h = &s->held[i];
        struct ws_sync_room *r = room_slot(s, h->room_id);
        if ((!r || h->seq > r->max_seq) && c->state == WS_OPEN &&
            ws_conn_queue(c, h->buf, WS_PRIO_NORMAL) == 0)
            METRIC_INC(m->metrics.deliveries);
    }
    c->sync = s;
    ws_sync_free(c);
    if (c->state == WS_OPEN)
        sync_send_json(c, ws_json_printf(&len, "{\"type\":\"synced\"}"), &len);
}

static void on_reply(void *ctx, int status, const cJSON *payload)
{
    struct ws_conn *c = ctx;
    struct ws_sync *s = c->sync;
    const cJSON *rooms;
    size_t len;

    s->req_id = 0;
    rooms = status == 0 ? cJSON_GetObjectItemCaseSensitive(payload, "rooms") : NULL;
    if (!cJSON_IsArray(rooms) || !(s->reply = cJSON_Duplicate(rooms, 1))) {
        sync_send_json(c, ws_json_error("unavailable", "sync failed; try again", NULL, &len),
                       &len);
        /* What was held back still has to reach the client. */
        if (c->sync == s)
            sync_finish(c);
        return;
    }
    /* One slot per answered room, filled as rooms are replayed. Without it the replay
     * still works, only held-back messages may repeat. */
    s->rooms = calloc((size_t)cJSON_GetArraySize(s->reply) + 1, sizeof(*s->rooms));
    s->nrooms = 0;
    s->room_cur = s->reply->child;
    s->msg_cur = NULL;
    s->in_room = 0;
    ws_sync_pump(c);
}

int ws_sync_begin(struct ws_conn *c, const cJSON *rooms)
{
    struct ws_module *m = c->m;
    struct ws_sync *s = calloc(1, sizeof(*s));
    cJSON *p = cJSON_CreateObject();
    cJSON *r = cJSON_Duplicate(rooms, 1);
    int64_t id;

    if (!s || !p || !r) {
        free(s);
        cJSON_Delete(p);
        cJSON_Delete(r);
        return -ENOMEM;
    }
    cJSON_AddNumberToObject(p, "user_id", (double)c->user_id);
    cJSON_AddItemToObject(p, "rooms", r);
    cJSON_AddNumberToObject(p, "limit", WS_SYNC_LIMIT);
    c->sync = s;
    id = bus_request(m->app->bus, TOPIC_MESSAGE_SYNC, p, WS_SYNC_TIMEOUT_MS, on_reply, c);
    if (id < 0) {
        c->sync = NULL;
        free(s);
        return (int)id;
    }
    /* The reply may already have come (and finished the sync). */
    if (c->sync == s && s->reply == NULL && s->rooms == NULL)
        s->req_id = id;
    return 0;
}

int ws_sync_hold(struct ws_conn *c, struct ws_buf *b, int64_t room_id, int64_t seq)
{
    struct ws_sync *s = c->sync;

    if (s->held_bytes + b->len > c->m->send_queue_bytes) {
        ws_conn_close(c, 1013, "slow consumer");
        return 1;
    }
    if (s->nheld == s->held_cap) {
        size_t ncap = s->held_cap ? s->held_cap * 2 : 16;
        struct ws_held *n = realloc(s->held, ncap * sizeof(*n));
        if (!n) {
            ws_conn_close(c, 1011, "out of memory");
            return 1;
        }
        s->held = n;
        s->held_cap = ncap;
    }
    ws_buf_ref(b);
    s->held[s->nheld++] = (struct ws_held){ b, room_id, seq };
    s->held_bytes += b->len;
    return 1;
}

/* Emits one message of the replay; 0, or -1 when the connection refused it. */
static int replay_message(struct ws_conn *c, const cJSON *msg, struct ws_sync_room *r)
{
    size_t len;
    char *json = ws_json_wrap("message", "message", msg, NULL, &len);
    int64_t seq = 0;
    int rc;

    if (!json)
        return -1;
    rc = ws_conn_send_json(c, json, len);
    free(json);
    if (rc < 0)
        return -1;
    METRIC_INC(c->m->metrics.deliveries);
    if (r && json_get_i64(msg, "seq", &seq) == 0 && seq > r->max_seq)
        r->max_seq = seq;
    return 0;
}

/* Starts room_cur: its slot for the highest replayed seq, and the message cursor. */
static void enter_room(struct ws_sync *s)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(s->room_cur, "messages");
    int64_t room_id = 0;

    json_get_i64(s->room_cur, "room_id", &room_id);
    s->cur = room_slot(s, room_id);
    if (!s->cur && s->rooms) {
        s->cur = &s->rooms[s->nrooms++];
        s->cur->room_id = room_id;
        s->cur->max_seq = 0;
    }
    s->msg_cur = cJSON_IsArray(msgs) ? msgs->child : NULL;
    s->in_room = 1;
}

void ws_sync_pump(struct ws_conn *c)
{
    struct ws_sync *s = c->sync;
    struct ws_module *m = c->m;
    size_t low = m->send_queue_bytes / 2, len;

    if (!s || !s->reply)
        return;
    while (s->room_cur && c->state == WS_OPEN && c->q_bytes < low) {
        if (!s->in_room)
            enter_room(s);
        if (s->msg_cur) {
            const cJSON *msg = s->msg_cur;
            s->msg_cur = s->msg_cur->next;
            if (replay_message(c, msg, s->cur) < 0 || c->sync != s)
                return;
            continue;
        }
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s->room_cur, "truncated"))) {
            int64_t room_id = 0, next = 0;
            json_get_i64(s->room_cur, "room_id", &room_id);
            json_get_i64(s->room_cur, "next_seq", &next);
            sync_send_json(c, ws_json_printf(&len, "{\"type\":\"sync.truncated\","
                                             "\"room_id\":%lld,\"next_seq\":%lld}",
                                             (long long)room_id, (long long)next), &len);
            if (c->sync != s)
                return;
        }
        s->room_cur = s->room_cur->next;
        s->in_room = 0;
    }
    if (!s->room_cur && c->state == WS_OPEN)
        sync_finish(c);
}

void ws_sync_free(struct ws_conn *c)
{
    struct ws_sync *s = c->sync;

    if (!s)
        return;
    c->sync = NULL;
    if (s->req_id > 0)
        bus_request_cancel(c->m->app->bus, s->req_id);
    for (size_t i = 0; i < s->nheld; i++)
        ws_buf_unref(s->held[i].buf);
    free(s->held);
    free(s->rooms);
    cJSON_Delete(s->reply);
    free(s);
}
