/* deadletter.c: the dead-letter table. The bus owns it, through its store
 * (dlq_store.h, one per engine): a delivery that failed its last attempt becomes a row
 * (through the writer thread), within the table's bounds (the oldest rows make room);
 * `chatd dlq replay` marks rows, and the running server claims marked rows once a
 * second and delivers each event again to the consumer named in the row (dlq_poll.c).
 * A replay that succeeds deletes the row; one that fails again updates it and clears
 * the mark and the claim. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "bus_internal.h"
#include "dlq_store.h"

/* The implementation for the database's engine. */
const struct dlq_store_ops *dlq_store(const struct db *db)
{
    return db_engine(db) == DB_ENGINE_PG ? &dlq_store_pg : &dlq_store_sqlite;
}

int dlq_migrate(struct db *db)
{
    return dlq_store(db)->migrate(db);
}

/* --- writes ---------------------------------------------------------------------------- */

enum { DLQ_INSERT, DLQ_FAILED_AGAIN, DLQ_DELETE };

struct dlq_job {
    struct db_job job;               /* first: the writer hands us back this pointer */
    struct bus *b;
    const struct dlq_store_ops *store;
    int kind;
    int64_t id;                      /* the row, for a replay */
    int64_t run;                     /* the claim a replay's outcome is written under */
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

static int dlq_apply(struct db_conn *conn, struct db_job *job)
{
    struct dlq_job *j = (struct dlq_job *)job;

    if (j->kind == DLQ_DELETE)
        return j->store->remove(conn, j->id);
    if (j->kind == DLQ_FAILED_AGAIN)
        return j->store->failed_again(conn, j->id, j->run, j->error, j->attempts,
                                      j->last_failed_at);
    if (!j->payload)
        return -ENOMEM;
    struct dlq_letter l = {
        .topic = j->topic, .consumer = j->consumer, .error = j->error,
        .payload = j->payload, .attempts = j->attempts,
        .first_failed_at = j->first_failed_at, .last_failed_at = j->last_failed_at,
    };
    return j->store->insert(conn, &l, j->max_rows, j->max_bytes, &j->evicted);
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
    j->run = b->run;
    j->job.apply = dlq_apply;
    j->job.done = dlq_done;
    j->job.after = j->id ? replay_finished : NULL;
    if (b->db_ready) {
        j->store = dlq_store(b->app->db);
        if ((rc = db_write(b->app->db, &j->job)) == 0)
            return;
    }
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
