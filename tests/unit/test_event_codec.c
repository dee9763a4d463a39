/* Tests for the typed events (event_codec.h, src/bus/codec_*.c, event_types.c): every
 * topic's struct goes through the bus and comes back field for field; what does not
 * decode is refused with the field named, and fails the delivery instead of
 * reaching the handler. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "bus_fixture.h"
#include "test.h"

/* --- a struct filled from its descriptor: every field set, differently ------------- */

struct filler {
    void *blocks[512];
    int n;
    int seed;
};

static void *fill_alloc(struct filler *fl, size_t size)
{
    void *p = calloc(1, size ? size : 1);
    if (p && fl->n < 512)
        fl->blocks[fl->n++] = p;
    return p;
}

static const char *fill_str(struct filler *fl)
{
    char *s = fill_alloc(fl, 24);
    /* A quote, a backslash and a non-ASCII letter ride along: the wire form escapes. */
    snprintf(s, 24, "s%d \"\\ \xc3\xa9", fl->seed++);
    return s;
}

static void fill(struct filler *fl, const struct ev_type *t, void *base);

static void fill_field(struct filler *fl, const struct ev_field *f, void *base)
{
    char *at = (char *)base + f->off;
    size_t *count = (size_t *)((char *)base + f->count_off);

    switch (f->kind) {
    case EVK_I64: *(int64_t *)at = 1000 + fl->seed++; break;
    case EVK_BOOL: *(int *)at = 1; break;
    case EVK_ENUM: *(int *)at = f->names[1] ? 1 : 0; break;
    case EVK_STR: *(const char **)at = fill_str(fl); break;
    case EVK_OBJ:
        *(void **)at = fill_alloc(fl, f->sub->size);
        fill(fl, f->sub, *(void **)at);
        break;
    case EVK_IDS: {
        int64_t *v = fill_alloc(fl, 3 * sizeof(*v));
        for (int i = 0; i < 3; i++)
            v[i] = 1 + fl->seed++;
        ((struct ev_ids *)at)->v = v;
        ((struct ev_ids *)at)->n = 3;
        break;
    }
    case EVK_STRS: {
        const char **v = fill_alloc(fl, 2 * sizeof(*v));
        v[0] = fill_str(fl);
        v[1] = fill_str(fl);
        *(const char ***)at = v;
        *count = 2;
        break;
    }
    case EVK_OBJS: {
        char *v = fill_alloc(fl, 2 * f->sub->size);
        fill(fl, f->sub, v);
        fill(fl, f->sub, v + f->sub->size);
        *(void **)at = v;
        *count = 2;
        break;
    }
    }
}

static void fill(struct filler *fl, const struct ev_type *t, void *base)
{
    for (size_t i = 0; i < t->nfields; i++)
        fill_field(fl, &t->fields[i], base);
}

static void filler_free(struct filler *fl)
{
    for (int i = 0; i < fl->n; i++)
        free(fl->blocks[i]);
}

/* --- field-for-field comparison ----------------------------------------------------- */

static int same(const struct ev_type *t, const void *a, const void *b);

static int same_field(const struct ev_field *f, const void *a, const void *b)
{
    const char *x = (const char *)a + f->off, *y = (const char *)b + f->off;
    size_t n = *(const size_t *)((const char *)a + f->count_off);
    size_t m = *(const size_t *)((const char *)b + f->count_off);

    switch (f->kind) {
    case EVK_I64: return *(const int64_t *)x == *(const int64_t *)y;
    case EVK_BOOL: case EVK_ENUM: return *(const int *)x == *(const int *)y;
    case EVK_STR: {
        const char *s = *(const char *const *)x, *u = *(const char *const *)y;
        return (!s && !u) || (s && u && strcmp(s, u) == 0);
    }
    case EVK_OBJ: return same(f->sub, *(void *const *)x, *(void *const *)y);
    case EVK_IDS: {
        const struct ev_ids *p = (const void *)x, *q = (const void *)y;
        return p->n == q->n && memcmp(p->v, q->v, p->n * sizeof(*p->v)) == 0;
    }
    case EVK_STRS:
        if (n != m)
            return 0;
        for (size_t i = 0; i < n; i++)
            if (strcmp((*(const char *const *const *)x)[i], (*(const char *const *const *)y)[i]))
                return 0;
        return 1;
    case EVK_OBJS:
        if (n != m)
            return 0;
        for (size_t i = 0; i < n; i++)
            if (!same(f->sub, *(const char *const *)x + i * f->sub->size,
                      *(const char *const *)y + i * f->sub->size))
                return 0;
        return 1;
    }
    return 0;
}

static int same(const struct ev_type *t, const void *a, const void *b)
{
    if (!a || !b)
        return a == b;
    for (size_t i = 0; i < t->nfields; i++)
        if (!same_field(&t->fields[i], a, b)) {
            fprintf(stderr, "%s.%s differs\n", t->name, t->fields[i].name);
            return 0;
        }
    return 1;
}

/* --- every topic, through the bus ----------------------------------------------------- */

struct catch {
    const struct ev_type *type;
    const void *sent;
    int seen, equal;
};

static int on_typed(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct catch *c = ctx;
    c->seen++;
    c->equal = ev->data != NULL && same(c->type, c->sent, ev->data);
    return 0;
}

TEST(event_codec_every_topic_round_trips_through_the_bus)
{
    struct fx f;
    size_t ntypes = 0;

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    for (size_t i = 0; ev_all_types[i]; i++) {
        const struct ev_type *t = ev_all_types[i];
        if (ev_type_of_topic(t->topic) != t)
            continue;   /* a reply: travels by bus_reply_ev, tested below */
        struct filler fl = { .seed = (int)i * 100 };
        void *data = fill_alloc(&fl, t->size);
        struct catch c = { t, data, 0, 0 };
        fill(&fl, t, data);
        ASSERT_EQ(bus_subscribe(f.app.bus, t->topic, NULL, on_typed, &c), 0);
        ASSERT_EQ(bus_publish_ev(f.app.bus, t, data), 0);
        ASSERT(FX_RUN_UNTIL(&f, c.seen == 1, 5000));
        if (!c.equal)
            fprintf(stderr, "topic %s did not come back the same\n", t->topic);
        ASSERT(c.equal);
        filler_free(&fl);
        ntypes++;
        fx_stop(&f);
        ASSERT_EQ(fx_init(&f), 0);
        ASSERT_EQ(fx_start(&f, 0), 0);
    }
    /* Every topic of events.h has a descriptor (a new topic without one fails here). */
    ASSERT_EQ(ntypes, 19);
    fx_stop(&f);
}

TEST(event_codec_every_reply_round_trips)
{
    for (size_t i = 0; ev_all_types[i]; i++) {
        const struct ev_type *t = ev_all_types[i]->reply;
        if (!t)
            continue;
        struct filler fl = { .seed = 7 };
        void *data = fill_alloc(&fl, t->size), *back = NULL;
        char why[128];
        fill(&fl, t, data);
        cJSON *j = ev_encode(t, data);
        ASSERT(j != NULL);
        ASSERT_EQ(ev_decode(t, j, &back, why, sizeof(why)), 0);
        ASSERT(same(t, data, back));
        ev_free(back);
        cJSON_Delete(j);
        filler_free(&fl);
    }
}

/* --- what does not decode ---------------------------------------------------------- */

static int refused(const struct ev_type *t, const char *json, const char *want_in_why)
{
    cJSON *j = cJSON_Parse(json);
    void *out = (void *)1;
    char why[160];
    int rc = ev_decode(t, j, &out, why, sizeof(why));

    cJSON_Delete(j);
    if (rc != -EPROTO || out != NULL || !strstr(why, want_in_why)) {
        fprintf(stderr, "%s: rc %d why \"%s\", want \"%s\"\n", json, rc, why, want_in_why);
        return 0;
    }
    return 1;
}

TEST(event_codec_refuses_what_does_not_fit_and_names_the_field)
{
    const struct ev_type *t = &EV_WS_CONNECTED;

    ASSERT(refused(t, "{\"conn_id\":2,\"at\":3}", "user_id: missing"));
    ASSERT(refused(t, "{\"user_id\":\"1\",\"conn_id\":2,\"at\":3}", "user_id: not a number"));
    ASSERT(refused(t, "{\"user_id\":1.5,\"conn_id\":2,\"at\":3}", "user_id: not an integer"));
    ASSERT(refused(t, "{\"user_id\":1e300,\"conn_id\":2,\"at\":3}", "not an integer"));
    ASSERT(refused(t, "{\"user_id\":9007199254740993e3,\"conn_id\":2,\"at\":3}",
                   "not an integer"));
    ASSERT(refused(t, "{\"user_id\":0,\"conn_id\":2,\"at\":3}", "user_id: not positive"));
    ASSERT(refused(t, "[1,2]", "not an object"));
    ASSERT(refused(t, "{\"v\":2,\"user_id\":1,\"conn_id\":2,\"at\":3}", "newer"));
    ASSERT(refused(t, "{\"v\":\"1\",\"user_id\":1,\"conn_id\":2,\"at\":3}", "not a version"));
    ASSERT(refused(&EV_PRESENCE_CHANGED, "{\"user_id\":1,\"status\":\"away\"}",
                   "status: not a known value"));
    ASSERT(refused(&EV_MESSAGE_STORED, "{\"message\":{\"id\":1},\"member_ids\":[]}",
                   "MSG.room_id: missing"));
    ASSERT(refused(&EV_ROOM_TYPING, "{\"room_id\":1,\"user_id\":2,\"member_ids\":[1,\"x\"]}",
                   "member_ids: not a number"));
    ASSERT(refused(&EV_USERS_LOOKUP, "{\"usernames\":[\"a\",3]}", "element 1"));
    ASSERT(refused(&EV_MESSAGE_SYNC, "{\"user_id\":1,\"rooms\":{}}", "rooms: not an array"));
}

TEST(event_codec_reads_what_it_may)
{
    void *out = NULL;
    char why[128];
    /* No "v" (a dead letter of before versions) reads as 1; unknown fields are left. */
    cJSON *j = cJSON_Parse("{\"user_id\":1,\"conn_id\":2,\"at\":3,\"extra\":[1]}");
    ASSERT_EQ(ev_decode(&EV_WS_CONNECTED, j, &out, why, sizeof(why)), 0);
    const struct ev_ws_connected *c = out;
    ASSERT(c->user_id == 1 && c->conn_id == 2 && c->at == 3);
    ev_free(out);
    cJSON_Delete(j);
    /* A null client_msg_id in MSG is NULL, and goes out as null again. */
    j = cJSON_Parse("{\"id\":1,\"room_id\":2,\"seq\":3,\"sender_id\":4,\"sender\":\"a\","
                    "\"body\":\"b\",\"client_msg_id\":null,\"created_at\":5}");
    ASSERT_EQ(ev_decode(&EV_MSG, j, &out, why, sizeof(why)), 0);
    ASSERT(((struct ev_msg *)out)->client_msg_id == NULL);
    cJSON *back = ev_encode(&EV_MSG, out);
    ASSERT(cJSON_IsNull(cJSON_GetObjectItem(back, "client_msg_id")));
    ASSERT_EQ(cJSON_GetNumberValue(cJSON_GetObjectItem(back, "v")), 1);
    cJSON_Delete(back);
    ev_free(out);
    cJSON_Delete(j);
}

TEST(event_codec_refuses_to_encode_a_missing_required_field)
{
    struct ev_message_submitted s = { .room_id = 1, .sender_id = 2, .sender = "a" };
    struct ev_origin o = { 0 };

    ASSERT(ev_encode(&EV_MESSAGE_SUBMITTED, &s) == NULL);   /* no body, no origin */
    s.body = "hi";
    ASSERT(ev_encode(&EV_MESSAGE_SUBMITTED, &s) == NULL);   /* no origin */
    s.origin = &o;
    cJSON *j = ev_encode(&EV_MESSAGE_SUBMITTED, &s);
    ASSERT(j != NULL);
    /* The optional client_msg_id is left out, node 0 is not. */
    ASSERT(cJSON_GetObjectItem(j, "client_msg_id") == NULL);
    ASSERT(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "origin"), "node")));
    cJSON_Delete(j);
    /* An enum outside its names is refused, not read past them. */
    struct ev_presence_changed pc = { .user_id = 1, .status = 7 };
    ASSERT(ev_encode(&EV_PRESENCE_CHANGED, &pc) == NULL);
    pc.status = -1;
    ASSERT(ev_encode(&EV_PRESENCE_CHANGED, &pc) == NULL);
}

/* --- a payload that does not decode fails its delivery ------------------------------ */

static int on_never(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    (*(int *)ctx)++;
    return 0;
}

TEST(event_codec_undecodable_payload_is_dead_lettered_with_the_reason)
{
    struct fx f;
    int calls = 0;
    struct bus_sub_opts o = { "test.typed", 2, 5, NULL };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 1), 0);
    ASSERT_EQ(bus_subscribe(f.app.bus, TOPIC_WS_CONNECTED, &o, on_never, &calls), 0);
    ASSERT_EQ(bus_publish(f.app.bus, bus_event_new(TOPIC_WS_CONNECTED,
                          cJSON_Parse("{\"user_id\":\"x\"}"))), 0);
    ASSERT(FX_RUN_UNTIL(&f, fx_query_int(f.db_path, "SELECT count(*) FROM dead_letters") == 1,
                        5000));
    ASSERT_EQ(calls, 0);
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT attempts FROM dead_letters"), 2);
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT count(*) FROM dead_letters WHERE error LIKE "
                           "'%user_id: not a number%'"), 1);
    fx_stop(&f);
}

/* --- typed request / reply ----------------------------------------------------------- */

static int on_peers(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    const struct ev_rooms_peers *q = ev->data;
    int64_t ids[2] = { q->user_id + 1, q->user_id + 2 };
    struct ev_rooms_peers_reply r = { { ids, 2 } };
    struct ev_error e = { "not_found", "nobody" };

    if (q->user_id == 9)
        return bus_reply_ev(ctx, ev, -ENOENT, &e);
    return bus_reply_ev(ctx, ev, 0, &r);
}

struct answer {
    int n, status;
    int64_t ids[4];
    char code[32];
};

static void on_answer(void *ctx, int status, const void *reply)
{
    struct answer *a = ctx;
    a->n++;
    a->status = status;
    if (status == 0) {
        const struct ev_rooms_peers_reply *r = reply;
        for (size_t i = 0; i < r->user_ids.n && i < 4; i++)
            a->ids[i] = r->user_ids.v[i];
    } else if (reply) {
        snprintf(a->code, sizeof(a->code), "%s", ((const struct ev_error *)reply)->code);
    }
}

TEST(event_codec_typed_request_and_reply)
{
    struct fx f;
    struct answer a = { 0 }, e = { 0 };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    ASSERT_EQ(bus_subscribe(f.app.bus, TOPIC_ROOMS_PEERS, NULL, on_peers, f.app.bus), 0);
    ASSERT(bus_request_ev(f.app.bus, &EV_ROOMS_PEERS, &(struct ev_rooms_peers){ 4 }, 5000,
                          on_answer, &a) > 0);
    ASSERT(bus_request_ev(f.app.bus, &EV_ROOMS_PEERS, &(struct ev_rooms_peers){ 9 }, 5000,
                          on_answer, &e) > 0);
    ASSERT(FX_RUN_UNTIL(&f, a.n == 1 && e.n == 1, 5000));
    ASSERT_EQ(a.status, 0);
    ASSERT(a.ids[0] == 5 && a.ids[1] == 6);
    ASSERT_EQ(e.status, -ENOENT);
    ASSERT_STR_EQ(e.code, "not_found");
    /* A struct that does not encode (a name missing) is refused at once. */
    const char *names[1] = { NULL };
    ASSERT_EQ(bus_request_ev(f.app.bus, &EV_USERS_LOOKUP, &(struct ev_users_lookup){ names, 1 },
                             5000, on_answer, &a), -EINVAL);
    fx_stop(&f);
}

/* --- ids that name the process ------------------------------------------------------- */

static int on_stamp(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    *(struct bus_event *)ctx = *ev;
    return 0;
}

TEST(event_codec_events_and_origins_name_this_process)
{
    struct fx f;
    struct bus_event got = { 0 };
    struct ev_origin o, other;

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    ASSERT(bus_run_id(f.app.bus) > 0 && bus_run_id(f.app.bus) < (1ll << 48));
    ASSERT_EQ(bus_node_id(f.app.bus), 0);
    ASSERT_EQ(bus_subscribe(f.app.bus, "t.stamp", NULL, on_stamp, &got), 0);
    ASSERT_EQ(bus_publish(f.app.bus, bus_event_new("t.stamp", NULL)), 0);
    ASSERT(FX_RUN_UNTIL(&f, got.id != 0, 5000));
    ASSERT_EQ(got.run, bus_run_id(f.app.bus));
    ASSERT_EQ(got.node, 0);
    bus_origin_conn(f.app.bus, 42, &o);
    ASSERT(bus_origin_is_here(f.app.bus, &o) && o.conn == 42 && o.http == 0);
    other = o;
    other.run ^= 1;
    ASSERT(!bus_origin_is_here(f.app.bus, &other));
    other = o;
    other.node = 3;
    ASSERT(!bus_origin_is_here(f.app.bus, &other));
    fx_stop(&f);
}
