/* deadletter.c: the dead-letter table. The bus owns it: a delivery that failed its
 * last attempt becomes a row (through the writer thread); `chatd dlq replay` marks
 * rows, and the running server polls for marked rows once a second and delivers each
 * event again to the consumer named in the row. A replay that succeeds deletes the
 * row; one that fails again updates it and clears the mark. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/db.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "bus_internal.h"

static const struct db_migration dlq_migrations[] = {
    { 1, "CREATE TABLE dead_letters ("
         " id INTEGER PRIMARY KEY AUTOINCREMENT,"
         " topic TEXT NOT NULL,"
         " payload TEXT NOT NULL,"
         " consumer TEXT NOT NULL,"
         " error TEXT NOT NULL DEFAULT '',"
         " attempts INTEGER NOT NULL DEFAULT 0,"
         " first_failed_at INTEGER NOT NULL,"
         " last_failed_at INTEGER NOT NULL,"
         " replay_requested INTEGER NOT NULL DEFAULT 0);"
         "CREATE INDEX dead_letters_replay ON dead_letters (id)"
         " WHERE replay_requested = 1;" },
};

int dlq_migrate(struct db *db)
{
    return db_migrate(db, "bus", dlq_migrations,
                      (int)(sizeof(dlq_migrations) / sizeof(dlq_migrations[0])));
}

/* --- writes ---------------------------------------------------------------------------- */

enum { DLQ_INSERT, DLQ_FAILED_AGAIN, DLQ_DELETE };

struct dlq_job {
    struct db_job job;               /* first: the writer hands us back this pointer */
    struct bus *b;
    int kind;
    int64_t id;                      /* the row, for a replay */
    char topic[BUS_TOPIC_MAX];
    char consumer[BUS_CONSUMER_MAX];
    char error[BUS_ERROR_MAX];
    char *payload;                   /* owned JSON text */
    int attempts;
    int64_t first_failed_at, last_failed_at;
    uint64_t *stored_total;
};

static int step_done(sqlite3_stmt *st, int rc)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static int dlq_apply(sqlite3 *conn, struct db_job *job)
{
    struct dlq_job *j = (struct dlq_job *)job;
    sqlite3_stmt *st = NULL;
    int rc;

    if (j->kind == DLQ_DELETE) {
        rc = sqlite3_prepare_v2(conn, "DELETE FROM dead_letters WHERE id = ?", -1, &st, NULL);
        if (rc == SQLITE_OK)
            sqlite3_bind_int64(st, 1, j->id);
        return step_done(st, rc);
    }
    if (j->kind == DLQ_FAILED_AGAIN) {
        rc = sqlite3_prepare_v2(conn, "UPDATE dead_letters SET error = ?,"
                                " attempts = attempts + ?, last_failed_at = ?,"
                                " replay_requested = 0 WHERE id = ?", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(st, 1, j->error, -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 2, j->attempts);
            sqlite3_bind_int64(st, 3, j->last_failed_at);
            sqlite3_bind_int64(st, 4, j->id);
        }
        return step_done(st, rc);
    }
    rc = sqlite3_prepare_v2(conn, "INSERT INTO dead_letters (topic, payload, consumer, error,"
                            " attempts, first_failed_at, last_failed_at)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, j->topic, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, j->payload, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, j->consumer, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, j->error, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, j->attempts);
        sqlite3_bind_int64(st, 6, j->first_failed_at);
        sqlite3_bind_int64(st, 7, j->last_failed_at);
    }
    return step_done(st, rc);
}

static void dlq_job_free(struct dlq_job *j)
{
    free(j->payload);
    free(j);
}

static int replaying_index(struct bus *b, int64_t id)
{
    for (int i = 0; i < b->nreplaying; i++)
        if (b->replaying[i] == id)
            return i;
    return -1;
}

static void replay_forget(struct bus *b, int64_t id)
{
    int i = replaying_index(b, id);
    if (i >= 0)
        b->replaying[i] = b->replaying[--b->nreplaying];
}

/* Loop thread: the row's fate is on disk, so the next poll may look at it again. */
static void replay_finished(void *arg)
{
    struct dlq_job *j = arg;

    replay_forget(j->b, j->id);
    dlq_job_free(j);
}

/* Writer thread. */
static void dlq_done(struct db_job *job, int status)
{
    struct dlq_job *j = (struct dlq_job *)job;

    if (status < 0)
        log_write(j->b->app->log, CHATD_LOG_ERROR, "bus",
                  "dead letter not stored topic=%s consumer=%s error=\"%s\" db_error=%d"
                  " payload=%s", j->topic, j->consumer, j->error, status,
                  j->payload ? j->payload : "{}");
    else if (j->kind == DLQ_INSERT)
        METRIC_INC(j->stored_total);
    if (j->id == 0 || bus_call_on_loop_wait(j->b, replay_finished, j) < 0)
        dlq_job_free(j);
}

static void submit(struct bus *b, struct dlq_job *j)
{
    int rc = -ECANCELED;

    j->b = b;
    j->job.apply = dlq_apply;
    j->job.done = dlq_done;
    if (b->db_ready && (rc = db_write(b->app->db, &j->job)) == 0)
        return;
    LOG_ERROR(b->app, "bus", "dead letter lost topic=%s consumer=%s error=\"%s\""
              " reason=\"%s\" payload=%s", j->topic, j->consumer, j->error,
              strerror(-rc), j->payload ? j->payload : "{}");
    if (j->id)
        replay_forget(b, j->id);
    dlq_job_free(j);
}

void dlq_write(struct bus *b, struct bus_delivery *d)
{
    struct dlq_job *j = calloc(1, sizeof(*j));

    if (!j) {
        LOG_ERROR(b->app, "bus", "dead letter lost topic=%s consumer=%s reason=oom",
                  d->ev->topic, d->sub->consumer);
        return;
    }
    j->kind = d->replay_id ? DLQ_FAILED_AGAIN : DLQ_INSERT;
    j->id = d->replay_id;
    snprintf(j->topic, sizeof(j->topic), "%s", d->ev->topic);
    snprintf(j->consumer, sizeof(j->consumer), "%s", d->sub->consumer);
    snprintf(j->error, sizeof(j->error), "%s", d->error);
    j->payload = json_print(d->ev->payload);
    j->attempts = d->attempt;
    j->first_failed_at = d->first_failed_at ? d->first_failed_at : now_ms();
    j->last_failed_at = now_ms();
    j->stored_total = b->dead_letters_total;
    if (j->kind == DLQ_INSERT)
        LOG_ERROR(b->app, "bus", "dead letter topic=%s consumer=%s attempts=%d error=\"%s\"",
                  j->topic, j->consumer, j->attempts, j->error);
    submit(b, j);
}

void dlq_replay_succeeded(struct bus *b, struct bus_delivery *d)
{
    struct dlq_job *j = calloc(1, sizeof(*j));

    if (!j) {
        replay_forget(b, d->replay_id);
        return;
    }
    j->kind = DLQ_DELETE;
    j->id = d->replay_id;
    snprintf(j->topic, sizeof(j->topic), "%s", d->ev->topic);
    snprintf(j->consumer, sizeof(j->consumer), "%s", d->sub->consumer);
    LOG_INFO(b->app, "bus", "dead letter replayed id=%lld topic=%s consumer=%s",
             (long long)j->id, j->topic, j->consumer);
    submit(b, j);
}

/* A marked row that cannot be delivered (no such consumer here, unreadable payload):
 * say why in the row and clear the mark, so it is not picked up again and again. */
static void replay_refused(struct bus *b, int64_t id, const char *topic, const char *consumer,
                           const char *why)
{
    struct dlq_job *j = calloc(1, sizeof(*j));

    if (!j)
        return;
    j->kind = DLQ_FAILED_AGAIN;
    j->id = id;
    snprintf(j->topic, sizeof(j->topic), "%s", topic);
    snprintf(j->consumer, sizeof(j->consumer), "%s", consumer);
    snprintf(j->error, sizeof(j->error), "%s", why);
    j->last_failed_at = now_ms();
    LOG_WARN(b->app, "bus", "dead letter not replayed id=%lld topic=%s consumer=%s"
             " reason=\"%s\"", (long long)id, topic, consumer, why);
    b->replaying[b->nreplaying++] = id;
    submit(b, j);
}

/* --- the replay poll ------------------------------------------------------------------- */

struct dlq_row {
    int64_t id;
    char *topic, *consumer, *payload;
};

struct dlq_poll {
    struct bus *b;
    int64_t total;
    int n;
    struct dlq_row rows[BUS_REPLAY_BATCH];
};

static char *column_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return strdup(t ? (const char *)t : "");
}

/* Thread pool. */
static int poll_read(sqlite3 *conn, void *arg)
{
    struct dlq_poll *p = arg;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(conn, "SELECT count(*) FROM dead_letters", -1, &st, NULL);

    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        p->total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return db_errno(rc);
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

    if (!r->topic || !r->consumer || !r->payload || replaying_index(b, r->id) >= 0 ||
        b->nreplaying >= BUS_REPLAY_INFLIGHT_MAX)
        return;
    if (!(sub = bus_find_sub(b, r->topic, r->consumer))) {
        snprintf(why, sizeof(why), "replay: no consumer %s for topic %s", r->consumer,
                 r->topic);
        replay_refused(b, r->id, r->topic, r->consumer, why);
        return;
    }
    if (!(payload = cJSON_Parse(r->payload)) || !cJSON_IsObject(payload)) {
        cJSON_Delete(payload);
        replay_refused(b, r->id, r->topic, r->consumer, "replay: payload is not a JSON object");
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
        for (int i = 0; i < p->n; i++)
            replay_row(b, &p->rows[i]);
        bus_pump(b);
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
