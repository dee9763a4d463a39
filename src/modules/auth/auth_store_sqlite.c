/* auth_store_sqlite.c: the auth store on SQLite: the tables, the users, and the ops
 * table (the refresh tokens are in auth_store_sqlite_refresh.c, the statement
 * helpers both use in auth_store_sqlite_stmt.c). Users are never
 * deleted and SQLite gives a new row max(id) + 1, so ids only grow, as auth_store.h
 * asks. Statements are prepared per call: each op may run on any of the writer's, the
 * read pool's or the CLI's connections, and none is hot enough to be worth a cache
 * per connection. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth_store_sqlite.h"

static const struct db_migration migrations[] = {
    { 1,
      "CREATE TABLE users ("
      "  id INTEGER PRIMARY KEY,"
      "  username TEXT NOT NULL UNIQUE,"
      "  password_hash TEXT NOT NULL,"
      "  created_at INTEGER NOT NULL);"
      "CREATE TABLE refresh_families ("
      "  id INTEGER PRIMARY KEY,"
      "  user_id INTEGER NOT NULL,"
      "  created_at INTEGER NOT NULL,"
      "  revoked_at INTEGER);"
      "CREATE TABLE refresh_tokens ("
      "  hash BLOB PRIMARY KEY,"
      "  family_id INTEGER NOT NULL,"
      "  user_id INTEGER NOT NULL,"
      "  created_at INTEGER NOT NULL,"
      "  expires_at INTEGER NOT NULL,"
      "  spent_at INTEGER) WITHOUT ROWID;"
      "CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);"
      "CREATE INDEX refresh_tokens_expiry ON refresh_tokens(expires_at);" },
};

static int sqlite_migrate(void *impl, struct db *db)
{
    return db_migrate(db, "auth", migrations, (int)(sizeof migrations / sizeof migrations[0]));
}

static int user_insert(void *impl, struct db_conn *c, const char *username,
                       const char *password_hash, int64_t now_ms, int64_t *id)
{
    sqlite3 *conn = db_sqlite(c);
    sqlite3_stmt *st;
    int rc = auth_sqlite_prepare(conn,
        "INSERT INTO users(username, password_hash, created_at) VALUES (?1, ?2, ?3)", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, password_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    if ((rc = auth_sqlite_run(st)) == 0)
        *id = sqlite3_last_insert_rowid(conn);
    return rc;
}

static int user_find(void *impl, struct db_conn *c, const char *username,
                     struct auth_user_row *out)
{
    sqlite3_stmt *st;
    int rc = auth_sqlite_prepare(db_sqlite(c),
        "SELECT id, password_hash FROM users WHERE username = ?1", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(st, 1);
        out->id = sqlite3_column_int64(st, 0);
        snprintf(out->password_hash, sizeof out->password_hash, "%s", h ? h : "");
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : db_errno(rc);
}

static int users_find(void *impl, struct db_conn *c, const char (*names)[USERNAME_MAX + 1],
                      int n, struct auth_user_name *out)
{
    sqlite3_stmt *st;
    int i, found = 0, rc = auth_sqlite_prepare(db_sqlite(c),
        "SELECT id, username FROM users WHERE username = ?1", &st);

    if (rc < 0)
        return rc;
    for (i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(st, 1);
            out[found].id = sqlite3_column_int64(st, 0);
            snprintf(out[found].username, sizeof out[found].username, "%s", name ? name : "");
            found++;
        } else if (rc != SQLITE_DONE) {
            sqlite3_finalize(st);
            return db_errno(rc);
        }
    }
    sqlite3_finalize(st);
    return found;
}

static int user_set_hash(void *impl, struct db_conn *c, int64_t user_id,
                         const char *password_hash)
{
    sqlite3_stmt *st;
    int rc = auth_sqlite_prepare(db_sqlite(c),
        "UPDATE users SET password_hash = ?1 WHERE id = ?2", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, password_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, user_id);
    return auth_sqlite_run(st);
}

static int users_max_id(void *impl, struct db_conn *c, int64_t *max_id)
{
    sqlite3_stmt *st;
    int rc = auth_sqlite_prepare(db_sqlite(c), "SELECT COALESCE(MAX(id), 0) FROM users", &st);

    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *max_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : db_errno(rc);
}

static void sqlite_free(void *impl)
{
}

static const struct auth_store_ops sqlite_ops = {
    .migrate = sqlite_migrate,
    .user_insert = user_insert,
    .user_find = user_find,
    .users_find = users_find,
    .user_set_hash = user_set_hash,
    .users_max_id = users_max_id,
    .family_create = auth_sqlite_family_create,
    .token_insert = auth_sqlite_token_insert,
    .token_find = auth_sqlite_token_find,
    .token_spend = auth_sqlite_token_spend,
    .family_revoke = auth_sqlite_family_revoke,
    .gc = auth_sqlite_gc,
    .free = sqlite_free,
};

int auth_store_sqlite_new(struct auth_store *out)
{
    out->ops = &sqlite_ops;
    out->impl = NULL;                  /* no state: every op is given its connection */
    return 0;
}
