/* subscriptions.c: the push_subscriptions table (owned by this module) and the
 * jobs that touch it. Writes go through the writer thread (db_write); reads run on
 * the thread pool (db_read). The loop only sees results.
 *
 * An endpoint belongs to one browser profile: subscribing a known endpoint again
 * updates its keys and moves it to the caller (the browser's previous user logged out
 * and someone else logged in), keeping its id. A user keeps at most
 * NOTIF_SUBS_PER_USER subscriptions; a new one beyond that drops the oldest, since
 * browsers replace endpoints without telling us. Subscribing again also clears the
 * failure state (sub_health.c): the browser handed us a fresh subscription. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/db_sqlite.h"
#include "chatd/log.h"
#include "chatd/util.h"
#include "notification_internal.h"

static const struct db_migration migrations[] = {
    { 1,
      "CREATE TABLE push_subscriptions ("
      "  id INTEGER PRIMARY KEY,"
      "  user_id INTEGER NOT NULL,"
      "  endpoint TEXT NOT NULL UNIQUE,"
      "  p256dh BLOB NOT NULL,"
      "  auth BLOB NOT NULL,"
      "  created_at INTEGER NOT NULL);"
      "CREATE INDEX push_subscriptions_user ON push_subscriptions(user_id, created_at);" },
    /* Delivery health (sub_health.c): failed attempts in a row, since when the
     * subscription counts as failing, and the last error, shown to its owner. */
    { 2,
      "ALTER TABLE push_subscriptions ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;"
      "ALTER TABLE push_subscriptions ADD COLUMN failing_since INTEGER;"
      "ALTER TABLE push_subscriptions ADD COLUMN last_error TEXT;"
      "CREATE INDEX push_subscriptions_failing ON push_subscriptions(failing_since)"
      " WHERE failing_since IS NOT NULL;" },
};

int subs_migrate(struct notif *n)
{
    return db_migrate(n->app->db, NOTIF_MOD, migrations,
                      (int)(sizeof(migrations) / sizeof(migrations[0])));
}

/* ---- writes answering an HTTP request ---- */

struct subs_job {
    struct db_job job;               /* first: the writer hands this pointer back */
    struct notif *n;
    struct http_req *req;            /* answered once, on the loop */
    int64_t user_id, id;
    char *endpoint;                  /* owned */
    uint8_t p256dh[ECE_KEY_LEN], auth[ECE_AUTH_LEN];
    int status, changed;
    void (*finish)(struct subs_job *j);
};

static void job_free(struct subs_job *j)
{
    free(j->endpoint);
    free(j);
}

static void job_after(struct db_job *job, int status)
{
    struct subs_job *j = (struct subs_job *)job;
    j->status = status;
    j->finish(j);
    job_free(j);
}

/* Steps a statement that returns no rows, and finalizes it. */
int subs_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static int add_apply(struct db_conn *conn_, struct db_job *job)
{
    sqlite3 *conn = db_sqlite(conn_);
    struct subs_job *j = (struct subs_job *)job;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(conn,
        "INSERT INTO push_subscriptions(user_id, endpoint, p256dh, auth, created_at) "
        "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(endpoint) DO UPDATE SET "
        "user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth, "
        "created_at = excluded.created_at, failures = 0, failing_since = NULL, "
        "last_error = NULL RETURNING id", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_errno(rc);
    sqlite3_bind_int64(st, 1, j->user_id);
    sqlite3_bind_text(st, 2, j->endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, j->p256dh, ECE_KEY_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, j->auth, ECE_AUTH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ms());
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        j->id = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_errno(rc);
    rc = sqlite3_prepare_v2(conn,
        "DELETE FROM push_subscriptions WHERE user_id = ?1 AND id NOT IN "
        "(SELECT id FROM push_subscriptions WHERE user_id = ?1 "
        " ORDER BY created_at DESC, id DESC LIMIT ?2)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_errno(rc);
    sqlite3_bind_int64(st, 1, j->user_id);
    sqlite3_bind_int(st, 2, NOTIF_SUBS_PER_USER);
    return subs_step_done(st);
}

static void add_finish(struct subs_job *j)
{
    if (j->status < 0) {
        LOG_ERROR(j->n->app, NOTIF_MOD, "cannot store a subscription err=%d", j->status);
        http_respond_error(j->req, 500, "cannot store the subscription");
        return;
    }
    /* A fresh subscription (or a reused id) starts healthy. */
    idset_del(&j->n->failures, j->id);
    /* From now on the fan-out looks this user up. */
    if (idset_put(&j->n->subscribers, j->user_id, ++j->n->gen) < 0)
        j->n->subscribers_overflow = 1;
    char body[64];
    int len = snprintf(body, sizeof(body), "{\"id\":%lld}", (long long)j->id);
    http_respond_json_str(j->req, 201, body, (size_t)len);
}

static void submit(struct subs_job *j, int (*apply)(struct db_conn *, struct db_job *))
{
    j->job.apply = apply;
    j->job.after = job_after;
    int rc = db_write(j->n->app->db, &j->job);
    if (rc < 0) {
        if (j->req)
            http_respond_error(j->req, 503, "the database is busy, try again");
        job_free(j);
    }
}

void subs_add(struct notif *n, struct http_req *req, const char *endpoint,
              const uint8_t p256dh[ECE_KEY_LEN], const uint8_t auth[ECE_AUTH_LEN])
{
    struct subs_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->endpoint = strdup(endpoint))) {
        free(j);
        http_respond_error(req, 500, "out of memory");
        return;
    }
    j->n = n;
    j->req = req;
    j->user_id = req->user.id;
    memcpy(j->p256dh, p256dh, ECE_KEY_LEN);
    memcpy(j->auth, auth, ECE_AUTH_LEN);
    j->finish = add_finish;
    submit(j, add_apply);
}

static int remove_apply(struct db_conn *conn_, struct db_job *job)
{
    sqlite3 *conn = db_sqlite(conn_);
    struct subs_job *j = (struct subs_job *)job;
    sqlite3_stmt *st = NULL;
    /* user_id 0 is the removal after a 404/410 from the push service. */
    int rc = sqlite3_prepare_v2(conn, j->user_id
        ? "DELETE FROM push_subscriptions WHERE id = ?1 AND user_id = ?2"
        : "DELETE FROM push_subscriptions WHERE id = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_errno(rc);
    sqlite3_bind_int64(st, 1, j->id);
    if (j->user_id)
        sqlite3_bind_int64(st, 2, j->user_id);
    rc = subs_step_done(st);
    j->changed = sqlite3_changes(conn);
    return rc;
}

static void remove_finish(struct subs_job *j)
{
    if (!j->req) {
        if (j->status < 0)
            LOG_WARN(j->n->app, NOTIF_MOD, "cannot remove a gone subscription id=%lld err=%d",
                     (long long)j->id, j->status);
        return;
    }
    if (j->status < 0)
        http_respond_error(j->req, 500, "cannot remove the subscription");
    else if (!j->changed)
        http_respond_error(j->req, 404, "no such subscription");
    else
        http_respond_empty(j->req, 204);
}

void subs_remove(struct notif *n, struct http_req *req, int64_t id)
{
    struct subs_job *j = calloc(1, sizeof(*j));
    if (!j) {
        http_respond_error(req, 500, "out of memory");
        return;
    }
    j->n = n;
    j->req = req;
    j->user_id = req->user.id;
    j->id = id;
    j->finish = remove_finish;
    submit(j, remove_apply);
}

void subs_delete_gone(struct notif *n, int64_t sub_id)
{
    struct subs_job *j = calloc(1, sizeof(*j));
    if (!j)
        return;                      /* the next 410 tries again */
    j->n = n;
    j->id = sub_id;
    j->finish = remove_finish;
    submit(j, remove_apply);
}

/* ---- reads (pool threads) ---- */

int subs_query_users(sqlite3 *conn, const char *ids_json, struct subs_row **rows, size_t *n)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    *rows = NULL;
    *n = 0;
    int rc = sqlite3_prepare_v2(conn,
        "SELECT id, user_id FROM push_subscriptions WHERE user_id IN "
        "(SELECT value FROM json_each(?1)) ORDER BY user_id, id", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_errno(rc);
    sqlite3_bind_text(st, 1, ids_json, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct subs_row *r = realloc(*rows, ncap * sizeof(**rows));
            if (!r) {
                rc = SQLITE_NOMEM;
                break;
            }
            *rows = r;
            cap = ncap;
        }
        (*rows)[*n].id = sqlite3_column_int64(st, 0);
        (*rows)[*n].user_id = sqlite3_column_int64(st, 1);
        (*n)++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(*rows);
        *rows = NULL;
        *n = 0;
        return db_errno(rc);
    }
    return 0;
}

int subs_get(sqlite3 *conn, int64_t id, struct subs_target *t)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(conn,
        "SELECT user_id, endpoint, p256dh, auth, failures, failing_since"
        " FROM push_subscriptions WHERE id = ?1",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_errno(rc);
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
    }
    const char *ep = (const char *)sqlite3_column_text(st, 1);
    int eplen = sqlite3_column_bytes(st, 1);
    if (!ep || eplen > NOTIF_ENDPOINT_MAX || sqlite3_column_bytes(st, 2) != ECE_KEY_LEN ||
        sqlite3_column_bytes(st, 3) != ECE_AUTH_LEN) {
        sqlite3_finalize(st);
        return -EINVAL;
    }
    t->user_id = sqlite3_column_int64(st, 0);
    memcpy(t->endpoint, ep, (size_t)eplen);
    t->endpoint[eplen] = 0;
    memcpy(t->p256dh, sqlite3_column_blob(st, 2), ECE_KEY_LEN);
    memcpy(t->auth, sqlite3_column_blob(st, 3), ECE_AUTH_LEN);
    t->failures = sqlite3_column_int(st, 4);
    t->failing_since = sqlite3_column_int64(st, 5);       /* NULL reads as 0 */
    sqlite3_finalize(st);
    return 0;
}

/* ---- start-up: who has subscriptions ---- */

struct load {
    struct notif *n;
    int64_t *ids;                    /* owned */
    size_t len, cap;
};

static int load_fn(struct db_conn *conn_, void *arg)
{
    sqlite3 *conn = db_sqlite(conn_);
    struct load *l = arg;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(conn, "SELECT DISTINCT user_id FROM push_subscriptions",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_errno(rc);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (l->len == l->cap) {
            size_t ncap = l->cap ? l->cap * 2 : 256;
            int64_t *p = realloc(l->ids, ncap * sizeof(*p));
            if (!p) {
                rc = SQLITE_NOMEM;
                break;
            }
            l->ids = p;
            l->cap = ncap;
        }
        l->ids[l->len++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static void load_after(void *arg, int status)
{
    struct load *l = arg;
    struct notif *n = l->n;
    int overflow = status < 0;
    for (size_t i = 0; !overflow && i < l->len; i++)
        if (idset_put(&n->subscribers, l->ids[i], n->gen) < 0)
            overflow = 1;
    n->subscribers_overflow = overflow;
    if (status < 0)
        LOG_WARN(n->app, NOTIF_MOD, "cannot load subscribers err=%d: looking up everyone",
                 status);
    else if (overflow)
        LOG_WARN(n->app, NOTIF_MOD, "more subscribers than the set holds: looking up everyone");
    free(l->ids);
    free(l);
    n->lookups--;
    notif_work_done(n);
}

int subs_load_subscribers(struct notif *n)
{
    struct load *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->n = n;
    n->subscribers_overflow = 1;     /* until the list is in */
    int rc = db_read(n->app->db, load_fn, load_after, l);
    if (rc < 0) {
        free(l);
        return rc;
    }
    n->lookups++;
    return 0;
}
