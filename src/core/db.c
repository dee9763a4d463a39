/* db.c: opening the database, migrations and close. The writer thread lives in
 * db_writer.c, the read pool in db_read.c, the files' modes in db_files.c, opening a
 * connection and error mapping in db_conn.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/db.h"
#include "chatd/log.h"
#include "db_internal.h"

static int setup_writer_conn(struct db *db)
{
    sqlite3_stmt *st = NULL;
    int rc;

    /* journal_mode answers the mode it ended up in: WAL can be refused (e.g. on a
     * file system without shared memory), and we rely on it for concurrent reads. */
    rc = sqlite3_prepare_v2(db->wconn, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        rc = mode && strcmp(mode, "wal") == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return db_errno(rc);
    if ((rc = db_exec(db->wconn, db_sync_pragma(db))) < 0 ||
        (rc = db_exec(db->wconn, "PRAGMA foreign_keys=ON")) < 0)
        return rc;
    return db_exec(db->wconn, "CREATE TABLE IF NOT EXISTS schema_versions ("
                              " owner TEXT PRIMARY KEY, version INTEGER NOT NULL)");
}

static int init_locks(struct db *db)
{
    if (pthread_mutex_init(&db->conn_lock, NULL) || pthread_mutex_init(&db->q_lock, NULL) ||
        pthread_cond_init(&db->q_cond, NULL) || pthread_mutex_init(&db->r_lock, NULL) ||
        pthread_cond_init(&db->r_cond, NULL) || pthread_mutex_init(&db->ck_lock, NULL) ||
        pthread_cond_init(&db->ck_cond, NULL) || pthread_mutex_init(&db->d_lock, NULL))
        return -ENOMEM;
    return 0;
}

static void db_free(struct db *db)
{
    db_readers_close(db);
    db_ctl_free(db);
    sqlite3_close(db->wconn);
    pthread_mutex_destroy(&db->conn_lock);
    pthread_mutex_destroy(&db->q_lock);
    pthread_cond_destroy(&db->q_cond);
    pthread_mutex_destroy(&db->r_lock);
    pthread_cond_destroy(&db->r_cond);
    pthread_mutex_destroy(&db->ck_lock);
    pthread_mutex_destroy(&db->d_lock);
    pthread_cond_destroy(&db->ck_cond);
    free(db->path);
    free(db);
}

int db_open(struct db **out, struct chatd *app, const char *path)
{
    struct db *db = calloc(1, sizeof(*db));
    int rc;

    /* SQLite's memory statistics take a global mutex around every allocation, for
     * sqlite3_memory_used() which nothing here reads. Only possible before SQLite's
     * first use in the process; later it refuses (SQLITE_MISUSE) and nothing changes. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (!db)
        return -ENOMEM;
    db->app = app;
    db->accepting = 1;
    atomic_init(&db->depth, 0);
    if (!(db->path = strdup(path)) || (rc = init_locks(db)) < 0) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = db_prepare_files(db, path)) < 0)
        goto fail;                      /* logged with the file or directory at fault */
    if ((rc = db_open_conn(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db->wconn)) < 0 ||
        (rc = setup_writer_conn(db)) < 0) {
        LOG_ERROR(app, "db", "cannot open database path=%s error=\"%s\"", path,
                  db->wconn ? sqlite3_errmsg(db->wconn) : strerror(-rc));
        goto fail;
    }
    if ((rc = db_readers_open(db)) < 0) {
        LOG_ERROR(app, "db", "cannot open read connections path=%s", path);
        goto fail;
    }
    db_writer_metrics(db);
    *out = db;
    return 0;
fail:
    db_free(db);
    return rc;
}

static int current_version(sqlite3 *conn, const char *owner, int *version)
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

static int apply_one(struct db *db, const char *owner, const struct db_migration *m)
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

int db_migrate(struct db *db, const char *owner, const struct db_migration *m, int n)
{
    int version, rc;

    pthread_mutex_lock(&db->conn_lock);
    if ((rc = current_version(db->wconn, owner, &version)) < 0) {
        LOG_ERROR(db->app, "db", "cannot read schema version owner=%s error=\"%s\"", owner,
                  sqlite3_errmsg(db->wconn));
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (m[i].version <= version)
            continue;
        if ((rc = apply_one(db, owner, &m[i])) < 0)
            goto out;
        version = m[i].version;
    }
out:
    pthread_mutex_unlock(&db->conn_lock);
    return rc;
}

int db_start(struct db *db)
{
    /* Without the thread, SQLite's own checkpoints in the writer's commits. */
    db_checkpointer_start(db);
    return db_writer_start(db);
}

struct db_conn *db_conn_for_cli(struct db *db)
{
    return db_conn_of_sqlite(db->wconn);
}

/* Reads still on the thread pool must finish, and their after() run on the loop,
 * before the connections go: the loop is no longer running by now (start-up failed or
 * the server stopped), so turn it until they are back. */
static void wait_for_reads(struct db *db)
{
    while (db->reads_pending > 0 && db->app && db->app->loop)
        uv_run(db->app->loop, UV_RUN_ONCE);
}

void db_close(struct db *db)
{
    if (!db)
        return;
    db_writer_stop(db);
    db_afters_close(db);
    db_checkpointer_stop(db);
    wait_for_reads(db);
    db_free(db);
}
