/* notification_store_pg_reads.c: the reads of the PostgreSQL notification store.
 *
 * libpq hands a whole result over at once, so a read that could be long (every
 * subscriber, at start-up) goes by pages of NSP_PAGE rows, keyed on user_id, and
 * memory stays bounded whatever the table holds. The others are bounded by what they
 * ask for (a few subscriptions per user). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/db_pg.h"
#include "notification_store_pg.h"

#define NSP_PAGE 4096

int nsp_sub_get(void *impl, struct db_conn *c, int64_t id, struct subs_target *t)
{
    static const struct db_pg_stmt st = { "notif_sub_get",
        "SELECT user_id, endpoint, p256dh, auth, failures, failing_since"
        " FROM push_subscriptions WHERE id = $1::bigint", 1 };
    char sid[DB_PG_I64_LEN];
    const char *v[] = { db_pg_p64(sid, id) };
    PGresult *res = NULL;
    (void)impl;
    int rc = db_pg_run(c, &st, v, &res);
    if (rc < 0)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return -ENOENT;
    }
    int eplen = PQgetlength(res, 0, 1);
    if (eplen > NOTIF_ENDPOINT_MAX ||
        db_pg_bytea(res, 0, 2, t->p256dh, NOTIF_P256DH_LEN) != NOTIF_P256DH_LEN ||
        db_pg_bytea(res, 0, 3, t->auth, NOTIF_AUTH_LEN) != NOTIF_AUTH_LEN) {
        PQclear(res);
        return -EINVAL;
    }
    t->user_id = db_pg_i64(res, 0, 0);
    memcpy(t->endpoint, db_pg_str(res, 0, 1), (size_t)eplen);
    t->endpoint[eplen] = 0;
    t->failures = (int)db_pg_i64(res, 0, 4);
    t->failing_since = db_pg_i64(res, 0, 5);            /* NULL reads as 0 */
    PQclear(res);
    return 0;
}

int nsp_subs_of_users(void *impl, struct db_conn *c, const int64_t *user_ids, size_t n,
                      int (*each)(void *arg, const struct subs_row *r), void *arg)
{
    static const struct db_pg_stmt st = { "notif_subs_of_users",
        "SELECT id, user_id FROM push_subscriptions WHERE user_id = ANY($1::bigint[])"
        " ORDER BY user_id, id", 1 };
    PGresult *res = NULL;
    (void)impl;
    char *ids = db_pg_array64(user_ids, n);
    if (!ids)
        return -ENOMEM;
    const char *v[] = { ids };
    int rc = db_pg_run(c, &st, v, &res);
    free(ids);
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        struct subs_row r = { db_pg_i64(res, i, 0), db_pg_i64(res, i, 1) };
        rc = each(arg, &r);
    }
    PQclear(res);
    return rc;
}

int nsp_subs_of_user(void *impl, struct db_conn *c, int64_t user_id,
                     int (*each)(void *arg, const struct notif_sub_info *s), void *arg)
{
    static const struct db_pg_stmt st = { "notif_subs_of_user",
        "SELECT id, endpoint, created_at, failures, failing_since, last_error"
        " FROM push_subscriptions WHERE user_id = $1::bigint ORDER BY id", 1 };
    char user[DB_PG_I64_LEN];
    const char *v[] = { db_pg_p64(user, user_id) };
    PGresult *res = NULL;
    (void)impl;
    int rc = db_pg_run(c, &st, v, &res);
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        struct notif_sub_info s = {
            .id = db_pg_i64(res, i, 0),
            .endpoint = db_pg_str(res, i, 1),
            .created_at = db_pg_i64(res, i, 2),
            .failures = (int)db_pg_i64(res, i, 3),
            .failing_since = db_pg_i64(res, i, 4),      /* NULL reads as 0 */
            .last_error = db_pg_null(res, i, 5) ? NULL : db_pg_str(res, i, 5),
        };
        rc = each(arg, &s);
    }
    PQclear(res);
    return rc;
}

/* One page of subscribers after *after; *got: how many rows it had. */
static int subscribers_page(struct db_conn *c, int64_t *after, int *got,
                            int (*each)(void *arg, int64_t user_id), void *arg)
{
    static const struct db_pg_stmt st = { "notif_subscribers_page",
        "SELECT DISTINCT user_id FROM push_subscriptions WHERE user_id > $1::bigint"
        " ORDER BY user_id LIMIT $2::bigint", 2 };
    char from[DB_PG_I64_LEN], lim[DB_PG_I64_LEN];
    const char *v[] = { db_pg_p64(from, *after), db_pg_p64(lim, NSP_PAGE) };
    PGresult *res = NULL;
    int rc = db_pg_run(c, &st, v, &res);
    *got = rc == 0 ? PQntuples(res) : 0;
    for (int i = 0; rc == 0 && i < *got; i++)
        rc = each(arg, *after = db_pg_i64(res, i, 0));
    PQclear(res);
    return rc;
}

int nsp_subscribers(void *impl, struct db_conn *c,
                    int (*each)(void *arg, int64_t user_id), void *arg)
{
    int64_t after = INT64_MIN;
    int got = NSP_PAGE, rc = 0;
    (void)impl;
    while (rc == 0 && got == NSP_PAGE)
        rc = subscribers_page(c, &after, &got, each, arg);
    return rc;
}
