/* passwords.c: scrypt password hashes through OpenSSL, in a self-describing string
 *   $scrypt$ln=14,r=8,p=1$<salt, base64url>$<hash, base64url>
 * so that the cost can be raised later without breaking existing hashes. Runs on
 * the thread pool (about 50 ms of CPU and 16 MiB each), never on the loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "chatd/util.h"
#include "auth_internal.h"

/* Bounds on what a stored string may ask for: a corrupt or hostile row must not make
 * one login allocate gigabytes. */
#define LN_MIN 10
#define LN_MAX 20
#define R_MAX 32
#define P_MAX 16
#define SALT_MAX 64

static int scrypt_derive(const char *pw, size_t len, const uint8_t *salt, size_t saltlen,
                         int ln, int r, int p, uint8_t *out, size_t outlen)
{
    /* scrypt needs 128 * r * N bytes (plus a little): allow twice that. */
    uint64_t maxmem = 2ull * 128u * (uint64_t)r * (1ull << ln) + (1u << 20);
    if (!EVP_PBE_scrypt(pw, len, salt, saltlen, 1ull << ln, (uint64_t)r, (uint64_t)p,
                        maxmem, out, outlen))
        return -ENOMEM;
    return 0;
}

int auth_password_hash_with(const char *pw, size_t len, const uint8_t *salt, size_t saltlen,
                            int ln, int r, int p, char *out, size_t outlen)
{
    uint8_t dk[AUTH_HASH_BYTES];
    char salt64[(SALT_MAX * 4 + 2) / 3 + 1];
    char dk64[(AUTH_HASH_BYTES * 4 + 2) / 3 + 1];
    int rc;

    if (saltlen == 0 || saltlen > SALT_MAX || ln < LN_MIN || ln > LN_MAX ||
        r < 1 || r > R_MAX || p < 1 || p > P_MAX)
        return -EINVAL;
    rc = scrypt_derive(pw, len, salt, saltlen, ln, r, p, dk, sizeof dk);
    if (rc < 0)
        return rc;
    base64url_encode(salt, saltlen, salt64);
    base64url_encode(dk, sizeof dk, dk64);
    OPENSSL_cleanse(dk, sizeof dk);
    rc = snprintf(out, outlen, "$scrypt$ln=%d,r=%d,p=%d$%s$%s", ln, r, p, salt64, dk64);
    return rc < 0 || (size_t)rc >= outlen ? -ENOBUFS : 0;
}

int auth_password_hash(const char *pw, size_t len, int ln, char *out, size_t outlen)
{
    uint8_t salt[AUTH_SALT_BYTES];
    int rc = random_bytes(salt, sizeof salt);
    if (rc < 0)
        return rc;
    return auth_password_hash_with(pw, len, salt, sizeof salt, ln,
                                   AUTH_SCRYPT_R, AUTH_SCRYPT_P, out, outlen);
}

/* Splits "$scrypt$ln=A,r=B,p=C$SALT$HASH". Returns 0 or -EINVAL. */
static int parse_hash(const char *enc, int *ln, int *r, int *p, uint8_t *salt, long *saltlen,
                      uint8_t *dk, long *dklen)
{
    int used = 0;
    const char *s, *d;

    if (sscanf(enc, "$scrypt$ln=%d,r=%d,p=%d$%n", ln, r, p, &used) != 3 || used == 0)
        return -EINVAL;
    if (*ln < LN_MIN || *ln > LN_MAX || *r < 1 || *r > R_MAX || *p < 1 || *p > P_MAX)
        return -EINVAL;
    s = enc + used;
    d = strchr(s, '$');
    if (!d)
        return -EINVAL;
    *saltlen = base64url_decode(s, (size_t)(d - s), salt, SALT_MAX);
    *dklen = base64url_decode(d + 1, strlen(d + 1), dk, AUTH_HASH_BYTES);
    if (*saltlen <= 0 || *dklen != AUTH_HASH_BYTES)
        return -EINVAL;
    return 0;
}

int auth_password_verify(const char *pw, size_t len, const char *encoded)
{
    uint8_t salt[SALT_MAX], want[AUTH_HASH_BYTES], got[AUTH_HASH_BYTES];
    long saltlen, dklen;
    int ln, r, p, rc, same;

    if (!encoded || parse_hash(encoded, &ln, &r, &p, salt, &saltlen, want, &dklen) < 0)
        return -EINVAL;
    rc = scrypt_derive(pw, len, salt, (size_t)saltlen, ln, r, p, got, sizeof got);
    if (rc < 0)
        return rc;
    same = ct_equal(got, want, sizeof got);
    OPENSSL_cleanse(got, sizeof got);
    return same ? 1 : 0;
}

/* 1 when encoded was made with other parameters than today's: the login that just
 * verified it stores a new hash, so raised costs reach existing users. */
int auth_password_needs_rehash(const char *encoded, int want_ln)
{
    int ln, r, p, used = 0;
    if (sscanf(encoded, "$scrypt$ln=%d,r=%d,p=%d$%n", &ln, &r, &p, &used) != 3 || used == 0)
        return 1;
    return ln != want_ln || r != AUTH_SCRYPT_R || p != AUTH_SCRYPT_P;
}
