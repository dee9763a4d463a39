/* sub_health.c: push subscriptions that keep failing.
 *
 * An endpoint that never answers (a user can store 16 that do not exist) would fail
 * every message sent to its owner, each retried and then dead-lettered. Instead each
 * subscription counts its failed attempts in a row; at [notification]
 * subscription_max_failures it is failing (failing_since is set). A failing
 * subscription still gets one attempt per message, so one that comes back is seen at
 * once, but a failed attempt to it is neither retried nor dead-lettered. A success
 * clears the state. A subscription failing for subscription_failing_ttl seconds is
 * deleted by a timer here. Its owner sees failures, failing_since and last_error in
 * GET /v1/push/subscriptions, and a dropped one is no longer listed.
 *
 * The counts are kept in the store (written through the writer, read with the
 * subscription before each attempt, so they survive restarts) and, for the attempts
 * running at the same time, in a bounded set in memory (n->failures): the table's
 * count lags behind by a commit, and a burst of messages would otherwise be retried
 * and dead-lettered before the first failures are on disk (a full set starts over).
 * A delivery to a failing subscription that meets a full outbound queue is dropped
 * rather than retried, for the same reason. The jobs answer nobody, so they end on
 * the writer thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/config.h"
#include "chatd/db.h"
#include "chatd/log.h"
#include "chatd/util.h"
#include "notification_internal.h"

#define HEALTH_SWEEP_MAX_MS 60000
#define HEALTH_SWEEP_MIN_MS 100
#define HEALTH_ERROR_MAX 256

struct health_job {
    struct db_job job;               /* first: the writer hands this pointer back */
    struct chatd *app;
    const struct notification_store *store;
    int64_t sub_id;                  /* 0 for the sweep */
    int64_t now, ttl_ms;
    int max_failures, ok;
    int dropped;                     /* the sweep's deletions */
    char error[HEALTH_ERROR_MAX];
};

static int outcome_apply(struct db_conn *conn, struct db_job *job)
{
    struct health_job *j = (struct health_job *)job;
    if (j->ok)
        return notif_store_sub_succeeded(j->store, conn, j->sub_id);
    return notif_store_sub_failed(j->store, conn, j->sub_id, j->error, j->max_failures,
                                  j->now);
}

static int sweep_apply(struct db_conn *conn, struct db_job *job)
{
    struct health_job *j = (struct health_job *)job;
    return notif_store_drop_failing(j->store, conn, j->now - j->ttl_ms, &j->dropped);
}

/* Writer thread. */
static void health_done(struct db_job *job, int status)
{
    struct health_job *j = (struct health_job *)job;
    if (status < 0)
        log_write(j->app->log, CHATD_LOG_WARN, NOTIF_MOD, "cannot update push subscription"
                  " health id=%lld err=%d", (long long)j->sub_id, status);
    else if (j->dropped > 0)
        log_write(j->app->log, CHATD_LOG_INFO, NOTIF_MOD, "dropped failing push"
                  " subscriptions count=%d failing_for_s=%lld", j->dropped,
                  (long long)(j->ttl_ms / 1000));
    free(j);
}

static void submit(struct notif *n, struct health_job *j,
                   int (*apply)(struct db_conn *, struct db_job *))
{
    const struct notif_settings *ns = notif_settings(n->app->cfg);
    j->app = n->app;
    j->store = &n->store;
    j->now = now_ms();
    j->ttl_ms = (int64_t)ns->subscription_failing_ttl * 1000;
    j->max_failures = ns->subscription_max_failures;
    j->job.apply = apply;
    j->job.done = health_done;
    if (db_write(n->app->db, &j->job) < 0)
        free(j);                     /* the next outcome or sweep writes it */
}

int subs_is_failing(const struct notif *n, int64_t sub_id)
{
    uint32_t seen = 0;
    return idset_get(&n->failures, sub_id, &seen) &&
           seen >= (uint32_t)notif_settings(n->app->cfg)->subscription_max_failures;
}

/* The failures in a row after this one: the larger of the table's and ours. */
static uint32_t count_failure(struct notif *n, int64_t sub_id, const struct subs_target *t)
{
    uint32_t seen = 0;
    idset_get(&n->failures, sub_id, &seen);
    if (seen < (uint32_t)t->failures)
        seen = (uint32_t)t->failures;
    if (seen < UINT32_MAX)
        seen++;
    /* Full: most entries are of subscriptions that failed and went away (dropped,
     * deleted, replaced), which nothing removes. Starting over loses only counts the
     * table has too, a commit later; a full set would count nothing new ever again. */
    if (idset_put(&n->failures, sub_id, seen) == -ENOSPC) {
        idset_clear(&n->failures);
        idset_put(&n->failures, sub_id, seen);
    }
    return seen;
}

int subs_record_outcome(struct notif *n, int64_t sub_id, const struct subs_target *t,
                        const char *error)
{
    int max = notif_settings(n->app->cfg)->subscription_max_failures;
    uint32_t count = error ? count_failure(n, sub_id, t) : 0;
    int failing = error && (t->failing_since || count >= (uint32_t)max);
    int was_failing = t->failing_since || (count > 1 && count - 1 >= (uint32_t)max);
    if (!error)
        idset_del(&n->failures, sub_id);
    if (!error && !t->failures && !t->failing_since)
        return 0;                    /* healthy and still healthy: nothing to write */
    struct health_job *j = calloc(1, sizeof(*j));
    if (!j)
        return failing;
    j->sub_id = sub_id;
    j->ok = error == NULL;
    if (error)
        snprintf(j->error, sizeof(j->error), "%s", error);
    if (failing && !was_failing)
        LOG_WARN(n->app, NOTIF_MOD, "push subscription failing id=%lld user_id=%lld "
                 "failures=%u error=\"%s\"", (long long)sub_id, (long long)t->user_id,
                 count, error);
    submit(n, j, outcome_apply);
    return failing;
}

static void on_sweep(uv_timer_t *timer)
{
    struct notif *n = timer->data;
    struct health_job *j = calloc(1, sizeof(*j));
    if (j && !n->draining)
        submit(n, j, sweep_apply);
    else
        free(j);
}

int subs_health_start(struct notif *n)
{
    uint64_t ttl_ms = (uint64_t)notif_settings(n->app->cfg)->subscription_failing_ttl * 1000;
    uint64_t every = ttl_ms / 4;
    if (every > HEALTH_SWEEP_MAX_MS)
        every = HEALTH_SWEEP_MAX_MS;
    if (every < HEALTH_SWEEP_MIN_MS)
        every = HEALTH_SWEEP_MIN_MS;
    int rc = uv_timer_init(n->app->loop, &n->health_timer);
    if (rc < 0)
        return rc;
    n->health_timer.data = n;
    n->health_on = 1;
    uv_unref((uv_handle_t *)&n->health_timer);
    return uv_timer_start(&n->health_timer, on_sweep, every, every);
}

void subs_health_stop(struct notif *n)
{
    if (!n->health_on)
        return;
    n->health_on = 0;
    uv_timer_stop(&n->health_timer);
    uv_close((uv_handle_t *)&n->health_timer, NULL);
}
