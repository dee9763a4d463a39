/* The cache of verified bearer tokens: a hit answers as auth_token_verify would,
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
#include "chatd/util.h"
#include "../../src/modules/auth/auth_internal.h"

#define ISS "chatd-test"

int test_auth_new_key(struct auth_key *k);   /* test_auth_rs256.c */

static const char *cached(struct auth_vcache *c, const struct auth_key *k, const char *iss,
                          const char *tok, int64_t now, struct http_user *u)
{
    const char *reason = "?";
    return auth_bearer_check(c, k, iss, tok, now, u, &reason) == 0 ? "ok" : reason;
}

TEST(auth_vcache_answers_as_verify)
{
    struct auth_key k;
    struct auth_vcache *c = NULL;
    struct http_user u;
    char *tok = NULL, *bad;
    int64_t now = (int64_t)time(NULL);

    ASSERT_EQ(test_auth_new_key(&k), 0);
    ASSERT_EQ(auth_vcache_new(&c), 0);
    ASSERT_EQ(auth_token_sign(&k, ISS, 9, "erin", now, 900, &tok), 0);

    /* first use verifies, second comes from the cache: same answer */
    ASSERT_STR_EQ(cached(c, &k, ISS, tok, now, &u), "ok");
    ASSERT_EQ(u.id, 9);
    memset(&u, 0, sizeof u);
    ASSERT_STR_EQ(cached(c, &k, ISS, tok, now + 10, &u), "ok");
    ASSERT_EQ(u.id, 9);
    ASSERT_STR_EQ(u.name, "erin");
    ASSERT_EQ(u.token_exp, now + 900);
    /* expiry still applies to a cached token, with the same leeway */
    ASSERT_STR_EQ(cached(c, &k, ISS, tok, now + 959, &u), "ok");
    ASSERT_STR_EQ(cached(c, &k, ISS, tok, now + 960, &u), "expired");
    ASSERT_EQ(u.id, 0);
    /* a clock gone back is not trusted with the cached answer: verified again */
    ASSERT_STR_EQ(cached(c, &k, ISS, tok, now - 5, &u), "ok");
    /* the same token with one byte changed is not the cached one */
    bad = strdup(tok);
    bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
    ASSERT_STR_EQ(cached(c, &k, ISS, bad, now, &u), "bad_signature");
    ASSERT_STR_EQ(cached(c, &k, ISS, bad, now, &u), "bad_signature");   /* not kept */
    free(bad);
    /* the issuer is part of the key: checked for another issuer, it is refused */
    ASSERT_STR_EQ(cached(c, &k, "other", tok, now, &u), "bad_issuer");
    ASSERT_STR_EQ(cached(c, &k, ISS, tok, now, &u), "ok");
    /* rejections are never cached: a token refused for its issuer stays refused */
    free(tok);
    tok = NULL;
    ASSERT_EQ(auth_token_sign(&k, "other", 9, "erin", now, 900, &tok), 0);
    ASSERT_STR_EQ(cached(c, &k, ISS, tok, now, &u), "bad_issuer");
    ASSERT_STR_EQ(cached(c, &k, ISS, tok, now, &u), "bad_issuer");
    /* without a cache it is plain verification */
    ASSERT_STR_EQ(cached(NULL, &k, ISS, tok, now, &u), "bad_issuer");
    ASSERT_STR_EQ(cached(c, &k, ISS, "a.b.c", now, &u), "malformed");
    free(tok);
    auth_vcache_free(c);
    auth_key_free(&k);
}

/* Many tokens: the table stays bounded and every answer stays right. */
TEST(auth_vcache_is_bounded)
{
    struct auth_key k;
    struct auth_vcache *c = NULL;
    struct http_user u;
    int64_t now = (int64_t)time(NULL);
    enum { N = AUTH_VCACHE_SLOTS + 200 };
    char **toks = calloc(N, sizeof *toks);

    ASSERT_EQ(test_auth_new_key(&k), 0);
    ASSERT_EQ(auth_vcache_new(&c), 0);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(auth_token_sign(&k, ISS, i + 1, "u", now, 900, &toks[i]), 0);
        ASSERT_STR_EQ(cached(c, &k, ISS, toks[i], now, &u), "ok");
    }
    for (int i = 0; i < N; i++) {
        ASSERT_STR_EQ(cached(c, &k, ISS, toks[i], now, &u), "ok");
        ASSERT_EQ(u.id, i + 1);
        free(toks[i]);
    }
    free(toks);
    auth_vcache_free(c);
    auth_key_free(&k);
}
