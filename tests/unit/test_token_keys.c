/* The gateway's keys made from a JWK Set's members (token_keys_from_list), as a typed
 * auth.keys event gives them: the same checks and error texts as the JSON set, which
 * is parsed into the same members. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test.h"
#include "chatd/http.h"
#include "chatd/token.h"
#include "../../src/core/token_internal.h"
#include "../../src/modules/auth/auth_internal.h"

int test_auth_new_key(struct auth_key *k);   /* test_auth_rs256.c */

static struct token_jwk jwk_of(const struct auth_key *k)
{
    struct token_jwk j = { .kty = "RSA", .kid = k->kid, .n = k->n_b64, .e = k->e_b64,
                           .alg = "RS256", .use = "sig" };
    return j;
}

/* 1 when the list is refused with want in the error. */
static int list_refused(const struct token_jwk *jwks, size_t n, const char *want)
{
    struct token_keys *ks = (struct token_keys *)1;
    char err[160] = "";
    int rc = token_keys_from_list(&ks, jwks, n, err, sizeof err);

    if (rc == 0) {
        token_keys_free(ks);
        return 0;
    }
    return rc == -EINVAL && ks == NULL && strstr(err, want) != NULL;
}

TEST(token_keys_from_members)
{
    struct auth_key k;
    struct token_keys *ks = NULL;
    struct token_jwk j, two[2];
    struct http_user u;
    const char *reason = "?";
    char err[160], *tok = NULL;
    int64_t now = (int64_t)time(NULL);

    ASSERT_EQ(test_auth_new_key(&k), 0);
    j = jwk_of(&k);
    ASSERT_EQ(token_keys_from_list(&ks, &j, 1, err, sizeof err), 0);
    ASSERT_EQ(token_keys_count(ks), 1);
    ASSERT_EQ(auth_token_sign(&k, "chatd", 7, "alice", now, 600, &tok), 0);
    ASSERT_EQ(token_verify(ks, "chatd", tok, now, &u, &reason), 0);
    ASSERT_EQ(u.id, 7);
    token_keys_free(ks);
    free(tok);
    j.alg = j.use = NULL;                        /* both optional */
    ASSERT(!list_refused(&j, 1, ""));

#define REFUSED_WITH(field, value, why) do {     \
        j = jwk_of(&k);                          \
        j.field = value;                         \
        ASSERT(list_refused(&j, 1, why));        \
    } while (0)
    REFUSED_WITH(private_members, 1, "private");
    REFUSED_WITH(kty, "EC", "RSA");
    REFUSED_WITH(kty, NULL, "RSA");
    REFUSED_WITH(alg, "HS256", "RS256");
    REFUSED_WITH(use, "enc", "RS256");
    REFUSED_WITH(kid, "", "kid");
    REFUSED_WITH(kid, NULL, "kid");
    REFUSED_WITH(n, NULL, "n or e");
    REFUSED_WITH(e, NULL, "n or e");
    REFUSED_WITH(n, "!!", "RSA public key");
#undef REFUSED_WITH
    two[0] = two[1] = jwk_of(&k);
    ASSERT(list_refused(two, 2, "keys[1]: kid repeated"));
    ASSERT(list_refused(two, 0, "keys"));
    ASSERT(list_refused(two, TOKEN_KEYS_MAX + 1, "more than"));
    auth_key_free(&k);
}

/* A JWK that is no object: reported where it stands, after the keys before it. */
TEST(token_keys_json_set_reports_in_order)
{
    struct auth_key k;
    struct token_keys *ks = NULL;
    char err[160] = "", *good = NULL, *json = NULL;

    ASSERT_EQ(test_auth_new_key(&k), 0);
    good = auth_jwks_json(&k);
    ASSERT(good != NULL);
    good[strlen(good) - 2] = '\0';               /* {"keys":[{...} */
    ASSERT(asprintf(&json, "%s,5]}", good) > 0);
    ASSERT_EQ(token_keys_from_jwks(&ks, json, strlen(json), err, sizeof err), -EINVAL);
    ASSERT_STR_EQ(err, "keys[1]: not an object");
    free(json);
    json = NULL;
    ASSERT(asprintf(&json, "{\"keys\":[5,%s]}", good + strlen("{\"keys\":[")) > 0);
    ASSERT_EQ(token_keys_from_jwks(&ks, json, strlen(json), err, sizeof err), -EINVAL);
    ASSERT_STR_EQ(err, "keys[0]: not an object");
    free(json);
    json = NULL;
    ASSERT(asprintf(&json, "{\"keys\":[{\"kty\":\"EC\"},5]}") > 0);
    ASSERT_EQ(token_keys_from_jwks(&ks, json, strlen(json), err, sizeof err), -EINVAL);
    ASSERT_STR_EQ(err, "keys[0]: kty is not RSA");
    ASSERT(ks == NULL);
    free(json);
    free(good);
    auth_key_free(&k);
}
