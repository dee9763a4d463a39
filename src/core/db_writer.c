/* db_writer.c: the writer thread. It owns the only write connection and commits
 * queued jobs in groups: one transaction for up to DB_BATCH_MAX jobs, each job in its
 * own SAVEPOINT so a failing job is undone alone (the engine's part:
 * db_sqlite_group.c, db_pg_group.c). A commit is the expensive part of a write (the
 * fsync, the lock, on PostgreSQL the round trip), so sharing it between many jobs is
 * what lets thousands of messages a second reach the disk. done() callbacks run after
 * COMMIT returned, in queue order; then the afters go to the loop (db_after.c). On
 * PostgreSQL the writer also rides out a lost connection (below). */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "chatd/chatd.h"
#include "chatd/db.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "db_internal.h"
#include "db_pg_engine.h"

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
    } else if (!db_available(db)) {
        rc = -ENOTCONN;
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

/* ---------- PostgreSQL away ----------
 * From a lost connection until the writer has a new one, the database is
 * unavailable: db_write and db_read answer -ENOTCONN at once, and jobs still queued
 * fail with it too (they wrote nothing; each answers 503 without waiting for the
 * server). A group whose COMMIT went unanswered stays in hand: its jobs complete when
 * the server, asked after the reconnect, tells what became of its transaction. */

static void set_available(struct db *db, int up)
{
    atomic_store_explicit(&db->available, up, memory_order_release);
}

static void outage_begin(struct db *db)
{
    if (db_available(db))
        LOG_WARN(db->app, "db", "PostgreSQL connection lost: writes and reads answer "
                 "unavailable until it is back");
    set_available(db, 0);
}

/* Waits ms on q_cond (q_lock held) unless stopping; 1 when stopping. */
static int pause_locked(struct db *db, unsigned ms)
{
    struct timespec ts;

    if (!db->stopping) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&db->q_cond, &db->q_lock, &ts);
    }
    return db->stopping;
}

static int pause_unless_stopping(struct db *db, unsigned ms)
{
    pthread_mutex_lock(&db->q_lock);
    int stopping = pause_locked(db, ms);
    pthread_mutex_unlock(&db->q_lock);
    return stopping;
}

static void fail_queued(struct db *db)
{
    for (;;) {
        int n;
        pthread_mutex_lock(&db->q_lock);
        struct db_job *jobs = db->q_head ? take_batch(db, &n) : NULL;
        pthread_mutex_unlock(&db->q_lock);
        if (!jobs)
            return;
        finish_group(db, jobs, n, -ENOTCONN);
    }
}

/* A new writer connection, trying with backoff: 0, or -ECANCELED once stopping. */
static int reconnect(struct db *db)
{
    struct db_pg_engine *pg = db->pg;

    for (;;) {
        fail_queued(db);
        pthread_mutex_lock(&db->conn_lock);
        /* Always a new session: one that answered -ENOTCONN (the server ending it)
         * may not look broken to libpq yet. */
        int rc = db_pg_writer_reconnect(db);
        pthread_mutex_unlock(&db->conn_lock);
        if (rc == 0) {
            pg->backoff_ms = DB_PG_BACKOFF_MIN_MS;
            return 0;
        }
        if (pause_unless_stopping(db, pg->backoff_ms))
            return -ECANCELED;
        pg->backoff_ms = pg->backoff_ms * 2 > DB_PG_BACKOFF_MAX_MS ? DB_PG_BACKOFF_MAX_MS
                                                                   : pg->backoff_ms * 2;
    }
}

static void outage_end(struct db *db)
{
    atomic_fetch_add(&db->pg->epoch, 1);   /* the pool renews its connections first */
    set_available(db, 1);
    LOG_INFO(db->app, "db", "PostgreSQL is back: writes and reads resume");
}

static void outage_reconnect(struct db *db)
{
    if (reconnect(db) == 0)
        outage_end(db);
}

static int outage_outcome(struct db *db)
{
    for (;;) {
        if (reconnect(db) < 0)
            return -ENOTCONN;         /* closing: the outcome stays unknown */
        for (;;) {
            pthread_mutex_lock(&db->conn_lock);
            int rc = db_pg_outcome(db), lost = db_pg_conn_lost(db->pg->w);
            pthread_mutex_unlock(&db->conn_lock);
            if (rc != DB_PG_OUTCOME_UNKNOWN) {
                outage_end(db);
                return rc;
            }
            if (lost)
                break;
            fail_queued(db);
            if (pause_unless_stopping(db, DB_PG_ASK_AGAIN_MS))
                return -ENOTCONN;
        }
    }
}

static int run_group(struct db *db, struct db_job *jobs, int n)
{
    pthread_mutex_lock(&db->conn_lock);
    int rc = db->engine == DB_ENGINE_PG ? db_pg_run_group(db, jobs, n)
                                        : db_sqlite_run_group(db, jobs, n);
    pthread_mutex_unlock(&db->conn_lock);
    return rc;
}

static void commit_group(struct db *db, struct db_job *jobs, int n)
{
    uint64_t t0 = mono_ns();
    int rc;

    if (!db_available(db)) {          /* stopping while PostgreSQL is away */
        finish_group(db, jobs, n, -ENOTCONN);
        return;
    }
    rc = run_group(db, jobs, n);
    if (rc == -ENOTCONN || rc == DB_PG_OUTCOME_UNKNOWN)
        outage_begin(db);
    if (rc == DB_PG_OUTCOME_UNKNOWN)
        rc = outage_outcome(db);   /* the group stays in hand until it is known */
    if (rc < 0)
        LOG_WARN(db->app, "db", "write group failed jobs=%d error=\"%s\"", n, strerror(-rc));
    if (db->commit_hist) {
        metrics_observe(db->commit_hist, (double)(mono_ns() - t0) / 1e9);
        metrics_observe(db->batch_hist, n);
    }
    finish_group(db, jobs, n, rc);
    if (!db_available(db))
        outage_reconnect(db);
}

/* The idle writer's look at its connection: a server that went away while nothing
 * was written shows at once in db_available and /readyz. */
static void check_connection(struct db *db)
{
    pthread_mutex_lock(&db->conn_lock);
    int alive = db_pg_writer_alive(db);
    pthread_mutex_unlock(&db->conn_lock);
    if (alive)
        return;
    outage_begin(db);
    outage_reconnect(db);
}

/* q_lock held, nothing queued: waits for a job or the stop; on PostgreSQL at most
 * DB_PG_PROBE_MS. 1 when the connection is to be checked. */
static int wait_for_work(struct db *db)
{
    if (db->engine != DB_ENGINE_PG) {
        pthread_cond_wait(&db->q_cond, &db->q_lock);
        return 0;
    }
    if (!atomic_exchange(&db->pg->probe_wanted, 0))
        pause_locked(db, DB_PG_PROBE_MS);
    return !db->q_head && !db->stopping;
}

static void *writer_main(void *arg)
{
    struct db *db = arg;

    pthread_mutex_lock(&db->q_lock);
    for (;;) {
        int check = 0;
        while (!db->q_head && !db->stopping && !check)
            check = wait_for_work(db);
        if (check) {
            pthread_mutex_unlock(&db->q_lock);
            check_connection(db);
            pthread_mutex_lock(&db->q_lock);
            continue;
        }
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
