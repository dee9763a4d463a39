/* token_verify.c: the check of an RS256 access token (RFC 7515, 7519) with the
 * public keys of a JWK Set (token_keys.c). The checks are all ours: the header must
 * say RS256 and name a key of the set, the signature must verify with that key over
 * the bytes as received, and only then is the payload read, for exp, nbf, iat, iss,
 * aud and sub. No other algorithm is ever tried, so neither "none" nor HS256 keyed
 * with the public key can get through. Everything here only reads its arguments (the
 * key's context is copied, never used in place): safe on any thread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "chatd/http.h"
#include "chatd/token.h"
#include "chatd/util.h"
#include "token_internal.h"

#define HEADER_MAX 1024            /* decoded JOSE header bytes */
#define SIG_MAX 1024               /* RSA up to 8192 bits */
#define PAYLOAD_MAX (TOKEN_MAX / 4 * 3 + 3)

static const char *const reject_names[TOKEN_REJECT_COUNT] = {
#define TOKEN_REJECT_NAME(n) #n,
    TOKEN_REJECT_REASONS(TOKEN_REJECT_NAME)
#undef TOKEN_REJECT_NAME
};

int token_reject_index(const char *reason)
{
    for (int i = 0; i < TOKEN_REJECT_COUNT; i++)
        if (reason && strcmp(reason, reject_names[i]) == 0)
            return i;
    return TOKEN_REJECT_malformed;
}

const char *token_reject_name(int i)
{
    return i >= 0 && i < TOKEN_REJECT_COUNT ? reject_names[i] : NULL;
}

static int reject(enum token_reject r, const char **reason)
{
    *reason = reject_names[r];
    return -EACCES;
}

/* Three base64url segments; the signature may be empty only to be refused later. */
static int token_shape(const char *t, size_t *head_len)
{
    int dots = 0;
    size_t i, len = strlen(t);

    if (len == 0 || len > TOKEN_MAX)
        return -EINVAL;
    for (i = 0; i < len; i++) {
        char c = t[i];
        if (c == '.') {
            if (dots++ == 0)
                *head_len = i;
        } else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                     (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return -EINVAL;
        }
    }
    return dots == 2 && *head_len > 0 ? 0 : -EINVAL;
}

/* The JOSE header: only RS256 with a kid of the set goes on, to that key. */
static const struct token_key *check_header(const struct token_keys *ks, const char *t,
                                            size_t head_len, enum token_reject *why)
{
    char raw[HEADER_MAX + 1];
    long n = base64url_decode(t, head_len, raw, HEADER_MAX);
    const struct token_key *key = NULL;
    cJSON *h, *alg, *kid;

    *why = TOKEN_REJECT_malformed;
    if (n <= 0 || !(h = json_parse_object(raw, (size_t)n)))
        return NULL;
    alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
    kid = cJSON_GetObjectItemCaseSensitive(h, "kid");
    if (!cJSON_IsString(alg) || strcmp(alg->valuestring, "RS256") != 0)
        *why = TOKEN_REJECT_bad_alg;
    else if (cJSON_GetObjectItemCaseSensitive(h, "crit"))
        *why = TOKEN_REJECT_malformed;  /* no critical extension is understood here */
    else if (!cJSON_IsString(kid) || !(key = token_keys_find(ks, kid->valuestring)))
        *why = TOKEN_REJECT_unknown_kid;
    cJSON_Delete(h);
    return key;
}

/* aud is our audience, or an array holding it. */
static int audience_ok(const cJSON *c)
{
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(c, "aud"), *it;

    if (cJSON_IsString(aud))
        return strcmp(aud->valuestring, TOKEN_AUDIENCE) == 0;
    if (cJSON_IsArray(aud))
        cJSON_ArrayForEach(it, aud)
            if (cJSON_IsString(it) && strcmp(it->valuestring, TOKEN_AUDIENCE) == 0)
                return 1;
    return 0;
}

/* sub is the user id in decimal: positive, no sign, no leading zero. */
static int64_t parse_sub(const char *s)
{
    int64_t v = 0;
    if (!s || !*s || *s == '0' || strlen(s) > 18)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

static int check_claims(const cJSON *c, const char *issuer, int64_t now,
                        struct http_user *user, enum token_reject *why)
{
    int64_t exp, nbf, iat, uid;
    const char *iss = NULL, *name = NULL, *sub = NULL;

    /* Numbers are claims only when integral and within 2^53 (json_get_i64). */
    json_get_str(c, "iss", &iss);
    json_get_str(c, "name", &name);
    json_get_str(c, "sub", &sub);

    *why = TOKEN_REJECT_malformed;
    if (json_get_i64(c, "exp", &exp) < 0)
        return -EACCES;
    if (now - TOKEN_LEEWAY_S >= exp)   /* not exp + leeway: exp may be near INT64_MAX */
        return *why = TOKEN_REJECT_expired, -EACCES;
    if ((json_get_i64(c, "nbf", &nbf) == 0 && nbf > now + TOKEN_LEEWAY_S) ||
        (json_get_i64(c, "iat", &iat) == 0 && iat > now + TOKEN_LEEWAY_S))
        return *why = TOKEN_REJECT_not_yet_valid, -EACCES;
    if (!iss || strcmp(iss, issuer) != 0)
        return *why = TOKEN_REJECT_bad_issuer, -EACCES;
    if (!audience_ok(c))
        return *why = TOKEN_REJECT_bad_audience, -EACCES;
    uid = parse_sub(sub);
    if (uid <= 0 || !name || strlen(name) >= sizeof user->name)
        return -EACCES;
    user->id = uid;
    strcpy(user->name, name);
    user->token_exp = exp;
    return 0;
}

EVP_MD_CTX *token_rs256_ctx(const EVP_MD_CTX *tmpl)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx && EVP_MD_CTX_copy_ex(ctx, tmpl) == 1) {
        EVP_MD_CTX_set_flags(ctx, EVP_MD_CTX_FLAG_FINALISE);
        return ctx;
    }
    EVP_MD_CTX_free(ctx);
    return NULL;
}

/* RS256 over header.payload, the bytes as they came, with the public key. */
static int signature_ok(const struct token_key *k, const char *token, size_t signed_len,
                        const char *sig64)
{
    uint8_t sig[SIG_MAX];
    long n = base64url_decode(sig64, strlen(sig64), sig, sizeof sig);
    EVP_MD_CTX *ctx;
    int ok;

    if (n <= 0 || !(ctx = token_rs256_ctx(k->verify_tmpl)))
        return 0;
    ok = EVP_DigestVerify(ctx, sig, (size_t)n, (const unsigned char *)token, signed_len);
    EVP_MD_CTX_free(ctx);
    if (ok != 1)
        ERR_clear_error();   /* or the failure stays queued on this thread */
    return ok == 1;
}

/* The payload of a token whose signature passed, as claims. */
static int read_claims(const char *payload, size_t len, const char *issuer, int64_t now_s,
                       struct http_user *user, enum token_reject *why)
{
    char *raw = malloc(PAYLOAD_MAX);
    long n;
    cJSON *claims;
    int rc;

    *why = TOKEN_REJECT_malformed;
    if (!raw)
        return -ENOMEM;
    n = base64url_decode(payload, len, raw, PAYLOAD_MAX);
    claims = n > 0 ? json_parse_object(raw, (size_t)n) : NULL;
    free(raw);
    if (!claims)
        return -EACCES;
    rc = check_claims(claims, issuer, now_s, user, why);
    cJSON_Delete(claims);
    return rc;
}

int token_verify(const struct token_keys *ks, const char *issuer, const char *token,
                 int64_t now_s, struct http_user *user, const char **reason)
{
    enum token_reject why = TOKEN_REJECT_malformed;
    const struct token_key *key;
    size_t head_len = 0;
    const char *payload, *sig;

    memset(user, 0, sizeof *user);
    if (!token || token_shape(token, &head_len) < 0)
        return reject(TOKEN_REJECT_malformed, reason);
    if (!(key = check_header(ks, token, head_len, &why)))
        return reject(why, reason);
    payload = token + head_len + 1;
    sig = strchr(payload, '.') + 1;        /* token_shape saw exactly two dots */
    if (!signature_ok(key, token, (size_t)(sig - 1 - token), sig))
        return reject(TOKEN_REJECT_bad_signature, reason);
    /* Signed by the key: only now is the payload read. */
    if (read_claims(payload, (size_t)(sig - 1 - payload), issuer, now_s, user, &why) < 0) {
        memset(user, 0, sizeof *user);
        return reject(why, reason);
    }
    return 0;
}
