/* The presence module: who is online, told to whoever shares a room with them.
 *
 * The websocket module says when a connection opens or closes (ws.connected,
 * ws.disconnected); the store counts connections per user. When a user's count goes
 * 0 -> 1 or 1 -> 0, the module asks the message module who shares a room with the user
 * (rooms.peers), keeps those who are online, and publishes presence.changed for them
 * (the websocket module turns it into presence frames, the notification module keeps
 * its online set from it).
 *
 * One request per user at a time, and the answer announces the user's status as it
 * is when the answer comes, only if it differs from what was last announced: a device
 * that drops and reconnects, or a second device coming and going, announces nothing,
 * and announcements never overtake each other.
 *
 * State is in memory only (behind presence_store.h): after a crash nobody is online
 * until they reconnect. last_seen_at (when a user's last connection closed) is stored
 * in the module's own table, in batches (at most PRESENCE_SEEN_FLUSH_MS late, and at
 * once on shutdown). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/http.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/module.h"
#include "chatd/util.h"
#include "presence_internal.h"

static struct pres_user *user_get(struct presence *p, int64_t id, int create)
{
    struct pres_user *u = i64map_get(&p->users, id);

    if (u || !create)
        return u;
    u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->p = p;
    u->id = id;
    if (i64map_put(&p->users, id, u) < 0) {
        free(u);
        return NULL;
    }
    return u;
}

static void user_forget_if_idle(struct presence *p, struct pres_user *u)
{
    if (!u->announced && !u->pending && !u->seen_queued &&
        presence_store_count(&p->store, u->id) == 0) {
        i64map_del(&p->users, u->id);
        free(u);
    }
}

/* presence.changed for the peers that are online (the user itself left out). */
static void publish(struct presence *p, struct pres_user *u, int online,
                    const struct ev_ids *peers)
{
    size_t npeers = peers ? peers->n : 0, n = 0;
    int64_t *ids = npeers ? malloc(npeers * sizeof(*ids)) : NULL;

    if (npeers && !ids)
        return;
    for (size_t i = 0; i < npeers; i++)
        if (peers->v[i] != u->id && presence_store_count(&p->store, peers->v[i]) > 0)
            ids[n++] = peers->v[i];
    struct ev_presence_changed ev = {
        .user_id = u->id, .status = online ? EV_ONLINE : EV_OFFLINE,
        /* Online: seen now. Offline: when the last connection closed. */
        .last_seen_at = online ? now_ms() : u->last_seen_at,
        .recipient_ids = { ids, n },
    };
    if (bus_publish_ev(p->app->bus, &EV_PRESENCE_CHANGED, &ev) == 0)
        METRIC_INC(p->events_total);
    free(ids);
}

static void schedule(struct presence *p, struct pres_user *u);

static void on_peers(void *ctx, int status, const void *reply)
{
    const struct ev_rooms_peers_reply *peers = status == 0 ? reply : NULL;
    struct pres_user *u = ctx;
    struct presence *p = u->p;
    int online = presence_store_count(&p->store, u->id) > 0;

    u->pending = 0;
    if (status < 0)
        LOG_WARN(p->app, "presence", "rooms.peers failed user=%lld err=%d: announcing to nobody",
                 (long long)u->id, status);
    if (online != u->announced) {
        publish(p, u, online, peers ? &peers->user_ids : NULL);
        u->announced = (uint8_t)online;
    }
    user_forget_if_idle(p, u);
}

static void schedule(struct presence *p, struct pres_user *u)
{
    struct ev_rooms_peers q = { .user_id = u->id };
    int64_t id;

    if (u->pending || p->draining)
        return;
    u->pending = 1;
    id = bus_request_ev(p->app->bus, &EV_ROOMS_PEERS, &q, PRESENCE_PEERS_TIMEOUT_MS,
                        on_peers, u);
    if (id < 0) {
        /* No peers to ask: still tell the modules that keep an online set. */
        on_peers(u, (int)id, NULL);
    }
}

/* --- last_seen_at, written in batches ------------------------------------------ */

/* One writer job for every user waiting: a transaction per disconnect, and waking the
 * writer for each, cost more than the rest of a connection's life. Until the job is
 * queued the value lives in the user's entry, which GET /v1/presence reads too. */
static void seen_flush(struct presence *p)
{
    struct pres_seen *rows;
    size_t n = 0;

    if (!p->nseen)
        return;
    rows = malloc(p->nseen * sizeof(*rows));
    for (size_t i = 0; i < p->nseen; i++) {
        struct pres_user *u = i64map_get(&p->users, p->seen_ids[i]);
        if (!u || !u->seen_queued)
            continue;
        if (rows)
            rows[n++] = (struct pres_seen){ u->id, u->last_seen_at };
        else   /* out of memory: one job each, as the batch would have held */
            presence_seen_write(p, &(struct pres_seen){ u->id, u->last_seen_at }, 1);
        u->seen_queued = 0;
        user_forget_if_idle(p, u);
    }
    p->nseen = 0;
    presence_seen_write(p, rows, n);
    free(rows);
    if (p->seen_timer_open)
        uv_timer_stop(&p->seen_timer);
}

static void on_seen_timer(uv_timer_t *t)
{
    seen_flush(t->data);
}

static void seen_queue(struct presence *p, struct pres_user *u)
{
    if (u->seen_queued)
        return;   /* already waiting: the batch takes its latest value */
    if (!p->seen_timer_open || p->draining) {
        /* Shutting down: nothing waits for a timer any more. */
        presence_seen_write(p, &(struct pres_seen){ u->id, u->last_seen_at }, 1);
        return;
    }
    if (p->nseen == PRESENCE_SEEN_MAX)
        seen_flush(p);
    if (p->nseen == 0)
        uv_timer_start(&p->seen_timer, on_seen_timer, PRESENCE_SEEN_FLUSH_MS, 0);
    p->seen_ids[p->nseen++] = u->id;
    u->seen_queued = 1;
}

/* The bus hands over decoded events only: ids are > 0 (event_codec.h). */
static int on_connected(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    const struct ev_ws_connected *m = ev->data;
    struct presence *p = ctx;
    int64_t user = m->user_id, conn = m->conn_id;
    struct pres_user *u;
    (void)d;

    if (presence_store_add(&p->store, user, (uint64_t)conn) != 1)
        return 0;   /* not a 0 -> 1 transition (or out of memory: stays offline) */
    u = user_get(p, user, 1);
    if (u) {
        u->online_since = now_ms();
        schedule(p, u);
    }
    return 0;
}

static int on_disconnected(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    const struct ev_ws_disconnected *m = ev->data;
    struct presence *p = ctx;
    int64_t user = m->user_id, conn = m->conn_id, at = m->at > 0 ? m->at : now_ms();
    struct pres_user *u;
    (void)d;

    if (presence_store_remove(&p->store, user, (uint64_t)conn) != 0)
        return 0;   /* other devices still connected, or a connection we never saw */
    u = user_get(p, user, 1);
    if (!u) {
        struct pres_seen row = { user, at };
        presence_seen_write(p, &row, 1);
        return 0;
    }
    if (at > u->last_seen_at)
        u->last_seen_at = at;
    seen_queue(p, u);
    schedule(p, u);
    user_forget_if_idle(p, u);
    return 0;
}

/* --- metrics, lifecycle -------------------------------------------------------- */

static double gauge_online(void *ctx)
{
    struct presence *p = ctx;
    return (double)presence_store_users_online(&p->store);
}

static int presence_init(struct chatd *app, void **state)
{
    struct presence *p = calloc(1, sizeof(*p));
    int rc;

    if (!p)
        return -ENOMEM;
    p->app = app;
    i64map_init(&p->users, 0);
    if ((rc = presence_store_mem_new(&p->store)) < 0 || (rc = presence_seen_open(p)) < 0) {
        presence_store_free(&p->store);
        presence_seen_store_free(&p->seen);
        i64map_free(&p->users);
        free(p);
        return rc < 0 ? rc : -ENOMEM;
    }
    if (app->metrics) {
        p->events_total = metrics_counter(app->metrics, "chatd_presence_events_total", NULL,
                                          "Presence changes announced (online/offline).");
        metrics_gauge_fn(app->metrics, "chatd_users_online", NULL,
                         "Users with at least one open WebSocket.", gauge_online, p);
    }
    *state = p;
    return 0;
}

static int presence_start(void *state)
{
    struct presence *p = state;
    struct bus_sub_opts opts = { .consumer = "presence", .max_attempts = 0 };
    int rc;

    if ((rc = uv_timer_init(p->app->loop, &p->seen_timer)) < 0)
        return rc;
    p->seen_timer.data = p;
    p->seen_timer_open = 1;
    uv_unref((uv_handle_t *)&p->seen_timer);
    if ((rc = bus_subscribe(p->app->bus, TOPIC_WS_CONNECTED, &opts, on_connected, p)) < 0 ||
        (rc = bus_subscribe(p->app->bus, TOPIC_WS_DISCONNECTED, &opts, on_disconnected, p)) < 0)
        return rc;
    return http_route(p->app->http, HTTP_VERB_GET, "/v1/presence", HTTP_ROUTE_AUTH,
                      presence_http_get, p);
}

/* Drained before the websocket module (reverse table order), which closes its
 * connections afterwards: keep recording last_seen_at for them (the database closes
 * after every module drained), but announce nothing to clients on their way out. */
static void seen_timer_closed(uv_handle_t *h)
{
    struct presence *p = h->data;

    p->drain_done(p);
}

static void presence_drain(void *state, void (*done)(void *))
{
    struct presence *p = state;

    p->draining = 1;
    seen_flush(p);
    if (!p->seen_timer_open) {
        done(state);
        return;
    }
    p->seen_timer_open = 0;
    p->drain_done = done;
    uv_close((uv_handle_t *)&p->seen_timer, seen_timer_closed);
}

static void presence_destroy(void *state)
{
    struct presence *p = state;

    if (!p)
        return;
    struct i64map_iter it;
    for (struct i64map_ent *e = i64map_first(&p->users, &it); e;
         e = i64map_next(&p->users, &it))
        free(e->val.ptr);
    i64map_free(&p->users);
    presence_store_free(&p->store);
    presence_seen_store_free(&p->seen);
    free(p);
}

const struct chatd_module presence_module = {
    .name = "presence", .init = presence_init, .start = presence_start,
    .drain = presence_drain, .destroy = presence_destroy,
    .migrate = presence_migrate_tables,
};
