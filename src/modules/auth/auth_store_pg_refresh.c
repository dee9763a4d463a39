/* auth_store_pg_refresh.c: refresh families and tokens on PostgreSQL. Only a token's
 * SHA-256 is stored (bytea, sent binary). A spent token is kept until it expires, so
 * that its reuse is still seen until then.
 *
 * Two nodes may rotate the same token at once: the spend is one conditional UPDATE,
 * so the second waits for the first's row lock, re-reads the row once the first
 * commits (READ COMMITTED) and finds it spent, which refresh.c counts as a reuse.
 * Inserts that could meet a duplicate use ON CONFLICT DO NOTHING rather than an
 * error, which would abort the job's transaction. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth_store_pg.h"

static const struct db_pg_stmt st_family_create = {
    "auth_family_create",
    "INSERT INTO refresh_families(user_id, created_at) VALUES ($1::bigint, $2::bigint)"
    " RETURNING id", 2
};
static const struct db_pg_stmt st_token_insert = {
    "auth_token_insert",
    "INSERT INTO refresh_tokens(hash, family_id, user_id, created_at, expires_at)"
    " VALUES ($1::bytea, $2::bigint, $3::bigint, $4::bigint, $5::bigint)"
    " ON CONFLICT DO NOTHING RETURNING 1", 5
};
static const struct db_pg_stmt st_token_find = {
    "auth_token_find",
    "SELECT t.family_id, t.user_id, t.expires_at, t.spent_at IS NOT NULL,"
    "       f.revoked_at IS NOT NULL, u.username IS NOT NULL, u.username"
    "  FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id"
    "  LEFT JOIN users u ON u.id = t.user_id WHERE t.hash = $1::bytea", 1
};
static const struct db_pg_stmt st_token_spend = {
    "auth_token_spend",
    "UPDATE refresh_tokens SET spent_at = $2::bigint"
    " WHERE hash = $1::bytea AND spent_at IS NULL RETURNING 1", 2
};
static const struct db_pg_stmt st_family_revoke = {
    "auth_family_revoke",
    "UPDATE refresh_families SET revoked_at = $2::bigint"
    " WHERE id = $1::bigint AND revoked_at IS NULL", 2
};
static const struct db_pg_stmt st_gc_tokens = {
    "auth_gc_tokens", "DELETE FROM refresh_tokens WHERE expires_at <= $1::bigint", 1
};
/* A statement of its own: a second part of the first one would not see its deletions. */
static const struct db_pg_stmt st_gc_families = {
    "auth_gc_families",
    "DELETE FROM refresh_families f WHERE NOT EXISTS"
    " (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id)", 0
};

int auth_pg_family_create(void *impl, struct db_conn *c, int64_t user_id, int64_t now_ms,
                          int64_t *family_id)
{
    char user[DB_PG_I64_LEN], now[DB_PG_I64_LEN];
    const char *v[] = { db_pg_p64(user, user_id), db_pg_p64(now, now_ms) };
    int rc = db_pg_run_i64(c, &st_family_create, v, family_id);

    return rc < 0 ? rc : rc ? 0 : -EIO;
}

int auth_pg_token_insert(void *impl, struct db_conn *c,
                         const uint8_t hash[AUTH_STORE_TOKEN_HASH], int64_t family_id,
                         int64_t user_id, int64_t now_ms, int64_t expires_at)
{
    char fam[DB_PG_I64_LEN], user[DB_PG_I64_LEN], now[DB_PG_I64_LEN], exp[DB_PG_I64_LEN];
    const char *v[] = { db_pg_p64(fam, family_id), db_pg_p64(user, user_id),
                        db_pg_p64(now, now_ms), db_pg_p64(exp, expires_at) };
    PGresult *res;
    int rc = auth_pg_run_hash(c, &st_token_insert, hash, v, &res);

    if (rc < 0)
        return rc;
    rc = PQntuples(res) == 1 ? 0 : -ECONSTRAINT;     /* no row: the hash is taken */
    PQclear(res);
    return rc;
}

int auth_pg_token_find(void *impl, struct db_conn *c, const uint8_t hash[AUTH_STORE_TOKEN_HASH],
                       struct auth_token_row *out)
{
    PGresult *res;
    int rc = auth_pg_run_hash(c, &st_token_find, hash, NULL, &res);

    if (rc < 0)
        return rc;
    if ((rc = PQntuples(res) > 0)) {
        out->family_id = db_pg_i64(res, 0, 0);
        out->user_id = db_pg_i64(res, 0, 1);
        out->expires_at = db_pg_i64(res, 0, 2);
        out->spent = db_pg_str(res, 0, 3)[0] == 't';
        out->revoked = db_pg_str(res, 0, 4)[0] == 't';
        out->user_exists = db_pg_str(res, 0, 5)[0] == 't';
        snprintf(out->username, sizeof out->username, "%s", db_pg_str(res, 0, 6));
    }
    PQclear(res);
    return rc;
}

int auth_pg_token_spend(void *impl, struct db_conn *c,
                        const uint8_t hash[AUTH_STORE_TOKEN_HASH], int64_t now_ms)
{
    char now[DB_PG_I64_LEN];
    const char *v[] = { db_pg_p64(now, now_ms) };
    PGresult *res;
    int rc = auth_pg_run_hash(c, &st_token_spend, hash, v, &res);

    if (rc < 0)
        return rc;
    rc = PQntuples(res) == 1;
    PQclear(res);
    return rc;
}

int auth_pg_family_revoke(void *impl, struct db_conn *c, int64_t family_id, int64_t now_ms)
{
    char fam[DB_PG_I64_LEN], now[DB_PG_I64_LEN];
    const char *v[] = { db_pg_p64(fam, family_id), db_pg_p64(now, now_ms) };

    return db_pg_run(c, &st_family_revoke, v, NULL);
}

int auth_pg_gc(void *impl, struct db_conn *c, int64_t now_ms)
{
    char now[DB_PG_I64_LEN];
    const char *v[] = { db_pg_p64(now, now_ms) };
    int rc = db_pg_run(c, &st_gc_tokens, v, NULL);

    return rc < 0 ? rc : db_pg_run(c, &st_gc_families, NULL, NULL);
}
