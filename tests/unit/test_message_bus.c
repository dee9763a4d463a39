/* The message module's side of the bus contract (include/chatd/events.h), with the
 * real bus, writer and read pool: message.sync and rooms.peers answers, typing relayed
 * to the other members only, read markers from the websocket side, rejections. */
#include <errno.h>
#include "test.h"
#include "bus_fixture.h"
#include "chatd/events.h"
#include "chatd/module.h"
#include "../../src/modules/message/message_internal.h"
#include "../../src/modules/message/message_settings.h"

/* The message tables as the SQLite store makes them. */
static int msg_schema(struct db *db)
{
    return db_migrate(db, "message", msg_sqlite_migrations, msg_sqlite_migrations_count);
}

#define CAP_MAX 64

struct capture {
    const char *topic;
    cJSON *got[CAP_MAX];             /* owned copies of the payloads */
    int n;
};

static int cap_on_event(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct capture *c = ctx;
    if (c->n < CAP_MAX)
        c->got[c->n++] = cJSON_Duplicate(ev->payload, 1);
    return 0;
}

static void cap_clear(struct capture *c)
{
    for (int i = 0; i < c->n; i++)
        cJSON_Delete(c->got[i]);
    c->n = 0;
}

struct reply {
    int done, status;
    cJSON *payload;                  /* owned copy */
};

static void on_reply(void *ctx, int status, const cJSON *payload)
{
    struct reply *r = ctx;
    r->done = 1;
    r->status = status;
    r->payload = payload ? cJSON_Duplicate(payload, 1) : NULL;
}

static void bt_tick(uv_timer_t *t)
{
    (void)t;
}

static void bt_flag(void *arg)
{
    *(int *)arg = 1;
}

struct bt {
    struct fx f;
    struct msg_state *st;
    uv_timer_t keepalive;
    struct capture stored, rejected, typing, read;
};

static int bt_start_limited(struct bt *t, double rate, int burst)
{
    memset(t, 0, sizeof(*t));
    if (fx_init(&t->f) < 0)
        return -1;
    struct msg_settings *ms = config_module_settings(&t->f.cfg, &msg_settings_table);
    ms->messages_per_s = rate;
    ms->messages_burst = burst;
    if (bus_new(&t->f.app.bus, &t->f.app) < 0 ||
        db_open(&t->f.app.db, &t->f.app, t->f.db_path) < 0 || msg_schema(t->f.app.db) < 0)
        return -1;
    /* Room 1: users 1, 2, 3. Room 2: users 2, 4. Room 3: user 5 alone. */
    if (sqlite3_exec(db_sqlite(db_conn_for_cli(t->f.app.db)),
            "INSERT INTO rooms (id, name, kind, owner_id, created_at) VALUES"
            " (1, 'a', 'group', 1, 0), (2, 'b', 'group', 2, 0), (3, 'c', 'group', 5, 0);"
            "INSERT INTO room_members (room_id, user_id, username, joined_at) VALUES"
            " (1, 1, 'ann', 0), (1, 2, 'bob', 0), (1, 3, 'cyd', 0), (2, 2, 'bob', 0),"
            " (2, 4, 'dan', 0), (3, 5, 'eve', 0);", NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    if (db_start(t->f.app.db) < 0 || bus_start(t->f.app.bus) < 0 ||
        msg_state_new(&t->st, &t->f.app) < 0 || msg_subscribe(t->st) < 0)
        return -1;
    struct { struct capture *c; const char *topic; } caps[] = {
        { &t->stored, TOPIC_MESSAGE_STORED }, { &t->rejected, TOPIC_MESSAGE_REJECTED },
        { &t->typing, TOPIC_ROOM_TYPING }, { &t->read, TOPIC_ROOM_READ },
    };
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        struct bus_sub_opts o = { .consumer = caps[i].topic };
        caps[i].c->topic = caps[i].topic;
        if (bus_subscribe(t->f.app.bus, caps[i].topic, &o, cap_on_event, caps[i].c) < 0)
            return -1;
    }
    uv_timer_init(&t->f.loop, &t->keepalive);
    uv_timer_start(&t->keepalive, bt_tick, 60000, 60000);
    return 0;
}

static int bt_start(struct bt *t)
{
    return bt_start_limited(t, 1e6, 1000000);
}

static void bt_stop(struct bt *t)
{
    int finalized = 0;
    if (t->st && writer_finalize(t->st, bt_flag, &finalized) == 0)
        FX_RUN_UNTIL(&t->f, finalized, 5000);
    if (t->st)
        msg_batch_close(t->st, NULL);    /* the end-of-turn handle of message batches */
    uv_close((uv_handle_t *)&t->keepalive, NULL);
    fx_stop(&t->f);
    msg_state_free(t->st);
    cap_clear(&t->stored);
    cap_clear(&t->rejected);
    cap_clear(&t->typing);
    cap_clear(&t->read);
}

static void publish(struct bt *t, const char *topic, const char *json)
{
    bus_publish(t->f.app.bus, bus_event_new(topic, cJSON_Parse(json)));
}

static void submit(struct bt *t, int room, int sender, const char *body)
{
    char json[256];
    snprintf(json, sizeof(json), "{\"room_id\":%d,\"sender_id\":%d,\"sender\":\"u%d\","
             "\"body\":\"%s\",\"origin\":{\"conn\":77}}", room, sender, sender, body);
    publish(t, TOPIC_MESSAGE_SUBMITTED, json);
}

static int ids_equal(const cJSON *arr, const int64_t *want, int n)
{
    if (cJSON_GetArraySize(arr) != n)
        return 0;
    for (int i = 0; i < n; i++) {
        int found = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, arr)
            found |= (int64_t)it->valuedouble == want[i];
        if (!found)
            return 0;
    }
    return 1;
}

TEST(message_bus_stored_and_rejected_carry_origin_and_members)
{
    struct bt t;
    ASSERT_EQ(bt_start(&t), 0);
    submit(&t, 1, 2, "hello");
    submit(&t, 2, 1, "not a member");
    submit(&t, 99, 1, "no room");
    submit(&t, 1, 2, "");
    ASSERT(FX_RUN_UNTIL(&t.f, t.stored.n == 1 && t.rejected.n == 3, 5000));
    const cJSON *p = t.stored.got[0];
    int64_t want[] = { 1, 2, 3 };
    ASSERT(ids_equal(cJSON_GetObjectItem(p, "member_ids"), want, 3));
    ASSERT_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "origin"), "conn")->valueint, 77);
    ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(p, "duplicate")));
    ASSERT_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "message"), "seq")->valueint, 1);
    const char *codes[3];
    for (int i = 0; i < 3; i++) {
        const cJSON *r = t.rejected.got[i];
        ASSERT_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "origin"), "conn")->valueint, 77);
        codes[i] = cJSON_GetObjectItem(r, "code")->valuestring;
    }
    /* The empty body is refused on the loop, before the others reach the writer. */
    ASSERT_STR_EQ(codes[0], "invalid_argument");
    ASSERT_STR_EQ(codes[1], "forbidden");
    ASSERT_STR_EQ(codes[2], "not_found");
    bt_stop(&t);
}

/* One message.sync page for user 2 (bob); the reply payload (to free), NULL on error. */
static cJSON *sync_page(struct bt *t, const char *rooms_and_budget, int *status)
{
    char json[512];
    struct reply r = {0};
    snprintf(json, sizeof(json), "{\"user_id\":2,%s}", rooms_and_budget);
    if (bus_request(t->f.app.bus, TOPIC_MESSAGE_SYNC, cJSON_Parse(json), 5000, on_reply,
                    &r) <= 0 || !FX_RUN_UNTIL(&t->f, r.done, 5000))
        return NULL;
    *status = r.status;
    return r.payload;
}

static const cJSON *entry(const cJSON *page, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(page, "rooms"), i);
}

static int entry_int(const cJSON *page, int i, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(entry(page, i), key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : v ? v->valueint : -1;
}

static int entry_seq(const cJSON *page, int i, int k)
{
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(entry(page, i), "messages"), k);
    return m ? cJSON_GetObjectItem(m, "seq")->valueint : -1;
}

static int entry_count(const cJSON *page, int i)
{
    return cJSON_GetArraySize(cJSON_GetObjectItem(entry(page, i), "messages"));
}

TEST(message_bus_sync_page_member_rooms_only)
{
    struct bt t;
    int status = -1;
    ASSERT_EQ(bt_start(&t), 0);
    for (int i = 0; i < 7; i++)
        submit(&t, 1, 1, "r1");
    submit(&t, 2, 2, "r2");
    submit(&t, 3, 5, "r3");
    ASSERT(FX_RUN_UNTIL(&t.f, t.stored.n == 9, 5000));

    cJSON *p = sync_page(&t, "\"rooms\":[{\"room_id\":1,\"after\":2,\"limit\":3},"
                         "{\"room_id\":2,\"after\":0},{\"room_id\":3,\"after\":0},"
                         "{\"room_id\":999,\"after\":0}]", &status);
    ASSERT(p != NULL);
    ASSERT_EQ(status, 0);
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(p, "rooms")), 4);
    /* Room 1: seq 3, 4, 5 of 7, cut at the limit. */
    ASSERT_EQ(entry_int(p, 0, "room_id"), 1);
    ASSERT_EQ(entry_count(p, 0), 3);
    ASSERT_EQ(entry_seq(p, 0, 0), 3);
    ASSERT_EQ(entry_seq(p, 0, 2), 5);
    ASSERT_EQ(entry_int(p, 0, "truncated"), 1);
    ASSERT_EQ(entry_int(p, 0, "more"), 0);
    ASSERT_EQ(entry_int(p, 0, "next_seq"), 6);
    ASSERT_EQ(entry_int(p, 1, "room_id"), 2);
    ASSERT_EQ(entry_count(p, 1), 1);
    ASSERT_EQ(entry_int(p, 1, "truncated"), 0);
    ASSERT_EQ(entry_int(p, 1, "more"), 0);
    /* Room 3 is not bob's and 999 does not exist: nothing, and the cursor moves on. */
    for (int i = 2; i < 4; i++) {
        ASSERT_EQ(entry_count(p, i), 0);
        ASSERT_EQ(entry_int(p, i, "truncated"), 0);
        ASSERT_EQ(entry_int(p, i, "more"), 0);
    }
    cJSON_Delete(p);
    bt_stop(&t);
}

TEST(message_bus_sync_page_ends_at_its_budget)
{
    struct bt t;
    int status = -1;
    ASSERT_EQ(bt_start(&t), 0);
    for (int i = 0; i < 7; i++)
        submit(&t, 1, 1, "r1");
    submit(&t, 2, 2, "r2");
    ASSERT(FX_RUN_UNTIL(&t.f, t.stored.n == 8, 5000));

    /* Five messages a page: room 1 is cut by the page, room 2 waits for the next. */
    const char *rooms = "\"rooms\":[{\"room_id\":1,\"after\":0,\"limit\":500},"
                        "{\"room_id\":2,\"after\":0,\"limit\":500}]";
    char ask[256];
    snprintf(ask, sizeof(ask), "%s,\"max_messages\":5", rooms);
    cJSON *p = sync_page(&t, ask, &status);
    ASSERT(p != NULL);
    ASSERT_EQ(status, 0);
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(p, "rooms")), 1);
    ASSERT_EQ(entry_count(p, 0), 5);
    ASSERT_EQ(entry_int(p, 0, "more"), 1);
    ASSERT_EQ(entry_int(p, 0, "truncated"), 0);
    ASSERT_EQ(entry_int(p, 0, "next_seq"), 6);
    cJSON_Delete(p);

    /* One byte a page: one message a page, never none. */
    snprintf(ask, sizeof(ask), "%s,\"max_bytes\":1", rooms);
    p = sync_page(&t, ask, &status);
    ASSERT(p != NULL);
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(p, "rooms")), 1);
    ASSERT_EQ(entry_count(p, 0), 1);
    ASSERT_EQ(entry_int(p, 0, "more"), 1);
    cJSON_Delete(p);

    /* The rest of room 1 ends it (no more, not truncated); room 2 follows. */
    p = sync_page(&t, "\"rooms\":[{\"room_id\":1,\"after\":5,\"limit\":495},"
                  "{\"room_id\":2,\"after\":0,\"limit\":500}]", &status);
    ASSERT(p != NULL);
    ASSERT_EQ(entry_count(p, 0), 2);
    ASSERT_EQ(entry_seq(p, 0, 0), 6);
    ASSERT_EQ(entry_int(p, 0, "more"), 0);
    ASSERT_EQ(entry_int(p, 0, "truncated"), 0);
    ASSERT_EQ(entry_count(p, 1), 1);
    cJSON_Delete(p);

    /* A limit out of 1..500 is refused (0 is read as not given: 500). */
    p = sync_page(&t, "\"rooms\":[{\"room_id\":1,\"after\":0,\"limit\":501}]", &status);
    ASSERT_EQ(status, -EINVAL);
    ASSERT_STR_EQ(cJSON_GetObjectItem(p, "code")->valuestring, "invalid_argument");
    cJSON_Delete(p);
    bt_stop(&t);
}

/* A writer job that holds the writer until released (at most 10 s). */
struct blocker {
    struct db_job base;
    int started, release;            /* atomic: the writer thread and the test */
};

static int blocker_apply(struct db_conn *conn_, struct db_job *job)
{
    sqlite3 *conn = db_sqlite(conn_);
    struct blocker *b = (struct blocker *)job;
    uint64_t deadline = mono_ms() + 10000;
    (void)conn;
    __atomic_store_n(&b->started, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&b->release, __ATOMIC_ACQUIRE) && mono_ms() < deadline)
        fx_nap();
    return 0;
}

struct fence_reply {
    struct reply r;
    const struct capture *stored;
    int stored_then;                 /* message.stored events seen when the answer came */
};

static void on_fence_reply(void *ctx, int status, const cJSON *payload)
{
    struct fence_reply *f = ctx;
    f->stored_then = f->stored->n;
    on_reply(&f->r, status, payload);
}

/* The last request of a sync names no rooms: it is answered only after the
 * message.stored of every write queued before it, or a message its pages read could
 * reach the websocket module after the sync ended, as a live copy. */
TEST(message_bus_sync_no_rooms_waits_for_the_writes_before_it)
{
    struct bt t;
    static struct blocker blk;       /* the writer may still hold it if an assertion fails */
    blk = (struct blocker){ .base = { .apply = blocker_apply } };
    struct fence_reply f = { .stored = &t.stored };
    ASSERT_EQ(bt_start(&t), 0);
    ASSERT_EQ(db_write(t.f.app.db, &blk.base), 0);
    uint64_t deadline = mono_ms() + 5000;
    while (!__atomic_load_n(&blk.started, __ATOMIC_ACQUIRE) && mono_ms() < deadline)
        fx_nap();
    ASSERT(blk.started);
    /* A message queued behind the held writer, then the request. */
    submit(&t, 1, 2, "late");
    ASSERT(FX_RUN_UNTIL(&t.f, db_write_depth(t.f.app.db) >= 2, 5000));
    ASSERT(bus_request(t.f.app.bus, TOPIC_MESSAGE_SYNC,
                       cJSON_Parse("{\"user_id\":2,\"rooms\":[]}"), 5000, on_fence_reply,
                       &f) > 0);
    /* It waits for the writer (its job is queued), not for a read. */
    FX_RUN_UNTIL(&t.f, f.r.done || db_write_depth(t.f.app.db) >= 3, 5000);
    ASSERT(!f.r.done);
    __atomic_store_n(&blk.release, 1, __ATOMIC_RELEASE);
    ASSERT(FX_RUN_UNTIL(&t.f, f.r.done, 5000));
    ASSERT_EQ(f.r.status, 0);
    ASSERT_EQ(f.stored_then, 1);
    ASSERT(cJSON_IsArray(cJSON_GetObjectItem(f.r.payload, "rooms")));
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(f.r.payload, "rooms")), 0);
    cJSON_Delete(f.r.payload);
    bt_stop(&t);
}

TEST(message_bus_peers)
{
    struct bt t;
    ASSERT_EQ(bt_start(&t), 0);
    struct reply r = {0};
    ASSERT(bus_request(t.f.app.bus, TOPIC_ROOMS_PEERS, cJSON_Parse("{\"user_id\":2}"), 5000,
                       on_reply, &r) > 0);
    ASSERT(FX_RUN_UNTIL(&t.f, r.done, 5000));
    ASSERT_EQ(r.status, 0);
    int64_t want[] = { 1, 3, 4 };
    ASSERT(ids_equal(cJSON_GetObjectItem(r.payload, "user_ids"), want, 3));
    cJSON_Delete(r.payload);
    bt_stop(&t);
}

TEST(message_bus_typing_goes_to_the_other_members)
{
    struct bt t;
    ASSERT_EQ(bt_start(&t), 0);
    /* A cache miss (loaded off the loop), then a hit. */
    publish(&t, TOPIC_TYPING_SUBMITTED, "{\"room_id\":1,\"user_id\":3,\"origin\":{\"conn\":1}}");
    ASSERT(FX_RUN_UNTIL(&t.f, t.typing.n == 1, 5000));
    publish(&t, TOPIC_TYPING_SUBMITTED, "{\"room_id\":1,\"user_id\":1,\"origin\":{\"conn\":1}}");
    ASSERT(FX_RUN_UNTIL(&t.f, t.typing.n == 2, 5000));
    int64_t others_of_3[] = { 1, 2 }, others_of_1[] = { 2, 3 };
    ASSERT(ids_equal(cJSON_GetObjectItem(t.typing.got[0], "member_ids"), others_of_3, 2));
    ASSERT(ids_equal(cJSON_GetObjectItem(t.typing.got[1], "member_ids"), others_of_1, 2));
    ASSERT_EQ(cJSON_GetObjectItem(t.typing.got[0], "user_id")->valueint, 3);
    /* Non-members and unknown rooms: dropped. Then a marker that shows the loop
     * went past them. */
    publish(&t, TOPIC_TYPING_SUBMITTED, "{\"room_id\":2,\"user_id\":1,\"origin\":{\"conn\":1}}");
    publish(&t, TOPIC_TYPING_SUBMITTED, "{\"room_id\":42,\"user_id\":1,\"origin\":{\"conn\":1}}");
    publish(&t, TOPIC_TYPING_SUBMITTED, "{\"room_id\":2,\"user_id\":4,\"origin\":{\"conn\":1}}");
    ASSERT(FX_RUN_UNTIL(&t.f, t.typing.n >= 3, 5000));
    ASSERT_EQ(t.typing.n, 3);
    ASSERT_EQ(cJSON_GetObjectItem(t.typing.got[2], "user_id")->valueint, 4);
    bt_stop(&t);
}

TEST(message_bus_read_markers_from_the_websocket_side)
{
    struct bt t;
    ASSERT_EQ(bt_start(&t), 0);
    for (int i = 0; i < 5; i++)
        submit(&t, 1, 1, "m");
    ASSERT(FX_RUN_UNTIL(&t.f, t.stored.n == 5, 5000));
    publish(&t, TOPIC_READ_SUBMITTED, "{\"room_id\":1,\"user_id\":2,\"seq\":3,\"origin\":{}}");
    ASSERT(FX_RUN_UNTIL(&t.f, t.read.n == 1, 5000));
    ASSERT_EQ(cJSON_GetObjectItem(t.read.got[0], "seq")->valueint, 3);
    int64_t members[] = { 1, 2, 3 };
    ASSERT(ids_equal(cJSON_GetObjectItem(t.read.got[0], "member_ids"), members, 3));
    /* Backwards and non-members: nothing moves, nothing is published. Past the end:
     * clamped to last_seq. */
    publish(&t, TOPIC_READ_SUBMITTED, "{\"room_id\":1,\"user_id\":2,\"seq\":2,\"origin\":{}}");
    publish(&t, TOPIC_READ_SUBMITTED, "{\"room_id\":1,\"user_id\":4,\"seq\":2,\"origin\":{}}");
    publish(&t, TOPIC_READ_SUBMITTED, "{\"room_id\":1,\"user_id\":2,\"seq\":99,\"origin\":{}}");
    ASSERT(FX_RUN_UNTIL(&t.f, t.read.n >= 2, 5000));
    ASSERT_EQ(t.read.n, 2);
    ASSERT_EQ(cJSON_GetObjectItem(t.read.got[1], "seq")->valueint, 5);
    bt_stop(&t);
}

TEST(message_bus_send_rate_limit_per_sender)
{
    struct bt t;
    ASSERT_EQ(bt_start_limited(&t, 0.001, 2), 0);
    submit(&t, 1, 1, "one");
    submit(&t, 1, 1, "two");
    submit(&t, 1, 1, "three");                  /* past the burst */
    submit(&t, 1, 2, "other sender");          /* a budget of its own */
    ASSERT(FX_RUN_UNTIL(&t.f, t.stored.n == 3 && t.rejected.n == 1, 5000));
    const cJSON *r = t.rejected.got[0];
    ASSERT_STR_EQ(cJSON_GetObjectItem(r, "code")->valuestring, "rate_limited");
    ASSERT(cJSON_GetObjectItem(r, "retry_after_ms")->valuedouble > 0);
    bt_stop(&t);
}

extern const struct chatd_module message_module;

/* done() gets only the module's state: the count has to live outside it. */
static int drain_calls;

static void drained(void *state)
{
    (void)state;
    drain_calls++;
}

TEST(message_bus_drain_finishes_what_was_queued)
{
    struct bt t;
    ASSERT_EQ(bt_start(&t), 0);
    for (int i = 0; i < 200; i++)
        submit(&t, 1, 1, "before the drain");
    /* The server drains once what was published before the stop is dispatched
     * (lifecycle.c waits for server.draining): so does this test. */
    ASSERT(FX_RUN_UNTIL(&t.f, bus_depth(t.f.app.bus) == 0, 5000));
    drain_calls = 0;
    message_module.drain(t.st, drained);
    /* Work already queued completes; new work is refused, not lost silently. */
    submit(&t, 1, 1, "after the drain began");
    ASSERT(FX_RUN_UNTIL(&t.f, drain_calls == 1, 10000));
    ASSERT_EQ(t.stored.n, CAP_MAX < 200 ? CAP_MAX : 200);
    ASSERT_EQ(fx_query_int(t.f.db_path, "SELECT count(*) FROM messages"), 200);
    ASSERT_EQ(t.rejected.n, 1);
    ASSERT_STR_EQ(cJSON_GetObjectItem(t.rejected.got[0], "code")->valuestring, "unavailable");
    ASSERT_EQ(__atomic_load_n(&t.st->jobs_inflight, __ATOMIC_ACQUIRE), 0);
    bt_stop(&t);
}
