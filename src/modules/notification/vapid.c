/* vapid.c: the application server's identity for Web Push (RFC 8292).
 *
 * One P-256 key, made on first start in <data_dir>/vapid.pem (mode 0600). Browsers
 * bind a subscription to its public key (applicationServerKey), so losing the file
 * means every subscription stops working: back it up with the database. On
 * PostgreSQL the PEM is kept in the database instead (db_key_keep, under the file's
 * name), made by the first node to start and read by every other, so that all of
 * them sign with the one key the browsers know.
 *
 * The JWT is signed with OpenSSL directly. OpenSSL's ECDSA produces a DER
 * ECDSA-Sig-Value; JWS wants the two 32-byte integers R || S (RFC 7518 section 3.4),
 * so we convert here rather than depend on how a JWT library does it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include "chatd/db.h"
#include "chatd/util.h"
#include "notification_internal.h"

static int is_p256(EVP_PKEY *k)
{
    char group[32];
    size_t n = 0;
    return EVP_PKEY_is_a(k, "EC") &&
           EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                          sizeof(group), &n) &&
           strcmp(group, "prime256v1") == 0;
}

static int load(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!k || !is_p256(k)) {
        EVP_PKEY_free(k);
        snprintf(err, errlen, "%s: not a P-256 private key in PEM", path);
        return -EINVAL;
    }
    *out = k;
    return 0;
}

static int create(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!k) {
        snprintf(err, errlen, "cannot generate a P-256 key");
        return -EIO;
    }
    /* O_EXCL: two servers on one data dir must not overwrite each other's key. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        EVP_PKEY_free(k);
        if (e == EEXIST)
            return load(path, out, err, errlen);
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    FILE *f = fdopen(fd, "w");
    int ok = f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
    ok = f ? (fflush(f) == 0 && fsync(fd) == 0 && ok) : 0;
    if (f)
        fclose(f);
    else
        close(fd);
    if (!ok) {
        unlink(path);
        EVP_PKEY_free(k);
        snprintf(err, errlen, "%s: cannot write the key", path);
        return -EIO;
    }
    *out = k;
    return 0;
}

int vapid_load_or_create(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
    if (access(path, F_OK) == 0)
        return load(path, out, err, errlen);
    return create(path, out, err, errlen);
}

/* ---- on PostgreSQL: the key in the database, shared by every node ---- */

/* db_key_keep's maker: a fresh key as PEM text (malloc'ed, NUL-terminated). */
static int make_pem(void *arg, char **value, size_t *len)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n = 0;
    int rc = -EIO;
    (void)arg;
    if (k && b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1 &&
        (n = BIO_get_mem_data(b, &data)) > 0) {
        rc = -ENOMEM;
        if ((*value = malloc((size_t)n + 1))) {
            memcpy(*value, data, (size_t)n);
            (*value)[n] = 0;
            *len = (size_t)n;
            rc = 0;
        }
    }
    if (data && n > 0)
        OPENSSL_cleanse(data, (size_t)n);
    BIO_free(b);
    EVP_PKEY_free(k);
    return rc;
}

static int load_pem(const char *pem, size_t len, EVP_PKEY **out, char *err, size_t errlen)
{
    BIO *b = len <= INT_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!k || !is_p256(k)) {
        EVP_PKEY_free(k);
        snprintf(err, errlen, "%s in the database: not a P-256 private key in PEM",
                 VAPID_KEY_NAME);
        return -EINVAL;
    }
    *out = k;
    return 0;
}

int vapid_keep_in_db(struct db *db, EVP_PKEY **out, char *err, size_t errlen)
{
    char *pem = NULL;
    size_t len = 0;
    int rc = db_key_keep(db, VAPID_KEY_NAME, make_pem, NULL, &pem, &len);
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot keep the key in the database err=%d",
                 VAPID_KEY_NAME, rc);
        return rc;
    }
    rc = load_pem(pem, len, out, err, errlen);
    OPENSSL_cleanse(pem, len);
    free(pem);
    return rc;
}

int vapid_public_raw(EVP_PKEY *key, uint8_t out[ECE_KEY_LEN])
{
    size_t n = 0;
    if (!EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out,
                                         ECE_KEY_LEN, &n) || n != ECE_KEY_LEN)
        return -EIO;
    return 0;
}

int vapid_origin(const char *url, char *out, size_t outlen)
{
    const char *rest;
    int default_port;
    if (strncmp(url, "https://", 8) == 0) {
        rest = url + 8;
        default_port = 443;
    } else if (strncmp(url, "http://", 7) == 0) {
        rest = url + 7;
        default_port = 80;
    } else {
        return -EINVAL;
    }
    size_t hl = strcspn(rest, "/?#");
    if (hl == 0 || memchr(rest, '@', hl))
        return -EINVAL;
    /* A port equal to the scheme's default is not part of the origin. */
    const char *colon = NULL;
    for (size_t i = hl; i > 0; i--) {
        if (rest[i - 1] == ']')
            break;
        if (rest[i - 1] == ':') {
            colon = rest + i - 1;
            break;
        }
    }
    if (colon && atoi(colon + 1) == default_port)
        hl = (size_t)(colon - rest);
    int n = snprintf(out, outlen, "%.*s%.*s", (int)(rest - url), url, (int)hl, rest);
    if (n < 0 || (size_t)n >= outlen)
        return -ENOBUFS;
    for (char *p = out + (rest - url); *p; p++)   /* host names compare lower-case */
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return 0;
}

/* DER ECDSA-Sig-Value -> R || S, each left-padded to 32 bytes. */
static int der_to_jose(const uint8_t *der, size_t len, uint8_t rs[64])
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (!sig)
        return -EINVAL;
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = BN_bn2binpad(r, rs, 32) == 32 && BN_bn2binpad(s, rs + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    return ok ? 0 : -EINVAL;
}

static char *b64u(const void *p, size_t n)
{
    char *s = malloc(base64url_enc_len(n) + 1);
    if (s)
        base64url_encode(p, n, s);
    return s;
}

static int sign_es256(EVP_PKEY *key, const char *input, uint8_t rs[64])
{
    uint8_t der[80];
    size_t dlen = sizeof(der);
    int rc = -EIO;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSign(md, der, &dlen, (const uint8_t *)input, strlen(input)) == 1)
        rc = der_to_jose(der, dlen, rs);
    EVP_MD_CTX_free(md);
    return rc;
}

char *vapid_jwt(EVP_PKEY *key, const char *aud, int64_t exp, const char *sub)
{
    static const char header[] = "{\"typ\":\"JWT\",\"alg\":\"ES256\"}";
    char *claims = NULL, *h64 = NULL, *c64 = NULL, *s64 = NULL, *jwt = NULL;
    uint8_t rs[64];
    cJSON *c = cJSON_CreateObject();

    if (!c || !cJSON_AddStringToObject(c, "aud", aud) ||
        !cJSON_AddNumberToObject(c, "exp", (double)exp) ||
        !cJSON_AddStringToObject(c, "sub", sub))
        goto done;
    if (!(claims = json_print(c)) || !(h64 = b64u(header, strlen(header))) ||
        !(c64 = b64u(claims, strlen(claims))))
        goto done;
    size_t inlen = strlen(h64) + 1 + strlen(c64);
    if (!(jwt = malloc(inlen + 1 + base64url_enc_len(64) + 1)))
        goto done;
    sprintf(jwt, "%s.%s", h64, c64);
    if (sign_es256(key, jwt, rs) < 0 || !(s64 = b64u(rs, sizeof(rs)))) {
        free(jwt);
        jwt = NULL;
        goto done;
    }
    strcat(jwt, ".");
    strcat(jwt, s64);
done:
    cJSON_Delete(c);
    free(claims);
    free(h64);
    free(c64);
    free(s64);
    return jwt;
}
