/* auth_store_sqlite_refresh.c: refresh families and tokens on SQLite. Only a token's
 * SHA-256 is stored. A spent token is kept until it expires, so that its reuse is
 * still seen until then. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth_store_sqlite.h"

int auth_sqlite_family_create(void *impl, struct db_conn *c, int64_t user_id, int64_t now_ms,
                              int64_t *family_id)
{
    sqlite3 *conn = db_sqlite(c);
    sqlite3_stmt *st;
    int rc = auth_sqlite_prepare(conn,
        "INSERT INTO refresh_families(user_id, created_at) VALUES (?1, ?2)", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int64(st, 2, now_ms);
    if ((rc = auth_sqlite_run(st)) == 0)
        *family_id = sqlite3_last_insert_rowid(conn);
    return rc;
}

int auth_sqlite_token_insert(void *impl, struct db_conn *c,
                             const uint8_t hash[AUTH_STORE_TOKEN_HASH], int64_t family_id,
                             int64_t user_id, int64_t now_ms, int64_t expires_at)
{
    sqlite3_stmt *st;
    int rc = auth_sqlite_prepare(db_sqlite(c),
        "INSERT INTO refresh_tokens(hash, family_id, user_id, created_at, expires_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5)", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_blob(st, 1, hash, AUTH_STORE_TOKEN_HASH, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, family_id);
    sqlite3_bind_int64(st, 3, user_id);
    sqlite3_bind_int64(st, 4, now_ms);
    sqlite3_bind_int64(st, 5, expires_at);
    return auth_sqlite_run(st);
}

int auth_sqlite_token_find(void *impl, struct db_conn *c,
                           const uint8_t hash[AUTH_STORE_TOKEN_HASH],
                           struct auth_token_row *out)
{
    sqlite3_stmt *st;
    int rc = auth_sqlite_prepare(db_sqlite(c),
        "SELECT t.family_id, t.user_id, t.expires_at, t.spent_at IS NOT NULL,"
        "       f.revoked_at IS NOT NULL, u.username"
        "  FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id"
        "  LEFT JOIN users u ON u.id = t.user_id WHERE t.hash = ?1", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_blob(st, 1, hash, AUTH_STORE_TOKEN_HASH, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 5);
        out->family_id = sqlite3_column_int64(st, 0);
        out->user_id = sqlite3_column_int64(st, 1);
        out->expires_at = sqlite3_column_int64(st, 2);
        out->spent = sqlite3_column_int(st, 3);
        out->revoked = sqlite3_column_int(st, 4);
        out->user_exists = name != NULL;
        snprintf(out->username, sizeof out->username, "%s", name ? name : "");
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : db_errno(rc);
}

int auth_sqlite_token_spend(void *impl, struct db_conn *c,
                            const uint8_t hash[AUTH_STORE_TOKEN_HASH], int64_t now_ms)
{
    sqlite3 *conn = db_sqlite(c);
    sqlite3_stmt *st;
    int rc = auth_sqlite_prepare(conn,
        "UPDATE refresh_tokens SET spent_at = ?2 WHERE hash = ?1 AND spent_at IS NULL", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_blob(st, 1, hash, AUTH_STORE_TOKEN_HASH, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    if ((rc = auth_sqlite_run(st)) < 0)
        return rc;
    return sqlite3_changes(conn) == 1;
}

int auth_sqlite_family_revoke(void *impl, struct db_conn *c, int64_t family_id,
                              int64_t now_ms)
{
    sqlite3_stmt *st;
    int rc = auth_sqlite_prepare(db_sqlite(c),
        "UPDATE refresh_families SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, family_id);
    sqlite3_bind_int64(st, 2, now_ms);
    return auth_sqlite_run(st);
}

int auth_sqlite_gc(void *impl, struct db_conn *c, int64_t now_ms)
{
    sqlite3 *conn = db_sqlite(c);
    sqlite3_stmt *st;
    int rc = auth_sqlite_prepare(conn, "DELETE FROM refresh_tokens WHERE expires_at <= ?1", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, now_ms);
    if ((rc = auth_sqlite_run(st)) < 0)
        return rc;
    rc = sqlite3_exec(conn, "DELETE FROM refresh_families WHERE NOT EXISTS"
                      " (SELECT 1 FROM refresh_tokens t WHERE t.family_id = refresh_families.id)",
                      NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_errno(rc);
}
