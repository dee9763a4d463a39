/* notification_store_sqlite_reads.c: the reads of the SQLite notification store. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/db_sqlite.h"
#include "chatd/util.h"
#include "notification_store_sqlite.h"

/* The rows of st, each handed to row(st, arg); the first error (SQLite's or row's)
 * ends it. Finalizes st. */
static int each_row(sqlite3_stmt *st, int (*row)(sqlite3_stmt *st, void *arg), void *arg)
{
    int rc, err = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((err = row(st, arg)) < 0)
            break;
    sqlite3_finalize(st);
    if (err < 0)
        return err;
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int nss_sub_get(void *impl, struct db_conn *c, int64_t id, struct subs_target *t)
{
    sqlite3_stmt *st = NULL;
    int rc = nss_prepare(c, "SELECT user_id, endpoint, p256dh, auth, failures, failing_since"
                         " FROM push_subscriptions WHERE id = ?1", &st);
    (void)impl;
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
    }
    const char *ep = (const char *)sqlite3_column_text(st, 1);
    int eplen = sqlite3_column_bytes(st, 1);
    if (!ep || eplen > NOTIF_ENDPOINT_MAX ||
        sqlite3_column_bytes(st, 2) != NOTIF_P256DH_LEN ||
        sqlite3_column_bytes(st, 3) != NOTIF_AUTH_LEN) {
        sqlite3_finalize(st);
        return -EINVAL;
    }
    t->user_id = sqlite3_column_int64(st, 0);
    memcpy(t->endpoint, ep, (size_t)eplen);
    t->endpoint[eplen] = 0;
    memcpy(t->p256dh, sqlite3_column_blob(st, 2), NOTIF_P256DH_LEN);
    memcpy(t->auth, sqlite3_column_blob(st, 3), NOTIF_AUTH_LEN);
    t->failures = sqlite3_column_int(st, 4);
    t->failing_since = sqlite3_column_int64(st, 5);       /* NULL reads as 0 */
    sqlite3_finalize(st);
    return 0;
}

/* The ids as a JSON array, for json_each: one statement for any number of users. */
static char *ids_json(const int64_t *ids, size_t n)
{
    struct strbuf b;
    strbuf_init(&b, 32 * n + 16);
    int rc = strbuf_append(&b, "[", 1);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = strbuf_printf(&b, i ? ",%lld" : "%lld", (long long)ids[i]);
    if (rc == 0)
        rc = strbuf_append(&b, "]", 1);
    if (rc < 0) {
        strbuf_free(&b);
        return NULL;
    }
    return b.data;
}

struct users_each {
    int (*each)(void *arg, const struct subs_row *r);
    void *arg;
};

static int user_row(sqlite3_stmt *st, void *arg)
{
    struct users_each *u = arg;
    struct subs_row r = { sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1) };
    return u->each(u->arg, &r);
}

int nss_subs_of_users(void *impl, struct db_conn *c, const int64_t *user_ids, size_t n,
                      int (*each)(void *arg, const struct subs_row *r), void *arg)
{
    struct users_each u = { each, arg };
    sqlite3_stmt *st = NULL;
    char *json = ids_json(user_ids, n);
    (void)impl;
    if (!json)
        return -ENOMEM;
    int rc = nss_prepare(c, "SELECT id, user_id FROM push_subscriptions WHERE user_id IN "
                         "(SELECT value FROM json_each(?1)) ORDER BY user_id, id", &st);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
        rc = each_row(st, user_row, &u);
    }
    free(json);
    return rc;
}

struct info_each {
    int (*each)(void *arg, const struct notif_sub_info *s);
    void *arg;
};

static int info_row(sqlite3_stmt *st, void *arg)
{
    struct info_each *e = arg;
    struct notif_sub_info s = {
        .id = sqlite3_column_int64(st, 0),
        .endpoint = (const char *)sqlite3_column_text(st, 1),
        .created_at = sqlite3_column_int64(st, 2),
        .failures = sqlite3_column_int(st, 3),
        .failing_since = sqlite3_column_int64(st, 4),     /* NULL reads as 0 */
        .last_error = (const char *)sqlite3_column_text(st, 5),
    };
    if (!s.endpoint)
        return sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM ? -ENOMEM : -EINVAL;
    return e->each(e->arg, &s);
}

int nss_subs_of_user(void *impl, struct db_conn *c, int64_t user_id,
                     int (*each)(void *arg, const struct notif_sub_info *s), void *arg)
{
    struct info_each e = { each, arg };
    sqlite3_stmt *st = NULL;
    int rc = nss_prepare(c, "SELECT id, endpoint, created_at, failures, failing_since,"
                         " last_error FROM push_subscriptions WHERE user_id = ?1"
                         " ORDER BY id", &st);
    (void)impl;
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, user_id);
    return each_row(st, info_row, &e);
}

struct ids_each {
    int (*each)(void *arg, int64_t id);
    void *arg;
};

static int id_row(sqlite3_stmt *st, void *arg)
{
    struct ids_each *e = arg;
    return e->each(e->arg, sqlite3_column_int64(st, 0));
}

int nss_subscribers(void *impl, struct db_conn *c,
                    int (*each)(void *arg, int64_t user_id), void *arg)
{
    struct ids_each e = { each, arg };
    sqlite3_stmt *st = NULL;
    int rc = nss_prepare(c, "SELECT DISTINCT user_id FROM push_subscriptions", &st);
    (void)impl;
    if (rc < 0)
        return rc;
    return each_row(st, id_row, &e);
}
