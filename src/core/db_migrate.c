/* db_migrate.c: each owner's migrations on either engine, with the version recorded
 * per owner in schema_versions. A database whose recorded version is newer than the
 * newest migration this binary knows for that owner was written by a newer chatd:
 * running on it could misread or damage what that version wrote, so it is refused,
 * naming the owner, both versions and the engine. SQLite's part is here; PostgreSQL's
 * is db_pg_migrate.c. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "chatd/chatd.h"
#include "chatd/db.h"
#include "chatd/log.h"
#include "db_internal.h"
#include "db_pg_engine.h"

int db_sqlite_versions_table(struct db *db)
{
    return db_exec(db->wconn, "CREATE TABLE IF NOT EXISTS schema_versions ("
                              " owner TEXT PRIMARY KEY, version INTEGER NOT NULL)");
}

static int sqlite_version(sqlite3 *conn, const char *owner, int *version)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(conn, "SELECT version FROM schema_versions WHERE owner = ?",
                                -1, &st, NULL);

    *version = 0;
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            *version = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static int record_version(sqlite3 *conn, const char *owner, int version)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(conn, "INSERT INTO schema_versions (owner, version)"
                                " VALUES (?, ?) ON CONFLICT(owner) DO UPDATE"
                                " SET version = excluded.version", -1, &st, NULL);

    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, version);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static int sqlite_apply_one(struct db *db, const char *owner, const struct db_migration *m)
{
    int rc = db_exec(db->wconn, "BEGIN IMMEDIATE");

    if (rc < 0)
        return rc;
    if ((rc = db_exec(db->wconn, m->sql)) < 0 ||
        (rc = record_version(db->wconn, owner, m->version)) < 0 ||
        (rc = db_exec(db->wconn, "COMMIT")) < 0) {
        LOG_ERROR(db->app, "db", "migration failed owner=%s version=%d error=\"%s\"", owner,
                  m->version, sqlite3_errmsg(db->wconn));
        db_exec(db->wconn, "ROLLBACK");
        return rc;
    }
    LOG_INFO(db->app, "db", "migrated owner=%s version=%d", owner, m->version);
    return 0;
}

static int sqlite_migrate(struct db *db, const char *owner, const struct db_migration *m,
                          int n, int version)
{
    int rc;

    for (int i = 0; i < n; i++) {
        if (m[i].version <= version)
            continue;
        if ((rc = sqlite_apply_one(db, owner, &m[i])) < 0)
            return rc;
        version = m[i].version;
    }
    return 0;
}

static const char *engine_name(const struct db *db)
{
    return db->engine == DB_ENGINE_PG ? "postgresql" : "sqlite";
}

static int read_version(struct db *db, const char *owner, int *version)
{
    int rc = db->engine == DB_ENGINE_PG ? db_pg_schema_version(db, owner, version)
                                        : sqlite_version(db->wconn, owner, version);
    if (rc < 0)
        LOG_ERROR(db->app, "db", "cannot read schema version owner=%s engine=%s error=\"%s\"",
                  owner, engine_name(db), db->engine == DB_ENGINE_PG
                  ? db_pg_errmsg(db_conn_of_pg(db->pg->w)) : sqlite3_errmsg(db->wconn));
    return rc;
}

int db_migrate(struct db *db, const char *owner, const struct db_migration *m, int n)
{
    int version, newest = 0, rc;

    for (int i = 0; i < n; i++)
        newest = m[i].version > newest ? m[i].version : newest;
    pthread_mutex_lock(&db->conn_lock);
    if ((rc = read_version(db, owner, &version)) < 0)
        goto out;
    if (version > newest) {
        LOG_ERROR(db->app, "db", "the database was written by a newer chatd: schema of "
                  "owner=%s is at version %d, this chatd knows up to version %d "
                  "engine=%s (run a chatd at least as new, or restore a backup)",
                  owner, version, newest, engine_name(db));
        rc = -EPROTO;
        goto out;
    }
    rc = db->engine == DB_ENGINE_PG ? db_pg_migrate(db, owner, m, n)
                                    : sqlite_migrate(db, owner, m, n, version);
out:
    pthread_mutex_unlock(&db->conn_lock);
    return rc;
}
