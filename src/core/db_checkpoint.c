/* db_checkpoint.c: WAL checkpoints on a thread of their own.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL past its
 * size: that commit then copies every page back into the database file and waits for
 * two fsyncs, and every message of the group waits with it for its ack (tens of
 * milliseconds here, during which the loop has nothing to do). So the writer's
 * connection checkpoints nothing itself; its WAL hook wakes this thread, which runs a
 * PASSIVE checkpoint on its own connection while the writer goes on committing into
 * the WAL. That changes no durability: what an acknowledged commit survives is set by
 * [database] durability (db_sync_pragma). With full (synchronous=FULL) COMMIT returns
 * once the WAL is fsynced, so the commit survives a power cut; with process
 * (synchronous=NORMAL) it is only in the OS cache and reaches the disk here, since a
 * checkpoint syncs the WAL before it copies pages back (and the database after): a
 * power cut before that loses it.
 *
 * Bound: should the checkpoints fall behind (a reader holding an old snapshot keeps
 * them from finishing), past DB_WAL_HARD_PAGES the writer checkpoints inline again,
 * as SQLite would, so the WAL does not grow without limit. */
#include <errno.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/chatd.h"
#include "chatd/db.h"
#include "chatd/log.h"
#include "db_internal.h"

/* Writer thread, after each commit: pages is the WAL's size in frames. */
static int on_wal(void *arg, sqlite3 *conn, const char *name, int pages)
{
    struct db *db = arg;

    if (pages >= DB_WAL_HARD_PAGES) {
        sqlite3_wal_checkpoint_v2(conn, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    if (pages < DB_WAL_CHECKPOINT_PAGES)
        return SQLITE_OK;
    pthread_mutex_lock(&db->ck_lock);
    if (!db->ck_wanted) {
        db->ck_wanted = 1;
        pthread_cond_signal(&db->ck_cond);
    }
    pthread_mutex_unlock(&db->ck_lock);
    return SQLITE_OK;
}

static void *checkpoint_main(void *arg)
{
    struct db *db = arg;

    db_thread_batch_sched(db, "checkpoint");
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), DB_CHECKPOINT_NICE) < 0)
        LOG_DEBUG(db->app, "db", "checkpoint thread keeps its nice value error=\"%s\"",
                  strerror(errno));
    pthread_mutex_lock(&db->ck_lock);
    for (;;) {
        while (!db->ck_wanted && !db->ck_stopping)
            pthread_cond_wait(&db->ck_cond, &db->ck_lock);
        if (db->ck_stopping)
            break;
        db->ck_wanted = 0;
        pthread_mutex_unlock(&db->ck_lock);
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(db->ckconn, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                           &log, &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            LOG_WARN(db->app, "db", "checkpoint failed error=\"%s\"", sqlite3_errmsg(db->ckconn));
        pthread_mutex_lock(&db->ck_lock);
        db->checkpoints++;
    }
    pthread_mutex_unlock(&db->ck_lock);
    return NULL;
}

int db_checkpointer_start(struct db *db)
{
    int rc;

    if (db->ck_running)
        return 0;
    if ((rc = db_open_conn(db->path, SQLITE_OPEN_READWRITE, &db->ckconn)) < 0 ||
        (rc = db_exec(db->ckconn, db_sync_pragma(db))) < 0)
        goto fail;
    db->ck_stopping = 0;
    db->ck_wanted = 0;
    if ((rc = pthread_create(&db->ckthread, NULL, checkpoint_main, db)) != 0) {
        rc = -rc;
        goto fail;
    }
    db->ck_running = 1;
    /* From here the writer's commits no longer checkpoint by themselves. */
    pthread_mutex_lock(&db->conn_lock);
    sqlite3_wal_hook(db->wconn, on_wal, db);
    pthread_mutex_unlock(&db->conn_lock);
    return 0;
fail:
    LOG_WARN(db->app, "db", "no checkpoint thread, the writer checkpoints error=%d", rc);
    sqlite3_close(db->ckconn);
    db->ckconn = NULL;
    return rc;
}

/* After the writer stopped: nothing commits any more. */
void db_checkpointer_stop(struct db *db)
{
    if (!db->ck_running)
        return;
    pthread_mutex_lock(&db->ck_lock);
    db->ck_stopping = 1;
    pthread_cond_signal(&db->ck_cond);
    pthread_mutex_unlock(&db->ck_lock);
    pthread_join(db->ckthread, NULL);
    db->ck_running = 0;
    sqlite3_wal_autocheckpoint(db->wconn, 1000);   /* SQLite's own again (the CLI, close) */
    sqlite3_close(db->ckconn);
    db->ckconn = NULL;
}
