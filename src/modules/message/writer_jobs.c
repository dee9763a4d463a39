/* writer_jobs.c: the module's small writer jobs: one that lets the store release
 * what it keeps for the writer's connection (its prepared statements, on their own
 * thread), a fence that writes nothing, and the error codes of answers. */
#include <errno.h>
#include <stdlib.h>
#include "chatd/metrics.h"
#include "message_internal.h"

/* ---------- finalizing the statements on their own thread ---------- */
struct finalize_job {
    struct db_job base;
    struct msg_state *st;
    void (*fn)(void *arg);
    void *arg;
};

static int finalize_apply(struct db_conn *conn, struct db_job *job)
{
    struct finalize_job *f = (struct finalize_job *)job;
    f->st->store.ops->writer_release(f->st->store.impl);
    return 0;
}

static void writer_call_after(struct db_job *job, int status)
{
    struct finalize_job *f = (struct finalize_job *)job;
    void (*fn)(void *arg) = f->fn;
    void *arg = f->arg;
    free(f);
    fn(arg);
}

static int fence_apply(struct db_conn *conn, struct db_job *job)
{
    return 0;
}

static int writer_call(struct msg_state *st, int (*apply)(struct db_conn *, struct db_job *),
                       void (*fn)(void *arg), void *arg)
{
    struct finalize_job *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->base.apply = apply;
    f->base.after = writer_call_after;
    f->st = st;
    f->fn = fn;
    f->arg = arg;
    int rc = db_write(st->app->db, &f->base);
    if (rc < 0)
        free(f);
    return rc;
}

int writer_finalize(struct msg_state *st, void (*fn)(void *arg), void *arg)
{
    return writer_call(st, finalize_apply, fn, arg);
}

/* The loop runs the jobs' after() in the order they were queued: fn comes after the
 * results of every write queued before it, so after those of every commit a read
 * could have seen by then. */
int writer_fence(struct msg_state *st, void (*fn)(void *arg), void *arg)
{
    return writer_call(st, fence_apply, fn, arg);
}

/* ---------- error codes ---------- */
static const struct { int status; const char *code; } codes[] = {
    {400, "invalid_argument"}, {401, "unauthorized"}, {403, "forbidden"},
    {404, "not_found"}, {409, "conflict"}, {413, "payload_too_large"},
    {429, "rate_limited"}, {500, "internal"}, {503, "unavailable"},
};

const char *msg_code_of_status(int status)
{
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i].status == status)
            return codes[i].code;
    return "internal";
}
