/* deadletter.c: the dead-letter table. The bus owns it: a delivery that failed its
 * last attempt becomes a row (through the writer thread), within the table's bounds
 * (dlq_bound.c: the oldest rows make room); `chatd dlq replay` marks
 * rows, and the running server polls for marked rows once a second and delivers each
 * event again to the consumer named in the row (dlq_poll.c). A replay that succeeds
 * deletes the row; one that fails again updates it and clears the mark. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/db_sqlite.h"
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
    { 2, dlq_bound_migration },
    { 3, dlq_resize_migration },
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
    int64_t max_rows, max_bytes;     /* [bus] deadletter_max_rows, deadletter_max_bytes */
    int64_t evicted;                 /* set by the writer: rows that made room */
    uint64_t *stored_total, *evicted_total;
};

static int64_t row_size(const struct dlq_job *j)
{
    return (int64_t)(strlen(j->topic) + strlen(j->consumer) + strlen(j->error) +
                     (j->payload ? strlen(j->payload) : 0));
}

static int step_done(sqlite3_stmt *st, int rc)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static int dlq_apply(struct db_conn *conn_, struct db_job *job)
{
    sqlite3 *conn = db_sqlite(conn_);
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
        /* The size follows the new error by trigger (dlq_bound.c). */
        rc = sqlite3_prepare_v2(conn, "UPDATE dead_letters SET error = ?1,"
                                " attempts = attempts + ?2, last_failed_at = ?3,"
                                " replay_requested = 0 WHERE id = ?4", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(st, 1, j->error, -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 2, j->attempts);
            sqlite3_bind_int64(st, 3, j->last_failed_at);
            sqlite3_bind_int64(st, 4, j->id);
        }
        return step_done(st, rc);
    }
    rc = sqlite3_prepare_v2(conn, "INSERT INTO dead_letters (topic, payload, consumer, error,"
                            " attempts, first_failed_at, last_failed_at, size)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, j->topic, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, j->payload, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, j->consumer, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, j->error, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, j->attempts);
        sqlite3_bind_int64(st, 6, j->first_failed_at);
        sqlite3_bind_int64(st, 7, j->last_failed_at);
        sqlite3_bind_int64(st, 8, row_size(j));
    }
    if ((rc = step_done(st, rc)) < 0)
        return rc;
    return dlq_evict(conn, sqlite3_last_insert_rowid(conn), j->max_rows, j->max_bytes,
                     &j->evicted);
}

static void dlq_job_free(struct dlq_job *j)
{
    free(j->payload);
    free(j);
}

int dlq_replaying_index(struct bus *b, int64_t id)
{
    for (int i = 0; i < b->nreplaying; i++)
        if (b->replaying[i] == id)
            return i;
    return -1;
}

static void replay_forget(struct bus *b, int64_t id)
{
    int i = dlq_replaying_index(b, id);
    if (i >= 0)
        b->replaying[i] = b->replaying[--b->nreplaying];
}

/* Loop thread, for a replay's job: the row's fate is on disk, so the next poll may
 * look at it again. */
static void replay_finished(struct db_job *job, int status)
{
    struct dlq_job *j = (struct dlq_job *)job;

    (void)status;
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
    if (status >= 0 && j->evicted > 0) {
        METRIC_ADD(j->evicted_total, (uint64_t)j->evicted);
        log_write(j->b->app->log, CHATD_LOG_WARN, "bus", "dead letters evicted count=%lld"
                  " oldest first, to stay within deadletter_max_rows=%lld"
                  " deadletter_max_bytes=%lld", (long long)j->evicted,
                  (long long)j->max_rows, (long long)j->max_bytes);
    }
    if (!j->job.after)
        dlq_job_free(j);   /* a replay's job is core's until replay_finished */
}

static void submit(struct bus *b, struct dlq_job *j)
{
    int rc = -ECANCELED;

    j->b = b;
    j->job.apply = dlq_apply;
    j->job.done = dlq_done;
    j->job.after = j->id ? replay_finished : NULL;
    if (b->db_ready && (rc = db_write(b->app->db, &j->job)) == 0)
        return;
    LOG_ERROR(b->app, "bus", "dead letter lost topic=%s consumer=%s error=\"%s\""
              " reason=\"%s\" payload=%s", j->topic, j->consumer, j->error,
              strerror(-rc), j->payload ? j->payload : "{}");
    if (j->id)
        replay_forget(b, j->id);
    dlq_job_free(j);
}

/* The consumer may keep a smaller payload it can rebuild the event from. */
static char *dead_letter_payload(struct bus_delivery *d)
{
    cJSON *small = d->sub->dead_letter && !d->replay_id
                   ? d->sub->dead_letter(d->ev, d->sub->ctx) : NULL;
    char *text = json_print(small ? small : d->ev->payload);
    cJSON_Delete(small);
    return text;
}

static void set_bounds(struct bus *b, struct dlq_job *j)
{
    const struct chatd_config *cfg = b->app->cfg;
    struct chatd_config defaults;
    if (!cfg) {
        config_defaults(&defaults);
        cfg = &defaults;
    }
    j->max_rows = cfg->bus.deadletter_max_rows;
    j->max_bytes = cfg->bus.deadletter_max_bytes;
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
    j->payload = dead_letter_payload(d);
    j->attempts = d->attempt;
    j->first_failed_at = d->first_failed_at ? d->first_failed_at : now_ms();
    j->last_failed_at = now_ms();
    j->stored_total = b->dead_letters_total;
    j->evicted_total = b->dead_letters_evicted;
    set_bounds(b, j);
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
void dlq_replay_refused(struct bus *b, int64_t id, const char *topic, const char *consumer,
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
