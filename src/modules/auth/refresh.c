/* refresh.c: refresh tokens. A token is 256 random bits in base64url; only its
 * SHA-256 is stored. Every login starts a family; every refresh spends the token
 * presented and issues the next one in the same family. A spent token presented
 * again means two parties hold the family (one of them stole it), so the whole
 * family is revoked and both must log in again. These rules run on the store's ops
 * (auth_store.h), on the writer thread inside a db_write job's apply; the check of a
 * token's owner for an early signature (auth_session_live) on a read. */
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

static int64_t expiry(int64_t now_ms, int ttl_s)
{
    return now_ms + (int64_t)ttl_s * 1000;
}

int auth_session_create(const struct auth_store *st, struct db_conn *c, struct auth_session *s,
                        int64_t now_ms, int ttl_s)
{
    int rc = auth_store_family_create(st, c, s->user_id, now_ms, &s->family_id);

    if (rc < 0)
        return rc;
    s->result = AUTH_SESSION_OK;
    return auth_store_token_insert(st, c, s->new_hash, s->family_id, s->user_id, now_ms,
                                   expiry(now_ms, ttl_s));
}

static int token_usable(const struct auth_token_row *t, int64_t now_ms)
{
    return !t->revoked && t->user_exists && t->expires_at > now_ms;
}

/* Returns 0 with s->result set (INVALID and REUSED are answers, not errors: the
 * revocation they cause must commit), or a negative storage error. */
int auth_session_rotate(const struct auth_store *st, struct db_conn *c, struct auth_session *s,
                        int64_t now_ms, int ttl_s)
{
    struct auth_token_row t;
    int rc = auth_store_token_find(st, c, s->old_hash, &t);

    s->result = AUTH_SESSION_INVALID;
    if (rc <= 0)
        return rc;
    s->family_id = t.family_id;
    s->user_id = t.user_id;
    snprintf(s->username, sizeof s->username, "%s", t.username);
    if (!token_usable(&t, now_ms))
        return 0;
    /* Spent already, or by someone else between the find and here: a reuse. */
    if (t.spent || (rc = auth_store_token_spend(st, c, s->old_hash, now_ms)) == 0) {
        s->result = AUTH_SESSION_REUSED;
        return auth_store_family_revoke(st, c, s->family_id, now_ms);
    }
    if (rc < 0 ||
        (rc = auth_store_token_insert(st, c, s->new_hash, s->family_id, s->user_id, now_ms,
                                      expiry(now_ms, ttl_s))) < 0)
        return rc;
    s->result = AUTH_SESSION_OK;
    return 0;
}

/* Logout: revokes the family of the token if it belongs to s->user_id. */
int auth_session_revoke(const struct auth_store *st, struct db_conn *c, struct auth_session *s,
                        int64_t now_ms)
{
    struct auth_token_row t;
    int rc = auth_store_token_find(st, c, s->old_hash, &t);

    s->result = AUTH_SESSION_INVALID;
    if (rc <= 0 || t.user_id != s->user_id)
        return rc < 0 ? rc : 0;
    s->family_id = t.family_id;
    s->result = AUTH_SESSION_OK;
    return auth_store_family_revoke(st, c, s->family_id, now_ms);
}

int auth_session_live(const struct auth_store *st, struct db_conn *c,
                      const uint8_t hash[AUTH_STORE_TOKEN_HASH], int64_t now_ms,
                      struct auth_token_row *row)
{
    int rc = auth_store_token_find(st, c, hash, row);

    if (rc <= 0)
        return rc;
    return token_usable(row, now_ms) && !row->spent;
}
