/* tokens.c: RS256 access tokens through libjwt 1.10.2. That version takes the
 * algorithm from the token's own header and validates no claims, so the checks here
 * are ours: the header must say RS256 and name our key before libjwt sees the token,
 * the algorithm is checked again after jwt_decode (an HS256 token keyed with the
 * public PEM passes jwt_decode), and exp, nbf, iat, iss, aud, sub are checked by
 * hand. Everything here only reads its arguments: safe on any thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jwt.h>
#include <cjson/cJSON.h>

#include "chatd/util.h"
#include "auth_internal.h"

#define HEADER_MAX 1024            /* decoded JOSE header bytes */

static const char *const reject_names[AUTH_REJECT_COUNT] = {
#define AUTH_REJECT_NAME(n) #n,
    AUTH_REJECT_REASONS(AUTH_REJECT_NAME)
#undef AUTH_REJECT_NAME
};

int auth_token_sign(const struct auth_key *k, const char *issuer, int64_t user_id,
                    const char *name, int64_t iat, int ttl, char **out)
{
    uint8_t jti_raw[16];
    char jti[32], sub[24];
    jwt_t *jwt = NULL;
    int rc;

    *out = NULL;
    if ((rc = random_bytes(jti_raw, sizeof jti_raw)) < 0)
        return rc;
    base64url_encode(jti_raw, sizeof jti_raw, jti);
    snprintf(sub, sizeof sub, "%lld", (long long)user_id);
    if ((rc = jwt_new(&jwt)) != 0)
        return -rc;
    if ((rc = jwt_add_header(jwt, "kid", k->kid)) ||
        (rc = jwt_add_grant(jwt, "iss", issuer)) ||
        (rc = jwt_add_grant(jwt, "aud", AUTH_AUDIENCE)) ||
        (rc = jwt_add_grant(jwt, "sub", sub)) ||
        (rc = jwt_add_grant(jwt, "name", name)) ||
        (rc = jwt_add_grant_int(jwt, "iat", (long)iat)) ||
        (rc = jwt_add_grant_int(jwt, "exp", (long)(iat + ttl))) ||
        (rc = jwt_add_grant(jwt, "jti", jti)) ||
        (rc = jwt_set_alg(jwt, JWT_ALG_RS256, (const unsigned char *)k->priv_pem,
                          (int)k->priv_len)))
        goto out;
    *out = jwt_encode_str(jwt);
    rc = *out ? 0 : (errno ? errno : ENOMEM);
out:
    jwt_free(jwt);
    return -rc;
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

/* Reads the JOSE header ourselves, before libjwt: only RS256 with our kid goes on. */
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

/* Reads an integer claim; 0, -ENOENT when absent (or not an integer). */
static int grant_int(jwt_t *jwt, const char *name, int64_t *out)
{
    errno = 0;   /* libjwt 1.10.2 reports "missing" only through errno */
    long v = jwt_get_grant_int(jwt, name);
    if (errno)
        return -ENOENT;
    *out = v;
    return 0;
}

static int audience_ok(jwt_t *jwt)
{
    const char *aud = jwt_get_grant(jwt, "aud");
    char *json;
    cJSON *arr, *it;
    int ok = 0;

    if (aud)
        return strcmp(aud, AUTH_AUDIENCE) == 0;
    if (!(json = jwt_get_grants_json(jwt, "aud")))
        return 0;
    arr = cJSON_Parse(json);
    free(json);
    if (cJSON_IsArray(arr))
        cJSON_ArrayForEach(it, arr)
            if (cJSON_IsString(it) && strcmp(it->valuestring, AUTH_AUDIENCE) == 0)
                ok = 1;
    cJSON_Delete(arr);
    return ok;
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

static int check_claims(jwt_t *jwt, const char *issuer, int64_t now, struct http_user *user,
                        enum auth_reject *why)
{
    int64_t exp, nbf, iat, uid;
    const char *iss = jwt_get_grant(jwt, "iss");
    const char *name = jwt_get_grant(jwt, "name");

    *why = AUTH_REJECT_malformed;
    if (grant_int(jwt, "exp", &exp) < 0)
        return -EACCES;
    if (now - AUTH_LEEWAY_S >= exp)     /* not exp + leeway: exp may be near INT64_MAX */
        return *why = AUTH_REJECT_expired, -EACCES;
    if ((grant_int(jwt, "nbf", &nbf) == 0 && nbf > now + AUTH_LEEWAY_S) ||
        (grant_int(jwt, "iat", &iat) == 0 && iat > now + AUTH_LEEWAY_S))
        return *why = AUTH_REJECT_not_yet_valid, -EACCES;
    if (!iss || strcmp(iss, issuer) != 0)
        return *why = AUTH_REJECT_bad_issuer, -EACCES;
    if (!audience_ok(jwt))
        return *why = AUTH_REJECT_bad_audience, -EACCES;
    uid = parse_sub(jwt_get_grant(jwt, "sub"));
    if (uid <= 0 || !name || strlen(name) >= sizeof user->name)
        return -EACCES;
    user->id = uid;
    strcpy(user->name, name);
    user->token_exp = exp;
    return 0;
}

int auth_token_verify(const struct auth_key *k, const char *issuer, const char *token,
                      int64_t now_s, struct http_user *user, const char **reason)
{
    enum auth_reject why = AUTH_REJECT_malformed;
    size_t head_len = 0;
    jwt_t *jwt = NULL;
    int rc;

    memset(user, 0, sizeof *user);
    if (!token || token_shape(token, &head_len) < 0)
        return reject(AUTH_REJECT_malformed, reason);
    if (check_header(k, token, head_len, &why) < 0)
        return reject(why, reason);
    /* The public key only: the private key never verifies anything. */
    rc = jwt_decode(&jwt, token, (const unsigned char *)k->pub_pem, (int)k->pub_len);
    if (rc != 0 || !jwt) {
        jwt_free(jwt);
        return reject(AUTH_REJECT_bad_signature, reason);
    }
    if (jwt_get_alg(jwt) != JWT_ALG_RS256) {
        jwt_free(jwt);
        return reject(AUTH_REJECT_bad_alg, reason);
    }
    rc = check_claims(jwt, issuer, now_s, user, &why);
    jwt_free(jwt);
    if (rc < 0) {
        memset(user, 0, sizeof *user);
        return reject(why, reason);
    }
    return 0;
}
