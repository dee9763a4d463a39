/* subs_list.c: GET /v1/push/subscriptions, the caller's push subscriptions with their
 * health (sub_health.c), read on the thread pool:
 *   {"subscriptions":[{"id","endpoint","created_at","failures","failing_since",
 *                      "last_error"}...]} in id order; failing_since and last_error
 * are null for a subscription that is not failing / never failed. */
#include <errno.h>
#include <stdlib.h>
#include "chatd/db_sqlite.h"
#include "chatd/util.h"
#include "notification_internal.h"

struct list_read {
    struct notif *n;
    struct http_req *req;
    int64_t user_id;
    cJSON *answer;                   /* owned, built on the pool thread */
};

static int add_row(cJSON *arr, sqlite3_stmt *st)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o))
        return -ENOMEM;
    const char *last_error = (const char *)sqlite3_column_text(st, 5);
    if (!cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0)) ||
        !cJSON_AddStringToObject(o, "endpoint", (const char *)sqlite3_column_text(st, 1)) ||
        !cJSON_AddNumberToObject(o, "created_at", (double)sqlite3_column_int64(st, 2)) ||
        !cJSON_AddNumberToObject(o, "failures", sqlite3_column_int(st, 3)))
        return -ENOMEM;
    cJSON *since = sqlite3_column_type(st, 4) == SQLITE_NULL ? cJSON_CreateNull()
                   : cJSON_CreateNumber((double)sqlite3_column_int64(st, 4));
    cJSON *err = last_error ? cJSON_CreateString(last_error) : cJSON_CreateNull();
    if (!since || !err) {
        cJSON_Delete(since);
        cJSON_Delete(err);
        return -ENOMEM;
    }
    cJSON_AddItemToObject(o, "failing_since", since);
    cJSON_AddItemToObject(o, "last_error", err);
    return 0;
}

/* Pool thread. */
static int list_fn(struct db_conn *conn_, void *arg)
{
    sqlite3 *conn = db_sqlite(conn_);
    struct list_read *l = arg;
    sqlite3_stmt *st = NULL;
    cJSON *arr;
    l->answer = cJSON_CreateObject();
    if (!l->answer || !(arr = cJSON_AddArrayToObject(l->answer, "subscriptions")))
        return -ENOMEM;
    int rc = sqlite3_prepare_v2(conn, "SELECT id, endpoint, created_at, failures,"
                                " failing_since, last_error FROM push_subscriptions"
                                " WHERE user_id = ?1 ORDER BY id", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_errno(rc);
    sqlite3_bind_int64(st, 1, l->user_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (add_row(arr, st) < 0) {
            rc = SQLITE_NOMEM;
            break;
        }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static void list_after(void *arg, int status)
{
    struct list_read *l = arg;
    if (status < 0) {
        http_respond_error(l->req, 500, "cannot read the subscriptions");
    } else {
        http_respond_json(l->req, 200, l->answer);
        l->answer = NULL;
    }
    cJSON_Delete(l->answer);
    l->n->lookups--;
    notif_work_done(l->n);
    free(l);
}

void subs_list(struct notif *n, struct http_req *req)
{
    struct list_read *l = n->draining ? NULL : calloc(1, sizeof(*l));
    if (!l) {
        http_respond_error(req, 503, n->draining ? "the server is shutting down"
                                                 : "out of memory");
        return;
    }
    l->n = n;
    l->req = req;
    l->user_id = req->user.id;
    if (db_read(n->app->db, list_fn, list_after, l) < 0) {
        free(l);
        http_respond_error(req, 503, "the database is not available");
        return;
    }
    n->lookups++;                    /* a drain waits for it */
}
