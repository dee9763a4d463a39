/* RS256 as signed by tokens.c on the key's prepared context and checked by the
 * gateway (src/core/token_verify.c) with the keys of the published JWK Set: a token
 * signed here verifies (with our check and with an independent one), any changed
 * byte of header, payload or signature is refused, the algorithm is never taken from
 * the token, and the contexts are safe to share between threads. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "test.h"
#include "chatd/token.h"
#include "chatd/util.h"
#include "../../src/modules/auth/auth_internal.h"

#define ISS "chatd-test"

int test_auth_new_key(struct auth_key *k);
struct token_keys *test_token_keys(const struct auth_key *k);

/* A fresh 2048-bit key, loaded as chatd loads its own; shared with test_token_cache.c
 * and test_token_gateway.c. */
int test_auth_new_key(struct auth_key *k)
{
    EVP_PKEY *p = EVP_RSA_gen(2048);
    BIO *bio = BIO_new(BIO_s_mem());
    char err[256], *pem;
    long n;
    int rc = -1;

    if (p && bio && PEM_write_bio_PrivateKey(bio, p, NULL, NULL, 0, NULL, NULL) &&
        (n = BIO_get_mem_data(bio, &pem)) > 0)
        rc = auth_key_from_pem(k, pem, (size_t)n, err, sizeof err);
    BIO_free(bio);
    EVP_PKEY_free(p);
    return rc;
}

/* The key set the gateway gets: parsed from the JWK Set auth publishes, nothing
 * else of the key. Shared with test_auth_tokens.c and test_token_cache.c. */
struct token_keys *test_token_keys(const struct auth_key *k)
{
    char *jwks = auth_jwks_json(k), err[160];
    struct token_keys *ks = NULL;

    if (!jwks || token_keys_from_jwks(&ks, jwks, strlen(jwks), err, sizeof err) < 0)
        ks = NULL;
    free(jwks);
    return ks;
}

static const char *check_with(const struct token_keys *ks, const char *token, int64_t now)
{
    struct http_user u;
    const char *reason = "?";
    return token_verify(ks, ISS, token, now, &u, &reason) == 0 ? "ok" : reason;
}

static const char *check(const struct auth_key *k, const char *token, int64_t now)
{
    struct token_keys *ks = test_token_keys(k);
    const char *got = ks ? check_with(ks, token, now) : "no keys";
    token_keys_free(ks);
    return got;
}

static int verify(const struct auth_key *k, const char *token, int64_t now,
                  struct http_user *u, const char **reason)
{
    struct token_keys *ks = test_token_keys(k);
    int rc = token_verify(ks, ISS, token, now, u, reason);
    token_keys_free(ks);
    return rc;
}

/* The signature checked with nothing of ours: the SPKI PEM and a fresh context. */
static int independent_verify(const struct auth_key *k, const char *tok)
{
    const char *dot = strrchr(tok, '.');
    unsigned char sig[512];
    long n = base64url_decode(dot + 1, strlen(dot + 1), sig, sizeof sig);
    BIO *bio = BIO_new_mem_buf(k->pub_pem, (int)k->pub_len);
    EVP_PKEY *pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = n > 0 && pub && ctx &&
             EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
             EVP_DigestVerify(ctx, sig, (size_t)n, (const unsigned char *)tok,
                              (size_t)(dot - tok)) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pub);
    BIO_free(bio);
    return ok;
}

/* The decoded JSON of segment i (0 header, 1 payload). */
static cJSON *segment(const char *tok, int i)
{
    char buf[4096];
    const char *s = tok, *e;
    long n;

    while (i-- > 0)
        s = strchr(s, '.') + 1;
    e = strchr(s, '.');
    n = base64url_decode(s, (size_t)(e - s), buf, sizeof buf);
    return n > 0 ? cJSON_ParseWithLength(buf, (size_t)n) : NULL;
}

/* tok with segment i replaced by the base64url of json. */
static char *replace_segment(const char *tok, int i, const char *json)
{
    const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
    char *seg = malloc(base64url_enc_len(strlen(json)) + 1), *out = malloc(8192);

    base64url_encode(json, strlen(json), seg);
    if (i == 0)
        snprintf(out, 8192, "%s%s", seg, d1);
    else
        snprintf(out, 8192, "%.*s.%s%s", (int)(d1 - tok), tok, seg, d2);
    free(seg);
    return out;
}

TEST(auth_rs256_signed_here_verifies)
{
    struct auth_key k;
    struct http_user u;
    const char *reason = NULL;
    char *tok = NULL;
    int64_t now = (int64_t)time(NULL);
    cJSON *h, *p;

    ASSERT_EQ(test_auth_new_key(&k), 0);
    ASSERT(k.sign_tmpl);
    struct token_keys *ks = test_token_keys(&k);   /* the public key, from the JWKS */
    ASSERT(ks && token_keys_count(ks) == 1);
    token_keys_free(ks);
    ASSERT_EQ(auth_token_sign(&k, ISS, 1234567, "carol", now, 900, &tok), 0);
    ASSERT_EQ(verify(&k, tok, now, &u, &reason), 0);
    ASSERT_EQ(u.id, 1234567);
    ASSERT_STR_EQ(u.name, "carol");
    ASSERT_EQ(u.token_exp, now + 900);
    ASSERT(independent_verify(&k, tok));
    /* header and claims as api.md has them */
    h = segment(tok, 0);
    p = segment(tok, 1);
    ASSERT(h && p);
    ASSERT_STR_EQ(cJSON_GetObjectItem(h, "alg")->valuestring, "RS256");
    ASSERT_STR_EQ(cJSON_GetObjectItem(h, "typ")->valuestring, "JWT");
    ASSERT_STR_EQ(cJSON_GetObjectItem(h, "kid")->valuestring, k.kid);
    ASSERT_STR_EQ(cJSON_GetObjectItem(p, "sub")->valuestring, "1234567");
    ASSERT_EQ((int64_t)cJSON_GetObjectItem(p, "iat")->valuedouble, now);
    ASSERT_EQ((int64_t)cJSON_GetObjectItem(p, "exp")->valuedouble, now + 900);
    ASSERT(strlen(cJSON_GetObjectItem(p, "jti")->valuestring) >= 16);
    cJSON_Delete(h);
    cJSON_Delete(p);
    free(tok);
    /* a name that needs escaping survives the trip */
    ASSERT_EQ(auth_token_sign(&k, ISS, 5, "a\"b\\c", now, 60, &tok), 0);
    ASSERT_EQ(verify(&k, tok, now, &u, &reason), 0);
    ASSERT_STR_EQ(u.name, "a\"b\\c");
    free(tok);
    /* two tokens for the same claims differ (jti), both verify */
    char *t1 = NULL, *t2 = NULL;
    ASSERT_EQ(auth_token_sign(&k, ISS, 5, "dan", now, 60, &t1), 0);
    ASSERT_EQ(auth_token_sign(&k, ISS, 5, "dan", now, 60, &t2), 0);
    ASSERT(strcmp(t1, t2) != 0);
    ASSERT_STR_EQ(check(&k, t1, now), "ok");
    ASSERT_STR_EQ(check(&k, t2, now), "ok");
    free(t1);
    free(t2);
    auth_key_free(&k);
}

TEST(auth_rs256_any_changed_byte_is_refused)
{
    static const char b64chars[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    struct auth_key k;
    char *tok = NULL;
    int64_t now = (int64_t)time(NULL);
    size_t len, i, refused = 0;

    ASSERT_EQ(test_auth_new_key(&k), 0);
    ASSERT_EQ(auth_token_sign(&k, ISS, 7, "alice", now, 600, &tok), 0);
    len = strlen(tok);
    /* every character, changed to another base64url character */
    for (i = 0; i < len; i++) {
        char saved = tok[i];
        if (saved == '.')
            continue;
        tok[i] = saved == b64chars[i % 64] ? b64chars[(i + 1) % 64] : b64chars[i % 64];
        const char *got = check(&k, tok, now);
        if (strcmp(got, "ok") == 0)
            test_fail(__FILE__, __LINE__, "byte %zu changed, token accepted", i);
        refused++;
        tok[i] = saved;
    }
    ASSERT(refused > 300);
    ASSERT_STR_EQ(check(&k, tok, now), "ok");
    /* one flipped bit of the signature itself (not only of its encoding) */
    {
        char *dot = strrchr(tok, '.');
        unsigned char sig[512];
        long n = base64url_decode(dot + 1, strlen(dot + 1), sig, sizeof sig);
        ASSERT_EQ(n, 256);
        sig[100] ^= 1;
        base64url_encode(sig, (size_t)n, dot + 1);
        ASSERT_STR_EQ(check(&k, tok, now), "bad_signature");
        sig[100] ^= 1;
        /* truncated and empty signatures */
        base64url_encode(sig, (size_t)n - 1, dot + 1);
        ASSERT_STR_EQ(check(&k, tok, now), "bad_signature");
        dot[1] = '\0';
        ASSERT_STR_EQ(check(&k, tok, now), "bad_signature");
    }
    free(tok);
    auth_key_free(&k);
}

TEST(auth_rs256_algorithm_is_never_the_tokens)
{
    struct auth_key k, other;
    char *tok = NULL, *t, sig64[64];
    int64_t now = (int64_t)time(NULL);
    unsigned char mac[32];
    unsigned int maclen = 0;

    ASSERT_EQ(test_auth_new_key(&k), 0);
    ASSERT_EQ(test_auth_new_key(&other), 0);
    ASSERT_EQ(auth_token_sign(&k, ISS, 7, "alice", now, 600, &tok), 0);

    /* a payload changed after signing: claims of someone else, old signature */
    t = replace_segment(tok, 1, "{\"iss\":\"" ISS "\",\"aud\":\"chatd\",\"sub\":\"1\","
                                "\"name\":\"root\",\"iat\":0,\"exp\":99999999999}");
    ASSERT_STR_EQ(check(&k, t, now), "bad_signature");
    free(t);

    /* HS256 with the public PEM as the secret, our kid, our claims */
    char hdr[256];
    snprintf(hdr, sizeof hdr, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", k.kid);
    t = replace_segment(tok, 0, hdr);
    *strrchr(t, '.') = '\0';
    HMAC(EVP_sha256(), k.pub_pem, (int)k.pub_len, (const unsigned char *)t, strlen(t), mac,
         &maclen);
    base64url_encode(mac, maclen, sig64);
    char *hs = malloc(strlen(t) + 2 + strlen(sig64));
    sprintf(hs, "%s.%s", t, sig64);
    ASSERT_STR_EQ(check(&k, hs, now), "bad_alg");
    free(hs);
    free(t);

    /* the same header naming RS256 but with the HMAC as its signature */
    snprintf(hdr, sizeof hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", k.kid);
    t = replace_segment(tok, 0, hdr);
    *strrchr(t, '.') = '\0';
    HMAC(EVP_sha256(), k.pub_pem, (int)k.pub_len, (const unsigned char *)t, strlen(t), mac,
         &maclen);
    base64url_encode(mac, maclen, sig64);
    hs = malloc(strlen(t) + 2 + strlen(sig64));
    sprintf(hs, "%s.%s", t, sig64);
    ASSERT_STR_EQ(check(&k, hs, now), "bad_signature");
    free(hs);
    free(t);

    /* signed by another key: its kid is unknown; with ours, the signature fails */
    ASSERT_STR_EQ(check(&other, tok, now), "unknown_kid");
    snprintf(hdr, sizeof hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", other.kid);
    free(tok);
    tok = NULL;
    ASSERT_EQ(auth_token_sign(&other, ISS, 7, "alice", now, 600, &tok), 0);
    t = replace_segment(tok, 0, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"x\"}");
    ASSERT_STR_EQ(check(&k, t, now), "unknown_kid");
    free(t);
    snprintf(hdr, sizeof hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", k.kid);
    t = replace_segment(tok, 0, hdr);
    ASSERT_STR_EQ(check(&k, t, now), "bad_signature");
    free(t);
    free(tok);
    auth_key_free(&other);
    auth_key_free(&k);
}

/* A signed payload that is not claims we accept is still refused. */
TEST(auth_rs256_signed_bad_payloads)
{
    struct auth_key k;
    char *tok = NULL;
    int64_t now = (int64_t)time(NULL);

    ASSERT_EQ(test_auth_new_key(&k), 0);
    /* expired by more than the leeway; the leeway itself */
    ASSERT_EQ(auth_token_sign(&k, ISS, 7, "alice", now - 1000, 900, &tok), 0);
    ASSERT_STR_EQ(check(&k, tok, now), "expired");
    ASSERT_STR_EQ(check(&k, tok, now - 41), "ok");
    /* issued in the future beyond the leeway */
    ASSERT_STR_EQ(check(&k, tok, now - 1000 - 61), "not_yet_valid");
    free(tok);
    auth_key_free(&k);
}

struct race { const struct auth_key *k; const struct token_keys *ks; int64_t now; int bad; };

static void *sign_verify_loop(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < 40; i++) {
        char *tok = NULL;
        if (auth_token_sign(r->k, ISS, 7, "alice", r->now, 600, &tok) < 0 ||
            strcmp(check_with(r->ks, tok, r->now), "ok") != 0)
            r->bad++;
        if (tok) {
            tok[strlen(tok) - 3] ^= 1;          /* refused without disturbing the others */
            if (strcmp(check_with(r->ks, tok, r->now), "ok") == 0)
                r->bad++;
        }
        free(tok);
    }
    return NULL;
}

/* The thread pool signs with one key from several threads at once; one key set
 * verifies on all of them. */
TEST(auth_rs256_threads_share_the_key)
{
    struct auth_key k;
    struct token_keys *ks;
    pthread_t th[4];
    struct race r[4];

    ASSERT_EQ(test_auth_new_key(&k), 0);
    ASSERT((ks = test_token_keys(&k)) != NULL);
    for (int i = 0; i < 4; i++) {
        r[i] = (struct race){ &k, ks, (int64_t)time(NULL), 0 };
        ASSERT_EQ(pthread_create(&th[i], NULL, sign_verify_loop, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ASSERT_EQ(r[i].bad, 0);
    }
    token_keys_free(ks);
    auth_key_free(&k);
}
