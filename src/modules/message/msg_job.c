/* msg_job.c: one message on its way to the writer (struct msg_job): made in one
 * allocation with its strings, reset for another try, failed, and after the commit
 * its result told (results.c) and counted. messages.c makes jobs, batch.c carries
 * them through the writer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "message_internal.h"

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
