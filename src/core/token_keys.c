/* token_keys.c: the public keys that access tokens are checked with, made from a JWK
 * Set (RFC 7517, RFC 7518 section 6.3): for each RSA key the modulus n and exponent e
 * become an EVP_PKEY holding nothing but them, and an RS256 verification context is
 * set up on it once. Verifying copies that context (token_verify.c): a fresh
 * EVP_DigestVerifyInit looks the algorithms up in OpenSSL 3's provider store, under
 * its locks, on every call. The set is only ever read once made, so any thread may
 * use it. A JWK carrying private members is refused rather than trimmed: whoever
 * built the set meant to publish something else. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "chatd/token.h"
#include "chatd/util.h"
#include "token_internal.h"

#define KID_MAX 64
#define N_B64_MAX 1400                 /* 8192-bit modulus: 1366 base64url chars */
#define E_B64_MAX 12

struct token_keys {
    int count;
    struct token_key key[TOKEN_KEYS_MAX];
};

/* Private members of RSA JWKs (RFC 7518 section 6.3.2), and of others just in case. */
static const char *const private_members[] = { "d", "p", "q", "dp", "dq", "qi", "oth", "k" };

static BIGNUM *b64_bignum(const char *s, size_t max)
{
    unsigned char bin[N_B64_MAX];
    size_t len = strlen(s);
    long n;

    if (len == 0 || len > max)
        return NULL;
    n = base64url_decode(s, len, bin, sizeof bin);
    return n > 0 ? BN_bin2bn(bin, (int)n, NULL) : NULL;
}

/* An EVP_PKEY with the public parameters n and e only. */
static EVP_PKEY *rsa_public(const char *n64, const char *e64)
{
    BIGNUM *n = b64_bignum(n64, N_B64_MAX), *e = b64_bignum(e64, E_B64_MAX);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pkey = NULL;

    if (n && e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) &&
        (params = OSSL_PARAM_BLD_to_param(bld)) &&
        (pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) &&
        EVP_PKEY_fromdata_init(pctx) == 1)
        EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    ERR_clear_error();
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pkey;
}

/* RS256: RSASSA-PKCS1-v1_5 (the RSA default padding) over SHA-256. */
static EVP_MD_CTX *rs256_verify_context(EVP_PKEY *pkey)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx && EVP_DigestVerifyInit_ex(ctx, NULL, "SHA256", NULL, NULL, pkey, NULL) == 1)
        return ctx;
    ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    return NULL;
}

static int fail(char *err, size_t errlen, int i, const char *what)
{
    snprintf(err, errlen, "keys[%d]: %s", i, what);
    return -EINVAL;
}

/* The members a verifier needs, each checked; optional ones must agree with RS256. */
static int jwk_members(const cJSON *jwk, int i, const char **kid, const char **n,
                       const char **e, char *err, size_t errlen)
{
    const char *kty = NULL, *alg = NULL, *use = NULL;

    if (!cJSON_IsObject(jwk))
        return fail(err, errlen, i, "not an object");
    for (size_t m = 0; m < sizeof private_members / sizeof private_members[0]; m++)
        if (cJSON_GetObjectItemCaseSensitive(jwk, private_members[m]))
            return fail(err, errlen, i, "holds private key material");
    if (json_get_str(jwk, "kty", &kty) < 0 || strcmp(kty, "RSA") != 0)
        return fail(err, errlen, i, "kty is not RSA");
    if (json_get_str(jwk, "kid", kid) < 0 || !**kid || strlen(*kid) >= KID_MAX)
        return fail(err, errlen, i, "no usable kid");
    if (json_get_str(jwk, "n", n) < 0 || json_get_str(jwk, "e", e) < 0)
        return fail(err, errlen, i, "n or e missing");
    if ((cJSON_GetObjectItemCaseSensitive(jwk, "alg") &&
         (json_get_str(jwk, "alg", &alg) < 0 || strcmp(alg, "RS256") != 0)) ||
        (cJSON_GetObjectItemCaseSensitive(jwk, "use") &&
         (json_get_str(jwk, "use", &use) < 0 || strcmp(use, "sig") != 0)))
        return fail(err, errlen, i, "not an RS256 signing key");
    return 0;
}

static int key_from_jwk(struct token_key *k, const cJSON *jwk, int i, char *err,
                        size_t errlen)
{
    const char *kid, *n, *e;
    int rc = jwk_members(jwk, i, &kid, &n, &e, err, errlen);

    if (rc < 0)
        return rc;
    if (!(k->pub = rsa_public(n, e)))
        return fail(err, errlen, i, "n and e are not an RSA public key");
    if (EVP_PKEY_get_bits(k->pub) < TOKEN_KEY_BITS_MIN)
        return fail(err, errlen, i, "RSA key shorter than 2048 bits");
    if (!(k->verify_tmpl = rs256_verify_context(k->pub)) || !(k->n_b64 = strdup(n)) ||
        !(k->e_b64 = strdup(e)) || !(k->kid = strdup(kid))) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int keys_from_array(struct token_keys *ks, const cJSON *arr, char *err,
                           size_t errlen)
{
    const cJSON *jwk;
    int rc;

    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) {
        snprintf(err, errlen, "no \"keys\" array, or an empty one");
        return -EINVAL;
    }
    if (cJSON_GetArraySize(arr) > TOKEN_KEYS_MAX) {
        snprintf(err, errlen, "more than %d keys", TOKEN_KEYS_MAX);
        return -EINVAL;
    }
    cJSON_ArrayForEach(jwk, arr) {
        if ((rc = key_from_jwk(&ks->key[ks->count], jwk, ks->count, err, errlen)) < 0)
            return rc;
        if (token_keys_find(ks, ks->key[ks->count].kid))
            return fail(err, errlen, ks->count, "kid repeated");
        ks->count++;
    }
    return 0;
}

int token_keys_from_jwks(struct token_keys **out, const char *json, size_t len,
                         char *err, size_t errlen)
{
    struct token_keys *ks;
    cJSON *root;
    int rc;

    *out = NULL;
    if (!json || !(root = json_parse_object(json, len))) {
        snprintf(err, errlen, "not a JSON object");
        return -EINVAL;
    }
    if (!(ks = calloc(1, sizeof *ks))) {
        cJSON_Delete(root);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = keys_from_array(ks, cJSON_GetObjectItemCaseSensitive(root, "keys"), err, errlen);
    cJSON_Delete(root);
    if (rc < 0) {
        ks->count++;                   /* the half-made key is freed too */
        token_keys_free(ks);
        return rc;
    }
    *out = ks;
    return 0;
}

void token_keys_free(struct token_keys *ks)
{
    if (!ks)
        return;
    for (int i = 0; i < ks->count && i < TOKEN_KEYS_MAX; i++) {
        EVP_MD_CTX_free(ks->key[i].verify_tmpl);
        EVP_PKEY_free(ks->key[i].pub);
        free(ks->key[i].kid);
        free(ks->key[i].n_b64);
        free(ks->key[i].e_b64);
    }
    free(ks);
}

int token_keys_count(const struct token_keys *ks)
{
    return ks ? ks->count : 0;
}

const struct token_key *token_keys_find(const struct token_keys *ks, const char *kid)
{
    for (int i = 0; ks && kid && i < ks->count; i++)
        if (strcmp(ks->key[i].kid, kid) == 0)
            return &ks->key[i];
    return NULL;
}

int token_keys_same(const struct token_keys *a, const struct token_keys *b)
{
    if (!a || !b || a->count != b->count)
        return 0;
    for (int i = 0; i < a->count; i++)
        if (strcmp(a->key[i].kid, b->key[i].kid) != 0 ||
            strcmp(a->key[i].n_b64, b->key[i].n_b64) != 0 ||
            strcmp(a->key[i].e_b64, b->key[i].e_b64) != 0)
            return 0;
    return 1;
}
