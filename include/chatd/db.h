/* db.h: the database as modules see it: write jobs committed in groups by one writer
 * thread (one transaction for many jobs, each in its own SAVEPOINT so one failing job
 * does not undo the others), reads on libuv's thread pool with a small pool of
 * read-only connections. The loop thread never touches the database after start-up.
 * Each module owns its tables and migrates them at init.
 *
 * Nothing here names an engine: a job or a read gets a struct db_conn, which only a
 * module's store implementation for that engine looks inside (db_sqlite.h for SQLite,
 * today's engine). A second engine implements this header. */
#ifndef CHATD_DB_H
#define CHATD_DB_H

#include <stddef.h>
#include <stdint.h>

struct chatd;
struct db;
struct db_conn;                     /* one engine connection, opaque */

#define DB_WRITE_QUEUE_MAX 65536     /* jobs waiting for the writer; more: -EAGAIN */
#define DB_BATCH_MAX 1024            /* jobs per transaction at most */

struct db_migration {
    int version;                     /* 1, 2, 3 ... per owner */
    const char *sql;                 /* may hold several statements */
};

/* Opens <data_dir>/chatd.db (creating data_dir, mode 0700), WAL, synchronous=NORMAL
 * ... Blocking: start-up only. */
int  db_open(struct db **out, struct chatd *app, const char *path);
/* Opens the PostgreSQL database at url ([database] url): the writer's connection and
 * a pool of read connections (application_name chatd, synchronous_commit on), and
 * core's own tables (schema_versions, chatd_keys). Blocking: start-up only. A server
 * that cannot be reached or refuses is logged and said on stderr naming
 * [database] url; returns 0 or negative. */
int  db_open_url(struct db **out, struct chatd *app, const char *url);
/* Applies owner's migrations newer than its recorded version, each in a transaction
 * (m holds the migrations of this database's engine). Start-up only (blocking).
 * Returns 0 or negative (logged); -EPROTO when the recorded version is newer than
 * every migration in m: a newer chatd wrote this database. */
int  db_migrate(struct db *db, const char *owner, const struct db_migration *m, int n);
/* Starts the writer thread. */
int  db_start(struct db *db);
/* Waits for the writer to finish every queued job, stops it, closes everything. */
void db_close(struct db *db);

/* A write job. apply runs on the writer thread inside the group transaction and
 * returns 0 or a negative error (its SAVEPOINT is rolled back then). After the
 * transaction is durable (COMMIT returned) each job completes, in queue order, with
 * status 0, or with the job's own error, or with the commit's error for every job of
 * a failed commit:
 * - done (optional) runs on the writer thread;
 * - after (optional) then runs on the loop, as db_read's after does: core carries
 *   the job back, one wake-up for a whole group. A job with an after belongs to
 *   core from db_write until after runs (done must not free it), then to the
 *   caller again. Without a loop (app->loop NULL) after runs on the writer
 *   thread; those still due when the database closes run in db_close.
 * flags: DB_JOB_UNGUARDED for a job that is a group itself (a batch of many
 * messages) and runs without a SAVEPOINT of its own: a savepoint copies every page it
 * touches that existed before it, which for such a job is most of what it writes.
 * The price: when its apply fails, the whole group's transaction is rolled back and
 * every job of it gets that error. So it should fail only on what would fail the
 * commit anyway (I/O, a full disk, no memory), and refuse everything else without
 * writing.
 * apply may run more than once for one db_write, each time from a clean slate (the
 * transaction before it rolled back): on PostgreSQL a deadlock sends the whole group
 * again, and so does a guarded job's failure (the group runs without savepoints
 * first). So apply keeps nothing outside the transaction that a second run would
 * not overwrite; done() and after() run once, with the last run's status. */
#define DB_JOB_UNGUARDED 1u
struct db_job {
    int  (*apply)(struct db_conn *conn, struct db_job *job);
    void (*done)(struct db_job *job, int status);
    void (*after)(struct db_job *job, int status);
    unsigned flags;                  /* DB_JOB_* */
    struct db_job *next;             /* private */
    uint64_t queued_ns;              /* private */
    int status;                      /* private: the result after() gets */
};
/* Loop thread. 0, -EAGAIN (queue full), -ECANCELED (closing), -ENOMEM. */
int  db_write(struct db *db, struct db_job *job);
/* Jobs waiting + being applied. */
uint64_t db_write_depth(const struct db *db);

/* A read on the thread pool: fn(conn, arg) runs on a pool thread with a read-only
 * connection and returns 0 or negative; after(arg, status) then runs on the loop. */
int  db_read(struct db *db, int (*fn)(struct db_conn *conn, void *arg),
             void (*after)(void *arg, int status), void *arg);

/* Blocking one-shot access for the CLI (chatd user add, dlq, backup): never from
 * the loop of a running server. */
struct db_conn *db_conn_for_cli(struct db *db);

/* ---------- engines ----------
 * SQLite (the default: <data_dir>/chatd.db) or PostgreSQL ([database] url). A module
 * picks its store implementation by db_engine() at init. */
enum db_engine { DB_ENGINE_SQLITE, DB_ENGINE_PG };
enum db_engine db_engine(const struct db *db);

/* 1 while the engine can take work. SQLite: always. PostgreSQL: 0 from a lost
 * connection until the writer has reconnected; meanwhile db_write and db_read answer
 * -ENOTCONN at once (callers answer 503 `unavailable`), and /readyz says 503. */
int  db_available(const struct db *db);

/* A secret kept in the database (PostgreSQL only: a key the single node keeps in
 * data_dir, shared by every node of one database). Blocking: start-up only. When the
 * database has no value for name, make(arg, &value, &len) makes one (malloc'ed) and it
 * is inserted in a transaction; when two nodes start at once one insert wins and both
 * return the winner's. 0 and *value (malloc'ed, the caller frees; NUL-terminated),
 * -ENOTSUP on SQLite, or negative. */
int  db_key_keep(struct db *db, const char *name,
                 int (*make)(void *arg, char **value, size_t *len), void *arg,
                 char **value, size_t *len);

/* The error a store reports for a broken uniqueness or foreign key (the others are
 * errno values: -EIO, -ENOSPC, -EROFS, -EBUSY, -ENOMEM). */
#define ECONSTRAINT 1000

#endif
