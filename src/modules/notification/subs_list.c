/* subs_list.c: GET /v1/push/subscriptions, the caller's push subscriptions with their
 * health (sub_health.c), read from the store on the thread pool:
 *   {"subscriptions":[{"id","endpoint","created_at","failures","failing_since",
 *                      "last_error"}...]} in id order; failing_since and last_error
 * are null for a subscription that is not failing / never failed. */
#include <errno.h>
#include <stdlib.h>
#include "chatd/db.h"
#include "chatd/util.h"
#include "notification_internal.h"

struct list_read {
    struct notif *n;
    struct http_req *req;
    int64_t user_id;
    cJSON *answer;                   /* owned, built on the pool thread */
};

static int add_row(void *arg, const struct notif_sub_info *s)
{
    cJSON *arr = arg, *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o))
        return -ENOMEM;
    if (!cJSON_AddNumberToObject(o, "id", (double)s->id) ||
        !cJSON_AddStringToObject(o, "endpoint", s->endpoint) ||
        !cJSON_AddNumberToObject(o, "created_at", (double)s->created_at) ||
        !cJSON_AddNumberToObject(o, "failures", s->failures))
        return -ENOMEM;
    cJSON *since = s->failing_since ? cJSON_CreateNumber((double)s->failing_since)
                                    : cJSON_CreateNull();
    cJSON *err = s->last_error ? cJSON_CreateString(s->last_error) : cJSON_CreateNull();
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
static int list_fn(struct db_conn *conn, void *arg)
{
    struct list_read *l = arg;
    cJSON *arr;
    l->answer = cJSON_CreateObject();
    if (!l->answer || !(arr = cJSON_AddArrayToObject(l->answer, "subscriptions")))
        return -ENOMEM;
    return notif_store_subs_of_user(&l->n->store, conn, l->user_id, add_row, arr);
}

static void list_after(void *arg, int status)
{
    struct list_read *l = arg;
    if (status == -ENOTCONN) {       /* PostgreSQL lost */
        http_respond_error(l->req, 503, "the database is not available");
    } else if (status < 0) {
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
