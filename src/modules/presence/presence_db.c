/* presence_db.c: the presence table, the one durable piece of presence: when each
 * user's last connection closed. Written through the writer thread (fire and forget:
 * a lost write costs a slightly older last_seen_at, never a wrong online status),
 * read on the thread pool. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/db_sqlite.h"
#include "chatd/log.h"
#include "presence_internal.h"

static const struct db_migration migrations[] = {
    { 1, "CREATE TABLE presence ("
         "  user_id INTEGER PRIMARY KEY,"
         "  last_seen_at INTEGER NOT NULL"
         ")" },
};

int presence_db_migrate(struct presence *p)
{
    return db_migrate(p->app->db, "presence", migrations,
                      (int)(sizeof(migrations) / sizeof(migrations[0])));
}

struct seen_job {
    struct db_job base;              /* first */
    size_t n;
    struct pres_seen rows[];
};

static int seen_apply(struct db_conn *conn_, struct db_job *job)
{
    sqlite3 *conn = db_sqlite(conn_);
    struct seen_job *j = (struct seen_job *)job;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(conn,
        "INSERT INTO presence (user_id, last_seen_at) VALUES (?1, ?2) "
        "ON CONFLICT (user_id) DO UPDATE SET "
        "last_seen_at = max(last_seen_at, excluded.last_seen_at)", -1, &st, NULL);

    for (size_t i = 0; rc == SQLITE_OK && i < j->n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, j->rows[i].user_id);
        sqlite3_bind_int64(st, 2, j->rows[i].at);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : db_errno(rc);
}

static void seen_done(struct db_job *job, int status)
{
    (void)status;
    free(job);
}

void presence_db_last_seen(struct presence *p, const struct pres_seen *rows, size_t n)
{
    struct seen_job *j;
    int rc;

    if (!n)
        return;
    j = calloc(1, sizeof(*j) + n * sizeof(rows[0]));
    if (!j)
        return;
    j->base.apply = seen_apply;
    j->base.done = seen_done;
    j->n = n;
    memcpy(j->rows, rows, n * sizeof(rows[0]));
    rc = db_write(p->app->db, &j->base);
    if (rc < 0) {
        LOG_WARN(p->app, "presence", "last_seen_at not stored users=%zu err=%d", n, rc);
        free(j);
    }
}

struct seen_read {
    const int64_t *ids;
    int n;
    int64_t *out;
    void (*after)(void *arg, int status);
    void *arg;
};

static int read_fn(struct db_conn *conn_, void *arg)
{
    sqlite3 *conn = db_sqlite(conn_);
    struct seen_read *r = arg;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(conn, "SELECT last_seen_at FROM presence WHERE user_id = ?1",
                                -1, &st, NULL);

    if (rc != SQLITE_OK)
        return db_errno(rc);
    for (int i = 0; i < r->n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, r->ids[i]);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            r->out[i] = sqlite3_column_int64(st, 0);
        else if (rc == SQLITE_DONE)
            r->out[i] = 0;
        else
            break;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static void read_after(void *arg, int status)
{
    struct seen_read *r = arg;
    void (*after)(void *, int) = r->after;
    void *a = r->arg;

    free(r);
    after(a, status);
}

int presence_db_read(struct presence *p, const int64_t *ids, int n, int64_t *out,
                     void (*after)(void *arg, int status), void *arg)
{
    struct seen_read *r = calloc(1, sizeof(*r));
    int rc;

    if (!r)
        return -ENOMEM;
    *r = (struct seen_read){ ids, n, out, after, arg };
    rc = db_read(p->app->db, read_fn, read_after, r);
    if (rc < 0)
        free(r);
    return rc;
}
