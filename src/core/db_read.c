/* db_read.c: reads on libuv's thread pool. A small pool of connections is handed out
 * under a mutex: a connection is used by one thread at a time. On SQLite they are
 * opened read-write (WAL readers need to write the -shm index) but locked to reads
 * with PRAGMA query_only, and readers in WAL mode never wait for the writer. On
 * PostgreSQL they are the engine's read connections (db_pg_read.c), in autocommit. */
#include <errno.h>
#include <stdlib.h>
#include "chatd/chatd.h"
#include "chatd/db.h"
#include "chatd/log.h"
#include "db_internal.h"
#include "db_pg_engine.h"

struct db_read_req {
    uv_work_t work;
    struct db *db;
    int (*fn)(struct db_conn *conn, void *arg);
    void (*after)(void *arg, int status);
    void *arg;
    int status;
};

int db_readers_open(struct db *db)
{
    int rc;

    if (db->engine == DB_ENGINE_PG)
        return 0;                     /* opened with the engine (db_pg_open.c) */
    for (int i = 0; i < DB_READERS; i++) {
        if ((rc = db_open_conn(db->path, SQLITE_OPEN_READWRITE, &db->rconn[i])) < 0)
            return rc;
        if ((rc = db_exec(db->rconn[i], "PRAGMA query_only=1")) < 0)
            return rc;
    }
    return 0;
}

void db_readers_close(struct db *db)
{
    for (int i = 0; i < DB_READERS; i++) {
        sqlite3_close(db->rconn[i]);
        db->rconn[i] = NULL;
    }
}

static int acquire_reader(struct db *db)
{
    pthread_mutex_lock(&db->r_lock);
    for (;;) {
        for (int i = 0; i < DB_READERS; i++) {
            if (!db->rbusy[i]) {
                db->rbusy[i] = 1;
                pthread_mutex_unlock(&db->r_lock);
                return i;
            }
        }
        pthread_cond_wait(&db->r_cond, &db->r_lock);
    }
}

static void release_reader(struct db *db, int i)
{
    pthread_mutex_lock(&db->r_lock);
    db->rbusy[i] = 0;
    pthread_cond_signal(&db->r_cond);
    pthread_mutex_unlock(&db->r_lock);
}

static int sqlite_read(struct db *db, int i, int (*fn)(struct db_conn *conn, void *arg),
                       void *arg)
{
    sqlite3 *conn = db->rconn[i];
    int rc = fn(db_conn_of_sqlite(conn), arg);

    /* A read that forgot to finalize or left a transaction open would pin an old
     * snapshot and stop checkpoints: end it here. */
    if (!sqlite3_get_autocommit(conn))
        db_exec(conn, "ROLLBACK");
    return rc;
}

static void read_work(uv_work_t *w)
{
    struct db_read_req *req = w->data;
    struct db *db = req->db;
    int i = acquire_reader(db);

    req->status = db->engine == DB_ENGINE_PG ? db_pg_read(db, i, req->fn, req->arg)
                                             : sqlite_read(db, i, req->fn, req->arg);
    release_reader(db, i);
}

static void read_after(uv_work_t *w, int status)
{
    struct db_read_req *req = w->data;

    req->db->reads_pending--;
    if (req->after)
        req->after(req->arg, status < 0 ? status : req->status);
    free(req);
}

int db_read(struct db *db, int (*fn)(struct db_conn *conn, void *arg),
            void (*after)(void *arg, int status), void *arg)
{
    struct db_read_req *req;
    int rc;

    if (!db->accepting)
        return -ECANCELED;
    if (!db_available(db))
        return -ENOTCONN;
    if (db->reads_pending >= DB_READS_MAX)
        return -EAGAIN;
    if (!(req = calloc(1, sizeof(*req))))
        return -ENOMEM;
    req->db = db;
    req->fn = fn;
    req->after = after;
    req->arg = arg;
    req->work.data = req;
    if ((rc = uv_queue_work(db->app->loop, &req->work, read_work, read_after)) < 0) {
        free(req);
        return rc;
    }
    db->reads_pending++;
    return 0;
}
