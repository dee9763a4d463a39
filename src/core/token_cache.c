/* token_cache.c: bearer tokens that have already been verified. A client that
 * reconnects presents the same access token again, and each WebSocket upgrade and API
 * call runs the bearer check on the loop: the RSA verification and the claims parsing
 * are most of an upgrade's own work. Everything a token is checked for except its
 * expiry is fixed by its bytes, the keys and the issuer; the issuer is part of the
 * cache key and the gateway clears the cache when its keys change, so a token that
 * passed once passes again until it expires. The cache is keyed by the SHA-256 of the
 * issuer and the whole token and holds only tokens that passed; the expiry is checked
 * again on every hit, exactly as token_verify checks it. Direct-mapped and fixed in
 * size: a newer token simply takes the slot of an older one. Loop thread only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "chatd/http.h"
#include "chatd/token.h"
#include "chatd/util.h"

struct cache_slot {
    uint8_t hash[32];
    int64_t verified_at;               /* seconds; 0 = empty */
    struct http_user user;
};

struct token_cache {
    struct cache_slot slot[TOKEN_CACHE_SLOTS];
};

int token_cache_new(struct token_cache **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

void token_cache_free(struct token_cache *c)
{
    free(c);
}

void token_cache_clear(struct token_cache *c)
{
    if (c)
        memset(c, 0, sizeof *c);
}

/* SHA-256 of issuer, NUL, token. */
static int key_of(const char *issuer, const char *token, size_t len, uint8_t out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, issuer, strlen(issuer) + 1) == 1 &&
             EVP_DigestUpdate(ctx, token, len) == 1 &&
             EVP_DigestFinal_ex(ctx, out, NULL) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -ENOMEM;
}

static struct cache_slot *slot_of(struct token_cache *c, const uint8_t hash[32])
{
    uint32_t i;
    memcpy(&i, hash, sizeof i);
    return &c->slot[i % TOKEN_CACHE_SLOTS];
}

int token_cache_check(struct token_cache *c, const struct token_keys *k,
                      const char *issuer, const char *token, int64_t now_s,
                      struct http_user *user, const char **reason)
{
    uint8_t hash[32];
    struct cache_slot *s;
    size_t len;
    int rc;

    if (!c || !token || (len = strnlen(token, TOKEN_MAX + 1)) > TOKEN_MAX ||
        key_of(issuer, token, len, hash) < 0)
        return token_verify(k, issuer, token, now_s, user, reason);
    s = slot_of(c, hash);
    /* A clock that went back could make a not-yet-valid token look valid: re-verify. */
    if (s->verified_at > 0 && now_s >= s->verified_at && ct_equal(s->hash, hash, 32)) {
        if (now_s - TOKEN_LEEWAY_S >= s->user.token_exp) {    /* as token_verify */
            memset(user, 0, sizeof *user);
            *reason = token_reject_name(TOKEN_REJECT_expired);
            return -EACCES;
        }
        *user = s->user;
        return 0;
    }
    rc = token_verify(k, issuer, token, now_s, user, reason);
    if (rc == 0) {
        memcpy(s->hash, hash, 32);
        s->verified_at = now_s > 0 ? now_s : 1;
        s->user = *user;
    }
    return rc;
}
