/* jwks.c: the public key as a JWK Set (RFC 7517) and its RFC 7638 thumbprint, the
 * key id. The thumbprint hashes the required members in lexicographic order with no
 * whitespace, so any party can recompute it from the JWKS. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>
#include <cjson/cJSON.h>

#include "chatd/util.h"
#include "auth_internal.h"

int auth_jwk_thumbprint(const char *n_b64, const char *e_b64, char *out, size_t outlen)
{
    uint8_t digest[SHA256_DIGEST_LENGTH];
    size_t len = strlen(n_b64) + strlen(e_b64) + 32;
    char *canon = malloc(len);

    if (!canon)
        return -ENOMEM;
    if (outlen < base64url_enc_len(sizeof digest) + 1) {
        free(canon);
        return -ENOBUFS;
    }
    /* n and e are base64url already: nothing in them needs JSON escaping. */
    len = (size_t)snprintf(canon, len, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}",
                           e_b64, n_b64);
    SHA256((const unsigned char *)canon, len, digest);
    free(canon);
    base64url_encode(digest, sizeof digest, out);
    return 0;
}

char *auth_jwks_json(const struct auth_key *k)
{
    cJSON *root = cJSON_CreateObject(), *keys, *jwk;
    char *out = NULL;

    if (!root || !(keys = cJSON_AddArrayToObject(root, "keys")) ||
        !(jwk = cJSON_CreateObject()))
        goto out;
    cJSON_AddItemToArray(keys, jwk);
    if (!cJSON_AddStringToObject(jwk, "kty", "RSA") ||
        !cJSON_AddStringToObject(jwk, "use", "sig") ||
        !cJSON_AddStringToObject(jwk, "alg", "RS256") ||
        !cJSON_AddStringToObject(jwk, "kid", k->kid) ||
        !cJSON_AddStringToObject(jwk, "n", k->n_b64) ||
        !cJSON_AddStringToObject(jwk, "e", k->e_b64))
        goto out;
    out = cJSON_PrintUnformatted(root);
out:
    cJSON_Delete(root);
    return out;
}
