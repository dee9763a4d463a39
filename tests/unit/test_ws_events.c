/* The websocket module on a real bus with typed events: what it publishes (structs
 * with an origin naming this process and the connection), what the events it
 * subscribes to become (frames, printed from the decoded structs), a result whose
 * origin is another process (no answer here, the fan-out still), and a sync's pages
 * asked for and replayed as structs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "bus_fixture.h"
#include "test.h"
#include "ws_test_transport.h"
#include "ws_test_util.h"

/* The module on the test transport (ws_test_transport.h): every frame lands in out. */
struct wsb {
    struct fx f;
    struct ws_module *m;
    struct wstt *tt;
    size_t read_at;                  /* of tt->out: frames before this were looked at */
};

static int wsb_init(struct wsb *w)
{
    memset(w, 0, sizeof(*w));
    if (fx_init(&w->f) < 0 || fx_start(&w->f, 0) < 0 || ws_module_new(&w->f.app, &w->m) < 0 ||
        !(w->tt = wstt_new(&ws_conn_events)))
        return -1;
    ws_module_use_transport(w->m, &wstt_ops, w->tt);
    return ws_bus_frames_subscribe(w->m);
}

static void wsb_free(struct wsb *w)
{
    ws_module_free(w->m);
    fx_stop(&w->f);
}

static struct ws_conn *wsb_conn(struct wsb *w, int64_t user_id)
{
    struct http_user u;
    struct ws_conn *c = NULL;

    memset(&u, 0, sizeof(u));
    u.id = user_id;
    snprintf(u.name, sizeof(u.name), "user%lld", (long long)user_id);
    struct ws_stream *s = wstt_stream(w->tt, sizeof(*c), (void **)&c);
    if (!s || ws_conn_init(w->m, c, s, &u) < 0)
        return NULL;
    ws_conn_open(c);
    return c;
}

/* Text frames written since the last wsb_texts (the hello left out): how many. */
static int wsb_count(struct wsb *w)
{
    const uint8_t *p;
    size_t left;
    struct ws_sframe fr;
    int n = 0;

    ws_flush_all(w->m);
    p = (const uint8_t *)w->tt->out.data + w->read_at;
    left = w->tt->out.len - w->read_at;
    while (wst_next(&p, &left, &fr) == 1)
        n += fr.opcode == 1 && !memmem(fr.payload, fr.len, "\"type\":\"hello\"", 14);
    return n;
}

/* Those frames, each followed by '\n' (static: valid until the next call); they count
 * as read from then on. */
static const char *wsb_texts(struct wsb *w)
{
    static struct strbuf texts;
    const uint8_t *p;
    size_t left;
    struct ws_sframe fr;

    ws_flush_all(w->m);
    strbuf_free(&texts);
    strbuf_init(&texts, 64 << 20);
    strbuf_append(&texts, "", 0);
    p = (const uint8_t *)w->tt->out.data + w->read_at;
    left = w->tt->out.len - w->read_at;
    while (wst_next(&p, &left, &fr) == 1) {
        if (fr.opcode == 1 && !memmem(fr.payload, fr.len, "\"type\":\"hello\"", 14)) {
            strbuf_append(&texts, fr.payload, fr.len);
            strbuf_append(&texts, "\n", 1);
        }
    }
    w->read_at = w->tt->out.len;
    return texts.data ? texts.data : "";
}

static const struct ev_msg MSG1 = {
    .id = 42, .room_id = 3, .seq = 7, .sender_id = 1, .created_at = 1795737183000,
    .sender = "user1", .body = "h\xc3\xa9 \"q\" \\ \n\t\x01", .client_msg_id = "a\"1",
};
#define MSG1_TEXT "{\"id\":42,\"room_id\":3,\"seq\":7,\"sender_id\":1,\"sender\":\"user1\"," \
                  "\"body\":\"h\xc3\xa9 \\\"q\\\" \\\\ \\n\\t\\u0001\",\"client_msg_id\":" \
                  "\"a\\\"1\",\"created_at\":1795737183000}"

static int publish_stored(struct wsb *w, const struct ev_origin *o, const int64_t *ids,
                          size_t n, int duplicate)
{
    struct ev_msg msg = MSG1;
    struct ev_origin origin = o ? *o : (struct ev_origin){ 0 };
    struct ev_message_stored s = { .message = &msg, .member_ids = { ids, n },
                                   .origin = o ? &origin : NULL, .duplicate = duplicate };
    return bus_publish_ev(w->f.app.bus, &EV_MESSAGE_STORED, &s);
}

TEST(ws_events_stored_acks_the_origin_here_and_fans_out_to_the_others)
{
    struct wsb w;
    ASSERT_EQ(wsb_init(&w), 0);
    struct ws_conn *a = wsb_conn(&w, 1), *b = wsb_conn(&w, 2);
    ASSERT(a && b);
    wsb_texts(&w);
    struct ev_origin o;
    bus_origin_conn(w.f.app.bus, a->id, &o);
    a->pending_sends = 1;
    w.m->pending_sends = 1;
    static const int64_t ids[] = { 1, 2 };
    ASSERT_EQ(publish_stored(&w, &o, ids, 2, 0), 0);
    ASSERT(FX_RUN_UNTIL(&w.f, w.m->pending_sends == 0, 5000));
    ASSERT_EQ(a->pending_sends, 0);
    ASSERT_STR_EQ(wsb_texts(&w),
                  "{\"type\":\"ack\",\"client_msg_id\":\"a\\\"1\",\"message\":" MSG1_TEXT "}\n"
                  "{\"type\":\"message\",\"message\":" MSG1_TEXT "}\n");
    /* A repeat: the ack again, no fan-out. */
    a->pending_sends = 1;
    w.m->pending_sends = 1;
    ASSERT_EQ(publish_stored(&w, &o, ids, 2, 1), 0);
    ASSERT(FX_RUN_UNTIL(&w.f, w.m->pending_sends == 0, 5000));
    ASSERT_STR_EQ(wsb_texts(&w),
                  "{\"type\":\"ack\",\"client_msg_id\":\"a\\\"1\",\"message\":" MSG1_TEXT "}\n");
    wsb_free(&w);
}

/* A message stored for another process's connection (another run of the bus, or
 * another node) that bears the id of one of ours: that connection is a member like
 * any other and gets the message, not an ack, and no send of ours is counted done. */
TEST(ws_events_stored_of_another_process_acks_nobody_here)
{
    struct wsb w;
    ASSERT_EQ(wsb_init(&w), 0);
    struct ws_conn *a = wsb_conn(&w, 1);
    ASSERT(a);
    wsb_texts(&w);
    a->pending_sends = 1;
    w.m->pending_sends = 1;
    static const int64_t ids[] = { 1 };
    struct ev_origin other_run, other_node;
    bus_origin_conn(w.f.app.bus, a->id, &other_run);
    other_node = other_run;
    other_run.run ^= 1;
    other_node.node = 7;
    ASSERT_EQ(publish_stored(&w, &other_run, ids, 1, 0), 0);
    ASSERT_EQ(publish_stored(&w, &other_node, ids, 1, 0), 0);
    /* No origin at all (a message posted over HTTP): the same again. */
    ASSERT_EQ(publish_stored(&w, NULL, ids, 1, 0), 0);
    ASSERT(FX_RUN_UNTIL(&w.f, wsb_count(&w) == 3, 5000));
    ASSERT_STR_EQ(wsb_texts(&w), "{\"type\":\"message\",\"message\":" MSG1_TEXT "}\n"
                                 "{\"type\":\"message\",\"message\":" MSG1_TEXT "}\n"
                                 "{\"type\":\"message\",\"message\":" MSG1_TEXT "}\n");
    ASSERT_EQ(a->pending_sends, 1);
    ASSERT_EQ(w.m->pending_sends, 1);
    wsb_free(&w);
}

static int publish_rejected(struct wsb *w, const struct ev_origin *o)
{
    struct ev_origin origin = *o;
    struct ev_message_rejected r = { .origin = &origin, .client_msg_id = "x1", .room_id = 9,
                                     .code = "rate_limited", .message = "too many messages",
                                     .retry_after_ms = 1500 };
    return bus_publish_ev(w->f.app.bus, &EV_MESSAGE_REJECTED, &r);
}

TEST(ws_events_rejected_answers_only_an_origin_here)
{
    struct wsb w;
    ASSERT_EQ(wsb_init(&w), 0);
    struct ws_conn *a = wsb_conn(&w, 1);
    ASSERT(a);
    wsb_texts(&w);
    struct ev_origin here, there;
    bus_origin_conn(w.f.app.bus, a->id, &here);
    there = here;
    there.run ^= 1;
    a->pending_sends = 1;
    w.m->pending_sends = 1;
    ASSERT_EQ(publish_rejected(&w, &there), 0);
    ASSERT_EQ(publish_rejected(&w, &here), 0);
    ASSERT(FX_RUN_UNTIL(&w.f, w.m->pending_sends == 0, 5000));
    /* One error frame: the first event, for another process, answered nobody. */
    ASSERT_STR_EQ(wsb_texts(&w),
                  "{\"type\":\"error\",\"code\":\"rate_limited\",\"message\":\"too many "
                  "messages\",\"client_msg_id\":\"x1\",\"retry_after_ms\":1500}\n");
    ASSERT_EQ(a->pending_sends, 0);
    wsb_free(&w);
}

TEST(ws_events_typing_read_presence_frames)
{
    struct wsb w;
    ASSERT_EQ(wsb_init(&w), 0);
    struct ws_conn *a = wsb_conn(&w, 1), *b = wsb_conn(&w, 2);
    ASSERT(a && b);
    wsb_texts(&w);
    static const int64_t ids[] = { 1, 2 };
    struct ev_room_typing t = { .room_id = 3, .user_id = 2, .member_ids = { ids, 2 } };
    struct ev_room_read r = { .room_id = 3, .user_id = 2, .seq = 11, .member_ids = { ids, 2 } };
    struct ev_presence_changed p = { .user_id = 2, .status = EV_ONLINE,
                                     .last_seen_at = 1795737000000, .recipient_ids = { ids, 2 } };
    ASSERT_EQ(bus_publish_ev(w.f.app.bus, &EV_ROOM_TYPING, &t), 0);
    ASSERT_EQ(bus_publish_ev(w.f.app.bus, &EV_ROOM_READ, &r), 0);
    ASSERT_EQ(bus_publish_ev(w.f.app.bus, &EV_PRESENCE_CHANGED, &p), 0);
    p.status = EV_OFFLINE;
    ASSERT_EQ(bus_publish_ev(w.f.app.bus, &EV_PRESENCE_CHANGED, &p), 0);
    const char *want = "{\"type\":\"typing\",\"room_id\":3,\"user_id\":2}\n"
                       "{\"type\":\"read\",\"room_id\":3,\"user_id\":2,\"seq\":11}\n"
                       "{\"type\":\"presence\",\"user_id\":2,\"status\":\"online\","
                       "\"last_seen_at\":1795737000000}\n"
                       "{\"type\":\"presence\",\"user_id\":2,\"status\":\"offline\","
                       "\"last_seen_at\":1795737000000}\n";
    /* To user 1 only: the user the event is about hears none of it. */
    ASSERT(FX_RUN_UNTIL(&w.f, wsb_count(&w) == 4, 5000));
    ASSERT_STR_EQ(wsb_texts(&w), want);
    wsb_free(&w);
}

#define ROOM_HEAD "{\"type\":\"room\",\"event\":\"%s\",\"room\":{\"id\":3,\"name\":\"te\\\"am\"," \
                  "\"kind\":\"group\",\"owner_id\":1,\"created_at\":1795737100000,\"last_seq\":12"

/* room.changed as published today: the room with its members, which the frame keeps;
 * and one without them, whose frame has none either. */
TEST(ws_events_room_frame_keeps_the_members)
{
    struct wsb w;
    char want[512];
    ASSERT_EQ(wsb_init(&w), 0);
    ASSERT(wsb_conn(&w, 1) != NULL);
    wsb_texts(&w);
    cJSON *p = cJSON_Parse("{\"event\":\"joined\",\"room\":{\"id\":3,\"name\":\"te\\\"am\","
                           "\"kind\":\"group\",\"owner_id\":1,\"created_at\":1795737100000,"
                           "\"last_seq\":12,\"members\":[{\"id\":1,\"username\":\"alice\"},"
                           "{\"id\":4,\"username\":\"dave\"}]},\"user_id\":4,"
                           "\"member_ids\":[1,4]}");
    ASSERT(p);
    ASSERT_EQ(bus_publish(w.f.app.bus, bus_event_new(TOPIC_ROOM_CHANGED, p)), 0);
    snprintf(want, sizeof(want), ROOM_HEAD ",\"members\":[{\"id\":1,\"username\":\"alice\"},"
             "{\"id\":4,\"username\":\"dave\"}]},\"user_id\":4}\n", "joined");
    ASSERT(FX_RUN_UNTIL(&w.f, wsb_count(&w) == 1, 5000));
    ASSERT_STR_EQ(wsb_texts(&w), want);

    /* A payload of a publisher that sent no members: the frame has none either. */
    p = cJSON_Parse("{\"event\":\"left\",\"room\":{\"id\":3,\"name\":\"te\\\"am\","
                    "\"kind\":\"group\",\"owner_id\":1,\"created_at\":1795737100000,"
                    "\"last_seq\":12},\"user_id\":4,\"member_ids\":[1]}");
    ASSERT(p);
    ASSERT_EQ(bus_publish(w.f.app.bus, bus_event_new(TOPIC_ROOM_CHANGED, p)), 0);
    snprintf(want, sizeof(want), ROOM_HEAD "},\"user_id\":4}\n", "left");
    ASSERT(FX_RUN_UNTIL(&w.f, wsb_count(&w) == 1, 5000));
    ASSERT_STR_EQ(wsb_texts(&w), want);
    wsb_free(&w);
}

/* --- what the module publishes ------------------------------------------------------ */

struct seen {
    struct wsb *w;
    int n;
    char topic[BUS_TOPIC_MAX];
    struct ev_origin origin;
    int64_t a, b, c;                 /* room_id / user_id / seq ... as the topic has them */
    char text[64];
};

static int on_published(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct seen *s = ctx;
    (void)d;
    s->n++;
    snprintf(s->topic, sizeof(s->topic), "%s", ev->topic);
    if (strcmp(ev->topic, TOPIC_MESSAGE_SUBMITTED) == 0) {
        const struct ev_message_submitted *m = ev->data;
        s->origin = *m->origin;
        s->a = m->room_id;
        s->b = m->sender_id;
        snprintf(s->text, sizeof(s->text), "%s|%s|%s", m->sender, m->body,
                 m->client_msg_id ? m->client_msg_id : "-");
    } else if (strcmp(ev->topic, TOPIC_TYPING_SUBMITTED) == 0) {
        const struct ev_typing_submitted *t = ev->data;
        s->origin = *t->origin;
        s->a = t->room_id;
        s->b = t->user_id;
    } else if (strcmp(ev->topic, TOPIC_READ_SUBMITTED) == 0) {
        const struct ev_read_submitted *r = ev->data;
        s->origin = *r->origin;
        s->a = r->room_id;
        s->b = r->user_id;
        s->c = r->seq;
    } else if (strcmp(ev->topic, TOPIC_WS_CONNECTED) == 0) {
        const struct ev_ws_connected *e = ev->data;
        s->a = e->user_id;
        s->b = e->conn_id;
        s->c = e->at;
    } else if (strcmp(ev->topic, TOPIC_WS_DISCONNECTED) == 0) {
        const struct ev_ws_disconnected *e = ev->data;
        s->a = e->user_id;
        s->b = e->conn_id;
        s->c = e->code;
    }
    return 0;
}

static int subscribe_all(struct wsb *w, struct seen *s)
{
    static const char *const topics[] = { TOPIC_MESSAGE_SUBMITTED, TOPIC_TYPING_SUBMITTED,
                                          TOPIC_READ_SUBMITTED, TOPIC_WS_CONNECTED,
                                          TOPIC_WS_DISCONNECTED };
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
        if (bus_subscribe(w->f.app.bus, topics[i], NULL, on_published, s) < 0)
            return -1;
    return 0;
}

static int is_ours(struct wsb *w, const struct ev_origin *o, const struct ws_conn *c)
{
    return bus_origin_is_here(w->f.app.bus, o) && o->conn == (int64_t)c->id && o->http == 0 &&
           o->run == bus_run_id(w->f.app.bus);
}

#define DISPATCH(c, lit) ws_dispatch_text(c, lit, strlen(lit))

TEST(ws_events_publishes_structs_with_an_origin_of_this_process)
{
    struct wsb w;
    struct seen s = { 0 };
    ASSERT_EQ(wsb_init(&w), 0);
    ASSERT_EQ(subscribe_all(&w, &s), 0);
    struct ws_conn *c = wsb_conn(&w, 5);
    ASSERT(c);
    ASSERT(FX_RUN_UNTIL(&w.f, s.n == 1, 5000));
    ASSERT_STR_EQ(s.topic, TOPIC_WS_CONNECTED);
    ASSERT_EQ(s.a, 5);
    ASSERT_EQ(s.b, (int64_t)c->id);
    ASSERT(s.c > 1700000000000LL);

    DISPATCH(c, "{\"type\":\"send\",\"room_id\":3,\"body\":\"b\\\"1\",\"client_msg_id\":\"k\"}");
    ASSERT(FX_RUN_UNTIL(&w.f, s.n == 2, 5000));
    ASSERT_STR_EQ(s.topic, TOPIC_MESSAGE_SUBMITTED);
    ASSERT(is_ours(&w, &s.origin, c));
    ASSERT_EQ(s.a, 3);
    ASSERT_EQ(s.b, 5);
    ASSERT_STR_EQ(s.text, "user5|b\"1|k");
    ASSERT_EQ(c->pending_sends, 1);
    DISPATCH(c, "{\"type\":\"send\",\"room_id\":3,\"body\":\"x\"}");
    ASSERT(FX_RUN_UNTIL(&w.f, s.n == 3, 5000));
    ASSERT_STR_EQ(s.text, "user5|x|-");

    DISPATCH(c, "{\"type\":\"typing\",\"room_id\":4}");
    ASSERT(FX_RUN_UNTIL(&w.f, s.n == 4, 5000));
    ASSERT_STR_EQ(s.topic, TOPIC_TYPING_SUBMITTED);
    ASSERT(is_ours(&w, &s.origin, c));
    ASSERT_EQ(s.a, 4);
    ASSERT_EQ(s.b, 5);

    DISPATCH(c, "{\"type\":\"read\",\"room_id\":6,\"seq\":9}");
    ASSERT(FX_RUN_UNTIL(&w.f, s.n == 5, 5000));
    ASSERT_STR_EQ(s.topic, TOPIC_READ_SUBMITTED);
    ASSERT(is_ours(&w, &s.origin, c));
    ASSERT_EQ(s.a, 6);
    ASSERT_EQ(s.b, 5);
    ASSERT_EQ(s.c, 9);

    ws_conn_close(c, 1000, "bye");
    ws_flush_all(w.m);
    ASSERT(FX_RUN_UNTIL(&w.f, s.n == 6, 5000));
    ASSERT_STR_EQ(s.topic, TOPIC_WS_DISCONNECTED);
    ASSERT_EQ(s.a, 5);
    ASSERT_EQ(s.c, 1000);
    wsb_free(&w);
}

/* --- sync: the request and the replay as structs ------------------------------------ */

struct syncer {
    struct wsb *w;
    int asked;
    struct ev_message_sync q;        /* the first page's request */
    struct ev_sync_room_ask ask;
    int64_t last_nrooms;
};

static int on_sync(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct syncer *s = ctx;
    const struct ev_message_sync *q = ev->data;
    struct ev_msg msgs[2] = { MSG1, MSG1 };
    struct ev_sync_room_page page = { .room_id = 3, .messages = msgs, .nmessages = 2,
                                      .truncated = 1, .next_seq = 9 };
    struct ev_message_sync_reply reply = { .rooms = &page, .nrooms = q->nrooms ? 1 : 0 };
    (void)d;

    if (s->asked++ == 0) {
        s->q = *q;
        if (q->nrooms)
            s->ask = q->rooms[0];
    }
    s->last_nrooms = (int64_t)q->nrooms;
    msgs[1].seq = 8;
    msgs[1].client_msg_id = NULL;
    return bus_reply_ev(s->w->f.app.bus, ev, 0, &reply);
}

#define MSG1_SEQ8 "{\"id\":42,\"room_id\":3,\"seq\":8,\"sender_id\":1,\"sender\":\"user1\"," \
                  "\"body\":\"h\xc3\xa9 \\\"q\\\" \\\\ \\n\\t\\u0001\",\"client_msg_id\":" \
                  "null,\"created_at\":1795737183000}"

TEST(ws_events_sync_asks_and_replays_with_structs)
{
    struct wsb w;
    struct syncer s = { .w = &w };
    ASSERT_EQ(wsb_init(&w), 0);
    ASSERT_EQ(bus_subscribe(w.f.app.bus, TOPIC_MESSAGE_SYNC, NULL, on_sync, &s), 0);
    struct ws_conn *c = wsb_conn(&w, 1);
    ASSERT(c);
    wsb_texts(&w);
    DISPATCH(c, "{\"type\":\"sync\",\"rooms\":{\"3\":6}}");
    ASSERT(FX_RUN_UNTIL(&w.f, c->sync == NULL && s.asked == 2, 5000));
    ASSERT_EQ(s.q.user_id, 1);
    ASSERT_EQ(s.q.nrooms, 1);
    ASSERT_EQ(s.ask.room_id, 3);
    ASSERT_EQ(s.ask.after, 6);
    ASSERT_EQ(s.ask.limit, WS_SYNC_LIMIT);
    ASSERT_EQ(s.q.max_messages, WS_SYNC_PAGE);
    ASSERT_EQ(s.q.max_bytes, (int64_t)(w.m->send_queue_bytes / 4));
    ASSERT_EQ(s.last_nrooms, 0);     /* the round after the last page asks for no room */
    ASSERT_STR_EQ(wsb_texts(&w),
                  "{\"type\":\"message\",\"message\":" MSG1_TEXT "}\n"
                  "{\"type\":\"message\",\"message\":" MSG1_SEQ8 "}\n"
                  "{\"type\":\"sync.truncated\",\"room_id\":3,\"next_seq\":9}\n"
                  "{\"type\":\"synced\"}\n");
    wsb_free(&w);
}
