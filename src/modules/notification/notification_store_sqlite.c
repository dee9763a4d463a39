/* notification_store_sqlite.c: the notification store on SQLite: the migrations and
 * the writes of push_subscriptions (the reads are in notification_store_sqlite_reads.c).
 *
 * Statements are prepared for each call, on the connection the call runs on: the
 * writes are a few per subscribe, delivery outcome or sweep, and a cache would have
 * to be kept per connection (the writer's and each pool thread's). So the impl holds
 * nothing. */
#include <errno.h>
#include "chatd/db_sqlite.h"
#include "notification_store_sqlite.h"

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
    /* Delivery health: failed attempts in a row, since when the subscription counts as
     * failing, and the last error, shown to its owner. */
    { 2,
      "ALTER TABLE push_subscriptions ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;"
      "ALTER TABLE push_subscriptions ADD COLUMN failing_since INTEGER;"
      "ALTER TABLE push_subscriptions ADD COLUMN last_error TEXT;"
      "CREATE INDEX push_subscriptions_failing ON push_subscriptions(failing_since)"
      " WHERE failing_since IS NOT NULL;" },
};

/* The owner name and versions are those the tables were first made under: a database
 * of an earlier release is brought up to date, not made again. */
static int sqlite_migrate(void *impl, struct db *db)
{
    (void)impl;
    return db_migrate(db, "notification", migrations,
                      (int)(sizeof(migrations) / sizeof(migrations[0])));
}

/* A known endpoint keeps its id: RETURNING gives the row's id either way. */
static int sqlite_sub_put(void *impl, struct db_conn *c, const struct notif_sub_new *s,
                          int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc = nss_prepare(c,
        "INSERT INTO push_subscriptions(user_id, endpoint, p256dh, auth, created_at) "
        "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(endpoint) DO UPDATE SET "
        "user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth, "
        "created_at = excluded.created_at, failures = 0, failing_since = NULL, "
        "last_error = NULL RETURNING id", &st);
    (void)impl;
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, s->user_id);
    sqlite3_bind_text(st, 2, s->endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, s->p256dh, NOTIF_P256DH_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, s->auth, NOTIF_AUTH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, s->created_at);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static int sqlite_subs_trim(void *impl, struct db_conn *c, int64_t user_id, int keep)
{
    sqlite3_stmt *st = NULL;
    int rc = nss_prepare(c,
        "DELETE FROM push_subscriptions WHERE user_id = ?1 AND id NOT IN "
        "(SELECT id FROM push_subscriptions WHERE user_id = ?1 "
        " ORDER BY created_at DESC, id DESC LIMIT ?2)", &st);
    (void)impl;
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int(st, 2, keep);
    return nss_step_done(st);
}

static int sqlite_sub_delete(void *impl, struct db_conn *c, int64_t id, int64_t user_id,
                             int *removed)
{
    sqlite3_stmt *st = NULL;
    int rc = nss_prepare(c, user_id > 0
        ? "DELETE FROM push_subscriptions WHERE id = ?1 AND user_id = ?2"
        : "DELETE FROM push_subscriptions WHERE id = ?1", &st);
    (void)impl;
    *removed = 0;
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    if (user_id > 0)
        sqlite3_bind_int64(st, 2, user_id);
    if ((rc = nss_step_done(st)) == 0)
        *removed = sqlite3_changes(db_sqlite(c)) > 0;
    return rc;
}

static int sqlite_sub_succeeded(void *impl, struct db_conn *c, int64_t id)
{
    sqlite3_stmt *st = NULL;
    int rc = nss_prepare(c, "UPDATE push_subscriptions SET failures = 0,"
                         " failing_since = NULL, last_error = NULL WHERE id = ?1", &st);
    (void)impl;
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    return nss_step_done(st);
}

static int sqlite_sub_failed(void *impl, struct db_conn *c, int64_t id, const char *error,
                             int max_failures, int64_t now)
{
    sqlite3_stmt *st = NULL;
    /* The right-hand sides see the row as it was: failures + 1 is the new count. */
    int rc = nss_prepare(c,
        "UPDATE push_subscriptions SET failures = failures + 1, last_error = ?2,"
        " failing_since = CASE WHEN failing_since IS NULL AND failures + 1 >= ?3"
        " THEN ?4 ELSE failing_since END WHERE id = ?1", &st);
    (void)impl;
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, error, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, max_failures);
    sqlite3_bind_int64(st, 4, now);
    return nss_step_done(st);
}

static int sqlite_drop_failing(void *impl, struct db_conn *c, int64_t failing_at_or_before,
                               int *dropped)
{
    sqlite3_stmt *st = NULL;
    int rc = nss_prepare(c, "DELETE FROM push_subscriptions WHERE"
                         " failing_since IS NOT NULL AND failing_since <= ?1", &st);
    (void)impl;
    *dropped = 0;
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, failing_at_or_before);
    if ((rc = nss_step_done(st)) == 0)
        *dropped = sqlite3_changes(db_sqlite(c));
    return rc;
}

static void sqlite_free(void *impl)
{
    (void)impl;
}

static const struct notification_store_ops sqlite_ops = {
    .migrate = sqlite_migrate,
    .sub_put = sqlite_sub_put,
    .subs_trim = sqlite_subs_trim,
    .sub_delete = sqlite_sub_delete,
    .sub_succeeded = sqlite_sub_succeeded,
    .sub_failed = sqlite_sub_failed,
    .drop_failing = sqlite_drop_failing,
    .sub_get = nss_sub_get,
    .subs_of_users = nss_subs_of_users,
    .subs_of_user = nss_subs_of_user,
    .subscribers = nss_subscribers,
    .free = sqlite_free,
};

int notification_store_sqlite_new(struct notification_store *out)
{
    out->ops = &sqlite_ops;
    out->impl = NULL;
    return 0;
}
