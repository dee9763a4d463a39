/* refresh.c: refresh tokens. A token is 256 random bits in base64url; only its
 * SHA-256 is stored. Every login starts a family; every refresh spends the token
 * presented and issues the next one in the same family. A spent token presented
 * again means two parties hold the family (one of them stole it), so the whole
 * family is revoked and both must log in again. The SQL runs on the writer thread
 * (db_write jobs) or, for `chatd user add`, on the CLI's connection. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/sha.h>

#include "chatd/util.h"
#include "auth_internal.h"

int auth_refresh_new(char token[AUTH_REFRESH_CHARS + 1], uint8_t hash[32])
{
    uint8_t raw[AUTH_REFRESH_BYTES];
    int rc = random_bytes(raw, sizeof raw);
    if (rc < 0)
        return rc;
    base64url_encode(raw, sizeof raw, token);
    SHA256((const unsigned char *)token, AUTH_REFRESH_CHARS, hash);
    return 0;
}

int auth_refresh_hash(const char *token, uint8_t hash[32])
{
    size_t i;
    if (strlen(token) != AUTH_REFRESH_CHARS)
        return -EINVAL;
    for (i = 0; i < AUTH_REFRESH_CHARS; i++) {
        char c = token[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return -EINVAL;
    }
    SHA256((const unsigned char *)token, AUTH_REFRESH_CHARS, hash);
    return 0;
}

/* Runs one statement with the given binds; returns the sqlite step result. */
static int exec_stmt(sqlite3 *conn, const char *sql, sqlite3_stmt **out)
{
    int rc = sqlite3_prepare_v2(conn, sql, -1, out, NULL);
    return rc == SQLITE_OK ? 0 : db_errno(rc);
}

static int insert_token(sqlite3 *conn, const struct auth_session *s, int64_t now, int ttl_s)
{
    sqlite3_stmt *st;
    int rc = exec_stmt(conn,
        "INSERT INTO refresh_tokens(hash, family_id, user_id, created_at, expires_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5)", &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_blob(st, 1, s->new_hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, s->family_id);
    sqlite3_bind_int64(st, 3, s->user_id);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, now + (int64_t)ttl_s * 1000);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int auth_session_create(sqlite3 *conn, struct auth_session *s, int64_t now_ms, int ttl_s)
{
    sqlite3_stmt *st;
    int rc = exec_stmt(conn,
        "INSERT INTO refresh_families(user_id, created_at) VALUES (?1, ?2)", &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, s->user_id);
    sqlite3_bind_int64(st, 2, now_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_errno(rc);
    s->family_id = sqlite3_last_insert_rowid(conn);
    s->result = AUTH_SESSION_OK;
    return insert_token(conn, s, now_ms, ttl_s);
}

static int revoke_family(sqlite3 *conn, int64_t family, int64_t now_ms)
{
    sqlite3_stmt *st;
    int rc = exec_stmt(conn,
        "UPDATE refresh_families SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, family);
    sqlite3_bind_int64(st, 2, now_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static int spend(sqlite3 *conn, const uint8_t hash[32], int64_t now_ms)
{
    sqlite3_stmt *st;
    int rc = exec_stmt(conn, "UPDATE refresh_tokens SET spent_at = ?2 WHERE hash = ?1", &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

/* Returns 0 with s->result set (INVALID and REUSED are answers, not errors: the
 * revocation they cause must commit), or a negative storage error. */
int auth_session_rotate(sqlite3 *conn, struct auth_session *s, int64_t now_ms, int ttl_s)
{
    sqlite3_stmt *st;
    int64_t expires;
    int spent, revoked, rc;
    const unsigned char *name;

    rc = exec_stmt(conn,
        "SELECT t.family_id, t.user_id, t.expires_at, t.spent_at IS NOT NULL,"
        "       f.revoked_at IS NOT NULL, u.username"
        "  FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id"
        "  LEFT JOIN users u ON u.id = t.user_id WHERE t.hash = ?1", &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_blob(st, 1, s->old_hash, 32, SQLITE_STATIC);
    rc = sqlite3_step(st);
    s->result = AUTH_SESSION_INVALID;
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : db_errno(rc);
    }
    s->family_id = sqlite3_column_int64(st, 0);
    s->user_id = sqlite3_column_int64(st, 1);
    expires = sqlite3_column_int64(st, 2);
    spent = sqlite3_column_int(st, 3);
    revoked = sqlite3_column_int(st, 4);
    name = sqlite3_column_text(st, 5);
    if (name)
        snprintf(s->username, sizeof s->username, "%s", (const char *)name);
    sqlite3_finalize(st);

    if (revoked || !name || expires <= now_ms)
        return 0;
    if (spent) {
        s->result = AUTH_SESSION_REUSED;
        return revoke_family(conn, s->family_id, now_ms);
    }
    if ((rc = spend(conn, s->old_hash, now_ms)) < 0 ||
        (rc = insert_token(conn, s, now_ms, ttl_s)) < 0)
        return rc;
    s->result = AUTH_SESSION_OK;
    return 0;
}

/* Logout: revokes the family of the token if it belongs to s->user_id. */
int auth_session_revoke(sqlite3 *conn, struct auth_session *s, int64_t now_ms)
{
    sqlite3_stmt *st;
    int rc = exec_stmt(conn,
        "SELECT family_id FROM refresh_tokens WHERE hash = ?1 AND user_id = ?2", &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_blob(st, 1, s->old_hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, s->user_id);
    rc = sqlite3_step(st);
    s->result = AUTH_SESSION_INVALID;
    if (rc == SQLITE_ROW) {
        s->family_id = sqlite3_column_int64(st, 0);
        s->result = AUTH_SESSION_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? 0 : db_errno(rc);
    return revoke_family(conn, s->family_id, now_ms);
}

/* Deletes tokens past their expiry and families left with no token. A spent token
 * is kept until it expires, so that reuse is still detected until then. */
int auth_session_gc(sqlite3 *conn, int64_t now_ms)
{
    sqlite3_stmt *st;
    int rc = exec_stmt(conn, "DELETE FROM refresh_tokens WHERE expires_at <= ?1", &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, now_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_errno(rc);
    rc = sqlite3_exec(conn, "DELETE FROM refresh_families WHERE NOT EXISTS"
                      " (SELECT 1 FROM refresh_tokens t WHERE t.family_id = refresh_families.id)",
                      NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_errno(rc);
}
