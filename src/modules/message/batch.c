/* batch.c: messages go to the writer in batches, one db_job for many messages.
 *
 * A batch has one owner at a time: the loop while it gathers, the writer once it is
 * handed over (db_write), the loop again when its after() runs; nothing is added to
 * a batch that was handed over, so it needs no lock. The loop appends each accepted
 * message to the open batch. At the end of the loop turn (a uv_check handle) the open
 * batch goes to the writer unless MSG_BATCHES_OUT_MAX of ours are there, so the
 * messages read in one turn share it and a quiet server still stores a lone message
 * at once. The writer holds at most two: the one it commits and the next, already
 * queued, which it takes the moment COMMIT returns without waiting for the loop (on
 * one core, the loop busy publishing results would hold it back, and the fsync with
 * it). Meanwhile the open batch keeps gathering, over as many turns as a commit takes,
 * and goes when the older of the two comes back (before its results are published),
 * or at once when it is full. So the busier the writer, the bigger the batches.
 * What a batch does inside the writer's transaction is batch_apply.c's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/events.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "message_internal.h"

/* ---------- the batch ---------- */
static void batch_after(struct db_job *job, int status);

void msg_batch_free(struct msg_batch *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->n; i++)
        msg_job_free(b->jobs[i]);
    msg_batch_reset(b);
    free(b->jobs);
    free(b->rooms);
    free(b->readers);
    free(b->keys);
    free(b);
}

struct msg_batch *msg_batch_new(struct msg_state *st)
{
    struct msg_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->base.apply = batch_apply;
    b->base.after = batch_after;
    b->base.flags = DB_JOB_UNGUARDED;    /* see the top of this file */
    b->st = st;
    b->cap = 64;
    if (!(b->jobs = malloc((size_t)b->cap * sizeof(*b->jobs)))) {
        free(b);
        return NULL;
    }
    return b;
}

int msg_batch_add(struct msg_batch *b, struct msg_job *j)
{
    if (b->n == b->cap) {
        struct msg_job **v = realloc(b->jobs, (size_t)b->cap * 2 * sizeof(*v));
        if (!v)
            return -ENOMEM;
        b->jobs = v;
        b->cap *= 2;
    }
    b->jobs[b->n++] = j;
    return 0;
}

/* Loop: the writer would not take the batch: every message of it is refused. */
static void refuse_batch(struct msg_state *st, struct msg_batch *b, int rc)
{
    int n = b->n;
    for (int i = 0; i < n; i++) {
        struct msg_job *j = b->jobs[i];
        msg_job_fail(j, 503, rc == -EAGAIN ? "too many messages waiting to be stored"
                                           : "the database is not available");
        msg_job_post_result(st, j);
    }
    b->n = 0;                        /* published jobs were freed */
    msg_batch_free(b);
    __atomic_fetch_sub(&st->jobs_inflight, n, __ATOMIC_RELEASE);
}

/* Loop: the open batch goes to the writer; from here it is the writer's until
 * batch_after gives it back, and nothing is added to it any more. */
static void hand_over_open(struct msg_state *st)
{
    struct msg_batch *b = st->open_batch;
    if (!b)
        return;
    st->open_batch = NULL;
    st->batches_out++;
    int rc = db_write(st->app->db, &b->base);
    if (rc < 0) {
        st->batches_out--;
        refuse_batch(st, b, rc);
    }
}

/* Loop: the next message starts a new batch (one that would otherwise take it could
 * be applied after a job queued now). */
void msg_batch_close_open(struct msg_state *st)
{
    hand_over_open(st);
}

/* End of the loop turn: the writer gets what this turn gathered, unless it has enough
 * of ours; then the open one keeps gathering until one is back (batch_after hands it
 * over then). Once started the check stays started (unreferenced: it keeps no loop
 * alive). The messages come from the bus's dispatch, itself a check, and a check
 * started inside another one's run waits for the next turn; one already started runs
 * after the bus's (the bus starts its check again at the end of each of its runs,
 * which puts it first), so a batch gathered by this turn's dispatch reaches the writer
 * in this turn. */
static void on_flush(uv_check_t *h)
{
    struct msg_state *st = h->data;
    if (st->batches_out < MSG_BATCHES_OUT_MAX)
        hand_over_open(st);
}

static int flush_soon(struct msg_state *st)
{
    int rc;
    if (!st->flush_init) {
        if ((rc = uv_check_init(st->app->loop, &st->flush)) < 0)
            return rc;
        st->flush.data = st;
        uv_unref((uv_handle_t *)&st->flush);
        st->flush_init = 1;
    }
    return uv_check_start(&st->flush, on_flush);
}

int msg_batch_queue(struct msg_state *st, struct msg_job *j)
{
    struct msg_batch *b = st->open_batch;
    if (b && b->n < MSG_BATCH_MAX && msg_batch_add(b, j) == 0)
        return 0;
    hand_over_open(st);              /* a full one goes, even to a busy writer */
    if (!(b = msg_batch_new(st)))
        return -ENOMEM;
    msg_batch_add(b, j);             /* room for 64: cannot fail */
    if (flush_soon(st) < 0) {
        b->n = 0;                    /* the job stays the caller's */
        msg_batch_free(b);
        return -ENOMEM;
    }
    st->open_batch = b;
    return 0;
}

static void flush_closed(uv_handle_t *h)
{
    struct msg_state *st = h->data;
    st->flush_init = 0;
    if (st->flush_closed_cb)
        st->flush_closed_cb(st);
}

void msg_batch_close(struct msg_state *st, void (*cb)(struct msg_state *st))
{
    hand_over_open(st);
    if (!st->flush_init) {
        if (cb)
            cb(st);
        return;
    }
    st->flush_closed_cb = cb;
    uv_close((uv_handle_t *)&st->flush, flush_closed);
}

/* ---------- after (loop, once COMMIT returned) ---------- */
/* The results are published on the loop, where the jobs were made: the loop frees
 * what it allocated (a free from another thread takes the allocator's arena lock
 * once the thread cache is full, which a batch of a thousand fills at once), and the
 * batch comes back as one job instead of one event per message. */
static void batch_results(struct msg_batch *b)
{
    struct msg_state *st = b->st;
    int n = b->n, stored = 0;

    for (int i = 0; i < n; i++) {
        struct msg_job *j = b->jobs[i];
        if (b->failed && j->status < 400)
            msg_job_fail(j, 503, "could not store the message");
        stored += j->status == 201;
        msg_job_post_result(st, j);
    }
    st->w_batches++;
    if (st->m_batch && stored)
        metrics_observe(st->m_batch, stored);
    b->n = 0;                        /* published jobs were freed */
    msg_batch_free(b);
    __atomic_fetch_sub(&st->jobs_inflight, n, __ATOMIC_RELEASE);
}

/* The writer has room for another of our batches: the one that gathered meanwhile
 * goes first, so it is queued before this one's results are published. */
static void batch_after(struct db_job *job, int status)
{
    struct msg_batch *b = (struct msg_batch *)job;
    struct msg_state *st = b->st;

    if (status < 0 && !b->failed)
        b->failed = status;          /* the commit failed: nothing is on disk */
    if (--st->batches_out < MSG_BATCHES_OUT_MAX)
        hand_over_open(st);
    batch_results(b);
}
