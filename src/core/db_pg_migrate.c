/* db_pg_migrate.c: migrations on PostgreSQL. The versions live in schema_versions
 * as on SQLite. Two nodes may start at once on one database: each migration runs in
 * a transaction that first takes a transaction-scoped advisory lock and reads the
 * version again, so the second node finds the work done and skips it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "chatd/chatd.h"
#include "chatd/log.h"
#include "db_pg_engine.h"

/* Any constant of our own: it names the lock in pg_locks. */
#define DB_PG_MIGRATE_LOCK "7012010301"

static struct db_conn *writer_conn(struct db *db)
{
    return db_conn_of_pg(db->pg->w);
}

int db_pg_core_tables(struct db *db)
{
    return db_pg_exec(writer_conn(db),
        "BEGIN;"
        " SELECT pg_advisory_xact_lock(" DB_PG_MIGRATE_LOCK ");"
        " CREATE TABLE IF NOT EXISTS schema_versions ("
        "  owner text PRIMARY KEY, version bigint NOT NULL);"
        " CREATE TABLE IF NOT EXISTS chatd_keys ("
        "  name text PRIMARY KEY, value text NOT NULL, created_at bigint NOT NULL);"
        " COMMIT");
}

int db_pg_schema_version(struct db *db, const char *owner, int *version)
{
    static const struct db_pg_stmt get = {
        "core_schema_version", "SELECT version FROM schema_versions WHERE owner = $1", 1 };
    const char *values[] = { owner };
    PGresult *r = NULL;
    int rc = db_pg_run(writer_conn(db), &get, values, &r);

    *version = 0;
    if (rc < 0)
        return rc;
    if (PQntuples(r) == 1)
        *version = (int)db_pg_i64(r, 0, 0);
    PQclear(r);
    return 0;
}

static int record_version(struct db *db, const char *owner, int version)
{
    static const struct db_pg_stmt put = {
        "core_schema_version_set",
        "INSERT INTO schema_versions (owner, version) VALUES ($1, $2::bigint)"
        " ON CONFLICT (owner) DO UPDATE SET version = excluded.version", 2 };
    char b[DB_PG_I64_LEN];
    const char *values[] = { owner, db_pg_p64(b, version) };
    PGresult *r = NULL;
    int rc = db_pg_run(writer_conn(db), &put, values, &r);

    PQclear(r);
    return rc;
}

/* m in its own transaction, unless another node applied it first. */
static int apply_one(struct db *db, const char *owner, const struct db_migration *m)
{
    struct db_conn *c = writer_conn(db);
    int version = 0, rc;

    if ((rc = db_pg_exec(c, "BEGIN; SELECT pg_advisory_xact_lock(" DB_PG_MIGRATE_LOCK ")")) < 0)
        goto fail;
    if ((rc = db_pg_schema_version(db, owner, &version)) < 0)
        goto fail;
    if (m->version <= version)
        return db_pg_exec(c, "COMMIT");
    if ((rc = db_pg_exec(c, m->sql)) < 0 || (rc = record_version(db, owner, m->version)) < 0 ||
        (rc = db_pg_exec(c, "COMMIT")) < 0)
        goto fail;
    LOG_INFO(db->app, "db", "migrated owner=%s version=%d engine=postgresql", owner,
             m->version);
    return 0;
fail:
    LOG_ERROR(db->app, "db", "migration failed owner=%s version=%d engine=postgresql "
              "error=\"%s\"", owner, m->version, db_pg_errmsg(c));
    if (!db_pg_conn_lost(db->pg->w))
        db_pg_exec(c, "ROLLBACK");
    return rc;
}

int db_pg_migrate(struct db *db, const char *owner, const struct db_migration *m, int n)
{
    int version, rc;

    if ((rc = db_pg_schema_version(db, owner, &version)) < 0)
        return rc;
    for (int i = 0; i < n; i++)
        if (m[i].version > version && (rc = apply_one(db, owner, &m[i])) < 0)
            return rc;
    return 0;
}
