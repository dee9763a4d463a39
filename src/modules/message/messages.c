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
