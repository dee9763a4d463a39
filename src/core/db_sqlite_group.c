/* db_sqlite_group.c: one group of write jobs in one SQLite transaction, on the
 * writer thread (db_writer.c hands the group over with conn_lock held): BEGIN
 * IMMEDIATE, each guarded job in its own SAVEPOINT so a failing job is undone alone,
 * COMMIT. */
#include <errno.h>
#include <sched.h>
#include "chatd/chatd.h"
#include "chatd/db.h"
#include "chatd/log.h"
#include "chatd/util.h"
#include "db_internal.h"

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

int db_sqlite_run_group(struct db *db, struct db_job *jobs, int n)
{
    db->burst_ns = mono_ns();
    sqlite3_progress_handler(db->wconn, DB_PROGRESS_OPS, writer_progress, db);
    int rc = run_batch(db, jobs, n);
    sqlite3_progress_handler(db->wconn, 0, NULL, NULL);
    return rc;
}
