/* message_module.c: the message module's descriptor and lifecycle. It owns the
 * tables rooms, room_members and messages (through its store, message_store.h); it
 * listens to message.submitted,
 * typing.submitted and read.submitted (from the websocket module and its own HTTP
 * routes), answers message.sync and rooms.peers, and publishes message.stored,
 * message.rejected, room.changed, room.read and room.typing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/config.h"
#include "chatd/events.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/module.h"
#include "chatd/util.h"
#include "message_internal.h"
#include "message_settings.h"

int msg_migrate(struct msg_state *st, struct db *db)
{
    return st->store.ops->migrate(st->store.impl, db);
}

/* The store of db's engine (SQLite without a database: tests that build it later). */
static int msg_store_of(struct msg_store *s, struct db *db)
{
    return db && db_engine(db) == DB_ENGINE_PG ? msg_store_pg_new(s) : msg_store_sqlite_new(s);
}

int msg_state_new(struct msg_state **out, struct chatd *app)
{
    static const double latency_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                             0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };
    static const double batch_bounds[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024 };
    struct msg_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->app = app;
    const struct msg_settings *set = msg_settings(app->cfg);   /* NULL cfg: defaults */
    st->max_body_bytes = set->max_body_bytes;
    if (st->max_body_bytes <= 0)
        st->max_body_bytes = 4096;
    double rate = set->messages_per_s;
    double burst = set->messages_burst;
    if (msg_store_of(&st->store, app->db) < 0 ||
        pending_init(&st->pending, MSG_PENDING_MAX) < 0 ||
        mcache_new(&st->members, MSG_CACHE_ROOMS) < 0 ||
        ratelimit_new(&st->send_limit, MSG_LIMIT_USERS, rate, burst) < 0) {
        msg_state_free(st);
        return -ENOMEM;
    }
    st->m_stored = metrics_counter(app->metrics, "chatd_messages_stored_total", NULL,
                                   "Messages committed to the database");
    st->m_duplicates = metrics_counter(app->metrics, "chatd_messages_duplicate_total", NULL,
                                       "Messages answered with a first copy (client_msg_id)");
    st->m_rejected = metrics_counter(app->metrics, "chatd_messages_rejected_total", NULL,
                                     "Submitted messages that were not stored");
    st->m_latency = metrics_histogram(app->metrics, "chatd_message_commit_latency_seconds",
                                      NULL, "From submit to durable commit",
                                      latency_bounds, 13);
    st->m_batch = metrics_histogram(app->metrics, "chatd_message_commit_batch_size", NULL,
                                    "Messages per committed transaction", batch_bounds, 11);
    *out = st;
    return 0;
}

void msg_state_free(struct msg_state *st)
{
    if (!st)
        return;
    pending_free(&st->pending);
    mcache_free(st->members);
    if (st->send_limit)
        ratelimit_free(st->send_limit);
    msg_store_free(&st->store);      /* statements finalized at drain, on the writer */
    free(st);
}

/* ---------- bus handlers ---------- */
/* The bus hands each handler its topic's struct, decoded (ev->data). */
static int on_submitted(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    msg_submit(ctx, ev->data);
    return 0;
}

static int on_typing(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    typing_submit(ctx, ev->data);
    return 0;
}

static int on_read(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct msg_state *st = ctx;
    const struct ev_read_submitted *r = ev->data;
    if (r->room_id <= 0 || r->seq < 0 || st->draining)
        return 0;
    reads_submit(st, NULL, r->room_id, r->user_id, r->seq);
    return 0;
}

static int on_sync(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    sync_page_request(ctx, ev);
    return 0;
}

static int on_peers(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    rooms_peers_request(ctx, ev);
    return 0;
}

int msg_subscribe(struct msg_state *st)
{
    static const struct {
        const char *topic, *consumer;
        bus_handler_fn fn;
    } subs[] = {
        { TOPIC_MESSAGE_SUBMITTED, "message.submit", on_submitted },
        { TOPIC_TYPING_SUBMITTED, "message.typing", on_typing },
        { TOPIC_READ_SUBMITTED, "message.read", on_read },
        { TOPIC_MESSAGE_SYNC, "message.sync", on_sync },
        { TOPIC_ROOMS_PEERS, "message.peers", on_peers },
    };
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        struct bus_sub_opts o = { .consumer = subs[i].consumer };
        int rc = bus_subscribe(st->app->bus, subs[i].topic, &o, subs[i].fn, st);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---------- lifecycle ---------- */
static int message_init(struct chatd *app, void **state)
{
    struct msg_state *st;
    int rc = msg_state_new(&st, app);
    if (rc < 0)
        return rc;
    if ((rc = msg_migrate(st, app->db)) < 0) {
        LOG_ERROR(app, "message", "migration failed rc=%d", rc);
        msg_state_free(st);
        return rc;
    }
    *state = st;
    return 0;
}

static int message_start(void *state)
{
    struct msg_state *st = state;
    int rc;
    if ((rc = msg_subscribe(st)) < 0 || (rc = routes_rooms_add(st)) < 0 ||
        (rc = routes_messages_add(st)) < 0) {
        LOG_ERROR(st->app, "message", "start failed rc=%d", rc);
        return rc;
    }
    return 0;
}

static void flush_closed(struct msg_state *st)
{
    st->drain_done(st);
}

static void drain_timer_closed(uv_handle_t *h)
{
    struct msg_state *st = h->data;
    msg_batch_close(st, flush_closed);
}

static void drain_finished(void *arg)
{
    struct msg_state *st = arg;
    uv_close((uv_handle_t *)&st->drain_timer, drain_timer_closed);
}

/* Waits until every job, read and lookup this module started has come back and
 * every HTTP post has its answer, then finalizes the writer's statements (on the
 * writer thread) and reports done. */
static void drain_poll(uv_timer_t *t)
{
    struct msg_state *st = t->data;
    int jobs = __atomic_load_n(&st->jobs_inflight, __ATOMIC_ACQUIRE);
    if (st->inflight > 0 || jobs > 0 || pending_count(&st->pending) > 0)
        return;
    uv_timer_stop(t);
    if (writer_finalize(st, drain_finished, st) < 0)
        drain_finished(st);
}

static void message_drain(void *state, void (*done)(void *))
{
    struct msg_state *st = state;
    st->draining = 1;
    st->drain_done = done;
    uv_timer_init(st->app->loop, &st->drain_timer);
    st->drain_timer.data = st;
    uv_timer_start(&st->drain_timer, drain_poll, 0, 5);
}

static void message_destroy(void *state)
{
    msg_state_free(state);
}

/* The tables on app->db alone (what init migrates): for chatd migrate-db. */
static int message_migrate(struct chatd *app)
{
    struct msg_store s;
    int rc = msg_store_of(&s, app->db);
    if (rc < 0)
        return rc;
    rc = s.ops->migrate(s.impl, app->db);
    msg_store_free(&s);
    return rc;
}

const struct chatd_module message_module = {
    .settings = &msg_settings_table,
    .name = "message", .init = message_init, .start = message_start,
    .drain = message_drain, .destroy = message_destroy, .migrate = message_migrate,
};
