/* keys.c: the RSA key that signs access tokens. Parsed once at load: the key pair
 * signs through a context set up once (see struct auth_key); the gateway verifies with
 * the public half, which it gets as a JWK Set (jwks.c). The JWKS wants n and e, and the key id is the RFC 7638 thumbprint of
 * those, so it stays the same across restarts for the same key file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "chatd/config.h"
#include "chatd/util.h"
#include "auth_internal.h"

#define KEY_FILE_MAX (64 * 1024)

/* Never prompt on a terminal for a passphrase: an encrypted key is an error. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

static void ssl_error(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

/* PEM text of the private (PKCS#8) or public (SPKI) key, malloc'ed, NUL-terminated. */
static char *pem_text(EVP_PKEY *pkey, int priv, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    long n;
    int ok;

    if (!bio)
        return NULL;
    ok = priv ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)
              : PEM_write_bio_PUBKEY(bio, pkey);
    n = BIO_get_mem_data(bio, &data);
    if (ok && n > 0 && (out = malloc((size_t)n + 1))) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
        *len = (size_t)n;
    }
    BIO_free(bio);
    return out;
}

/* RS256: RSASSA-PKCS1-v1_5 (the RSA default padding) over SHA-256. */
static EVP_MD_CTX *rs256_sign_context(EVP_PKEY *pkey)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (!ctx)
        return NULL;
    if (EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, pkey, NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static char *bn_param_b64(EVP_PKEY *pkey, const char *name)
{
    BIGNUM *bn = NULL;
    unsigned char *bin = NULL;
    char *out = NULL;
    int n;

    if (!EVP_PKEY_get_bn_param(pkey, name, &bn))
        return NULL;
    n = BN_num_bytes(bn);
    if (n > 0 && (bin = malloc((size_t)n)) && BN_bn2bin(bn, bin) == n &&
        (out = malloc(base64url_enc_len((size_t)n) + 1)))
        base64url_encode(bin, (size_t)n, out);
    free(bin);
    BN_free(bn);
    return out;
}

int auth_key_from_pem(struct auth_key *k, const char *pem, size_t len, char *err, size_t errlen)
{
    BIO *bio;
    char *e64 = NULL;

    memset(k, 0, sizeof *k);
    if (len > INT32_MAX || !(bio = BIO_new_mem_buf(pem, (int)len)))
        return -ENOMEM;
    k->pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (!k->pkey) {
        ssl_error(err, errlen, "not a PEM private key (or it is encrypted)");
        return -EINVAL;
    }
    if (!EVP_PKEY_is_a(k->pkey, "RSA")) {
        snprintf(err, errlen, "not an RSA key (tokens are signed with RS256)");
        goto invalid;
    }
    k->bits = EVP_PKEY_get_bits(k->pkey);
    if (k->bits < AUTH_KEY_BITS) {
        snprintf(err, errlen, "RSA key of %d bits; at least %d are required",
                 k->bits, AUTH_KEY_BITS);
        goto invalid;
    }
    k->pub_pem = pem_text(k->pkey, 0, &k->pub_len);
    k->sign_tmpl = rs256_sign_context(k->pkey);
    k->n_b64 = bn_param_b64(k->pkey, OSSL_PKEY_PARAM_RSA_N);
    e64 = bn_param_b64(k->pkey, OSSL_PKEY_PARAM_RSA_E);
    if (!k->pub_pem || !k->sign_tmpl || !k->n_b64 || !e64 ||
        strlen(e64) >= sizeof k->e_b64) {
        ssl_error(err, errlen, "cannot read the key's parameters");
        free(e64);
        auth_key_free(k);
        return -ENOMEM;
    }
    strcpy(k->e_b64, e64);
    free(e64);
    if (auth_jwk_thumbprint(k->n_b64, k->e_b64, k->kid, sizeof k->kid) < 0) {
        snprintf(err, errlen, "cannot compute the key id");
        auth_key_free(k);
        return -ENOMEM;
    }
    return 0;
invalid:
    auth_key_free(k);
    return -EINVAL;
}

int auth_key_load(struct auth_key *k, const char *path, char *err, size_t errlen)
{
    char *buf = NULL;
    ssize_t n;
    size_t len = 0;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    buf = malloc(KEY_FILE_MAX + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    while (len < KEY_FILE_MAX && (n = read(fd, buf + len, KEY_FILE_MAX - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto out;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    rc = auth_key_from_pem(k, buf, len, err, errlen);
    if (rc < 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "%s: %s", path, why);
    }
out:
    OPENSSL_cleanse(buf, len);
    free(buf);
    close(fd);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The new name must survive a crash too, or the next start would make another key
 * and every token issued meanwhile would stop verifying. */
static void sync_dir(const char *path)
{
    char dir[CFG_PATH_MAX + 16];
    char *slash;
    int fd;

    snprintf(dir, sizeof dir, "%s", path);
    slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int auth_key_generate_pem(int bits, char **pem, size_t *len, char *err, size_t errlen)
{
    EVP_PKEY *pkey = EVP_RSA_gen((unsigned int)bits);

    *pem = pkey ? pem_text(pkey, 1, len) : NULL;
    EVP_PKEY_free(pkey);
    if (!*pem) {
        ssl_error(err, errlen, "cannot generate an RSA key");
        return -ENOMEM;
    }
    return 0;
}

/* Written to a temporary file first and linked into place: a crash never leaves a
 * half-written key, and link() refuses to replace a key that appeared meanwhile. */
int auth_key_generate(const char *path, int bits, char *err, size_t errlen)
{
    char tmp[CFG_PATH_MAX + 16];
    char *pem = NULL;
    size_t len = 0;
    int fd = -1, rc;

    if (access(path, F_OK) == 0) {
        snprintf(err, errlen, "%s: already exists; not replacing a signing key", path);
        return -EEXIST;
    }
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= sizeof tmp)
        return -ENAMETOOLONG;
    if ((rc = auth_key_generate_pem(bits, &pem, &len, err, errlen)) < 0)
        return rc;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || fchmod(fd, 0600) < 0 || (rc = write_all(fd, pem, len)) < 0 ||
        fsync(fd) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    if (link(tmp, path) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    sync_dir(path);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    OPENSSL_cleanse(pem, len);
    free(pem);
    return rc;
}

void auth_key_free(struct auth_key *k)
{
    EVP_MD_CTX_free(k->sign_tmpl);
    EVP_PKEY_free(k->pkey);
    free(k->pub_pem);
    free(k->n_b64);
    memset(k, 0, sizeof *k);
}
