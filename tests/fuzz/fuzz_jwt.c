/* fuzz_jwt.c: the gateway's bearer-token check (src/core/token_verify.c), with the
 * key set parsed from the JWK Set of the target's key, as the auth module publishes
 * it. Two kinds of input, chosen by the first byte:
 *   even: the rest is a token, checked as it came;
 *   odd:  the rest is "<header JSON>\n<claims JSON>", which this target signs with the
 *         server's key (RS256), so that the claims checks behind the signature are
 *         reached too.
 * A token that passes must name a positive user id, a name that fits, an expiry in the
 * future; one that fails must give one of the documented reasons. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "chatd/http.h"
#include "chatd/token.h"
#include "chatd/util.h"
#include "../../src/modules/auth/auth_internal.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)
#define NOW_S 1800000000LL

/* A key made for this target only. */
static const char FUZZ_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC0nxhYxo2ljFRW\n"
    "hVUXXaDcZecZ3O1xV4WTX3zj8ZGS64+2sm0tPyqspWJKLwixhcjdCHpBu3HJmwpd\n"
    "VarW4FApzd94Qhb7AwJCuFJZzzR+mjTQBJDyIKL7s814be4mJuhXDPwkuNrHEQ8D\n"
    "Od5XmoIjk1RWpBaw1sAYaDi6IPBC750UssbywYvxGUBAdiDexWrJYyLxDKa21QFp\n"
    "IIpVv5/Kjltmy48UdvDFOwSXPUhKcm5Nsx4QilWbqaT+IfkGj82bWqYHFOcFIuk/\n"
    "wfA4MsVCbjCkiPqUGf7+CMdHy/QSDv3dZJLZVooR/YzOG/6gvAxztto0HAghmGhX\n"
    "F6dECiOLAgMBAAECggEABNobPNNEndRZtaNKSGDm/9Sq8xpotHk96NoRUEw+dVxn\n"
    "lWhQn30JZ+7fZ4/A44fs/+cI5bgj098a1awF9VS8Qos5vBDGbkLD7kfmSmxTBC2f\n"
    "SpE81YxD5JANbnVBhvvXlPMP2OqwUdWm+ha1XtQTN+Juyw8IXwK90UoHcBSPb7TV\n"
    "fsO737cGvgfzA4+Rr66vSFENoja/6Gl4lUllGChBZXXANz905Cil5gfn5KlZOQ1D\n"
    "04Jkre0MHUbB1qG6q20KS7rqN4FQMnAHMnGxNsqnY4Gy8AXj1yLymBRGOsrtwouR\n"
    "64lh6EV9UIxXYS4N8vziDaW75JHTLIXprK9BXRhTUQKBgQDtfFt8V2SYheFNMQTj\n"
    "9EWQO4zh/2sc6nLlA69fh831cJKe9Aot7E6BhshUWv5HHGGSGJ8dStn+bzTs9CQ9\n"
    "vL82p87/vbgUfSPaw+Sj2sDlUMNlXRNDi44PZo2U3Yj6nJ/NyEToROEPvZz8JXxS\n"
    "TWZcv6GeHIrMP+VMPfxbmoCeWwKBgQDCs90NLV9bPEuAQU6X+xhltt4KYARBk8Ms\n"
    "ylyuZVdNLtjPtzhOrC/82bR/uvBHuEhs/8CUwagxBz+y9zkWzayRUEnbl5ctKO+f\n"
    "iZ9BrfNELt+WUQJsEapwbIfgLJVX6I26yo4wQ9eeiDHApFf3NQpbNsSGSAftq+JX\n"
    "HybGtB/2kQKBgDh5p0PlgH2o8NArhQ80ispm7vTbibxhoJsHik/8eqUQdT2pqTYM\n"
    "iQrSY5dz4B5HCIj2o/gSUc7o4TwsPuYTmaFEvLwigMEWlU0z4o54ugCOeTkErk0U\n"
    "xd6xs5+gIy/9yR7lrkVSA/d7TvbDb1IfJ+WMiMGR5gv2ce/0maurDUUbAoGAGlDp\n"
    "PdC2JMS/h7RMBSrBH25aEJjtuldYeANaB5BW/m2ojFq9V5TaX5ilVuZTd74mu+TN\n"
    "iM2sCARszamwo65k9rcdZHrWyhnQWYXmaqAyUzLqsYx9gVHZ8ZwZuWkNPnaGQYsD\n"
    "MO7ag+jwoJMV+KnIno+GfIfb2nny+8eQHCdYcqECgYEAqllFRWQwRLOGuxgds8nV\n"
    "b6dtpHg2Fv/uS78Df0jFZ/XNNOAnkUjfPgQPVe2TnofYlGbXYW+GftxyG0eOIejH\n"
    "Pvvqs0VFuAKokaiau132uI6GNvop/zMCYQcnZIw/kh1oqeriHX+Np9Yv9KuIhC8l\n"
    "rGY8PTZDkmHS/TNUH7TQttk=\n"
    "-----END PRIVATE KEY-----\n"
    ;

static struct auth_key *key;          /* signs the odd inputs */
static struct token_keys *keys;       /* checks every input: the public key only */

static char *b64(const void *p, size_t n)
{
    char *s = malloc(base64url_enc_len(n) + 1);
    if (s)
        base64url_encode(p, n, s);
    return s;
}

/* header.claims.signature, signed with the key; NULL on failure. */
static char *sign(const char *head, size_t hlen, const char *claims, size_t clen)
{
    char *h = b64(head, hlen), *c = b64(claims, clen), *input = NULL, *out = NULL;
    unsigned char sig[512];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    if (!h || !c || !md || asprintf(&input, "%s.%s", h, c) < 0)
        goto done;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key->pkey) != 1 ||
        EVP_DigestSign(md, sig, &siglen, (unsigned char *)input, strlen(input)) != 1)
        goto done;
    char *s = b64(sig, siglen);
    if (s && asprintf(&out, "%s.%s", input, s) < 0)
        out = NULL;
    free(s);
done:
    EVP_MD_CTX_free(md);
    free(h);
    free(c);
    free(input);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_user u;
    const char *reason = NULL;
    char *token;
    int rc;

    if (!key) {
        char err[256], *jwks;
        key = calloc(1, sizeof(*key));
        if (!key || auth_key_from_pem(key, FUZZ_KEY, strlen(FUZZ_KEY), err, sizeof err) < 0 ||
            !(jwks = auth_jwks_json(key)) ||
            token_keys_from_jwks(&keys, jwks, strlen(jwks), err, sizeof err) < 0)
            abort();
        free(jwks);
    }
    if (size == 0)
        return 0;
    if (data[0] & 1) {
        const char *p = (const char *)data + 1, *nl = memchr(p, '\n', size - 1);
        if (!nl)
            return 0;
        token = sign(p, (size_t)(nl - p), nl + 1, size - 1 - (size_t)(nl + 1 - p));
        if (!token)
            return 0;
    } else {
        token = strndup((const char *)data + 1, size - 1);
        if (!token)
            return 0;
    }
    rc = token_verify(keys, "chatd", token, NOW_S, &u, &reason);
    if (rc == 0) {
        CHECK(u.id > 0);
        CHECK(memchr(u.name, 0, sizeof(u.name)));
        CHECK(u.token_exp > NOW_S - TOKEN_LEEWAY_S);
    } else {
        CHECK(rc == -EACCES);
        CHECK(u.id == 0);
        CHECK(reason && token_reject_index(reason) >= 0 &&
              strcmp(token_reject_name(token_reject_index(reason)), reason) == 0);
    }
    free(token);
    return 0;
}
