/* ops.c: the trip of one request through the threads. A handler on the loop starts
 * an op; each stage runs somewhere else (thread pool for hashing and signing, the
 * database writer for writes, a pool thread for reads) and comes back to the loop by
 * calling op->next. Ops are counted so that drain waits for the last one. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "auth_internal.h"

#define OP_OF(ptr, member) ((struct auth_op *)((char *)(ptr) - offsetof(struct auth_op, member)))

void auth_inflight_begin(struct auth *a)
{
    a->inflight++;
}

void auth_inflight_end(struct auth *a)
{
    if (--a->inflight == 0 && a->draining && a->drain_done) {
        void (*done)(void *) = a->drain_done;
        a->drain_done = NULL;
        done(a);
    }
}

void auth_op_init(struct auth_op *op, struct auth *a, struct http_req *req,
                  void (*free_fn)(struct auth_op *op))
{
    op->a = a;
    op->req = req;
    op->free_fn = free_fn;
    auth_inflight_begin(a);
}

void auth_op_done(struct auth_op *op)
{
    struct auth *a = op->a;
    if (op->req)   /* every path answers; this only guards against a forgotten one */
        http_respond_error(op->req, 500, "internal error");
    op->free_fn(op);
    auth_inflight_end(a);
}

/* --- thread pool ------------------------------------------------------------------ */

static void work_cb(uv_work_t *w)
{
    struct auth_op *op = OP_OF(w, work);
    op->work_fn(op);
}

static void after_work_cb(uv_work_t *w, int status)
{
    struct auth_op *op = OP_OF(w, work);
    if (status < 0)          /* UV_ECANCELED: the loop is closing */
        op->status = status;
    op->next(op);
}

int auth_op_work(struct auth_op *op, void (*fn)(struct auth_op *),
                 void (*next)(struct auth_op *))
{
    op->work_fn = fn;
    op->next = next;
    return uv_queue_work(op->a->app->loop, &op->work, work_cb, after_work_cb);
}

/* --- password hashes: a FIFO in front of the pool ----------------------------------- */

int auth_hash_parallelism(void)
{
    const char *env = getenv("UV_THREADPOOL_SIZE");
    int pool = env && atoi(env) > 0 ? atoi(env) : 4;   /* libuv's default */
    int cores = (int)uv_available_parallelism();
    int n = pool - 1 < cores ? pool - 1 : cores;
    return n > 0 ? n : 1;
}

static void hash_start(struct auth_op *op);

static void hash_after_cb(uv_work_t *w, int status)
{
    struct auth_op *op = OP_OF(w, work);
    struct auth *a = op->a;

    a->hash_running--;
    if (status < 0)
        op->status = status;
    op->next(op);                       /* may free op */
    while (a->hash_head && a->hash_running < a->hash_parallel) {
        struct auth_op *n = a->hash_head;
        a->hash_head = n->hash_next;
        if (!a->hash_head)
            a->hash_tail = NULL;
        n->hash_next = NULL;
        hash_start(n);
    }
}

static void hash_start(struct auth_op *op)
{
    struct auth *a = op->a;
    int rc;

    a->hash_running++;
    rc = uv_queue_work(a->app->loop, &op->work, work_cb, hash_after_cb);
    if (rc < 0) {
        a->hash_running--;
        op->status = rc;
        op->next(op);
    }
}

void auth_op_hash(struct auth_op *op, void (*fn)(struct auth_op *),
                  void (*next)(struct auth_op *))
{
    struct auth *a = op->a;

    op->work_fn = fn;
    op->next = next;
    op->hash_next = NULL;
    if (a->hash_running < a->hash_parallel) {
        hash_start(op);
        return;
    }
    if (a->hash_tail)
        a->hash_tail->hash_next = op;
    else
        a->hash_head = op;
    a->hash_tail = op;
}

/* --- writer thread ---------------------------------------------------------------- */

static int job_apply(struct db_conn *conn, struct db_job *job)
{
    struct auth_op *op = OP_OF(job, job);
    return op->apply_fn(op, conn);
}

/* Loop, after COMMIT. */
static void job_after(struct db_job *job, int status)
{
    struct auth_op *op = OP_OF(job, job);

    op->status = status;
    op->next(op);
}

int auth_op_write(struct auth_op *op, int (*apply)(struct auth_op *, struct db_conn *),
                  void (*next)(struct auth_op *))
{
    op->apply_fn = apply;
    op->next = next;
    op->job.apply = job_apply;
    op->job.after = job_after;
    return db_write(op->a->app->db, &op->job);
}

/* --- reads ------------------------------------------------------------------------ */

static int read_fn(struct db_conn *conn, void *arg)
{
    struct auth_op *op = arg;
    return op->read_fn(op, conn);
}

static void read_after(void *arg, int status)
{
    struct auth_op *op = arg;
    op->status = status;
    op->next(op);
}

int auth_op_read(struct auth_op *op, int (*fn)(struct auth_op *, struct db_conn *),
                 void (*next)(struct auth_op *))
{
    op->read_fn = fn;
    op->next = next;
    return db_read(op->a->app->db, read_fn, read_after, op);
}
