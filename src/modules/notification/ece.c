/* ece.c: Web Push message encryption (RFC 8291) in the aes128gcm content coding
 * (RFC 8188), with OpenSSL 3 EVP only.
 *
 * A push message is a single record: our payloads are far below the 4096-byte record
 * size, so the delimiter is always 0x02 (last record) and there is no padding. The
 * sender key is a fresh P-256 key per message; the RFC's worked example fixes it and
 * the salt, which is why both can be passed in. */
#include <errno.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include "notification_internal.h"

int ece_hkdf_extract(const uint8_t *salt, size_t saltlen, const uint8_t *ikm, size_t ikmlen,
                     uint8_t prk[32])
{
    unsigned int n = 32;
    if (!HMAC(EVP_sha256(), salt, (int)saltlen, ikm, ikmlen, prk, &n) || n != 32)
        return -EIO;
    return 0;
}

int ece_hkdf_expand(const uint8_t prk[32], const uint8_t *info, size_t infolen,
                    uint8_t *out, size_t outlen)
{
    /* T(1) = HMAC(PRK, info || 0x01): one block covers every length we need. */
    uint8_t buf[256], t[32];
    unsigned int n = 32;
    if (outlen > 32 || infolen + 1 > sizeof(buf))
        return -EINVAL;
    memcpy(buf, info, infolen);
    buf[infolen] = 0x01;
    if (!HMAC(EVP_sha256(), prk, 32, buf, infolen + 1, t, &n) || n != 32)
        return -EIO;
    memcpy(out, t, outlen);
    OPENSSL_cleanse(t, sizeof(t));
    return 0;
}

/* An EVP_PKEY for P-256 from a public point and, optionally, a private scalar. */
static EVP_PKEY *p256_key(const uint8_t pub[ECE_KEY_LEN], const uint8_t *priv)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    BIGNUM *d = NULL;

    if (!bld)
        return NULL;
    if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, ECE_KEY_LEN))
        goto done;
    if (priv) {
        d = BN_bin2bn(priv, ECE_PRIV_LEN, NULL);
        if (!d || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d))
            goto done;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0)
        goto done;
    /* fromdata decodes the point with EC_POINT_oct2point, which rejects points that
     * are not on the curve: an invalid p256dh cannot get further than this. */
    if (EVP_PKEY_fromdata(ctx, &pkey, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                          params) <= 0)
        pkey = NULL;
done:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    return pkey;
}

int ece_point_valid(const uint8_t pub[ECE_KEY_LEN])
{
    if (pub[0] != 0x04)
        return 0;
    EVP_PKEY *k = p256_key(pub, NULL);
    EVP_PKEY_free(k);
    return k != NULL;
}

/* The public point of a private scalar: the worked example gives only the scalar. */
static int p256_public_of(const uint8_t priv[ECE_PRIV_LEN], uint8_t pub[ECE_KEY_LEN])
{
    int rc = -EINVAL;
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    EC_POINT *p = g ? EC_POINT_new(g) : NULL;
    BIGNUM *d = BN_bin2bn(priv, ECE_PRIV_LEN, NULL);
    if (!g || !p || !d)
        goto done;
    if (EC_POINT_mul(g, p, d, NULL, NULL, NULL) != 1)
        goto done;
    if (EC_POINT_point2oct(g, p, POINT_CONVERSION_UNCOMPRESSED, pub, ECE_KEY_LEN, NULL)
        != ECE_KEY_LEN)
        goto done;
    rc = 0;
done:
    BN_clear_free(d);
    EC_POINT_free(p);
    EC_GROUP_free(g);
    return rc;
}

/* The sender's key: fresh, or the one the caller fixed. Fills its public point. */
static EVP_PKEY *sender_key(const uint8_t *as_private, uint8_t pub[ECE_KEY_LEN])
{
    size_t n = 0;
    if (as_private) {
        if (p256_public_of(as_private, pub) < 0)
            return NULL;
        return p256_key(pub, as_private);
    }
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!k)
        return NULL;
    if (!EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub,
                                         ECE_KEY_LEN, &n) || n != ECE_KEY_LEN) {
        EVP_PKEY_free(k);
        return NULL;
    }
    return k;
}

static int ecdh(EVP_PKEY *mine, EVP_PKEY *peer, uint8_t secret[32])
{
    size_t n = 32;
    int rc = -EIO;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(mine, NULL);
    if (ctx && EVP_PKEY_derive_init(ctx) > 0 && EVP_PKEY_derive_set_peer(ctx, peer) > 0 &&
        EVP_PKEY_derive(ctx, secret, &n) > 0 && n == 32)
        rc = 0;
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* RFC 8291 section 3.4 then RFC 8188 section 2.2 and 2.3. */
static int derive(const uint8_t ua_public[ECE_KEY_LEN], const uint8_t auth[ECE_AUTH_LEN],
                  const uint8_t salt[ECE_SALT_LEN], struct ece_keys *k)
{
    static const char webpush_info[] = "WebPush: info";     /* + its NUL */
    static const char cek_info[] = "Content-Encoding: aes128gcm";
    static const char nonce_info[] = "Content-Encoding: nonce";
    uint8_t key_info[sizeof(webpush_info) + 2 * ECE_KEY_LEN], prk_key[32];
    int rc;

    memcpy(key_info, webpush_info, sizeof(webpush_info));
    memcpy(key_info + sizeof(webpush_info), ua_public, ECE_KEY_LEN);
    memcpy(key_info + sizeof(webpush_info) + ECE_KEY_LEN, k->as_public, ECE_KEY_LEN);

    if ((rc = ece_hkdf_extract(auth, ECE_AUTH_LEN, k->ecdh_secret, 32, prk_key)) < 0 ||
        (rc = ece_hkdf_expand(prk_key, key_info, sizeof(key_info), k->ikm, 32)) < 0 ||
        (rc = ece_hkdf_extract(salt, ECE_SALT_LEN, k->ikm, 32, k->prk)) < 0 ||
        (rc = ece_hkdf_expand(k->prk, (const uint8_t *)cek_info, sizeof(cek_info),
                              k->cek, 16)) < 0 ||
        (rc = ece_hkdf_expand(k->prk, (const uint8_t *)nonce_info, sizeof(nonce_info),
                              k->nonce, 12)) < 0)
        return rc;
    OPENSSL_cleanse(prk_key, sizeof(prk_key));
    return 0;
}

static int seal(const struct ece_keys *k, const void *plain, size_t len, uint8_t *out)
{
    static const uint8_t delimiter = 0x02;   /* last record, no padding */
    int n = 0, rc = -EIO;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        return -ENOMEM;
    if (EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, k->cek, k->nonce) != 1 ||
        EVP_EncryptUpdate(c, out, &n, plain, (int)len) != 1 || (size_t)n != len ||
        EVP_EncryptUpdate(c, out + len, &n, &delimiter, 1) != 1 || n != 1 ||
        EVP_EncryptFinal_ex(c, out + len + 1, &n) != 1 || n != 0 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, ECE_TAG_LEN, out + len + 1) != 1)
        goto done;
    rc = 0;
done:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

long ece_encrypt(const uint8_t ua_public[ECE_KEY_LEN], const uint8_t auth[ECE_AUTH_LEN],
                 const void *plain, size_t len, const uint8_t *as_private,
                 const uint8_t *salt, uint8_t *out, size_t outcap, struct ece_keys *keys)
{
    struct ece_keys k;
    uint8_t s[ECE_SALT_LEN];
    EVP_PKEY *mine = NULL, *peer = NULL;
    long rc = -EINVAL;

    if (len > ECE_MAX_PLAINTEXT || outcap < ECE_OUT_LEN(len) || ua_public[0] != 0x04)
        return -EINVAL;
    if (salt)
        memcpy(s, salt, sizeof(s));
    else if (RAND_bytes(s, sizeof(s)) != 1)
        return -EIO;
    if (!(peer = p256_key(ua_public, NULL)) || !(mine = sender_key(as_private, k.as_public)))
        goto done;
    if ((rc = ecdh(mine, peer, k.ecdh_secret)) < 0 || (rc = derive(ua_public, auth, s, &k)) < 0)
        goto done;

    /* Header: salt (16) | rs (uint32 big-endian) | idlen (1) | keyid (sender key). */
    memcpy(out, s, ECE_SALT_LEN);
    out[16] = (ECE_RECORD_SIZE >> 24) & 0xff;
    out[17] = (ECE_RECORD_SIZE >> 16) & 0xff;
    out[18] = (ECE_RECORD_SIZE >> 8) & 0xff;
    out[19] = ECE_RECORD_SIZE & 0xff;
    out[20] = ECE_KEY_LEN;
    memcpy(out + 21, k.as_public, ECE_KEY_LEN);
    if ((rc = seal(&k, plain, len, out + ECE_HEADER_LEN)) < 0)
        goto done;
    if (keys)
        *keys = k;
    rc = (long)ECE_OUT_LEN(len);
done:
    OPENSSL_cleanse(&k, sizeof(k));
    EVP_PKEY_free(mine);
    EVP_PKEY_free(peer);
    return rc;
}
