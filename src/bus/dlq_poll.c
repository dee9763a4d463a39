/* dlq_poll.c: the replay of dead letters. `chatd dlq replay` marks rows in the
 * database; once a second the running server reads the marked rows (and the table's
 * totals, for /metrics) on the thread pool and delivers each event again to the
 * consumer named in the row. The outcome goes back to the row through deadletter.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/db_sqlite.h"
#include "chatd/log.h"
#include "bus_internal.h"

/* --- the replay poll ------------------------------------------------------------------- */

struct dlq_row {
    int64_t id;
    char *topic, *consumer, *payload;
};

struct dlq_poll {
    struct bus *b;
    int64_t total, bytes;
    int n;
    struct dlq_row rows[BUS_REPLAY_BATCH];
};

static char *column_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return strdup(t ? (const char *)t : "");
}

/* Thread pool. */
static int poll_read(struct db_conn *conn_, void *arg)
{
    sqlite3 *conn = db_sqlite(conn_);
    struct dlq_poll *p = arg;
    sqlite3_stmt *st = NULL;
    int rc = dlq_totals(conn, &p->total, &p->bytes);

    if (rc < 0)
        return rc;
    rc = sqlite3_prepare_v2(conn, "SELECT id, topic, consumer, payload FROM dead_letters"
                            " WHERE replay_requested = 1 ORDER BY id LIMIT ?", -1, &st, NULL);
    if (rc == SQLITE_OK)
        sqlite3_bind_int(st, 1, BUS_REPLAY_BATCH);
    while (rc == SQLITE_OK && p->n < BUS_REPLAY_BATCH && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct dlq_row *r = &p->rows[p->n++];
        r->id = sqlite3_column_int64(st, 0);
        r->topic = column_dup(st, 1);
        r->consumer = column_dup(st, 2);
        r->payload = column_dup(st, 3);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_OK ? 0 : db_errno(rc);
}

static void replay_row(struct bus *b, struct dlq_row *r)
{
    struct bus_sub *sub;
    struct bus_event *ev;
    struct bus_delivery *d;
    cJSON *payload;
    char why[BUS_ERROR_MAX];

    if (!r->topic || !r->consumer || !r->payload || dlq_replaying_index(b, r->id) >= 0 ||
        b->nreplaying >= BUS_REPLAY_INFLIGHT_MAX)
        return;
    if (!(sub = bus_find_sub(b, r->topic, r->consumer))) {
        snprintf(why, sizeof(why), "replay: no consumer %s for topic %s", r->consumer,
                 r->topic);
        dlq_replay_refused(b, r->id, r->topic, r->consumer, why);
        return;
    }
    if (!(payload = cJSON_Parse(r->payload)) || !cJSON_IsObject(payload)) {
        cJSON_Delete(payload);
        dlq_replay_refused(b, r->id, r->topic, r->consumer, "replay: payload is not a JSON object");
        return;
    }
    if (!(ev = bus_event_new(r->topic, payload)))
        return;
    d = delivery_new(b, sub, ev);
    bus_event_unref(ev);
    if (!d)
        return;
    d->replay_id = r->id;
    if (bus_enqueue(b, WORK_DELIVERY, d) < 0) {
        delivery_free(d);
        return;
    }
    b->replaying[b->nreplaying++] = r->id;
    LOG_INFO(b->app, "bus", "replaying dead letter id=%lld topic=%s consumer=%s",
             (long long)r->id, r->topic, r->consumer);
}

static void poll_free(struct dlq_poll *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->rows[i].topic);
        free(p->rows[i].consumer);
        free(p->rows[i].payload);
    }
    free(p);
}

static void poll_after(void *arg, int status)
{
    struct dlq_poll *p = arg;
    struct bus *b = p->b;

    b->poll_inflight = 0;
    if (b->closed) {
        poll_free(p);
        return;
    }
    if (status < 0) {
        LOG_WARN(b->app, "bus", "dead letter poll failed error=%d", status);
    } else {
        b->dead_letter_rows = (double)p->total;
        b->dead_letter_bytes = (double)p->bytes;
        for (int i = 0; i < p->n; i++)
            replay_row(b, &p->rows[i]);
    }
    poll_free(p);
}

static void on_poll_timer(uv_timer_t *t)
{
    struct bus *b = t->data;
    struct dlq_poll *p;

    if (b->poll_inflight || !b->db_ready || !(p = calloc(1, sizeof(*p))))
        return;
    p->b = b;
    if (db_read(b->app->db, poll_read, poll_after, p) < 0) {
        free(p);
        return;
    }
    b->poll_inflight = 1;
}

int dlq_start_polling(struct bus *b)
{
    int rc = uv_timer_start(&b->h->poll_timer, on_poll_timer, 0, BUS_REPLAY_POLL_MS);

    if (rc == 0)
        uv_unref((uv_handle_t *)&b->h->poll_timer);
    return rc;
}
