/* presence_seen_store_sqlite.c: last_seen_at on SQLite, the presence table. One
 * statement per call, reset for each row of a batch; the impl holds nothing (a cache
 * would have to be kept per connection: the writer's and each pool thread's). */
#include <errno.h>
#include "chatd/db_sqlite.h"
#include "presence_seen_store.h"

static const struct db_migration migrations[] = {
    { 1, "CREATE TABLE presence ("
         "  user_id INTEGER PRIMARY KEY,"
         "  last_seen_at INTEGER NOT NULL"
         ")" },
};

/* The owner and versions the table was first made under. */
static int sqlite_migrate(void *impl, struct db *db)
{
    (void)impl;
    return db_migrate(db, "presence", migrations,
                      (int)(sizeof(migrations) / sizeof(migrations[0])));
}

static int sqlite_record(void *impl, struct db_conn *c, const struct pres_seen *rows,
                         size_t n)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db_sqlite(c),
        "INSERT INTO presence (user_id, last_seen_at) VALUES (?1, ?2) "
        "ON CONFLICT (user_id) DO UPDATE SET "
        "last_seen_at = max(last_seen_at, excluded.last_seen_at)", -1, &st, NULL);
    (void)impl;
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, rows[i].user_id);
        sqlite3_bind_int64(st, 2, rows[i].at);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : db_errno(rc);
}

static int sqlite_read(void *impl, struct db_conn *c, const int64_t *ids, size_t n,
                       int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db_sqlite(c),
                                "SELECT last_seen_at FROM presence WHERE user_id = ?1",
                                -1, &st, NULL);
    (void)impl;
    if (rc != SQLITE_OK)
        return db_errno(rc);
    rc = SQLITE_DONE;                /* no ids: nothing to read, no error */
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ids[i]);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            out[i] = sqlite3_column_int64(st, 0);
        else if (rc == SQLITE_DONE)
            out[i] = 0;
        else
            break;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static void sqlite_free(void *impl)
{
    (void)impl;
}

static const struct presence_seen_store_ops sqlite_ops = {
    .migrate = sqlite_migrate, .record = sqlite_record, .read = sqlite_read,
    .free = sqlite_free,
};

int presence_seen_store_sqlite_new(struct presence_seen_store *out)
{
    out->ops = &sqlite_ops;
    out->impl = NULL;
    return 0;
}
