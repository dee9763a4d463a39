/* db_pg_engine.h: the PostgreSQL engine under struct db (db_internal.h): its
 * connections, the writer's group transaction and what a lost connection leaves to
 * settle. db_pg_open.c opens and reconnects, db_pg_group.c runs a group on the
 * writer thread, db_pg_migrate.c migrates, db_pg_read.c runs a read on a pool
 * connection, db_pg_keys.c keeps keys. db.c, db_migrate.c, db_writer.c and db_read.c
 * call them; they call none of those. */
#ifndef CHATD_DB_PG_ENGINE_H
#define CHATD_DB_PG_ENGINE_H

#include <stdatomic.h>
#include "db_internal.h"
#include "db_pg_conn.h"

#define DB_PG_RETRIES 5              /* runs of a group that meets a deadlock, at most */
#define DB_PG_BACKOFF_MIN_MS 100     /* reconnect attempts: 100 ms doubling ... */
#define DB_PG_BACKOFF_MAX_MS 5000    /* ... to 5 s */
#define DB_PG_PROBE_MS 1000          /* an idle writer checks its connection this often */
#define DB_PG_ASK_AGAIN_MS 20        /* a lost COMMIT still in progress: asked again */
#define DB_PG_XID_MAX 32

/* The return of db_pg_run_group when the connection went during COMMIT: the outcome
 * is unknown until db_pg_outcome can ask the server. */
#define DB_PG_OUTCOME_UNKNOWN (-EINPROGRESS)

struct db_pg_engine {
    char *url;                       /* owned */
    /* The writer's connection (also the CLI's and db_migrate's); conn_lock. */
    struct db_pg_conn *w;
    /* The read pool; slot i belongs to whoever holds rbusy[i] (db_read.c). */
    struct db_pg_conn *r[DB_READERS];
    /* Writer thread: the transaction id of the group in hand ("" before BEGIN),
     * whether guarded jobs get savepoints in this run, and where the savepoint stands
     * (db_pg_group.c). */
    char xid[DB_PG_XID_MAX];
    int savepoints, sp;
    unsigned backoff_ms;             /* writer thread: the next reconnect wait */
    /* A read pool thread saw its connection go: the writer should look at its own. */
    atomic_int probe_wanted;
    /* Outages the writer came back from. A pool connection last renewed before the
     * latest is renewed before its next read: an idle one shows its loss only to the
     * read that uses it, which would fail. r_epoch[i]: slot i's owner only. */
    atomic_uint epoch;
    unsigned r_epoch[DB_READERS];
};

/* db_pg_open.c */
/* Opens the writer's and the pool's connections (blocking, start-up) into db->pg. 0 or
 * negative; the reason is logged and written to stderr naming [database] url. */
int  db_pg_engine_open(struct db *db, const char *url);
void db_pg_engine_close(struct db *db);
/* A new session on c's settings (blocking), read-only for the pool: 0 or -ENOTCONN. */
int  db_pg_conn_renew(struct db_pg_conn *c, int read_only);
/* The writer's connection anew (writer thread): 0 or -ENOTCONN; counted. */
int  db_pg_writer_reconnect(struct db *db);
/* The writer's connection still answers (writer thread, idle): 1 or 0. */
int  db_pg_writer_alive(struct db *db);

/* db_pg_group.c: one group in one transaction (writer thread, conn_lock held): fills
 * db->status and returns 0, the error that undid the whole group (-ENOTCONN when the
 * connection went before COMMIT), or DB_PG_OUTCOME_UNKNOWN. Deadlocks and
 * serialization failures run the whole group again, DB_PG_RETRIES times at most. */
int  db_pg_run_group(struct db *db, struct db_job *jobs, int n);
/* After a reconnect, what became of the group whose COMMIT was lost: 0 committed,
 * -ENOTCONN aborted (or unknown to the server), DB_PG_OUTCOME_UNKNOWN still running. */
int  db_pg_outcome(struct db *db);
/* The status of transaction xid as the server tells it (pg_xact_status): 0
 * committed, -ENOTCONN aborted (or too old to know, or refused), and
 * DB_PG_OUTCOME_UNKNOWN while it is in progress or when the connection went again
 * (db_pg_conn_lost tells: reconnect and ask again). */
int  db_pg_xact_outcome(struct db_conn *c, const char *xid);

/* db_pg_migrate.c: the tables core keeps (schema_versions, chatd_keys), at open. */
int  db_pg_core_tables(struct db *db);
/* owner's recorded version (0 when none). */
int  db_pg_schema_version(struct db *db, const char *owner, int *version);
/* Applies m[i] newer than the recorded version, each in a transaction under an
 * advisory lock (two nodes starting at once migrate once). */
int  db_pg_migrate(struct db *db, const char *owner, const struct db_migration *m, int n);

/* db_pg_read.c: fn on pool connection i (a pool thread), reconnected when lost. */
int  db_pg_read(struct db *db, int i, int (*fn)(struct db_conn *conn, void *arg), void *arg);

#endif
