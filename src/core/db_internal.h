/* db_internal.h: the struct behind struct db, shared by db.c (open, close),
 * db_state.c (engine, availability), db_migrate.c (migrations), db_writer.c (the writer thread and its queue),
 * db_sqlite_group.c (a group's transaction on SQLite), db_read.c (the read pool),
 * db_checkpoint.c (the checkpoint thread), db_after.c (after() on the loop),
 * db_files.c (the files' modes) and db_conn.c (one connection), which the others
 * call and which calls none of them. The PostgreSQL engine's own part is in
 * db_pg_engine.h. */
#ifndef CHATD_DB_INTERNAL_H
#define CHATD_DB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "chatd/db_sqlite.h"
#include <uv.h>
#include "chatd/db.h"

#define DB_READERS 4                /* read-only connections in the pool */
#define DB_READS_MAX 16384          /* reads queued on the thread pool; more: -EAGAIN */
#define DB_BUSY_TIMEOUT_MS 5000
#define DB_WAL_CHECKPOINT_PAGES 2000  /* WAL frames that wake the checkpoint thread */
#define DB_WAL_HARD_PAGES 32000       /* past this the writer checkpoints inline */
#define DB_WRITER_BURST_NS (500 * 1000) /* writer CPU between yields (db_writer.c) */
#define DB_PROGRESS_OPS 2000          /* SQLite instructions between clock reads */
#define DB_CHECKPOINT_NICE 10         /* the checkpoint thread's weight: about a tenth */

struct metrics_hist;
struct db_pg_engine;

enum db_ctl { DB_CTL_BEGIN, DB_CTL_COMMIT, DB_CTL_ROLLBACK, DB_CTL_SAVEPOINT,
              DB_CTL_RELEASE, DB_CTL_ROLLBACK_TO, DB_CTL__COUNT };

struct db {
    struct chatd *app;
    char *path;                     /* owned; SQLite: the file; PostgreSQL: NULL */
    enum db_engine engine;
    /* 0 from a lost PostgreSQL connection until the writer reconnected (SQLite:
     * always 1). Written by the writer thread, read anywhere. */
    atomic_int available;
    struct db_pg_engine *pg;        /* owned; the PostgreSQL engine, NULL on SQLite */

    /* The one write connection. conn_lock serialises the writer thread's batches with
     * db_migrate, which modules may call after the writer started. */
    sqlite3 *wconn;                 /* owned */
    pthread_mutex_t conn_lock;

    /* The write queue: a FIFO of caller-owned jobs linked through job->next. */
    pthread_mutex_t q_lock;
    pthread_cond_t q_cond;
    struct db_job *q_head, *q_tail; /* guarded by q_lock */
    size_t q_len;                   /* guarded by q_lock */
    int accepting;                  /* guarded by q_lock: 0 once closing */
    int stopping;                   /* guarded by q_lock: the writer exits when empty */
    atomic_size_t depth;            /* queued + being applied, for the gauge */
    pthread_t writer;
    int writer_running;             /* loop thread only */
    int status[DB_BATCH_MAX];       /* writer thread: per-job result of a batch */
    uint64_t burst_ns;              /* writer thread: when it last yielded */
    /* The writer's own statements (BEGIN, COMMIT, the per-job savepoint...), prepared
     * once: sqlite3_exec would parse them again for every job. Guarded by conn_lock. */
    sqlite3_stmt *ctl[DB_CTL__COUNT];

    /* Jobs back from the writer whose after() is still to run on the loop: a FIFO
     * filled by the writer a group at a time, emptied by the loop on the wake-up. */
    pthread_mutex_t d_lock;
    struct db_job *d_head, *d_tail; /* guarded by d_lock */
    uv_async_t *d_async;            /* owned (freed by its close callback); made on
                                       the first job with an after, loop thread */
    int afters_pending;             /* loop thread: jobs with an after not yet run */

    /* The checkpoint thread (db_checkpoint.c) and its own connection. */
    pthread_mutex_t ck_lock;
    pthread_cond_t ck_cond;
    int ck_wanted, ck_stopping;     /* guarded by ck_lock */
    uint64_t checkpoints;           /* guarded by ck_lock: checkpoints run (tests) */
    int ck_running;                 /* loop thread only */
    pthread_t ckthread;
    sqlite3 *ckconn;                /* owned */

    /* The read pool. */
    pthread_mutex_t r_lock;
    pthread_cond_t r_cond;
    sqlite3 *rconn[DB_READERS];     /* owned */
    int rbusy[DB_READERS];          /* guarded by r_lock */
    int reads_pending;              /* loop thread: queued on the pool, after() not run */

    struct metrics_hist *batch_hist;
    struct metrics_hist *commit_hist;
    uint64_t *reconnects;           /* chatd_db_reconnects_total (NULL without metrics) */
};

/* db_writer.c */
int  db_writer_start(struct db *db);
void db_writer_stop(struct db *db);     /* runs what is queued, joins */
void db_writer_metrics(struct db *db);   /* db_metrics.c */
/* Runs the after() of every job back from the writer; closes the wake-up (db_close,
 * loop thread, once the writer stopped). */
void db_afters_close(struct db *db);
/* The data directory (0700 when we make it) and the database file (0600) before
 * SQLite opens it; looser database files are tightened. db_files.c */
int db_prepare_files(struct db *db, const char *path);
/* The data directory alone (PostgreSQL: nothing of the database is in it, but it
 * is made as on SQLite, for what else keeps files there). */
int db_prepare_dir(struct db *db, const char *dir);
/* The calling thread (named in the debug line when refused): SCHED_BATCH, best effort. */
void db_thread_batch_sched(struct db *db, const char *thread);
/* db_after.c: the hop of a job's after() back to the loop. */
/* Loop, from db_write: makes the wake-up (0 or negative), then counts a queued job. */
int  db_after_ready(struct db *db);
void db_after_count(struct db *db);
/* Writer: jobs (linked through next, head not NULL) whose after() is due, in order;
 * one wake-up. */
void db_after_post(struct db *db, struct db_job *head, struct db_job *tail);
/* db_sqlite_group.c: one group of jobs in one SQLite transaction (conn_lock held):
 * fills db->status and returns 0, or the error that undid the whole group. */
int  db_sqlite_run_group(struct db *db, struct db_job *jobs, int n);
void db_ctl_free(struct db *db);        /* finalizes the cached control statements */
/* db_migrate.c: SQLite's schema_versions table (db_open). */
int  db_sqlite_versions_table(struct db *db);
/* db_checkpoint.c */
int  db_checkpointer_start(struct db *db);
void db_checkpointer_stop(struct db *db);
/* db_read.c */
int  db_readers_open(struct db *db);
void db_readers_close(struct db *db);
/* db_conn.c (db_errno: chatd/db_sqlite.h) */
int  db_exec(sqlite3 *conn, const char *sql);
int  db_open_conn(const char *path, int flags, sqlite3 **out);
/* The synchronous= pragma [database] durability asks for. */
const char *db_sync_pragma(const struct db *db);

#endif
