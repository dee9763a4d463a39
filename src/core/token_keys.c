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
static int jwk_check(const struct token_jwk *jwk, int i, char *err, size_t errlen)
{
    if (jwk->private_members)
        return fail(err, errlen, i, "holds private key material");
    if (!jwk->kty || strcmp(jwk->kty, "RSA") != 0)
        return fail(err, errlen, i, "kty is not RSA");
    if (!jwk->kid || !*jwk->kid || strlen(jwk->kid) >= KID_MAX)
        return fail(err, errlen, i, "no usable kid");
    if (!jwk->n || !jwk->e)
        return fail(err, errlen, i, "n or e missing");
    if ((jwk->alg && strcmp(jwk->alg, "RS256") != 0) ||
        (jwk->use && strcmp(jwk->use, "sig") != 0))
        return fail(err, errlen, i, "not an RS256 signing key");
    return 0;
}

static int key_from_jwk(struct token_key *k, const struct token_jwk *jwk, int i, char *err,
                        size_t errlen)
{
    int rc = jwk_check(jwk, i, err, errlen);

    if (rc < 0)
        return rc;
    if (!(k->pub = rsa_public(jwk->n, jwk->e)))
        return fail(err, errlen, i, "n and e are not an RSA public key");
    if (EVP_PKEY_get_bits(k->pub) < TOKEN_KEY_BITS_MIN)
        return fail(err, errlen, i, "RSA key shorter than 2048 bits");
    if (!(k->verify_tmpl = rs256_verify_context(k->pub)) || !(k->n_b64 = strdup(jwk->n)) ||
        !(k->e_b64 = strdup(jwk->e)) || !(k->kid = strdup(jwk->kid))) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

int token_keys_from_list(struct token_keys **out, const struct token_jwk *jwks, size_t n,
                         char *err, size_t errlen)
{
    struct token_keys *ks;
    int rc = 0;

    *out = NULL;
    if (n == 0) {
        snprintf(err, errlen, "no \"keys\" array, or an empty one");
        return -EINVAL;
    }
    if (n > TOKEN_KEYS_MAX) {
        snprintf(err, errlen, "more than %d keys", TOKEN_KEYS_MAX);
        return -EINVAL;
    }
    if (!(ks = calloc(1, sizeof *ks))) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if ((rc = key_from_jwk(&ks->key[ks->count], &jwks[i], ks->count, err, errlen)) < 0)
            break;
        if (token_keys_find(ks, ks->key[ks->count].kid))
            rc = fail(err, errlen, ks->count, "kid repeated");
        else
            ks->count++;
    }
    if (rc < 0) {
        ks->count++;                   /* the half-made key is freed too */
        token_keys_free(ks);
        return rc;
    }
    *out = ks;
    return 0;
}

/* A member that must be a string: NULL when absent or not one. */
static const char *member_str(const cJSON *jwk, const char *name)
{
    const char *v;
    return json_get_str(jwk, name, &v) == 0 ? v : NULL;
}

/* An optional member: NULL when absent; one present that is no string reads as "",
 * which no check accepts. */
static const char *optional_str(const cJSON *jwk, const char *name)
{
    if (!cJSON_GetObjectItemCaseSensitive(jwk, name))
        return NULL;
    return member_str(jwk, name) ? member_str(jwk, name) : "";
}

static int has_private_member(const cJSON *jwk)
{
    for (size_t m = 0; m < sizeof private_members / sizeof private_members[0]; m++)
        if (cJSON_GetObjectItemCaseSensitive(jwk, private_members[m]))
            return 1;
    return 0;
}

/* The members of the JWKs of arr, up to the first that is no object: their number. */
static size_t jwks_members(const cJSON *arr, struct token_jwk *out)
{
    const cJSON *jwk;
    size_t n = 0;

    cJSON_ArrayForEach(jwk, arr) {
        struct token_jwk *k = &out[n];
        if (!cJSON_IsObject(jwk))
            break;
        k->private_members = has_private_member(jwk);
        k->kty = member_str(jwk, "kty");
        k->kid = member_str(jwk, "kid");
        k->n = member_str(jwk, "n");
        k->e = member_str(jwk, "e");
        k->alg = optional_str(jwk, "alg");
        k->use = optional_str(jwk, "use");
        n++;
    }
    return n;
}

static int keys_from_array(struct token_keys **out, const cJSON *arr, char *err,
                           size_t errlen)
{
    struct token_jwk jwks[TOKEN_KEYS_MAX];
    int size = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    size_t n;
    int rc;

    if (size <= 0 || size > TOKEN_KEYS_MAX)   /* token_keys_from_list says which */
        return token_keys_from_list(out, NULL, size > 0 ? (size_t)size : 0, err, errlen);
    memset(jwks, 0, sizeof jwks);
    n = jwks_members(arr, jwks);
    if (n == (size_t)size)
        return token_keys_from_list(out, jwks, n, err, errlen);
    /* The keys before the one that is no object are checked first, as they come. */
    if (n > 0 && (rc = token_keys_from_list(out, jwks, n, err, errlen)) < 0)
        return rc;
    token_keys_free(*out);
    *out = NULL;
    return fail(err, errlen, (int)n, "not an object");
}

int token_keys_from_jwks(struct token_keys **out, const char *json, size_t len,
                         char *err, size_t errlen)
{
    cJSON *root;
    int rc;

    *out = NULL;
    if (!json || !(root = json_parse_object(json, len))) {
        snprintf(err, errlen, "not a JSON object");
        return -EINVAL;
    }
    rc = keys_from_array(out, cJSON_GetObjectItemCaseSensitive(root, "keys"), err, errlen);
    cJSON_Delete(root);
    return rc;
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
