/* db_writer.c: the writer thread. It owns the only write connection and commits
 * queued jobs in groups: one transaction for up to DB_BATCH_MAX jobs, each job in its
 * own SAVEPOINT so a failing job is undone alone. A commit is the expensive part of a
 * write (the WAL fsync at checkpoints, the lock), so sharing it between many jobs is
 * what lets thousands of messages a second reach the disk. done() callbacks run after
 * COMMIT returned, in queue order; then the afters go to the loop (db_after.c). */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/chatd.h"
#include "chatd/db.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "db_internal.h"

static double queue_depth(void *ctx)
{
    struct db *db = ctx;
    return (double)db_write_depth(db);
}

void db_writer_metrics(struct db *db)
{
    static const double sizes[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024 };
    static const double secs[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                   0.25, 0.5, 1, 2.5 };
    struct metrics *m = db->app ? db->app->metrics : NULL;

    if (!m)
        return;
    db->batch_hist = metrics_histogram(m, "chatd_db_commit_batch_size", NULL,
                                       "Write jobs committed per transaction.", sizes,
                                       (int)(sizeof(sizes) / sizeof(sizes[0])));
    db->commit_hist = metrics_histogram(m, "chatd_db_commit_seconds", NULL,
                                        "Time to run and commit one group of writes.", secs,
                                        (int)(sizeof(secs) / sizeof(secs[0])));
    metrics_gauge_fn(m, "chatd_db_write_queue_depth", NULL,
                     "Write jobs queued or being applied.", queue_depth, db);
}

/* The writer shares the loop's core: woken inside the queue lock it would run at
 * once and find the lock still held, so the wake-up comes after the unlock, and only
 * when the writer can be waiting (the queue was empty: a writer busy committing
 * looks at the queue again before it sleeps). */
int db_write(struct db *db, struct db_job *job)
{
    int rc = 0, wake = 0;
    /* Read before the job is queued: a job without an after may be done and freed by
     * the writer before this function returns. */
    int has_after = job->after != NULL;

    /* The wake-up exists before the writer can see the job (q_lock orders them). */
    if (has_after && (rc = db_after_ready(db)) < 0)
        return rc;
    pthread_mutex_lock(&db->q_lock);
    if (!db->accepting) {
        rc = -ECANCELED;
    } else if (db->q_len >= DB_WRITE_QUEUE_MAX) {
        rc = -EAGAIN;
    } else {
        job->next = NULL;
        job->queued_ns = mono_ns();
        if (db->q_tail)
            db->q_tail->next = job;
        else
            db->q_head = job;
        db->q_tail = job;
        wake = db->q_len++ == 0;
        atomic_fetch_add_explicit(&db->depth, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&db->q_lock);
    if (wake)
        pthread_cond_signal(&db->q_cond);
    if (rc == 0 && has_after)
        db_after_count(db);
    return rc;
}

uint64_t db_write_depth(const struct db *db)
{
    return atomic_load_explicit(&((struct db *)db)->depth, memory_order_relaxed);
}

/* Detaches up to DB_BATCH_MAX jobs from the queue. Called with q_lock held. */
static struct db_job *take_batch(struct db *db, int *count)
{
    struct db_job *head = db->q_head, *last = head;
    int n = 1;

    while (n < DB_BATCH_MAX && last->next) {
        last = last->next;
        n++;
    }
    db->q_head = last->next;
    if (!db->q_head)
        db->q_tail = NULL;
    last->next = NULL;
    db->q_len -= (size_t)n;
    *count = n;
    return head;
}

static const char *const ctl_sql[DB_CTL__COUNT] = {
    [DB_CTL_BEGIN] = "BEGIN IMMEDIATE",
    [DB_CTL_COMMIT] = "COMMIT",
    [DB_CTL_ROLLBACK] = "ROLLBACK",
    [DB_CTL_SAVEPOINT] = "SAVEPOINT job",
    [DB_CTL_RELEASE] = "RELEASE job",
    [DB_CTL_ROLLBACK_TO] = "ROLLBACK TO job",
};

/* Runs one of the writer's control statements, prepared on first use. */
static int ctl(struct db *db, enum db_ctl id)
{
    sqlite3_stmt *s = db->ctl[id];
    int rc;

    if (!s && (rc = sqlite3_prepare_v3(db->wconn, ctl_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                       &db->ctl[id], NULL)) != SQLITE_OK)
        return db_errno(rc);
    s = db->ctl[id];
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_errno(rc);
}

void db_ctl_free(struct db *db)
{
    for (int i = 0; i < DB_CTL__COUNT; i++) {
        sqlite3_finalize(db->ctl[i]);
        db->ctl[i] = NULL;
    }
}

static int apply_job(struct db *db, struct db_job *job)
{
    if (job->flags & DB_JOB_UNGUARDED) {
        int rc = job->apply ? job->apply(db_conn_of_sqlite(db->wconn), job) : 0;
        /* No savepoint to go back to: the group goes (run_batch sees autocommit). */
        if (rc < 0 && !sqlite3_get_autocommit(db->wconn))
            ctl(db, DB_CTL_ROLLBACK);
        return rc;
    }
    int rc = ctl(db, DB_CTL_SAVEPOINT);

    if (rc < 0)
        return rc;
    rc = job->apply ? job->apply(db_conn_of_sqlite(db->wconn), job) : 0;
    if (rc < 0 && !sqlite3_get_autocommit(db->wconn))
        ctl(db, DB_CTL_ROLLBACK_TO);
    /* A job that failed with SQLITE_FULL, IOERR or NOMEM may have ended the whole
     * transaction: there is then no savepoint left to release. */
    if (!sqlite3_get_autocommit(db->wconn))
        ctl(db, DB_CTL_RELEASE);
    return rc;
}

/* Runs one group; fills db->status and returns 0, or the error that undid the whole
 * transaction (then every job of the group fails with it). */
static int run_batch(struct db *db, struct db_job *jobs, int n)
{
    struct db_job *job = jobs;
    int rc = ctl(db, DB_CTL_BEGIN);

    if (rc < 0)
        return rc;
    for (int i = 0; i < n; i++, job = job->next) {
        db->status[i] = apply_job(db, job);
        if (sqlite3_get_autocommit(db->wconn))
            return db->status[i] < 0 ? db->status[i] : -EIO;
    }
    if ((rc = ctl(db, DB_CTL_COMMIT)) < 0) {
        LOG_ERROR(db->app, "db", "commit failed jobs=%d error=\"%s\"", n,
                  sqlite3_errmsg(db->wconn));
        if (!sqlite3_get_autocommit(db->wconn))
            ctl(db, DB_CTL_ROLLBACK);
    }
    return rc;
}

/* SQLite calls this every DB_PROGRESS_OPS virtual-machine instructions of the
 * writer's group. The writer shares a core with the loop, and once running it keeps
 * the core until the scheduler's tick: a group of a thousand inserts would hold the
 * loop's timers and sockets for milliseconds. So past DB_WRITER_BURST_NS it steps
 * aside for whatever else is runnable and goes on where it was: the transaction
 * stays open, nothing is committed earlier or acked sooner. */
static int writer_progress(void *arg)
{
    struct db *db = arg;
    uint64_t now = mono_ns();

    if (now - db->burst_ns >= DB_WRITER_BURST_NS) {
        sched_yield();
        db->burst_ns = mono_ns();
    }
    return 0;
}

/* Each job's done() here, in queue order; those with an after() go to the loop in
 * one hand-over, re-linked through next (done may free a job that has none). */
static void finish_group(struct db *db, struct db_job *jobs, int n, int rc)
{
    struct db_job *head = NULL, *tail = NULL;

    for (int i = 0; i < n; i++) {
        struct db_job *next = jobs->next;
        int has_after = jobs->after != NULL;
        int status = rc < 0 ? rc : db->status[i];

        atomic_fetch_sub_explicit(&db->depth, 1, memory_order_relaxed);
        if (jobs->done)
            jobs->done(jobs, status);
        if (has_after) {
            jobs->status = status;
            jobs->next = NULL;
            if (tail)
                tail->next = jobs;
            else
                head = jobs;
            tail = jobs;
        }
        jobs = next;
    }
    if (head)
        db_after_post(db, head, tail);
}

static void commit_group(struct db *db, struct db_job *jobs, int n)
{
    uint64_t t0 = mono_ns();
    int rc;

    pthread_mutex_lock(&db->conn_lock);
    db->burst_ns = t0;
    sqlite3_progress_handler(db->wconn, DB_PROGRESS_OPS, writer_progress, db);
    rc = run_batch(db, jobs, n);
    sqlite3_progress_handler(db->wconn, 0, NULL, NULL);
    pthread_mutex_unlock(&db->conn_lock);
    if (rc < 0)
        LOG_WARN(db->app, "db", "write group failed jobs=%d error=\"%s\"", n, strerror(-rc));
    if (db->commit_hist) {
        metrics_observe(db->commit_hist, (double)(mono_ns() - t0) / 1e9);
        metrics_observe(db->batch_hist, n);
    }
    finish_group(db, jobs, n, rc);
}

/* A woken thread of the normal class preempts the one running, and on a small
 * machine the one running is the loop: the writer would run its whole group there
 * while the loop's timers and sockets wait. SCHED_BATCH keeps its fair share of the
 * CPU (so commits, and acks, keep their pace) but never preempts on wake-up; it runs
 * when the loop waits for I/O or its slice ends. SCHED_IDLE would starve it behind a
 * busy loop. Best effort: a sandbox may answer EPERM (seccomp with
 * SystemCallErrorNumber=), and then the writer runs as before. */
void db_thread_batch_sched(struct db *db, const char *thread)
{
#ifdef SCHED_BATCH
    struct sched_param sp = { 0 };
    int rc = pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);

    if (rc != 0)
        LOG_DEBUG(db->app, "db", "thread stays in the normal class thread=%s error=\"%s\"",
                  thread, strerror(rc));
#endif
}

static void *writer_main(void *arg)
{
    struct db *db = arg;

    pthread_mutex_lock(&db->q_lock);
    for (;;) {
        while (!db->q_head && !db->stopping)
            pthread_cond_wait(&db->q_cond, &db->q_lock);
        if (!db->q_head)
            break;   /* stopping, and everything queued is done */
        int n;
        struct db_job *jobs = take_batch(db, &n);
        pthread_mutex_unlock(&db->q_lock);
        commit_group(db, jobs, n);
        pthread_mutex_lock(&db->q_lock);
    }
    pthread_mutex_unlock(&db->q_lock);
    return NULL;
}

static void *writer_thread(void *arg)
{
    db_thread_batch_sched(arg, "writer");
    return writer_main(arg);
}

int db_writer_start(struct db *db)
{
    int rc;

    if (db->writer_running)
        return 0;
    if ((rc = pthread_create(&db->writer, NULL, writer_thread, db)) != 0)
        return -rc;
    db->writer_running = 1;
    return 0;
}

void db_writer_stop(struct db *db)
{
    pthread_mutex_lock(&db->q_lock);
    db->accepting = 0;
    db->stopping = 1;
    pthread_cond_signal(&db->q_cond);
    pthread_mutex_unlock(&db->q_lock);
    if (db->writer_running) {
        pthread_join(db->writer, NULL);
        db->writer_running = 0;
        return;
    }
    /* Never started (a command, or a start-up that failed early): run what was queued
     * here, so every job still gets its done(). */
    writer_main(db);
}
