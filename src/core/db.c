/* db.c: opening the database on either engine, and close. Migrations are in
 * db_migrate.c, the writer thread in db_writer.c, the read pool in db_read.c, the
 * files' modes in db_files.c, opening a SQLite connection and its error mapping in
 * db_conn.c, the PostgreSQL engine's connections in db_pg_open.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/db.h"
#include "chatd/log.h"
#include "db_internal.h"
#include "db_pg_engine.h"
#include "db_url.h"

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
    return db_sqlite_versions_table(db);
}

/* The writer waits on q_cond with a timeout on PostgreSQL (its connection checks and
 * reconnect waits): on the monotonic clock, which a clock change does not move. */
static int init_queue_cond(struct db *db)
{
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);

    if (rc == 0 && (rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)) == 0)
        rc = pthread_cond_init(&db->q_cond, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}

static int init_locks(struct db *db)
{
    if (pthread_mutex_init(&db->conn_lock, NULL) || pthread_mutex_init(&db->q_lock, NULL) ||
        init_queue_cond(db) || pthread_mutex_init(&db->r_lock, NULL) ||
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
    db_pg_engine_close(db);
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

static int db_new(struct db **out, struct chatd *app, enum db_engine engine)
{
    struct db *db = calloc(1, sizeof(*db));

    if (!db)
        return -ENOMEM;
    db->app = app;
    db->engine = engine;
    db->accepting = 1;
    atomic_init(&db->depth, 0);
    atomic_init(&db->available, 1);
    if (init_locks(db) < 0) {
        db_free(db);
        return -ENOMEM;
    }
    *out = db;
    return 0;
}

int db_open(struct db **out, struct chatd *app, const char *path)
{
    struct db *db;
    int rc;

    /* SQLite's memory statistics take a global mutex around every allocation, for
     * sqlite3_memory_used() which nothing here reads. Only possible before SQLite's
     * first use in the process; later it refuses (SQLITE_MISUSE) and nothing changes. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if ((rc = db_new(&db, app, DB_ENGINE_SQLITE)) < 0)
        return rc;
    if (!(db->path = strdup(path))) {
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

int db_open_url(struct db **out, struct chatd *app, const char *url)
{
    struct db *db;
    int rc = db_new(&db, app, DB_ENGINE_PG);

    /* Every failure here is said on stderr: the caller adds nothing. */
    if (rc < 0) {
        fprintf(stderr, "chatd: %s (PostgreSQL): %s\n", db_url_name(), strerror(-rc));
        return rc;
    }
    if (app && app->cfg && (rc = db_prepare_dir(db, app->cfg->server.data_dir)) < 0) {
        fprintf(stderr, "chatd: data_dir %s: %s\n", app->cfg->server.data_dir, strerror(-rc));
        db_free(db);
        return rc;
    }
    if ((rc = db_pg_engine_open(db, url)) < 0) {   /* logged, and said on stderr */
        db_free(db);
        return rc;
    }
    db_writer_metrics(db);
    *out = db;
    return 0;
}

int db_start(struct db *db)
{
    /* Without the thread, SQLite's own checkpoints in the writer's commits. */
    if (db->engine == DB_ENGINE_SQLITE)
        db_checkpointer_start(db);
    return db_writer_start(db);
}

struct db_conn *db_conn_for_cli(struct db *db)
{
    if (db->engine == DB_ENGINE_PG)
        return db_conn_of_pg(db->pg->w);
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
