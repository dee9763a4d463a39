/* Group commit end to end: message.submitted events through the real bus and the real
 * writer thread. Many messages submitted at once must share few transactions, every
 * one must come back as message.stored, and each room's seq must have no gap. */
#include <errno.h>
#include "test.h"
#include "bus_fixture.h"
#include "chatd/events.h"
#include "../../src/modules/message/message_internal.h"
#include "../../src/modules/message/message_settings.h"

/* The message tables as the SQLite store makes them. */
static int msg_schema(struct db *db)
{
    return db_migrate(db, "message", msg_sqlite_migrations, msg_sqlite_migrations_count);
}

#define GC_N 4000

struct gc_seen {
    int stored, rejected;
    unsigned char seen[3][GC_N / 2 + 2];   /* [room][seq] */
    int bad;
};

static int gc_on_stored(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct gc_seen *s = ctx;
    int64_t room = 0, seq = 0;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(ev->payload, "message");
    json_get_i64(m, "room_id", &room);
    json_get_i64(m, "seq", &seq);
    if (room < 1 || room > 2 || seq < 1 || seq > GC_N / 2 || s->seen[room][seq]++)
        s->bad++;
    s->stored++;
    return 0;
}

static int gc_on_rejected(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    ((struct gc_seen *)ctx)->rejected++;
    return 0;
}

static void gc_tick(uv_timer_t *t)
{
    (void)t;
}

static void gc_flag(void *arg)
{
    *(int *)arg = 1;
}

/* The server's order: bus, database (two rooms), writer, bus dispatch, the module. */
static int gc_setup(struct fx *f, struct msg_state **st)
{
    if (fx_init(f) < 0 || bus_new(&f->app.bus, &f->app) < 0 ||
        db_open(&f->app.db, &f->app, f->db_path) < 0 || msg_schema(f->app.db) < 0)
        return -1;
    if (sqlite3_exec(db_sqlite(db_conn_for_cli(f->app.db)),
        "INSERT INTO rooms (id, name, kind, owner_id, created_at) VALUES"
        " (1, 'a', 'group', 1, 0), (2, 'b', 'group', 2, 0);"
        "INSERT INTO room_members (room_id, user_id, username, joined_at) VALUES"
        " (1, 1, 'ann', 0), (1, 2, 'bob', 0), (2, 2, 'bob', 0);", NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    if (db_start(f->app.db) < 0 || bus_start(f->app.bus) < 0)
        return -1;
    struct msg_settings *ms = config_module_settings(&f->cfg, &msg_settings_table);
    ms->messages_per_s = 1e9;     /* one sender, many messages */
    ms->messages_burst = 1000000000;
    return msg_state_new(st, &f->app) < 0 || msg_subscribe(*st) < 0 ? -1 : 0;
}

static int gc_submit(struct fx *f, int64_t room_id, const char *body, const char *cmid)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "room_id", (double)room_id);
    cJSON_AddNumberToObject(p, "sender_id", 2);
    cJSON_AddStringToObject(p, "sender", "bob");
    cJSON_AddStringToObject(p, "body", body);
    cJSON_AddStringToObject(p, "client_msg_id", cmid);
    cJSON_AddItemToObject(p, "origin", cJSON_CreateObject());
    return bus_publish(f->app.bus, bus_event_new(TOPIC_MESSAGE_SUBMITTED, p));
}

TEST(message_group_commit_through_bus_and_writer)
{
    struct fx f;
    struct msg_state *st = NULL;
    static struct gc_seen seen;
    int finalized = 0;
    memset(&seen, 0, sizeof(seen));
    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(bus_new(&f.app.bus, &f.app), 0);
    ASSERT_EQ(db_open(&f.app.db, &f.app, f.db_path), 0);
    ASSERT_EQ(msg_schema(f.app.db), 0);
    ASSERT_EQ(sqlite3_exec(db_sqlite(db_conn_for_cli(f.app.db)),
        "INSERT INTO rooms (id, name, kind, owner_id, created_at) VALUES"
        " (1, 'a', 'group', 1, 0), (2, 'b', 'group', 2, 0);"
        "INSERT INTO room_members (room_id, user_id, username, joined_at) VALUES"
        " (1, 1, 'ann', 0), (1, 2, 'bob', 0), (2, 2, 'bob', 0);", NULL, NULL, NULL), SQLITE_OK);
    ASSERT_EQ(db_start(f.app.db), 0);
    ASSERT_EQ(bus_start(f.app.bus), 0);
    struct msg_settings *ms = config_module_settings(&f.cfg, &msg_settings_table);
    ms->messages_per_s = 1e9;      /* one sender, many messages */
    ms->messages_burst = 1000000000;
    ASSERT_EQ(msg_state_new(&st, &f.app), 0);
    ASSERT_EQ(msg_subscribe(st), 0);
    struct bus_sub_opts o = { .consumer = "test.stored" };
    ASSERT_EQ(bus_subscribe(f.app.bus, TOPIC_MESSAGE_STORED, &o, gc_on_stored, &seen), 0);
    o.consumer = "test.rejected";
    ASSERT_EQ(bus_subscribe(f.app.bus, TOPIC_MESSAGE_REJECTED, &o, gc_on_rejected, &seen), 0);

    /* The bus's wake-up handle does not keep a loop alive (a server's listener
     * does): without a referenced handle uv_run would not poll at all. */
    uv_timer_t keepalive;
    uv_timer_init(&f.loop, &keepalive);
    uv_timer_start(&keepalive, gc_tick, 60000, 60000);

    uint64_t t0 = mono_ns();
    /* All submitted in one loop turn, as a burst of clients would. */
    for (int i = 0; i < GC_N; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "room_id", 1 + (i % 2));
        cJSON_AddNumberToObject(p, "sender_id", 2);
        cJSON_AddStringToObject(p, "sender", "bob");
        cJSON_AddStringToObject(p, "body", "hello");
        char cmid[32];
        snprintf(cmid, sizeof(cmid), "gc-%d", i);
        cJSON_AddStringToObject(p, "client_msg_id", cmid);
        cJSON_AddItemToObject(p, "origin", cJSON_CreateObject());
        ASSERT_EQ(bus_publish(f.app.bus, bus_event_new(TOPIC_MESSAGE_SUBMITTED, p)), 0);
    }
    FX_RUN_UNTIL(&f, seen.stored + seen.rejected == GC_N, 60000);
    if (getenv("TEST_VERBOSE"))
        fprintf(stderr, "stored=%d rejected=%d transactions=%llu in %.1f ms\n", seen.stored,
                seen.rejected, (unsigned long long)st->w_batches, (mono_ns() - t0) / 1e6);
    ASSERT_EQ(seen.stored + seen.rejected, GC_N);
    ASSERT_EQ(seen.rejected, 0);
    ASSERT_EQ(seen.bad, 0);
    for (int r = 1; r <= 2; r++)
        for (int s = 1; s <= GC_N / 2; s++)
            ASSERT_EQ(seen.seen[r][s], 1);
    /* Few transactions for many messages: the writer took what was waiting. */
    ASSERT(st->w_batches >= 1);
    ASSERT(st->w_batches <= GC_N / 20);
    ASSERT(FX_RUN_UNTIL(&f, __atomic_load_n(&st->jobs_inflight, __ATOMIC_ACQUIRE) == 0, 5000));

    ASSERT_EQ(writer_finalize(st, gc_flag, &finalized), 0);
    msg_batch_close(st, NULL);
    ASSERT(FX_RUN_UNTIL(&f, finalized, 5000));
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT count(*) FROM messages"), GC_N);
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT last_seq FROM rooms WHERE id = 2"), GC_N / 2);
    uv_close((uv_handle_t *)&keepalive, NULL);
    fx_stop(&f);
    msg_state_free(st);
}

/* A writer job that holds the writer until released (at most 10 s). */
struct gc_blocker {
    struct db_job base;
    int started, release;            /* atomic: the writer thread and the test */
};

static int gc_blocker_apply(struct db_conn *conn, struct db_job *job)
{
    struct gc_blocker *b = (struct gc_blocker *)job;
    uint64_t deadline = mono_ms() + 10000;
    __atomic_store_n(&b->started, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&b->release, __ATOMIC_ACQUIRE) && mono_ms() < deadline)
        fx_nap();
    return 0;
}

struct gc_order {
    char body[8][8];                 /* bodies of message.stored, in arrival order */
    int64_t seq[8];
    int n;
};

static int gc_on_stored_order(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct gc_order *o = ctx;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(ev->payload, "message");
    const char *body = "";
    if (o->n < 8) {
        json_get_str(m, "body", &body);
        snprintf(o->body[o->n], sizeof(o->body[0]), "%s", body);
        json_get_i64(m, "seq", &o->seq[o->n]);
    }
    o->n++;
    return 0;
}

/* A batch handed to the writer takes no more messages: those submitted while the
 * writer holds it go to the next batch; with MSG_BATCHES_OUT_MAX of ours there, the
 * open batch gathers until one is back. All commit, in order, with a gapless seq. */
TEST(message_batch_handed_over_is_never_appended_to)
{
    struct fx f;
    struct msg_state *st = NULL;
    static struct gc_blocker blk;    /* the writer may still hold it if an assertion fails */
    static struct gc_order order;
    static const char *const bodies[] = { "a", "b", "c", "d" };
    int finalized = 0;
    blk = (struct gc_blocker){ .base = { .apply = gc_blocker_apply } };
    memset(&order, 0, sizeof(order));
    ASSERT_EQ(gc_setup(&f, &st), 0);
    struct bus_sub_opts o = { .consumer = "test.stored" };
    ASSERT_EQ(bus_subscribe(f.app.bus, TOPIC_MESSAGE_STORED, &o, gc_on_stored_order, &order),
              0);
    uv_timer_t keepalive;
    uv_timer_init(&f.loop, &keepalive);
    uv_timer_start(&keepalive, gc_tick, 60000, 60000);

    ASSERT_EQ(db_write(f.app.db, &blk.base), 0);
    uint64_t deadline = mono_ms() + 5000;
    while (!__atomic_load_n(&blk.started, __ATOMIC_ACQUIRE) && mono_ms() < deadline)
        fx_nap();
    ASSERT(blk.started);
    /* Batch N: one message, handed over at the end of its turn, behind the blocker. */
    ASSERT_EQ(gc_submit(&f, 1, "a", "own-a"), 0);
    ASSERT(FX_RUN_UNTIL(&f, db_write_depth(f.app.db) == 2, 5000));
    ASSERT(st->open_batch == NULL);
    /* The next turn's message is batch N+1, queued behind N: not added to N. */
    ASSERT_EQ(gc_submit(&f, 1, "b", "own-b"), 0);
    ASSERT(FX_RUN_UNTIL(&f, db_write_depth(f.app.db) == 3, 5000));
    ASSERT(st->open_batch == NULL);
    ASSERT_EQ(st->batches_out, MSG_BATCHES_OUT_MAX);
    /* Two more, each in turns of their own: they gather in N+2, which waits. */
    ASSERT_EQ(gc_submit(&f, 1, "c", "own-c"), 0);
    for (int i = 0; i < 3; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    ASSERT_EQ(gc_submit(&f, 1, "d", "own-d"), 0);
    for (int i = 0; i < 3; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    ASSERT(st->open_batch != NULL);
    ASSERT_EQ(st->open_batch->n, 2);
    ASSERT_EQ(db_write_depth(f.app.db), 3);

    __atomic_store_n(&blk.release, 1, __ATOMIC_RELEASE);
    ASSERT(FX_RUN_UNTIL(&f, order.n == 4, 10000));
    ASSERT_EQ(st->w_batches, 3);
    for (int i = 0; i < 4; i++) {
        ASSERT_STR_EQ(order.body[i], bodies[i]);
        ASSERT_EQ(order.seq[i], i + 1);
    }
    ASSERT(FX_RUN_UNTIL(&f, st->batches_out == 0 &&
                        __atomic_load_n(&st->jobs_inflight, __ATOMIC_ACQUIRE) == 0, 5000));
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT last_seq FROM rooms WHERE id = 1"), 4);

    ASSERT_EQ(writer_finalize(st, gc_flag, &finalized), 0);
    msg_batch_close(st, NULL);
    ASSERT(FX_RUN_UNTIL(&f, finalized, 5000));
    uv_close((uv_handle_t *)&keepalive, NULL);
    fx_stop(&f);
    msg_state_free(st);
}
