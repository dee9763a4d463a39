/* migrate_db_fixture.h: the cases of migrate-db's unit tests (test_migrate_db*.c): a
 * SQLite database as chatd leaves it (WAL) opened as migrate-db opens its source, and
 * a fresh PostgreSQL database (pg_fixture.h; without a server the cases skip). */
#ifndef CHATD_TEST_MIGRATE_DB_FIXTURE_H
#define CHATD_TEST_MIGRATE_DB_FIXTURE_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "chatd/db_pg.h"
#include "chatd/db_sqlite.h"
#include "test.h"
#include "pg_fixture.h"
#include "../../src/core/db_pg_conn.h"
#include "../../src/core/migrate_db.h"

struct mcase {
    char dir[64], path[96];
    sqlite3 *src;                    /* the source, opened by mdb_source_open */
    char url[PG_TEST_URL_MAX], name[64];
    struct db_pg_conn *pc;
    struct db_conn *pg;
    char err[MDB_ERR_MAX];
};

static inline int sql(sqlite3 *c, const char *s)
{
    return sqlite3_exec(c, s, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* A WAL database made with schema, as chatd leaves it. */
static inline int make_source(struct mcase *k, const char *schema)
{
    static int serial;     /* one per test file: its address tells the files apart */
    sqlite3 *c = NULL;
    snprintf(k->dir, sizeof k->dir, "/tmp/chatd-mdb-%d-%p-%d", (int)getpid(), (void *)&serial,
             ++serial);
    snprintf(k->path, sizeof k->path, "%s/chatd.db", k->dir);
    mkdir(k->dir, 0700);
    int rc = sqlite3_open(k->path, &c) == SQLITE_OK && sql(c, "PRAGMA journal_mode=WAL") == 0 &&
             sql(c, schema) == 0 ? 0 : -1;
    if (rc < 0)
        fprintf(stderr, "make_source: %s\n", sqlite3_errmsg(c));
    sqlite3_close(c);
    return rc;
}

/* 1 with a source and a fresh target, 0 without a server (skip), -1 failed. */
static inline int mcase_try(struct mcase *k, const char *schema, const char *target)
{
    char err[256];
    memset(k, 0, sizeof(*k));
    if (!pg_test_server())
        return 0;
    if (make_source(k, schema) < 0 || pg_test_db_new(k->url, k->name) < 0 ||
        db_pg_conn_open(k->url, &k->pc, err, sizeof err) < 0)
        return -1;
    k->pg = db_conn_of_pg(k->pc);
    if (target && db_pg_exec(k->pg, target) < 0) {
        fprintf(stderr, "target schema: %s\n", db_pg_errmsg(k->pg));
        return -1;
    }
    return mdb_source_open(k->path, &k->src, k->err, sizeof k->err) == 0 ? 1 : -1;
}

#define mcase_open(k, s, t) ({ int rc_ = mcase_try(k, s, t); ASSERT(rc_ >= 0); rc_; })

static inline void mcase_close(struct mcase *k)
{
    char cmd[160];
    sqlite3_close(k->src);
    db_pg_conn_close(k->pc);
    if (k->name[0])
        pg_test_db_drop(k->name);
    snprintf(cmd, sizeof cmd, "rm -rf %s", k->dir);
    if (k->dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", k->dir);
}

/* The text of (row 0, col 0) of a query on the target, "" when no row. */
static inline const char *pg_value(struct mcase *k, const char *q, char *out, size_t cap)
{
    PGresult *r = PQexec(db_pg(k->pg), q);
    snprintf(out, cap, "%s", PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                                 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return out;
}

#endif
