/* Refresh-token sessions against a real SQLite schema: rotation, reuse detection
 * revoking the family, expiry, logout, and the users table's uniqueness. */
#include <errno.h>
#include <string.h>
#include <sqlite3.h>

#include "test.h"
#include "chatd/db_sqlite.h"
#include "../../src/modules/auth/auth_internal.h"

#define TTL 3600

static sqlite3 *open_schema(void)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK)
        return NULL;
    for (int i = 0; i < auth_migration_count; i++)
        if (sqlite3_exec(db, auth_migrations[i].sql, NULL, NULL, NULL) != SQLITE_OK) {
            sqlite3_close(db);
            return NULL;
        }
    return db;
}

/* A session for user_id whose current token is returned in *s. */
static void login(sqlite3 *db, int64_t user_id, int64_t now, struct auth_session *s)
{
    memset(s, 0, sizeof *s);
    s->user_id = user_id;
    ASSERT(auth_refresh_new(s->new_token, s->new_hash) == 0);
    ASSERT(auth_session_create(db, s, now, TTL) == 0);
}

/* Presents token (its hash) and returns the result; *next gets the new token. */
static int rotate(sqlite3 *db, const uint8_t hash[32], int64_t now, struct auth_session *next)
{
    memset(next, 0, sizeof *next);
    memcpy(next->old_hash, hash, 32);
    if (auth_refresh_new(next->new_token, next->new_hash) < 0 ||
        auth_session_rotate(db, next, now, TTL) < 0)
        return -1;
    return next->result;
}

TEST(auth_users_unique)
{
    sqlite3 *db = open_schema();
    ASSERT(db != NULL);
    ASSERT_EQ(auth_user_insert(db, "alice", "$scrypt$x", 1), 1);
    ASSERT_EQ(auth_user_insert(db, "bob", "$scrypt$x", 1), 2);
    ASSERT_EQ(auth_user_insert(db, "alice", "$scrypt$y", 2), -ECONSTRAINT);
    ASSERT_EQ(auth_user_insert(db, "carol", "$scrypt$x", 1), 3);
    sqlite3_close(db);
}

TEST(auth_session_rotation_and_reuse)
{
    sqlite3 *db = open_schema();
    struct auth_session s, r1, r2, r3, other;
    int64_t now = 1700000000000;

    ASSERT(db != NULL);
    ASSERT_EQ(auth_user_insert(db, "alice", "h", now), 1);
    login(db, 1, now, &s);
    login(db, 1, now, &other);                   /* a second device: its own family */
    ASSERT_OK_SO_FAR();
    ASSERT(s.family_id != other.family_id);

    ASSERT_EQ(rotate(db, s.new_hash, now + 1, &r1), AUTH_SESSION_OK);
    ASSERT_EQ(r1.user_id, 1);
    ASSERT_STR_EQ(r1.username, "alice");
    ASSERT_EQ(r1.family_id, s.family_id);
    ASSERT_EQ(rotate(db, r1.new_hash, now + 2, &r2), AUTH_SESSION_OK);
    /* the first token again: reuse, the whole family dies */
    ASSERT_EQ(rotate(db, s.new_hash, now + 3, &r3), AUTH_SESSION_REUSED);
    ASSERT_EQ(rotate(db, r2.new_hash, now + 4, &r3), AUTH_SESSION_INVALID);
    ASSERT_EQ(rotate(db, r1.new_hash, now + 5, &r3), AUTH_SESSION_INVALID);
    /* the other device is untouched */
    ASSERT_EQ(rotate(db, other.new_hash, now + 6, &r3), AUTH_SESSION_OK);
    /* unknown token */
    uint8_t zero[32] = {0};
    ASSERT_EQ(rotate(db, zero, now, &r3), AUTH_SESSION_INVALID);
    sqlite3_close(db);
}

TEST(auth_session_expiry_and_gc)
{
    sqlite3 *db = open_schema();
    struct auth_session s, r;
    sqlite3_stmt *st;
    int64_t now = 1700000000000;

    ASSERT(db != NULL);
    ASSERT_EQ(auth_user_insert(db, "alice", "h", now), 1);
    login(db, 1, now, &s);
    ASSERT_OK_SO_FAR();
    ASSERT_EQ(rotate(db, s.new_hash, now + TTL * 1000LL, &r), AUTH_SESSION_INVALID);
    ASSERT_EQ(rotate(db, s.new_hash, now + TTL * 1000LL - 1, &r), AUTH_SESSION_OK);
    ASSERT_EQ(auth_session_gc(db, now + 2 * TTL * 1000LL), 0);
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT (SELECT COUNT(*) FROM refresh_tokens),"
                                 " (SELECT COUNT(*) FROM refresh_families)", -1, &st, NULL),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_EQ(sqlite3_column_int(st, 0), 0);
    ASSERT_EQ(sqlite3_column_int(st, 1), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

TEST(auth_session_logout)
{
    sqlite3 *db = open_schema();
    struct auth_session s, r, out;
    int64_t now = 1700000000000;

    ASSERT(db != NULL);
    ASSERT_EQ(auth_user_insert(db, "alice", "h", now), 1);
    ASSERT_EQ(auth_user_insert(db, "mallory", "h", now), 2);
    login(db, 1, now, &s);
    ASSERT_OK_SO_FAR();
    ASSERT_EQ(rotate(db, s.new_hash, now + 1, &r), AUTH_SESSION_OK);
    /* another user cannot end alice's session with her token */
    memset(&out, 0, sizeof out);
    out.user_id = 2;
    memcpy(out.old_hash, r.new_hash, 32);
    ASSERT_EQ(auth_session_revoke(db, &out, now + 2), 0);
    ASSERT_EQ(out.result, AUTH_SESSION_INVALID);
    out.user_id = 1;
    ASSERT_EQ(auth_session_revoke(db, &out, now + 2), 0);
    ASSERT_EQ(out.result, AUTH_SESSION_OK);
    struct auth_session r2;
    ASSERT_EQ(rotate(db, r.new_hash, now + 3, &r2), AUTH_SESSION_INVALID);
    sqlite3_close(db);
}

TEST(auth_session_user_gone)
{
    sqlite3 *db = open_schema();
    struct auth_session s, r;
    int64_t now = 1700000000000;

    ASSERT(db != NULL);
    ASSERT_EQ(auth_user_insert(db, "alice", "h", now), 1);
    login(db, 1, now, &s);
    ASSERT_OK_SO_FAR();
    ASSERT_EQ(sqlite3_exec(db, "DELETE FROM users", NULL, NULL, NULL), SQLITE_OK);
    ASSERT_EQ(rotate(db, s.new_hash, now + 1, &r), AUTH_SESSION_INVALID);
    sqlite3_close(db);
}
