/* db_pg.h: the PostgreSQL engine under db.h, for the store implementations that speak
 * PostgreSQL (the *_store_pg*.c files, the dead-letter store) and for core's db layer.
 *
 * A struct db_conn of this engine is a struct db_pg_conn: one libpq connection and the
 * names of the statements already prepared on it. The writer thread owns one, the read
 * pool a few, the CLI one; each is used by one thread at a time. A store never opens,
 * closes, begins or commits: the writer wraps every group of jobs in one transaction
 * (each guarded job in a SAVEPOINT), reads run in autocommit on a pool connection.
 *
 * Statements: a store declares each one once, as a static struct db_pg_stmt, and runs
 * it with db_pg_run: the first run on a connection prepares it under its name, later
 * runs only bind and execute (one round trip). Parameters and results are text. */
#ifndef CHATD_DB_PG_H
#define CHATD_DB_PG_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>
#include "chatd/db.h"

struct db_pg_stmt {
    const char *name;                /* unique in the process, e.g. "auth_user_find" */
    const char *sql;                 /* $1, $2 ...; types cast in the SQL ($1::bigint) */
    int nparams;
};

/* The libpq connection of an engine connection (never NULL while it is handed out). */
PGconn *db_pg(struct db_conn *c);

/* Runs st with values[0..nparams) (NULL for SQL NULL; text). On success returns 0 and
 * *res (PGRES_TUPLES_OK or PGRES_COMMAND_OK; the caller PQclear()s it); res may be
 * NULL for a statement whose result is not needed. On failure *res is NULL, the error text is kept for db_pg_errmsg, and the return is:
 *   -ECONSTRAINT  SQLSTATE class 23 (unique, foreign key, check, not null);
 *   -EDEADLK      40P01 deadlock, -EAGAIN 40001 serialization failure (retry it all);
 *   -ENOTCONN     the connection is lost (core reconnects; nothing to do here);
 *   -ENOSPC       53100 disk full, -ENOMEM 53200, -EROFS 25006 read-only;
 *   -EIO          anything else.
 * An error inside a transaction aborts it (PostgreSQL refuses every later statement
 * until ROLLBACK or ROLLBACK TO): db_pg_txn_failed tells. */
int db_pg_run(struct db_conn *c, const struct db_pg_stmt *st, const char *const *values,
              PGresult **res);
/* Runs st for the int64 in the first column of its first row: 1 and *out when a row
 * came (0 for NULL), 0 when none did, or the errors of db_pg_run. */
int db_pg_run_i64(struct db_conn *c, const struct db_pg_stmt *st, const char *const *values,
                  int64_t *out);
/* As db_pg_run, with lengths and formats per parameter (1 = binary, for bytea). */
int db_pg_run_bin(struct db_conn *c, const struct db_pg_stmt *st, const char *const *values,
                  const int *lengths, const int *formats, PGresult **res);
/* One-off SQL without parameters (simple protocol, may hold several statements):
 * migrations, SET, the CLI. 0 or the errors above. */
int db_pg_exec(struct db_conn *c, const char *sql);

/* The text of the connection's last error, for a log line ("" when none). */
const char *db_pg_errmsg(struct db_conn *c);
/* 1 when the connection's transaction is aborted (a statement failed inside it). */
int db_pg_txn_failed(struct db_conn *c);

/* Result helpers (text results): the value of (row, col) as int64 (0 for NULL), as a
 * string ("" for NULL, valid until PQclear), NULL-ness. */
int64_t     db_pg_i64(const PGresult *r, int row, int col);
const char *db_pg_str(const PGresult *r, int row, int col);
int         db_pg_null(const PGresult *r, int row, int col);
/* A bytea column (text result, "\x.." hex) decoded into out[0..cap): its length, or
 * -EINVAL when it is not hex or longer than cap. */
int         db_pg_bytea(const PGresult *r, int row, int col, uint8_t *out, size_t cap);

/* Parameter helpers: an int64 as text into buf (at least 24 bytes); returns buf. An
 * int64 array as a PostgreSQL array literal "{1,2,3}" (malloc'ed, NULL on no memory). */
#define DB_PG_I64_LEN 24
const char *db_pg_p64(char buf[DB_PG_I64_LEN], int64_t v);
char       *db_pg_array64(const int64_t *v, size_t n);
/* Texts as an array literal, each element quoted and escaped; NULL elements as NULL. */
char       *db_pg_array_text(const char *const *v, size_t n);

#endif
