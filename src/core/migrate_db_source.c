/* migrate_db_source.c: the SQLite database migrate-db copies from: opened so that no
 * server can run on it while it is copied, and the list of its tables. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "chatd/db_sqlite.h"
#include "migrate_db.h"

static int source_fail(sqlite3 *db, int rc, const char *path, char *err, size_t errlen)
{
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
        snprintf(err, errlen, "%s is in use: stop the chatd running on it first", path);
    else
        snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED ? -EBUSY
                                                                       : db_errno(rc);
}

/* A running server holds its database open, idle or not, and a WAL database opened
 * by another process cannot be locked exclusively: in EXCLUSIVE locking mode the first
 * transaction takes the lock and keeps it until the connection closes. That needs a
 * read-write connection; query_only keeps it from changing anything. */
int mdb_source_open(const char *path, sqlite3 **out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);

    if (rc != SQLITE_OK)
        return source_fail(db, rc, path, err, errlen);
    sqlite3_extended_result_codes(db, 1);
    rc = sqlite3_exec(db, "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;"
                          "PRAGMA query_only=1; BEGIN", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return source_fail(db, rc, path, err, errlen);
    *out = db;
    return 0;
}

static int skipped(const char *name, const char *const *skip)
{
    if (strcasecmp(name, "schema_versions") == 0)
        return 1;
    for (; skip && *skip; skip++)
        if (strcasecmp(name, *skip) == 0)
            return 1;
    return 0;
}

int mdb_source_tables(sqlite3 *src, const char *const *skip,
                      char (*names)[MDB_NAME_MAX], int *n, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(src,
        "SELECT name FROM sqlite_schema WHERE type = 'table'"
        " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name", -1, &st, NULL);

    *n = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        rc = SQLITE_OK;
        if (!name || skipped(name, skip))
            continue;
        if (strlen(name) >= MDB_NAME_MAX || *n == MDB_TABLES_MAX) {
            snprintf(err, errlen, "table %.80s: name too long or too many tables", name);
            sqlite3_finalize(st);
            return -E2BIG;
        }
        snprintf(names[(*n)++], MDB_NAME_MAX, "%s", name);
    }
    if (rc != SQLITE_DONE)
        snprintf(err, errlen, "listing the SQLite tables: %s", sqlite3_errmsg(src));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int64_t mdb_source_sequence(sqlite3 *src, const char *table)
{
    sqlite3_stmt *st = NULL;
    int64_t seq = 0;

    /* sqlite_sequence exists only once a table with AUTOINCREMENT does. */
    if (sqlite3_prepare_v2(src, "SELECT seq FROM sqlite_sequence WHERE name = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        seq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return seq;
}
