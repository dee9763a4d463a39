/* dlq_poll.c: the replay of dead letters. `chatd dlq replay` marks rows in the
 * database; once a second the running server reads the table's totals (for /metrics)
 * and whether a marked row waits, on the thread pool; when one does, a write job
 * claims marked rows for this process (dlq_store.h: of several processes on one
 * database, one gets each row), and each event goes again to the consumer named in
 * its row. The same job renews this process's claims on the rows it is still
 * replaying. The outcome goes back to the row through deadletter.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/log.h"
#include "chatd/util.h"
#include "bus_internal.h"
#include "dlq_store.h"

/* --- the replay poll ------------------------------------------------------------------- */

struct dlq_poll {
    struct bus *b;
    const struct dlq_store_ops *store;
    int64_t total, bytes;
    int claimable;
};

/* Claims marked rows for this process (and renews its claims on the rows it is
 * replaying): a write, so that of several processes on one database one gets each. */
struct dlq_claim_job {
    struct db_job job;               /* first: the writer hands us back this pointer */
    struct bus *b;
    const struct dlq_store_ops *store;
    int64_t run;
    int max;                         /* rows to claim at most */
    int nrenew;
    int n;                           /* rows claimed */
    int64_t renew[BUS_REPLAY_INFLIGHT_MAX];
    struct dlq_claim rows[BUS_REPLAY_BATCH];
};

/* Thread pool. */
static int poll_read(struct db_conn *conn, void *arg)
{
    struct dlq_poll *p = arg;
    return p->store->poll(conn, now_ms(), &p->total, &p->bytes, &p->claimable);
}

/* Writer thread; runs again from the start when the group is retried. */
static int claim_apply(struct db_conn *conn, struct db_job *job)
{
    struct dlq_claim_job *j = (struct dlq_claim_job *)job;
    int64_t now = now_ms();
    int rc = 0;

    dlq_claims_free(j->rows, j->n);
    j->n = 0;
    if (j->nrenew > 0 &&
        (rc = j->store->renew(conn, j->run, j->renew, j->nrenew, now + BUS_REPLAY_CLAIM_MS)) < 0)
        return rc;
    if (j->max > 0 &&
        (rc = j->store->claim(conn, j->run, now, now + BUS_REPLAY_CLAIM_MS, j->max, j->rows)) < 0)
        return rc;
    j->n = rc;
    return 0;
}

static void replay_row(struct bus *b, struct dlq_claim *r)
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

/* Loop thread. The claimed rows go to their consumers (unless the bus closed
 * meanwhile: their claims then end by themselves, and the rows are claimed again). */
static void claim_after(struct db_job *job, int status)
{
    struct dlq_claim_job *j = (struct dlq_claim_job *)job;
    struct bus *b = j->b;

    b->poll_inflight = 0;
    if (status < 0)
        LOG_WARN(b->app, "bus", "dead letter claim failed error=%d", status);
    else if (j->nrenew > 0)
        b->claims_renewed_at = uv_now(b->loop);
    for (int i = 0; status == 0 && !b->closed && i < j->n; i++)
        replay_row(b, &j->rows[i]);
    dlq_claims_free(j->rows, j->n);
    free(j);
}

/* 0 when the job went to the writer (its after clears poll_inflight). */
static int claim(struct bus *b, const struct dlq_store_ops *store, int want_rows)
{
    int room = BUS_REPLAY_INFLIGHT_MAX - b->nreplaying;
    int renew = b->nreplaying > 0 &&
                uv_now(b->loop) - b->claims_renewed_at >= BUS_REPLAY_CLAIM_MS / 3;
    struct dlq_claim_job *j;

    if (room > BUS_REPLAY_BATCH)
        room = BUS_REPLAY_BATCH;
    if ((!want_rows || room <= 0) && !renew)
        return -EAGAIN;
    if (!(j = calloc(1, sizeof(*j))))
        return -ENOMEM;
    j->b = b;
    j->store = store;
    j->run = b->run;
    j->max = want_rows ? room : 0;
    if (renew) {
        j->nrenew = b->nreplaying;
        memcpy(j->renew, b->replaying, sizeof(j->renew[0]) * (size_t)b->nreplaying);
    }
    j->job.apply = claim_apply;
    j->job.after = claim_after;
    if (db_write(b->app->db, &j->job) < 0) {
        free(j);
        return -EAGAIN;
    }
    return 0;
}

static void poll_after(void *arg, int status)
{
    struct dlq_poll *p = arg;
    struct bus *b = p->b;

    b->poll_inflight = 0;
    if (b->closed) {
        free(p);
        return;
    }
    if (status < 0) {
        LOG_WARN(b->app, "bus", "dead letter poll failed error=%d", status);
    } else {
        b->dead_letter_rows = (double)p->total;
        b->dead_letter_bytes = (double)p->bytes;
    }
    if (b->db_ready && claim(b, p->store, status == 0 && p->claimable) == 0)
        b->poll_inflight = 1;
    free(p);
}

static void on_poll_timer(uv_timer_t *t)
{
    struct bus *b = t->data;
    struct dlq_poll *p;

    if (b->poll_inflight || !b->db_ready || !(p = calloc(1, sizeof(*p))))
        return;
    p->b = b;
    p->store = dlq_store(b->app->db);
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
