/* messages.c: storing one message. message.submitted (from an HTTP post of this
 * module or from the websocket module) becomes a message of the open batch
 * (batch.c), which checks the membership, deduplicates on (sender_id, client_msg_id)
 * and takes the next seq of the room inside the group transaction; after COMMIT the
 * loop publishes message.stored or message.rejected. Nobody hears of a message before
 * its transaction is durable. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/events.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "message_internal.h"

/* ---------- the job ---------- */
void msg_job_free(struct msg_job *j)
{
    if (!j)
        return;
    free(j->dup);
    free(j);
}

/* One allocation for the job and its strings: the loop makes one per message. */
struct msg_job *msg_job_new(struct msg_state *st, int64_t room_id, int64_t sender_id,
                            const char *sender, const char *body, const char *cmid,
                            const struct ev_origin *origin)
{
    size_t ls = strlen(sender) + 1, lb = strlen(body) + 1, lc = cmid ? strlen(cmid) + 1 : 0;
    struct msg_job *j = malloc(sizeof(*j) + ls + lb + lc);
    if (!j)
        return NULL;
    memset(j, 0, sizeof(*j));
    char *p = (char *)(j + 1);
    j->st = st;
    j->room_id = room_id;
    j->sender_id = sender_id;
    j->sender = memcpy(p, sender, ls);
    j->body = memcpy(p + ls, body, lb);
    j->client_msg_id = cmid ? memcpy(p + ls + lb, cmid, lc) : NULL;
    if (origin)
        j->origin = *origin;
    j->t0_ns = mono_ns();
    return j;
}

void msg_job_reset(struct msg_job *j)
{
    j->status = 0;
    j->errmsg = NULL;
    j->member_ids = NULL;
    j->nmembers = 0;
    free(j->dup);
    j->dup = NULL;
    memset(&j->row, 0, sizeof(j->row));
}

void msg_job_fail(struct msg_job *j, int status, const char *msg)
{
    j->status = status;
    j->errmsg = msg;
}

/* Loop, after COMMIT: tells everybody what became of the message, and frees it. */
void msg_job_post_result(struct msg_state *st, struct msg_job *j)
{
    struct msg_outcome o;
    msg_job_outcome(j, &o);
    if (o.status == 201 || o.status == 200) {
        METRIC_INC(o.status == 201 ? st->m_stored : st->m_duplicates);
        metrics_observe(st->m_latency, (double)(mono_ns() - j->t0_ns) / 1e9);
        /* Commit-time members, in commit order: the freshest the cache can get. */
        if (j->nmembers > 0 && j->nmembers <= MSG_ROOM_MAX_MEMBERS)
            mcache_put(st->members, j->room_id, j->member_ids, j->nmembers);
    } else {
        METRIC_INC(st->m_rejected);
    }
    if (msg_publish_outcome(st, &o) == -ECANCELED)
        LOG_WARN(st->app, "message", "result not delivered: bus closing room_id=%lld",
                 (long long)j->room_id);
    msg_job_free(j);
}

/* ---------- message.submitted on the loop ---------- */
static void reject_retry(struct msg_state *st, const struct ev_message_submitted *m,
                         int status, const char *msg, int64_t retry_after_ms)
{
    struct msg_outcome o = {
        .origin = m->origin, .client_msg_id = m->client_msg_id, .room_id = m->room_id,
        .status = status, .errmsg = msg, .retry_after_ms = retry_after_ms,
    };
    METRIC_INC(st->m_rejected);
    msg_publish_outcome(st, &o);
}

static void reject_now(struct msg_state *st, const struct ev_message_submitted *m,
                       int status, const char *msg)
{
    reject_retry(st, m, status, msg, 0);
}

/* The rate limit's key for a sender: its id in decimal (snprintf costs more than the
 * rest of the limit check, on every message). */
static void id_key(char *out, int64_t id)
{
    char tmp[24];
    uint64_t u = (uint64_t)id;
    int n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        *out++ = tmp[--n];
    *out = '\0';
}

void msg_submit(struct msg_state *st, const struct ev_message_submitted *m)
{
    enum msg_fault fault = msg_validate(st, m->room_id, m->body, m->client_msg_id);
    if (fault != MSG_VALID)
        return reject_now(st, m, 400, msg_fault_text(fault));
    if (st->draining)
        return reject_now(st, m, 503, "the server is shutting down");
    /* Every send passes here, HTTP and WebSocket alike: one budget per sender. */
    char key[24];
    id_key(key, m->sender_id);
    int64_t wait_ms = ratelimit_take(st->send_limit, key, mono_ms());
    if (wait_ms > 0)
        return reject_retry(st, m, 429, "too many messages: slow down", wait_ms);

    struct msg_job *j = msg_job_new(st, m->room_id, m->sender_id, m->sender, m->body,
                                    m->client_msg_id, m->origin);
    if (!j)
        return reject_now(st, m, 503, "out of memory");
    if (__atomic_load_n(&st->jobs_inflight, __ATOMIC_RELAXED) >= MSG_QUEUED_MAX) {
        msg_job_free(j);
        return reject_now(st, m, 503, "too many messages waiting to be stored");
    }
    __atomic_fetch_add(&st->jobs_inflight, 1, __ATOMIC_RELAXED);
    int rc = msg_batch_queue(st, j);
    if (rc < 0) {
        __atomic_fetch_sub(&st->jobs_inflight, 1, __ATOMIC_RELAXED);
        msg_job_free(j);
        return reject_now(st, m, 503, rc == -EAGAIN ? "too many messages waiting to be stored"
                                                    : "the database is not available");
    }
}
