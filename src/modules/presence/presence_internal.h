/* presence_internal.h: the presence module's private structures.
 *   presence_module.c   descriptor; ws.connected / ws.disconnected -> presence.changed
 *   presence_http.c     GET /v1/presence
 *   presence_seen.c     the jobs on last_seen_at (presence_seen_store.h; today's
 *                       engine: presence_seen_store_sqlite.c)
 *   presence_store*.c   who holds which connections (behind presence_store.h)
 * Tables by user id are chatd/i64map.h's. */
#ifndef CHATD_PRESENCE_INTERNAL_H
#define CHATD_PRESENCE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <uv.h>

#include "chatd/chatd.h"
#include "chatd/http.h"
#include "chatd/i64map.h"
#include "presence_seen_store.h"
#include "presence_store.h"

#define PRESENCE_PEERS_TIMEOUT_MS 5000
#define PRESENCE_QUERY_MAX_IDS    200
/* last_seen_at is written in batches: one writer job per interval, or at once when
 * this many users wait (a burst of disconnects costs one transaction, not one each). */
#define PRESENCE_SEEN_FLUSH_MS    1000
#define PRESENCE_SEEN_MAX         4096

struct presence;

/* What the users sharing a room with a user were last told about it. An entry exists
 * while the user is announced online or an announcement is being prepared. */
struct pres_user {
    struct presence *p;
    int64_t id;
    int64_t last_seen_at;            /* when its last connection closed (ms) */
    int64_t online_since;            /* ms */
    uint8_t announced;               /* 1: told online, 0: told offline (or nothing) */
    uint8_t pending;                 /* a rooms.peers request is out */
    uint8_t seen_queued;             /* last_seen_at waits in presence.seen_ids */
};

struct presence {
    struct chatd *app;
    struct presence_store store;     /* owned: open connections */
    struct presence_seen_store seen; /* owned: last_seen_at, durable */
    /* user id -> struct pres_user (owned). No bound of its own: an entry lives while
     * its user holds a connection or is being announced, and connections are bounded
     * by the HTTP layer's max_connections. */
    struct i64map users;
    int draining;
    uint64_t *events_total;
    /* Users whose last_seen_at waits for the next batch (their pres_user holds it). */
    int64_t seen_ids[PRESENCE_SEEN_MAX];
    size_t nseen;
    uv_timer_t seen_timer;
    int seen_timer_open;
    void (*drain_done)(void *);
};

/* presence_seen.c */
int  presence_seen_open(struct presence *p);
/* The descriptor's migrate: the seen store's migration alone (chatd migrate-db). */
int  presence_migrate_tables(struct chatd *app);
/* Records rows[0..n) of last_seen_at durably in one writer job (fire and forget). */
void presence_seen_write(struct presence *p, const struct pres_seen *rows, size_t n);
/* Reads last_seen_at of ids[0..n) into out[] (0 when unknown) on the thread pool; then
 * after(arg, status) on the loop. */
int  presence_seen_fetch(struct presence *p, const int64_t *ids, int n, int64_t *out,
                      void (*after)(void *arg, int status), void *arg);

/* presence_http.c */
void presence_http_get(struct http_req *req, void *ctx);

#endif
