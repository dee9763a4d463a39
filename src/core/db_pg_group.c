/* db_pg_group.c: one group of write jobs in one PostgreSQL transaction, on the
 * writer thread (db_writer.c hands the group over with conn_lock held).
 *
 * Round trips are what a group costs here, and a savepoint is one more per job (and
 * a subtransaction: past 64 of them in one transaction every other session's
 * snapshot gets slower). So a group first runs without savepoints: BEGIN and the
 * transaction's id (pg_current_xact_id, kept so that a COMMIT whose answer never came
 * can be looked up after a reconnect) in one round trip, the jobs, COMMIT. Should a
 * guarded job fail, the transaction is rolled back and the group runs again, this
 * time each guarded job in its SAVEPOINT (RELEASE and the next SAVEPOINT sent
 * together; nothing after a ROLLBACK TO, which leaves the savepoint clean), so the
 * failing job is undone alone, as on SQLite. When the failing job is the first of the
 * transaction nothing else was in it: its failure stands and the rest go on in a new
 * transaction. Every apply may run again from a clean slate (db.h). An unguarded job
 * that fails undoes the group, as on SQLite.
 *
 * A deadlock or a serialization failure (two nodes writing the same rooms) undoes
 * the group on the server: it runs again from BEGIN, DB_PG_RETRIES times at most. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "chatd/chatd.h"
#include "chatd/log.h"
#include "db_pg_engine.h"

enum { SP_NONE, SP_CLEAN, SP_DIRTY };   /* no savepoint; one with no write since; dirty */

/* A guarded job failed in a run without savepoints: roll back, run again with them. */
#define DB_PG_RERUN (-ERESTART)

static struct db_conn *writer_conn(struct db *db)
{
    return db_conn_of_pg(db->pg->w);
}

static int lost_or_eio(struct db *db)
{
    return db_pg_conn_lost(db->pg->w) ? -ENOTCONN : -EIO;
}

static int begin(struct db *db, int guarded)
{
    PGresult *r = PQexec(db->pg->w->pg, guarded
                         ? "BEGIN; SAVEPOINT job; SELECT pg_current_xact_id()"
                         : "BEGIN; SELECT pg_current_xact_id()");
    int ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;

    if (ok)
        snprintf(db->pg->xid, sizeof(db->pg->xid), "%s", PQgetvalue(r, 0, 0));
    else
        LOG_WARN(db->app, "db", "cannot begin a transaction error=\"%s\"",
                 PQerrorMessage(db->pg->w->pg));
    PQclear(r);
    db->pg->sp = guarded ? SP_CLEAN : SP_NONE;
    return ok ? 0 : lost_or_eio(db);
}

/* A savepoint at the current point, for the next guarded job. */
static int guard(struct db *db)
{
    if (db->pg->sp == SP_CLEAN)
        return 0;
    int rc = db_pg_exec(writer_conn(db), db->pg->sp == SP_DIRTY ? "RELEASE job; SAVEPOINT job"
                                                                : "SAVEPOINT job");
    if (rc == 0)
        db->pg->sp = SP_CLEAN;
    return rc;
}

static int retryable(struct db *db, int rc)
{
    return (rc == -EDEADLK || rc == -EAGAIN) && db_pg_conn_retryable(db->pg->w);
}

/* Runs one job; its own result in *status. Returns 0 to go on with the group, or the
 * error that ends the transaction. */
static int apply_job(struct db *db, struct db_job *job, int *status)
{
    struct db_conn *c = writer_conn(db);
    int guarded = !(job->flags & DB_JOB_UNGUARDED), rc;

    if (guarded && db->pg->savepoints && (rc = guard(db)) < 0)
        return rc;
    rc = job->apply ? job->apply(c, job) : 0;
    /* A statement that failed and was not reported still aborted the transaction. */
    if (rc == 0 && db_pg_txn_failed(c))
        rc = -EIO;
    *status = rc;
    if (rc == 0 || !guarded) {
        if (db->pg->sp == SP_CLEAN)
            db->pg->sp = SP_DIRTY;
        return rc;
    }
    if (db_pg_conn_lost(db->pg->w))
        return -ENOTCONN;
    if (retryable(db, rc))
        return rc;
    if (!db->pg->savepoints)
        return DB_PG_RERUN;
    return db_pg_exec(c, "ROLLBACK TO job");   /* the savepoint stays, clean */
}

static void rollback(struct db *db)
{
    if (!db_pg_conn_lost(db->pg->w) && PQtransactionStatus(db->pg->w->pg) != PQTRANS_IDLE)
        db_pg_exec(writer_conn(db), "ROLLBACK");
}

/* Jobs first..n-1 in one transaction; *at is the index of the job that ended it. */
static int run_once(struct db *db, struct db_job *jobs, int n, int first, int *at)
{
    struct db_job *job = jobs;
    int rc;

    for (int i = 0; i < first; i++)
        job = job->next;
    db->pg->xid[0] = '\0';
    memset(db->status + first, 0, sizeof(db->status[0]) * (size_t)(n - first));
    if ((rc = begin(db, db->pg->savepoints && !(job->flags & DB_JOB_UNGUARDED))) < 0)
        return rc;
    for (*at = first; *at < n; (*at)++, job = job->next)
        if ((rc = apply_job(db, job, &db->status[*at])) < 0)
            return rc;
    rc = db_pg_exec(writer_conn(db), "COMMIT");
    if (rc == -ENOTCONN)
        return DB_PG_OUTCOME_UNKNOWN;
    if (rc < 0)
        LOG_ERROR(db->app, "db", "commit failed jobs=%d error=\"%s\"", n - first,
                  db_pg_errmsg(writer_conn(db)));
    return rc;
}

/* Between two runs of a group that lost a deadlock: the winner goes first. */
static void retry_pause(int attempt)
{
    struct timespec ts = { 0, (long)attempt * 2 * 1000 * 1000 };
    nanosleep(&ts, NULL);
}

int db_pg_run_group(struct db *db, struct db_job *jobs, int n)
{
    int attempt = 1, first = 0;    /* jobs before first failed alone: their status stands */

    db->pg->savepoints = 0;
    for (;;) {
        int at = first;
        int rc = run_once(db, jobs, n, first, &at);
        if (rc == 0 || rc == DB_PG_OUTCOME_UNKNOWN)
            return rc;
        int again = retryable(db, rc) && attempt < DB_PG_RETRIES;
        rollback(db);
        if (rc == DB_PG_RERUN && at == first) {
            if (++first == n)
                return 0;          /* nothing left to commit */
        } else if (rc == DB_PG_RERUN) {
            db->pg->savepoints = 1;
        } else if (again) {
            LOG_DEBUG(db->app, "db", "write group runs again jobs=%d attempt=%d error=\"%s\"",
                      n, ++attempt, strerror(-rc));
            retry_pause(attempt - 1);
        } else {
            return rc;
        }
    }
}

int db_pg_xact_outcome(struct db_conn *c, const char *xid)
{
    static const struct db_pg_stmt status_of = {
        "core_xact_status", "SELECT pg_xact_status($1::xid8)", 1 };
    const char *values[] = { xid };
    PGresult *r = NULL;
    int rc = db_pg_run(c, &status_of, values, &r);

    if (rc < 0)
        return db_pg_conn_lost(db_pg_conn_of(c)) ? DB_PG_OUTCOME_UNKNOWN : -ENOTCONN;
    const char *st = PQntuples(r) == 1 ? db_pg_str(r, 0, 0) : "";
    rc = strcmp(st, "committed") == 0     ? 0
       : strcmp(st, "in progress") == 0 ? DB_PG_OUTCOME_UNKNOWN
                                        : -ENOTCONN;   /* aborted, or too old to know */
    PQclear(r);
    return rc;
}

int db_pg_outcome(struct db *db)
{
    int rc = db_pg_xact_outcome(writer_conn(db), db->pg->xid);

    if (rc != DB_PG_OUTCOME_UNKNOWN)   /* asked again every 20 ms while in progress */
        LOG_INFO(db->app, "db", "a commit lost with the connection xid=%s outcome=%s",
                 db->pg->xid, rc == 0 ? "committed" : "aborted");
    return rc;
}
