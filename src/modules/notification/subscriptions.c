/* subscriptions.c: the jobs on push subscriptions (the rows are the store's,
 * notification_store.h). Writes go through the writer thread (db_write); reads run on
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
#include "chatd/db.h"
#include "chatd/log.h"
#include "chatd/util.h"
#include "notification_internal.h"

/* The store of the database's engine. */
static int store_new(struct db *db, struct notification_store *out)
{
    return db_engine(db) == DB_ENGINE_PG ? notification_store_pg_new(out)
                                         : notification_store_sqlite_new(out);
}

int subs_store_open(struct notif *n)
{
    int rc = store_new(n->app->db, &n->store);
    return rc < 0 ? rc : notif_store_migrate(&n->store, n->app->db);
}

int subs_store_migrate(struct chatd *app)
{
    struct notification_store s = {0};
    int rc = store_new(app->db, &s);
    if (rc == 0)
        rc = notif_store_migrate(&s, app->db);
    notification_store_free(&s);
    return rc;
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

static int add_apply(struct db_conn *conn, struct db_job *job)
{
    struct subs_job *j = (struct subs_job *)job;
    const struct notification_store *store = &j->n->store;
    struct notif_sub_new sub = { .user_id = j->user_id, .endpoint = j->endpoint,
                                 .p256dh = j->p256dh, .auth = j->auth,
                                 .created_at = now_ms() };
    int rc = notif_store_sub_put(store, conn, &sub, &j->id);
    return rc < 0 ? rc : notif_store_subs_trim(store, conn, j->user_id, NOTIF_SUBS_PER_USER);
}

static void add_finish(struct subs_job *j)
{
    if (j->status == -ENOTCONN) {    /* PostgreSQL lost: not stored, try again later */
        http_respond_error(j->req, 503, "the database is not available");
        return;
    }
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
            http_respond_error(j->req, 503, rc == -ENOTCONN ? "the database is not available"
                                                            : "the database is busy, try again");
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

static int remove_apply(struct db_conn *conn, struct db_job *job)
{
    struct subs_job *j = (struct subs_job *)job;
    /* user_id 0 is the removal after a 404/410 from the push service. */
    return notif_store_sub_delete(&j->n->store, conn, j->id, j->user_id, &j->changed);
}

static void remove_finish(struct subs_job *j)
{
    if (!j->req) {
        if (j->status < 0)
            LOG_WARN(j->n->app, NOTIF_MOD, "cannot remove a gone subscription id=%lld err=%d",
                     (long long)j->id, j->status);
        return;
    }
    if (j->status == -ENOTCONN)
        http_respond_error(j->req, 503, "the database is not available");
    else if (j->status < 0)
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

/* ---- start-up: who has subscriptions ---- */

struct load {
    struct notif *n;
    int64_t *ids;                    /* owned */
    size_t len, cap;
};

static int load_one(void *arg, int64_t user_id)
{
    struct load *l = arg;
    if (l->len == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 256;
        int64_t *p = realloc(l->ids, ncap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        l->ids = p;
        l->cap = ncap;
    }
    l->ids[l->len++] = user_id;
    return 0;
}

static int load_fn(struct db_conn *conn, void *arg)
{
    struct load *l = arg;
    return notif_store_subscribers(&l->n->store, conn, load_one, l);
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
