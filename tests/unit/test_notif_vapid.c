/* VAPID (RFC 8292): the key file (or the key kept in the database on PostgreSQL), the
 * public key encoding and the ES256 JWT. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/ec.h>
#include "chatd/util.h"
#include "engine_db_fixture.h"
#include "test.h"
#include "../../src/modules/notification/notification_internal.h"

static void tmp_key_path(char *dir, size_t dlen, char *path, size_t plen)
{
    snprintf(dir, dlen, "/tmp/chatd-vapid-XXXXXX");
    if (!mkdtemp(dir))
        dir[0] = 0;
    snprintf(path, plen, "%s/vapid.pem", dir);
}

TEST(notif_vapid_key_made_once_mode_0600)
{
    char dir[64], path[128], err[256];
    uint8_t a[65], b[65];
    EVP_PKEY *k1 = NULL, *k2 = NULL;
    struct stat st;
    tmp_key_path(dir, sizeof(dir), path, sizeof(path));
    ASSERT(dir[0]);
    ASSERT_EQ(vapid_load_or_create(path, &k1, err, sizeof(err)), 0);
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT_EQ(vapid_load_or_create(path, &k2, err, sizeof(err)), 0);
    ASSERT_EQ(vapid_public_raw(k1, a), 0);
    ASSERT_EQ(vapid_public_raw(k2, b), 0);
    ASSERT(memcmp(a, b, 65) == 0);
    ASSERT_EQ(a[0], 0x04);
    ASSERT(ece_point_valid(a));
    /* base64url of the uncompressed point: 87 characters, no padding. */
    char s[96];
    ASSERT_EQ(base64url_encode(a, 65, s), 87);
    ASSERT(strchr(s, '=') == NULL && strchr(s, '+') == NULL && strchr(s, '/') == NULL);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    unlink(path);
    rmdir(dir);
}

TEST(notif_vapid_rejects_other_keys)
{
    char dir[64], path[128], err[256];
    EVP_PKEY *k = NULL;
    tmp_key_path(dir, sizeof(dir), path, sizeof(path));
    FILE *f = fopen(path, "w");
    ASSERT(f);
    fputs("not a key\n", f);
    fclose(f);
    ASSERT(vapid_load_or_create(path, &k, err, sizeof(err)) < 0);
    ASSERT(strstr(err, "P-256") != NULL);
    unlink(path);
    rmdir(dir);
}

/* ---- on PostgreSQL: the key in the database ---- */

struct keeper {
    struct db *db;
    EVP_PKEY *key;
    char err[256];
    int rc;
};

static void *keep(void *arg)
{
    struct keeper *k = arg;
    k->rc = vapid_keep_in_db(k->db, &k->key, k->err, sizeof(k->err));
    return NULL;
}

static int same_public_key(EVP_PKEY *a, EVP_PKEY *b)
{
    uint8_t pa[65], pb[65];
    return vapid_public_raw(a, pa) == 0 && vapid_public_raw(b, pb) == 0 &&
           memcmp(pa, pb, sizeof(pa)) == 0 && ece_point_valid(pa);
}

/* Two nodes starting at once on one database: one key made, both sign with it; a
 * later start reads the same one. */
TEST(notif_vapid_key_in_db_shared)
{
    struct fx f;
    struct fx_db d;
    struct keeper a = {0}, b = {0}, later = {0};
    pthread_t ta, tb;
    if (!pg_test_server())
        return;
    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_db_open(&f, &d, FX_PG), 0);
    a.db = f.app.db;
    ASSERT_EQ(fx_db_open_again(&f, &d, &b.db), 0);
    ASSERT_EQ(pthread_create(&ta, NULL, keep, &a), 0);
    ASSERT_EQ(pthread_create(&tb, NULL, keep, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    later.db = b.db;
    keep(&later);
    db_close(b.db);
    int shared = a.rc == 0 && b.rc == 0 && later.rc == 0 &&
                 same_public_key(a.key, b.key) && same_public_key(a.key, later.key);
    EVP_PKEY_free(a.key);
    EVP_PKEY_free(b.key);
    EVP_PKEY_free(later.key);
    fx_stop(&f);
    fx_db_drop(&d);
    ASSERT(shared);
}

static int make_junk(void *arg, char **value, size_t *len)
{
    (void)arg;
    *value = strdup("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
    *len = *value ? strlen(*value) : 0;
    return *value ? 0 : -ENOMEM;
}

/* Whatever was stored under the name must be a P-256 key: anything else stops the
 * start with a message saying so, and is not replaced. */
TEST(notif_vapid_key_in_db_rejects_others)
{
    struct fx f;
    struct fx_db d;
    char err[256] = "", *v = NULL;
    size_t len = 0;
    EVP_PKEY *k = NULL;
    if (!pg_test_server())
        return;
    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_db_open(&f, &d, FX_PG), 0);
    int kept = db_key_keep(f.app.db, VAPID_KEY_NAME, make_junk, NULL, &v, &len);
    free(v);
    int rc = vapid_keep_in_db(f.app.db, &k, err, sizeof(err));
    int again = vapid_keep_in_db(f.app.db, &k, err, sizeof(err));
    fx_stop(&f);
    fx_db_drop(&d);
    ASSERT_EQ(kept, 0);
    ASSERT_EQ(rc, -EINVAL);
    ASSERT_EQ(again, -EINVAL);
    ASSERT(k == NULL);
    ASSERT(strstr(err, "P-256") != NULL && strstr(err, VAPID_KEY_NAME) != NULL);
}

/* On SQLite the key stays a file: the database keeps none. */
TEST(notif_vapid_key_not_in_sqlite)
{
    struct fx f;
    struct fx_db d;
    char err[256] = "";
    EVP_PKEY *k = NULL;
    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_db_open(&f, &d, FX_SQLITE), 0);
    int rc = vapid_keep_in_db(f.app.db, &k, err, sizeof(err));
    fx_stop(&f);
    ASSERT_EQ(rc, -ENOTSUP);
    ASSERT(k == NULL && err[0]);
}

TEST(notif_vapid_origin)
{
    char o[128];
    ASSERT_EQ(vapid_origin("https://fcm.googleapis.com/fcm/send/abc", o, sizeof(o)), 0);
    ASSERT_STR_EQ(o, "https://fcm.googleapis.com");
    ASSERT_EQ(vapid_origin("https://Push.Example.NET:443/x?y", o, sizeof(o)), 0);
    ASSERT_STR_EQ(o, "https://push.example.net");
    ASSERT_EQ(vapid_origin("https://127.0.0.1:8443/push/1", o, sizeof(o)), 0);
    ASSERT_STR_EQ(o, "https://127.0.0.1:8443");
    ASSERT_EQ(vapid_origin("https://[::1]:9000/p", o, sizeof(o)), 0);
    ASSERT_STR_EQ(o, "https://[::1]:9000");
    ASSERT_EQ(vapid_origin("http://localhost:80", o, sizeof(o)), 0);
    ASSERT_STR_EQ(o, "http://localhost");
    ASSERT(vapid_origin("ftp://x/y", o, sizeof(o)) < 0);
    ASSERT(vapid_origin("https:///y", o, sizeof(o)) < 0);
    ASSERT(vapid_origin("https://user@host/y", o, sizeof(o)) < 0);
}

/* Verifies a JOSE R || S signature with OpenSSL by turning it back into DER. */
static int verify_es256(EVP_PKEY *key, const char *input, size_t inlen, const uint8_t rs[64])
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, 32, NULL), *s = BN_bin2bn(rs + 32, 32, NULL);
    ECDSA_SIG_set0(sig, r, s);
    unsigned char *der = NULL;
    int dlen = i2d_ECDSA_SIG(sig, &der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestVerify(md, der, (size_t)dlen, (const uint8_t *)input, inlen) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    return ok;
}

static cJSON *decode_part(const char *p, size_t n)
{
    char buf[512];
    long len = base64url_decode(p, n, buf, sizeof(buf) - 1);
    if (len < 0)
        return NULL;
    buf[len] = 0;
    return cJSON_Parse(buf);
}

TEST(notif_vapid_jwt_structure_and_signature)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ASSERT(k);
    char *jwt = vapid_jwt(k, "https://push.example.net", 1700000000, "mailto:ops@example.com");
    ASSERT(jwt);
    char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    ASSERT(d1 && d2 && !strchr(d2 + 1, '.'));
    cJSON *h = decode_part(jwt, (size_t)(d1 - jwt));
    cJSON *c = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
    ASSERT(h && c);
    ASSERT_STR_EQ(cJSON_GetObjectItem(h, "alg")->valuestring, "ES256");
    ASSERT_STR_EQ(cJSON_GetObjectItem(h, "typ")->valuestring, "JWT");
    ASSERT_STR_EQ(cJSON_GetObjectItem(c, "aud")->valuestring, "https://push.example.net");
    ASSERT_STR_EQ(cJSON_GetObjectItem(c, "sub")->valuestring, "mailto:ops@example.com");
    ASSERT_EQ((long long)cJSON_GetObjectItem(c, "exp")->valuedouble, 1700000000LL);
    uint8_t rs[80];
    ASSERT_EQ(base64url_decode(d2 + 1, strlen(d2 + 1), rs, sizeof(rs)), 64);  /* not DER */
    ASSERT(verify_es256(k, jwt, (size_t)(d2 - jwt), rs));
    rs[10] ^= 1;
    ASSERT(!verify_es256(k, jwt, (size_t)(d2 - jwt), rs));
    cJSON_Delete(h);
    cJSON_Delete(c);
    free(jwt);
    EVP_PKEY_free(k);
}
