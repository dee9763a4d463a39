/* fuzz_ece.c: the Web Push encryption (RFC 8291, aes128gcm of RFC 8188) in a round trip.
 * Input: a flags byte, the subscription's auth secret (16 bytes), then the plaintext.
 * Flags pick what else comes from the input: bit 0 a user agent public key (65 bytes,
 * usually not on the curve: it must be refused), bit 1 the sender's private scalar
 * (32 bytes, possibly out of range). A message ece_encrypt accepts is decrypted here,
 * independently of ece.c, as a user agent would (this target holds the agent's private
 * key), and must give back the plaintext. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "chatd/util.h"
#include "../../src/modules/notification/notification_internal.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

/* The user agent's key pair of RFC 8291's appendix A. */
#define UA_PRIVATE "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
#define UA_PUBLIC  "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPj" \
                   "s7Vd8pZGH6SRpkNtoIAiw4"

static uint8_t ua_priv[ECE_PRIV_LEN], ua_pub[ECE_KEY_LEN];

static EVP_PKEY *p256(const uint8_t pub[ECE_KEY_LEN], const uint8_t *priv)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    BIGNUM *d = priv ? BN_bin2bn(priv, ECE_PRIV_LEN, NULL) : NULL;

    if (!ctx || !bld || (priv && !d) ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, ECE_KEY_LEN) ||
        (d && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d)) ||
        !(params = OSSL_PARAM_BLD_to_param(bld)) || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                          params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(d);
    return pkey;
}

static void ecdh(const uint8_t as_pub[ECE_KEY_LEN], uint8_t secret[32])
{
    EVP_PKEY *me = p256(ua_pub, ua_priv), *peer = p256(as_pub, NULL);
    EVP_PKEY_CTX *ctx = me ? EVP_PKEY_CTX_new(me, NULL) : NULL;
    size_t n = 32;

    CHECK(me && peer && ctx);
    CHECK(EVP_PKEY_derive_init(ctx) > 0 && EVP_PKEY_derive_set_peer(ctx, peer) > 0);
    CHECK(EVP_PKEY_derive(ctx, secret, &n) > 0 && n == 32);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(me);
    EVP_PKEY_free(peer);
}

/* Decrypts one aes128gcm message for the user agent; the plaintext length. */
static size_t decrypt(const uint8_t auth[ECE_AUTH_LEN], const uint8_t *msg, size_t len,
                      uint8_t *plain)
{
    const uint8_t *salt = msg, *as_pub = msg + ECE_SALT_LEN + 5;
    uint8_t secret[32], prk_key[32], ikm[32], prk[32], cek[16], nonce[12];
    uint8_t info[14 + 2 * ECE_KEY_LEN];
    uint32_t rs;
    int n, fin;
    size_t clen;

    CHECK(len >= ECE_HEADER_LEN + 1 + ECE_TAG_LEN);
    rs = (uint32_t)msg[16] << 24 | (uint32_t)msg[17] << 16 | (uint32_t)msg[18] << 8 | msg[19];
    CHECK(rs == ECE_RECORD_SIZE && msg[20] == ECE_KEY_LEN);
    clen = len - ECE_HEADER_LEN - ECE_TAG_LEN;
    CHECK(clen + ECE_TAG_LEN <= rs);
    ecdh(as_pub, secret);
    memcpy(info, "WebPush: info\0", 14);
    memcpy(info + 14, ua_pub, ECE_KEY_LEN);
    memcpy(info + 14 + ECE_KEY_LEN, as_pub, ECE_KEY_LEN);
    CHECK(ece_hkdf_extract(auth, ECE_AUTH_LEN, secret, 32, prk_key) == 0);
    CHECK(ece_hkdf_expand(prk_key, info, sizeof(info), ikm, 32) == 0);
    CHECK(ece_hkdf_extract(salt, ECE_SALT_LEN, ikm, 32, prk) == 0);
    CHECK(ece_hkdf_expand(prk, (const uint8_t *)"Content-Encoding: aes128gcm\0", 28, cek,
                          16) == 0);
    CHECK(ece_hkdf_expand(prk, (const uint8_t *)"Content-Encoding: nonce\0", 24, nonce,
                          12) == 0);

    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    CHECK(ctx);
    CHECK(EVP_DecryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, cek, nonce) == 1);
    CHECK(EVP_DecryptUpdate(ctx, plain, &n, msg + ECE_HEADER_LEN, (int)clen) == 1);
    CHECK(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, ECE_TAG_LEN,
                              (void *)(msg + len - ECE_TAG_LEN)) == 1);
    CHECK(EVP_DecryptFinal_ex(ctx, plain + n, &fin) == 1);   /* the tag must verify */
    EVP_CIPHER_CTX_free(ctx);
    /* The last record: padding of zeros after a 0x02 delimiter. */
    clen = (size_t)n + (size_t)fin;
    while (clen && plain[clen - 1] == 0)
        clen--;
    CHECK(clen && plain[clen - 1] == 0x02);
    return clen - 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t fixed_salt[ECE_SALT_LEN] = "0123456789abcdef";
    const uint8_t *ua = ua_pub, *as_priv = NULL, *auth;
    uint8_t *out, *plain;
    uint8_t flags;
    long n;

    if (!ua_pub[0]) {
        CHECK(base64url_decode(UA_PRIVATE, strlen(UA_PRIVATE), ua_priv, sizeof ua_priv) == 32);
        CHECK(base64url_decode(UA_PUBLIC, strlen(UA_PUBLIC), ua_pub, sizeof ua_pub) == 65);
    }
    if (size < 1 + ECE_AUTH_LEN)
        return 0;
    flags = *data++;
    size--;
    auth = data;
    data += ECE_AUTH_LEN;
    size -= ECE_AUTH_LEN;
    if (flags & 1) {
        if (size < ECE_KEY_LEN)
            return 0;
        ua = data;
        data += ECE_KEY_LEN;
        size -= ECE_KEY_LEN;
    }
    if (flags & 2) {
        if (size < ECE_PRIV_LEN)
            return 0;
        as_priv = data;
        data += ECE_PRIV_LEN;
        size -= ECE_PRIV_LEN;
    }
    out = malloc(ECE_OUT_LEN(size));
    plain = malloc(size + ECE_TAG_LEN + 1);
    CHECK(out && plain);
    n = ece_encrypt(ua, auth, data, size, as_priv, as_priv ? fixed_salt : NULL, out,
                    ECE_OUT_LEN(size), NULL);
    if (size > ECE_MAX_PLAINTEXT || !ece_point_valid(ua)) {
        CHECK(n < 0);
    } else if (n >= 0) {
        CHECK((size_t)n == ECE_OUT_LEN(size));
        if (ua == ua_pub || memcmp(ua, ua_pub, ECE_KEY_LEN) == 0) {
            CHECK(decrypt(auth, out, (size_t)n, plain) == size);
            CHECK(memcmp(plain, data, size) == 0);
        }
    } else {
        /* Only a bad sender scalar may be refused with a good key and length. */
        CHECK(as_priv != NULL);
    }
    free(out);
    free(plain);
    return 0;
}
