/* tokens.c: RS256 access tokens (RFC 7515, 7519), signed here with OpenSSL on the
 * key parsed once at load. They are checked by the gateway (src/core/token_verify.c)
 * with the public key only, which the module publishes as a JWK Set. Everything here
 * only reads its arguments (the key's context is copied, never used in place): safe
 * on any thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "chatd/token.h"
#include "chatd/util.h"
#include "auth_internal.h"

#define SIG_MAX 1024               /* RSA up to 8192 bits */

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
        !(ctx = token_rs256_ctx(k->sign_tmpl)))
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
