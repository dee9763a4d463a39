/* migrate_db.h: `chatd migrate-db --to URL`: a stopped node's SQLite database copied
 * into an empty PostgreSQL database. The verb (migrate_db.c) opens both, runs every
 * module's migrations on the target, then copies in ONE target transaction: the tables
 * (migrate_db_copy.c, in the foreign-key order migrate_db_tables.c reads from the
 * target), the identity counters, and the keys kept in data_dir (migrate_db_keys.c).
 *
 * Nothing here knows a module's tables: a SQLite table goes to the PostgreSQL table of
 * the same name, the columns both have. */
#ifndef CHATD_CORE_MIGRATE_DB_H
#define CHATD_CORE_MIGRATE_DB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/db.h"

#define MDB_NAME_MAX 64              /* PostgreSQL's identifiers are at most 63 bytes */
#define MDB_TABLES_MAX 128           /* tables copied at most (chatd has about ten) */
#define MDB_COLS_MAX 128             /* columns of one table at most */
#define MDB_ERR_MAX 512

/* main.c: the verb's arguments ("--to URL" or "--to=URL"). Sets *url (a pointer into
 * argv). 0, or -EINVAL with a usage line printed on stderr. */
int  migrate_db_args(int argc, char **argv, const char **url);
/* main.c: url (--to) as the target: checked as [database] url is, then set there;
 * what core says of it then names "--to". 0, or -EINVAL with the reason on stderr. */
int  migrate_db_target(struct chatd_config *cfg, const char *url);
/* main.c: the verb, with app->db the TARGET (opened from the config's [database] url,
 * which main.c set to the --to URL). The exit status. */
int  migrate_db_run(struct chatd *app, int argc, char **argv);

/* --- migrate_db_source.c: the SQLite side --- */

/* Opens path for reading under an exclusive lock held until close, so that no server
 * runs on it meanwhile: -EBUSY when one does (or any other process has it open). No
 * change is made through it (query_only). 0 or negative, the reason in err. */
int  mdb_source_open(const char *path, sqlite3 **out, char *err, size_t errlen);
/* The tables to copy: every table but SQLite's own, schema_versions and the names in
 * skip (NULL-ended). Sorted by name. 0, or negative with err. */
int  mdb_source_tables(sqlite3 *src, const char *const *skip,
                       char (*names)[MDB_NAME_MAX], int *n, char *err, size_t errlen);
/* The highest id SQLite ever gave in table (AUTOINCREMENT's sqlite_sequence), 0 when
 * it keeps none. */
int64_t mdb_source_sequence(sqlite3 *src, const char *table);

/* --- migrate_db_tables.c: the PostgreSQL side's catalogue --- */

/* PQexec of sql on the target: 0 and *res (PQclear it), or negative with the first
 * line of the server's error in err. */
int  mdb_pg_query(struct db_conn *pg, const char *sql, PGresult **res, char *err,
                  size_t errlen);

/* 0 when the target's schema has no table but core's own, empty (made by opening it),
 * or only chatd's empty tables (an earlier run that failed after the migrations: a
 * version is recorded); the tables in skip (NULL-ended: derived ones, which a
 * migration may seed) may hold rows then. -ENOTEMPTY naming a table that holds rows,
 * or one of someone else's. */
int  mdb_target_empty(struct db_conn *pg, const char *const *skip, char *err, size_t errlen);
/* Puts names[0..n) (tables of the target) in an order where a table comes after every
 * table its foreign keys point to. -ELOOP when the keys form a cycle. */
int  mdb_target_order(struct db_conn *pg, char (*names)[MDB_NAME_MAX], int n,
                      char *err, size_t errlen);
/* 1 when the target has the table, 0 when not, negative on error. */
int  mdb_target_has(struct db_conn *pg, const char *table);
/* Moves every identity (and serial) column's counter of table past max(column) and
 * past floor: the next id the database gives is above every copied one. */
int  mdb_target_reset_ids(struct db_conn *pg, const char *table, int64_t floor,
                          char *err, size_t errlen);

/* --- migrate_db_copy.c --- */

/* Copies every row of table from src into the target's table of the same name (COPY,
 * BLOB -> bytea), the columns both have; a column only SQLite has is named on warn.
 * *rows: the rows copied. 0, or negative with err. */
int  mdb_copy_table(sqlite3 *src, struct db_conn *pg, const char *table, FILE *warn,
                    int64_t *rows, char *err, size_t errlen);

/* --- migrate_db_keys.c --- */

/* Inserts <data_dir>/<name> into the target's chatd_keys for every name (NULL-ended)
 * whose file exists; *copied counts them. 0, or negative with err. */
int  mdb_copy_keys(struct db_conn *pg, const char *data_dir, const char *const *names,
                   int *copied, char *err, size_t errlen);

#endif
