/* sync.c: "sync" after a reconnect. The replay is read from the database a page at a
 * time (message.sync, a bus request the message module answers from a db_read): at
 * most WS_SYNC_PAGE messages and a quarter of send_queue_bytes, queued on the
 * connection as the page comes in. The next page is asked for only once the client
 * took the last one (its unsent bytes fell under a quarter of the bound), so a sync
 * of a thousand rooms costs the server no more than the connection's queue, however
 * slowly the client reads; one that takes nothing for sync_stall_ms ends with 1013.
 *
 * Live messages that arrive for the connection while a sync runs are held back and
 * released after the replay, minus those the replay already carried: so a room's
 * messages still arrive in seq order, each once, and `synced` means caught up. They
 * count against send_queue_bytes with the queue: past it the connection gets 1013.
 * The replay ends with a request for no rooms, answered after a round through the
 * writer: a message a page read may have its message.stored still on the way, and it
 * must find the sync still holding back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/metrics.h"
#include "ws_internal.h"

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

    c->sync = NULL;                  /* the held bytes move to the queue: count them once */
    for (size_t i = 0; i < s->nheld; i++) {
        struct ws_held *h = &s->held[i];
        struct ws_sync_room *r = room_slot(s, h->room_id);
        if ((!r || h->seq > r->max_seq) && c->open &&
            ws_conn_queue(c, h->buf, WS_PRIO_NORMAL) == 0)
            METRIC_INC(m->metrics.deliveries);
    }
    c->sync = s;
    ws_sync_free(c);
    if (c->open)
        ws_conn_send_frame(c, ws_json_printf(&len, "{\"type\":\"synced\"}"), &len);
}

/* A page could not be had: the client hears it, and still gets what was held back. */
static void sync_fail(struct ws_conn *c)
{
    struct ws_sync *s = c->sync;
    size_t len;

    ws_conn_send_frame(c, ws_json_error("unavailable", "sync failed; try again", NULL, &len), &len);
    if (c->sync == s)
        sync_finish(c);
}

/* A page's budget: a quarter of the bound, less when held-back messages take the
 * rest (a page of one message then). */
static size_t page_bytes(const struct ws_conn *c)
{
    size_t bound = c->m->send_queue_bytes, used = ws_conn_backlog(c);
    size_t room = used < bound ? bound - used : 1;

    return room < bound / 4 ? room : bound / 4 > 0 ? bound / 4 : 1;
}

static void on_page(void *ctx, int status, const void *reply);

/* Asks for the page after the cursor. The answer (a refusal too) comes in a later
 * dispatch, never inside bus_request_ev. */
static int request_page(struct ws_conn *c)
{
    struct ws_sync *s = c->sync;
    struct ev_sync_room_ask asks[WS_SYNC_PAGE_ROOMS];
    struct ev_message_sync q = { .user_id = c->user_id, .rooms = asks,
                                 .max_messages = WS_SYNC_PAGE,
                                 .max_bytes = (int64_t)page_bytes(c) };
    int64_t id;

    for (int i = s->room_next; i < s->nrooms && q.nrooms < WS_SYNC_PAGE_ROOMS; i++)
        asks[q.nrooms++] = (struct ev_sync_room_ask){
            .room_id = s->rooms[i].room_id, .after = s->rooms[i].after,
            .limit = s->rooms[i].left };
    id = bus_request_ev(c->m->app->bus, &EV_MESSAGE_SYNC, &q, WS_SYNC_TIMEOUT_MS, on_page, c);
    if (id < 0)
        return (int)id;
    s->req_id = id;
    return 0;
}

/* The next page when the client took the last one; the end when every room is done. */
static void sync_pump(struct ws_conn *c)
{
    struct ws_sync *s = c->sync;

    if (!s || s->req_id != 0 || !c->open)
        return;
    /* After the last page one more request, for no rooms: the message module answers it
     * after a round through the writer, so the message.stored of everything the pages
     * read has come by then, been held back and left out. Ended at once, the sync
     * would let a late one through as a live copy of a message it replayed. */
    if ((s->room_next == s->nrooms || ws_conn_unsent(c) < c->m->send_queue_bytes / 4) &&
        request_page(c) < 0)
        sync_fail(c);
}

/* Queues one message of the replay; 0, or -1 when the connection refused it. */
static int replay_message(struct ws_conn *c, const struct ev_msg *msg, struct ws_sync_room *r)
{
    struct ws_module *m = c->m;
    struct ws_buf *b = NULL;
    int rc;

    m->json.len = 0;
    if (ws_json_put_msg(&m->json, msg) == 0)
        b = ws_buf_wrap("message", "message", m->json.data, m->json.len, NULL);
    if (m->json.cap > WS_JSON_SCRATCH_KEEP)
        strbuf_free(&m->json);        /* a huge message: its buffer is not kept */
    if (!b)
        return -1;
    rc = ws_conn_queue(c, b, WS_PRIO_NORMAL);
    ws_buf_unref(b);
    if (rc < 0)
        return -1;
    METRIC_INC(m->metrics.deliveries);
    if (msg->seq > r->max_seq)
        r->max_seq = r->after = msg->seq;
    r->left--;
    return 0;
}

/* One room's part of a page: its messages, then sync.truncated when the room was cut
 * at WS_SYNC_LIMIT. 1 when the page ended inside the room, 0 when the room is done,
 * -1 when the connection closed meanwhile (the sync is gone). */
static int replay_room(struct ws_conn *c, const struct ev_sync_room_page *e,
                       struct ws_sync_room *r)
{
    struct ws_sync *s = c->sync;
    size_t len;

    for (size_t i = 0; i < e->nmessages; i++)
        if (replay_message(c, &e->messages[i], r) < 0 || c->sync != s)
            return -1;
    if (e->more && r->left > 0)
        return 1;
    if (e->truncated) {
        ws_conn_send_frame(c, ws_json_printf(&len, "{\"type\":\"sync.truncated\","
                                         "\"room_id\":%lld,\"next_seq\":%lld}",
                                         (long long)r->room_id, (long long)e->next_seq), &len);
        if (c->sync != s)
            return -1;
    }
    return 0;
}

/* Queues a page and moves the cursor. 0, 1 when the connection closed meanwhile, or
 * -EPROTO for an answer that does not follow the request (or moves nothing). */
static int replay_page(struct ws_conn *c, const struct ev_message_sync_reply *page)
{
    struct ws_sync *s = c->sync;
    int start = s->room_next, sent = 0;

    for (size_t i = 0; i < page->nrooms; i++) {
        const struct ev_sync_room_page *e = &page->rooms[i];
        struct ws_sync_room *r = s->room_next < s->nrooms ? &s->rooms[s->room_next] : NULL;
        int left;
        if (!r || e->room_id != r->room_id)
            return -EPROTO;
        left = r->left;
        int rc = replay_room(c, e, r);
        if (rc < 0)
            return 1;
        sent += left - r->left;
        if (rc == 1)
            break;
        s->room_next++;
    }
    return s->room_next > start || sent > 0 ? 0 : -EPROTO;
}

static void on_page(void *ctx, int status, const void *reply)
{
    struct ws_conn *c = ctx;
    struct ws_sync *s = c->sync;
    int rc;

    if (!s)
        return;
    s->req_id = 0;
    s->progress_ms = mono_ms();      /* waiting for the database is not the client's stall */
    if (s->room_next == s->nrooms) { /* the round after the last page (sync_pump) */
        if (status == 0)
            sync_finish(c);
        else
            sync_fail(c);
        return;
    }
    rc = status == 0 && reply ? replay_page(c, reply) : -EPROTO;
    if (rc == 1)
        return;
    if (rc < 0)
        sync_fail(c);
    else
        sync_pump(c);
}

/* The client's {"<room id>": <last seq seen>} (checked by frames.c), in its order. */
static int rooms_from_frame(struct ws_sync *s, const cJSON *rooms)
{
    const cJSON *it;

    s->rooms = calloc((size_t)cJSON_GetArraySize(rooms) + 1, sizeof(*s->rooms));
    if (!s->rooms)
        return -ENOMEM;
    cJSON_ArrayForEach(it, rooms) {
        struct ws_sync_room *r = &s->rooms[s->nrooms++];
        r->room_id = strtoll(it->string, NULL, 10);
        r->after = (int64_t)it->valuedouble;
        r->left = WS_SYNC_LIMIT;
    }
    return 0;
}

int ws_sync_begin(struct ws_conn *c, const cJSON *rooms)
{
    struct ws_sync *s = calloc(1, sizeof(*s));
    int rc;

    if (!s || rooms_from_frame(s, rooms) < 0) {
        if (s)
            free(s->rooms);
        free(s);
        return -ENOMEM;
    }
    s->progress_ms = mono_ms();
    s->seen_taken = ws_conn_taken(c);
    c->sync = s;
    if (s->nrooms == 0) {
        sync_finish(c);
        return 0;
    }
    if ((rc = request_page(c)) < 0 && c->sync == s) {
        c->sync = NULL;
        free(s->rooms);
        free(s);
    }
    return rc;
}

int ws_sync_hold(struct ws_conn *c, struct ws_buf *b, int64_t room_id, int64_t seq)
{
    struct ws_sync *s = c->sync;

    if (ws_conn_backlog(c) + b->len > c->m->send_queue_bytes) {
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

void ws_sync_drained(struct ws_conn *c)
{
    if (!c->sync)
        return;
    c->sync->progress_ms = mono_ms();
    sync_pump(c);
}

void ws_sync_check_stall(struct ws_conn *c, uint64_t now)
{
    struct ws_sync *s = c->sync;
    uint64_t taken = ws_conn_taken(c);

    /* libuv writes what the socket takes without telling us until the whole write is
     * done, which a slow reader may take minutes over: bytes taken since the last
     * check are progress. (Less unsent would not be: typing and pongs queued behind
     * can outgrow what a slow client reads.) */
    if (s->req_id != 0 || taken > s->seen_taken)
        s->progress_ms = now;
    s->seen_taken = taken;
    if (now - s->progress_ms >= c->m->sync_stall_ms)
        ws_conn_close(c, 1013, "sync stalled: the client reads nothing");
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
    free(s);
}
