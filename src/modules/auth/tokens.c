/* tokens.c: RS256 access tokens (RFC 7515, 7519), signed and checked here with
 * OpenSSL on the key parsed once at load. The checks are all ours: the header must
 * say RS256 and name our key, the signature must verify with the public key over the
 * bytes as received, and only then is the payload read, for exp, nbf, iat, iss, aud
 * and sub. No other algorithm is ever tried, so neither "none" nor HS256 keyed with
 * the public key can get through. Everything here only reads its arguments (the key's
 * contexts are copied, never used in place): safe on any thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "chatd/util.h"
#include "auth_internal.h"

#define HEADER_MAX 1024            /* decoded JOSE header bytes */
#define SIG_MAX 1024               /* RSA up to 8192 bits */
#define PAYLOAD_MAX (AUTH_TOKEN_MAX / 4 * 3 + 3)

static const char *const reject_names[AUTH_REJECT_COUNT] = {
#define AUTH_REJECT_NAME(n) #n,
    AUTH_REJECT_REASONS(AUTH_REJECT_NAME)
#undef AUTH_REJECT_NAME
};

/* A context ready to sign or verify: a copy of the key's template, set to finish in
 * place (without the flag, OpenSSL 3.0 duplicates the context again at the end so
 * that it could be reused, which we never do). */
static EVP_MD_CTX *rs256_ctx(const EVP_MD_CTX *tmpl)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx && EVP_MD_CTX_copy_ex(ctx, tmpl) == 1) {
        EVP_MD_CTX_set_flags(ctx, EVP_MD_CTX_FLAG_FINALISE);
        return ctx;
    }
    EVP_MD_CTX_free(ctx);
    return NULL;
}

/* The claims as JSON, malloc'ed. cJSON escapes the name. */
static char *claims_json(const char *issuer, int64_t user_id, const char *name,
                         int64_t iat, int ttl, const char *jti)
{
    char sub[24];
    cJSON *c = cJSON_CreateObject();
    char *out = NULL;

    snprintf(sub, sizeof sub, "%lld", (long long)user_id);
    if (c && cJSON_AddStringToObject(c, "iss", issuer) &&
        cJSON_AddStringToObject(c, "aud", AUTH_AUDIENCE) &&
        cJSON_AddStringToObject(c, "sub", sub) &&
        cJSON_AddStringToObject(c, "name", name) &&
        cJSON_AddNumberToObject(c, "iat", (double)iat) &&
        cJSON_AddNumberToObject(c, "exp", (double)(iat + ttl)) &&
        cJSON_AddStringToObject(c, "jti", jti))
        out = json_print(c);
    cJSON_Delete(c);
    return out;
}

/* base64url(header) "." base64url(claims), malloc'ed, with room for "." and the
 * signature of a key of sig_max bytes. */
static char *signing_input(const char *header, const char *claims, size_t sig_max,
                           size_t *len)
{
    size_t hl = strlen(header), cl = strlen(claims);
    size_t cap = base64url_enc_len(hl) + 1 + base64url_enc_len(cl) + 1 +
                 base64url_enc_len(sig_max) + 1;
    char *out = malloc(cap);
    size_t n;

    if (!out)
        return NULL;
    n = base64url_encode(header, hl, out);
    out[n++] = '.';
    n += base64url_encode(claims, cl, out + n);
    *len = n;
    return out;
}

int auth_token_sign(const struct auth_key *k, const char *issuer, int64_t user_id,
                    const char *name, int64_t iat, int ttl, char **out)
{
    uint8_t jti_raw[16], sig[SIG_MAX];
    char jti[32], header[128], *claims = NULL, *tok = NULL;
    size_t len = 0, sig_len = sizeof sig;
    EVP_MD_CTX *ctx = NULL;
    int rc;

    *out = NULL;
    if ((rc = random_bytes(jti_raw, sizeof jti_raw)) < 0)
        return rc;
    base64url_encode(jti_raw, sizeof jti_raw, jti);
    snprintf(header, sizeof header, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
             k->kid);
    rc = -ENOMEM;
    if (!(claims = claims_json(issuer, user_id, name, iat, ttl, jti)) ||
        !(tok = signing_input(header, claims, sizeof sig, &len)) ||
        !(ctx = rs256_ctx(k->sign_tmpl)))
        goto fail;
    if (EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)tok, len) != 1) {
        ERR_clear_error();
        rc = -EIO;
        goto fail;
    }
    tok[len++] = '.';
    base64url_encode(sig, sig_len, tok + len);
    *out = tok;
    tok = NULL;
    rc = 0;
fail:
    EVP_MD_CTX_free(ctx);
    free(claims);
    free(tok);
    return rc;
}

int auth_reject_index(const char *reason)
{
    for (int i = 0; i < AUTH_REJECT_COUNT; i++)
        if (reason && strcmp(reason, reject_names[i]) == 0)
            return i;
    return AUTH_REJECT_malformed;
}

const char *auth_reject_name(int i)
{
    return i >= 0 && i < AUTH_REJECT_COUNT ? reject_names[i] : NULL;
}

static int reject(enum auth_reject r, const char **reason)
{
    *reason = reject_names[r];
    return -EACCES;
}

/* Three base64url segments; the signature may be empty only to be refused later. */
static int token_shape(const char *t, size_t *head_len)
{
    int dots = 0;
    size_t i, len = strlen(t);

    if (len == 0 || len > AUTH_TOKEN_MAX)
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

/* The JOSE header: only RS256 with our kid goes on. */
static int check_header(const struct auth_key *k, const char *t, size_t head_len,
                        enum auth_reject *why)
{
    char raw[HEADER_MAX + 1];
    long n = base64url_decode(t, head_len, raw, HEADER_MAX);
    cJSON *h, *alg, *kid;
    int rc = -EACCES;

    *why = AUTH_REJECT_malformed;
    if (n <= 0 || !(h = json_parse_object(raw, (size_t)n)))
        return -EACCES;
    alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
    kid = cJSON_GetObjectItemCaseSensitive(h, "kid");
    if (!cJSON_IsString(alg) || strcmp(alg->valuestring, "RS256") != 0)
        *why = AUTH_REJECT_bad_alg;
    else if (cJSON_GetObjectItemCaseSensitive(h, "crit"))
        *why = AUTH_REJECT_malformed;   /* no critical extension is understood here */
    else if (!cJSON_IsString(kid) || strcmp(kid->valuestring, k->kid) != 0)
        *why = AUTH_REJECT_unknown_kid;
    else
        rc = 0;
    cJSON_Delete(h);
    return rc;
}

/* aud is our audience, or an array holding it. */
static int audience_ok(const cJSON *c)
{
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(c, "aud"), *it;

    if (cJSON_IsString(aud))
        return strcmp(aud->valuestring, AUTH_AUDIENCE) == 0;
    if (cJSON_IsArray(aud))
        cJSON_ArrayForEach(it, aud)
            if (cJSON_IsString(it) && strcmp(it->valuestring, AUTH_AUDIENCE) == 0)
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
                        struct http_user *user, enum auth_reject *why)
{
    int64_t exp, nbf, iat, uid;
    const char *iss = NULL, *name = NULL, *sub = NULL;

    /* Numbers are claims only when integral and within 2^53 (json_get_i64). */
    json_get_str(c, "iss", &iss);
    json_get_str(c, "name", &name);
    json_get_str(c, "sub", &sub);

    *why = AUTH_REJECT_malformed;
    if (json_get_i64(c, "exp", &exp) < 0)
        return -EACCES;
    if (now - AUTH_LEEWAY_S >= exp)     /* not exp + leeway: exp may be near INT64_MAX */
        return *why = AUTH_REJECT_expired, -EACCES;
    if ((json_get_i64(c, "nbf", &nbf) == 0 && nbf > now + AUTH_LEEWAY_S) ||
        (json_get_i64(c, "iat", &iat) == 0 && iat > now + AUTH_LEEWAY_S))
        return *why = AUTH_REJECT_not_yet_valid, -EACCES;
    if (!iss || strcmp(iss, issuer) != 0)
        return *why = AUTH_REJECT_bad_issuer, -EACCES;
    if (!audience_ok(c))
        return *why = AUTH_REJECT_bad_audience, -EACCES;
    uid = parse_sub(sub);
    if (uid <= 0 || !name || strlen(name) >= sizeof user->name)
        return -EACCES;
    user->id = uid;
    strcpy(user->name, name);
    user->token_exp = exp;
    return 0;
}

/* RS256 over header.payload, the bytes as they came, with the public key. */
static int signature_ok(const struct auth_key *k, const char *token, size_t signed_len,
                        const char *sig64)
{
    uint8_t sig[SIG_MAX];
    long n = base64url_decode(sig64, strlen(sig64), sig, sizeof sig);
    EVP_MD_CTX *ctx;
    int ok;

    if (n <= 0 || !(ctx = rs256_ctx(k->verify_tmpl)))
        return 0;
    ok = EVP_DigestVerify(ctx, sig, (size_t)n, (const unsigned char *)token, signed_len);
    EVP_MD_CTX_free(ctx);
    if (ok != 1)
        ERR_clear_error();   /* or the failure stays queued on this thread */
    return ok == 1;
}

int auth_token_verify(const struct auth_key *k, const char *issuer, const char *token,
                      int64_t now_s, struct http_user *user, const char **reason)
{
    enum auth_reject why = AUTH_REJECT_malformed;
    size_t head_len = 0;
    const char *payload, *sig;
    char *raw;
    long n;
    cJSON *claims;
    int rc;

    memset(user, 0, sizeof *user);
    if (!token || token_shape(token, &head_len) < 0)
        return reject(AUTH_REJECT_malformed, reason);
    if (check_header(k, token, head_len, &why) < 0)
        return reject(why, reason);
    payload = token + head_len + 1;
    sig = strchr(payload, '.') + 1;        /* token_shape saw exactly two dots */
    if (!signature_ok(k, token, (size_t)(sig - 1 - token), sig))
        return reject(AUTH_REJECT_bad_signature, reason);
    /* Signed by us: only now is the payload read. */
    if (!(raw = malloc(PAYLOAD_MAX)))
        return reject(AUTH_REJECT_malformed, reason);
    n = base64url_decode(payload, (size_t)(sig - 1 - payload), raw, PAYLOAD_MAX);
    claims = n > 0 ? json_parse_object(raw, (size_t)n) : NULL;
    free(raw);
    if (!claims)
        return reject(AUTH_REJECT_malformed, reason);
    rc = check_claims(claims, issuer, now_s, user, &why);
    cJSON_Delete(claims);
    if (rc < 0) {
        memset(user, 0, sizeof *user);
        return reject(why, reason);
    }
    return 0;
}
