/* dlq_store_sqlite.c: the dead-letter store on SQLite (dlq_store.h); the bounds and the
 * triggers keeping sizes and totals are in dlq_bound.c. */
#include <errno.h>
#include <string.h>
#include "chatd/db_sqlite.h"
#include "dlq_store.h"
#include "dlq_store_sqlite.h"

static const struct db_migration migrations[] = {
    { 1, "CREATE TABLE dead_letters ("
         " id INTEGER PRIMARY KEY AUTOINCREMENT,"
         " topic TEXT NOT NULL,"
         " payload TEXT NOT NULL,"
         " consumer TEXT NOT NULL,"
         " error TEXT NOT NULL DEFAULT '',"
         " attempts INTEGER NOT NULL DEFAULT 0,"
         " first_failed_at INTEGER NOT NULL,"
         " last_failed_at INTEGER NOT NULL,"
         " replay_requested INTEGER NOT NULL DEFAULT 0);"
         "CREATE INDEX dead_letters_replay ON dead_letters (id)"
         " WHERE replay_requested = 1;" },
    { 2, dlq_bound_migration },
    { 3, dlq_resize_migration },
    /* Replays are claimed (dlq_store.h): who replays the row, and until when. */
    { 4, "ALTER TABLE dead_letters ADD COLUMN claimed_by INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE dead_letters ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;" },
};

static int sq_migrate(struct db *db)
{
    return db_migrate(db, "bus", migrations, (int)(sizeof(migrations) / sizeof(migrations[0])));
}

static int prepare(struct db_conn *c, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(db_sqlite(c), sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : db_errno(rc);
}

/* Steps a statement without rows to its end and finalizes it. */
static int finish(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static int64_t letter_size(const struct dlq_letter *l)
{
    return (int64_t)(strlen(l->topic) + strlen(l->consumer) + strlen(l->error) +
                     strlen(l->payload));
}

static int sq_insert(struct db_conn *c, const struct dlq_letter *l, int64_t max_rows,
                     int64_t max_bytes, int64_t *evicted)
{
    sqlite3_stmt *st;
    int rc = prepare(c, "INSERT INTO dead_letters (topic, payload, consumer, error, attempts,"
                     " first_failed_at, last_failed_at, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     &st);
    *evicted = 0;
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, l->topic, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, l->payload, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, l->consumer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, l->error, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, l->attempts);
    sqlite3_bind_int64(st, 6, l->first_failed_at);
    sqlite3_bind_int64(st, 7, l->last_failed_at);
    sqlite3_bind_int64(st, 8, letter_size(l));
    if ((rc = finish(st)) < 0)
        return rc;
    return dlq_sqlite_evict(db_sqlite(c), sqlite3_last_insert_rowid(db_sqlite(c)), max_rows,
                            max_bytes, evicted);
}

static int sq_failed_again(struct db_conn *c, int64_t id, int64_t run, const char *error,
                           int attempts, int64_t last_failed_at)
{
    sqlite3_stmt *st;
    /* The size follows the new error by trigger (dlq_bound.c). */
    int rc = prepare(c, "UPDATE dead_letters SET error = ?1, attempts = attempts + ?2,"
                     " last_failed_at = ?3, replay_requested = 0, claimed_by = 0,"
                     " claimed_until = 0 WHERE id = ?4 AND claimed_by = ?5", &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, error, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, attempts);
    sqlite3_bind_int64(st, 3, last_failed_at);
    sqlite3_bind_int64(st, 4, id);
    sqlite3_bind_int64(st, 5, run);
    return finish(st);
}

static int sq_remove(struct db_conn *c, int64_t id)
{
    sqlite3_stmt *st;
    int rc = prepare(c, "DELETE FROM dead_letters WHERE id = ?", &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    return finish(st);
}

static int sq_renew(struct db_conn *c, int64_t run, const int64_t *ids, int n, int64_t until)
{
    sqlite3_stmt *st;
    int rc = n > 0 ? prepare(c, "UPDATE dead_letters SET claimed_until = ?1"
                             " WHERE id = ?2 AND claimed_by = ?3", &st) : 0;
    if (rc < 0 || n == 0)
        return rc;
    for (int i = 0; i < n && rc == 0; i++) {
        sqlite3_bind_int64(st, 1, until);
        sqlite3_bind_int64(st, 2, ids[i]);
        sqlite3_bind_int64(st, 3, run);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_errno(sqlite3_errcode(db_sqlite(c)));
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

static char *column_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return strdup(t ? (const char *)t : "");
}

/* One writer per SQLite database: the conditional UPDATE alone makes the claim. */
static int sq_claim(struct db_conn *c, int64_t run, int64_t now, int64_t until, int max,
                    struct dlq_claim *out)
{
    sqlite3_stmt *st;
    int n = 0, rc = prepare(c, "UPDATE dead_letters SET claimed_by = ?1, claimed_until = ?2"
                            " WHERE id IN (SELECT id FROM dead_letters WHERE"
                            " replay_requested = 1 AND claimed_until < ?3 ORDER BY id"
                            " LIMIT ?4) RETURNING id, topic, consumer, payload", &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, until);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int(st, 4, max);
    while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct dlq_claim *r = &out[n++];
        r->id = sqlite3_column_int64(st, 0);
        r->topic = column_dup(st, 1);
        r->consumer = column_dup(st, 2);
        r->payload = column_dup(st, 3);
        if (!r->topic || !r->consumer || !r->payload) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        dlq_claims_free(out, n);
        return db_errno(rc);
    }
    dlq_claims_sort(out, n);
    return n;
}

static int sq_poll(struct db_conn *c, int64_t now, int64_t *rows, int64_t *bytes,
                   int *claimable)
{
    sqlite3_stmt *st;
    int rc = dlq_sqlite_totals(db_sqlite(c), rows, bytes);
    *claimable = 0;
    if (rc < 0 || (rc = prepare(c, "SELECT EXISTS (SELECT 1 FROM dead_letters WHERE"
                                " replay_requested = 1 AND claimed_until < ?)", &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        *claimable = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : db_errno(rc);
}

static const char *text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static int sq_each(struct db_conn *c, int64_t id,
                   int (*fn)(void *arg, const struct dlq_letter *l), void *arg)
{
    sqlite3_stmt *st;
    int n = 0, stop = 0, rc = prepare(c, id > 0
        ? "SELECT id, topic, consumer, error, payload, attempts, first_failed_at,"
          " last_failed_at, replay_requested FROM dead_letters WHERE id = ?"
        : "SELECT id, topic, consumer, error, payload, attempts, first_failed_at,"
          " last_failed_at, replay_requested FROM dead_letters ORDER BY id", &st);
    if (rc < 0)
        return rc;
    if (id > 0)
        sqlite3_bind_int64(st, 1, id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct dlq_letter l = {
            .id = sqlite3_column_int64(st, 0), .topic = text(st, 1),
            .consumer = text(st, 2), .error = text(st, 3), .payload = text(st, 4),
            .attempts = sqlite3_column_int(st, 5),
            .first_failed_at = sqlite3_column_int64(st, 6),
            .last_failed_at = sqlite3_column_int64(st, 7),
            .replay_requested = sqlite3_column_int(st, 8),
        };
        n++;
        if ((stop = fn(arg, &l)) < 0)
            break;
    }
    sqlite3_finalize(st);
    if (stop < 0)
        return stop;
    return rc == SQLITE_DONE ? n : db_errno(rc);
}

/* One UPDATE/DELETE, of the row id or (id 0, the second statement) of all. */
static int change(struct db_conn *c, const char *one, const char *all, int64_t id)
{
    sqlite3_stmt *st;
    int rc = prepare(c, id > 0 ? one : all, &st);
    if (rc < 0)
        return rc;
    if (id > 0)
        sqlite3_bind_int64(st, 1, id);
    return (rc = finish(st)) < 0 ? rc : sqlite3_changes(db_sqlite(c));
}

static int sq_mark(struct db_conn *c, int64_t id)
{
    return change(c, "UPDATE dead_letters SET replay_requested = 1 WHERE id = ?",
                  "UPDATE dead_letters SET replay_requested = 1", id);
}

static int sq_purge(struct db_conn *c, int64_t id)
{
    return change(c, "DELETE FROM dead_letters WHERE id = ?", "DELETE FROM dead_letters", id);
}

static const char *sq_errmsg(struct db_conn *c)
{
    return sqlite3_errmsg(db_sqlite(c));
}

const struct dlq_store_ops dlq_store_sqlite = {
    .engine = "sqlite",
    .migrate = sq_migrate,
    .insert = sq_insert,
    .failed_again = sq_failed_again,
    .remove = sq_remove,
    .renew = sq_renew,
    .claim = sq_claim,
    .poll = sq_poll,
    .each = sq_each,
    .mark = sq_mark,
    .purge = sq_purge,
    .errmsg = sq_errmsg,
};
