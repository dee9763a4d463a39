/* The gateway's cache of verified bearer tokens: a hit answers as token_verify would,
 * expiry included; only tokens that passed are kept; a changed token, another
 * issuer's check or a clock gone back is verified afresh. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "test.h"
#include "chatd/token.h"
#include "chatd/util.h"
#include "../../src/modules/auth/auth_internal.h"

#define ISS "chatd-test"

int test_auth_new_key(struct auth_key *k);                       /* test_auth_rs256.c */
struct token_keys *test_token_keys(const struct auth_key *k);   /* test_auth_rs256.c */

static const char *cached(struct token_cache *c, const struct token_keys *ks,
                          const char *iss, const char *tok, int64_t now, struct http_user *u)
{
    const char *reason = "?";
    return token_cache_check(c, ks, iss, tok, now, u, &reason) == 0 ? "ok" : reason;
}

TEST(token_cache_answers_as_verify)
{
    struct auth_key k;
    struct token_cache *c = NULL;
    struct token_keys *ks;
    struct http_user u;
    char *tok = NULL, *bad;
    int64_t now = (int64_t)time(NULL);

    ASSERT_EQ(test_auth_new_key(&k), 0);
    ASSERT((ks = test_token_keys(&k)) != NULL);
    ASSERT_EQ(token_cache_new(&c), 0);
    ASSERT_EQ(auth_token_sign(&k, ISS, 9, "erin", now, 900, &tok), 0);

    /* first use verifies, second comes from the cache: same answer */
    ASSERT_STR_EQ(cached(c, ks, ISS, tok, now, &u), "ok");
    ASSERT_EQ(u.id, 9);
    memset(&u, 0, sizeof u);
    ASSERT_STR_EQ(cached(c, ks, ISS, tok, now + 10, &u), "ok");
    ASSERT_EQ(u.id, 9);
    ASSERT_STR_EQ(u.name, "erin");
    ASSERT_EQ(u.token_exp, now + 900);
    /* expiry still applies to a cached token, with the same leeway */
    ASSERT_STR_EQ(cached(c, ks, ISS, tok, now + 959, &u), "ok");
    ASSERT_STR_EQ(cached(c, ks, ISS, tok, now + 960, &u), "expired");
    ASSERT_EQ(u.id, 0);
    /* a clock gone back is not trusted with the cached answer: verified again */
    ASSERT_STR_EQ(cached(c, ks, ISS, tok, now - 5, &u), "ok");
    /* the same token with one byte changed is not the cached one */
    bad = strdup(tok);
    bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
    ASSERT_STR_EQ(cached(c, ks, ISS, bad, now, &u), "bad_signature");
    ASSERT_STR_EQ(cached(c, ks, ISS, bad, now, &u), "bad_signature");   /* not kept */
    free(bad);
    /* the issuer is part of the key: checked for another issuer, it is refused */
    ASSERT_STR_EQ(cached(c, ks, "other", tok, now, &u), "bad_issuer");
    ASSERT_STR_EQ(cached(c, ks, ISS, tok, now, &u), "ok");
    /* rejections are never cached: a token refused for its issuer stays refused */
    free(tok);
    tok = NULL;
    ASSERT_EQ(auth_token_sign(&k, "other", 9, "erin", now, 900, &tok), 0);
    ASSERT_STR_EQ(cached(c, ks, ISS, tok, now, &u), "bad_issuer");
    ASSERT_STR_EQ(cached(c, ks, ISS, tok, now, &u), "bad_issuer");
    /* without a cache it is plain verification */
    ASSERT_STR_EQ(cached(NULL, ks, ISS, tok, now, &u), "bad_issuer");
    ASSERT_STR_EQ(cached(c, ks, ISS, "a.b.c", now, &u), "malformed");
    free(tok);
    token_cache_free(c);
    token_keys_free(ks);
    auth_key_free(&k);
}

/* Many tokens: the table stays bounded and every answer stays right. */
TEST(token_cache_is_bounded)
{
    struct auth_key k;
    struct token_cache *c = NULL;
    struct token_keys *ks;
    struct http_user u;
    int64_t now = (int64_t)time(NULL);
    enum { N = TOKEN_CACHE_SLOTS + 200 };
    char **toks = calloc(N, sizeof *toks);

    ASSERT_EQ(test_auth_new_key(&k), 0);
    ASSERT((ks = test_token_keys(&k)) != NULL);
    ASSERT_EQ(token_cache_new(&c), 0);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(auth_token_sign(&k, ISS, i + 1, "u", now, 900, &toks[i]), 0);
        ASSERT_STR_EQ(cached(c, ks, ISS, toks[i], now, &u), "ok");
    }
    for (int i = 0; i < N; i++) {
        ASSERT_STR_EQ(cached(c, ks, ISS, toks[i], now, &u), "ok");
        ASSERT_EQ(u.id, i + 1);
        free(toks[i]);
    }
    free(toks);
    token_cache_free(c);
    token_keys_free(ks);
    auth_key_free(&k);
}
