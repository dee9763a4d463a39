/* Web Push encryption (RFC 8291) against the worked example of its section 5 /
 * appendix A: with the sender key and salt fixed, every derived key and the whole
 * message must come out byte for byte. */
#include <stdlib.h>
#include <string.h>
#include "chatd/util.h"
#include "test.h"
#include "../../src/modules/notification/notification_internal.h"

#define RFC_PLAINTEXT "When I grow up, I want to be a watermelon"
#define RFC_AS_PRIVATE "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
#define RFC_AS_PUBLIC "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6T" \
                      "lzAC8wEqKK6PBru3jl7A8"
#define RFC_UA_PUBLIC "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPj" \
                      "s7Vd8pZGH6SRpkNtoIAiw4"
#define RFC_AUTH "BTBZMqHH6r4Tts7J_aSIgg"
#define RFC_SALT "DGv6ra1nlYgDCS1FRnbzlw"
#define RFC_ECDH "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs"
#define RFC_PRK_KEY "Snr3JMxaHVDXHWJn5wdC52WjpCtd2EIEGBykDcZW32k"
#define RFC_IKM "S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg"
#define RFC_PRK "09_eUZGrsvxChDCGRCdkLiDXrReGOEVeSCdCcPBSJSc"
#define RFC_CEK "oIhVW04MRdy2XN9CiKLxTg"
#define RFC_NONCE "4h_95klXJ5E_qnoN"
#define RFC_BODY "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZI" \
                 "IgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXz" \
                 "tLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"

static long dec(const char *b64, uint8_t *out, size_t cap)
{
    return base64url_decode(b64, strlen(b64), out, cap);
}

/* Compares bytes with the base64url text the RFC prints. */
static int same_b64(const uint8_t *got, size_t n, const char *want)
{
    char *s = malloc(base64url_enc_len(n) + 1);
    base64url_encode(got, n, s);
    int same = strcmp(s, want) == 0;
    if (!same)
        fprintf(stderr, "  got  %s\n  want %s\n", s, want);
    free(s);
    return same;
}

struct rfc_inputs {
    uint8_t as_priv[32], ua_pub[65], auth[16], salt[16];
};

static void rfc_inputs(struct rfc_inputs *in)
{
    ASSERT_EQ(dec(RFC_AS_PRIVATE, in->as_priv, sizeof(in->as_priv)), 32);
    ASSERT_EQ(dec(RFC_UA_PUBLIC, in->ua_pub, sizeof(in->ua_pub)), 65);
    ASSERT_EQ(dec(RFC_AUTH, in->auth, sizeof(in->auth)), 16);
    ASSERT_EQ(dec(RFC_SALT, in->salt, sizeof(in->salt)), 16);
}

TEST(notif_ece_rfc8291_example_bytes)
{
    struct rfc_inputs in;
    rfc_inputs(&in);
    ASSERT_OK_SO_FAR();
    size_t plen = strlen(RFC_PLAINTEXT);
    uint8_t out[ECE_OUT_LEN(64)];
    long n = ece_encrypt(in.ua_pub, in.auth, RFC_PLAINTEXT, plen, in.as_priv, in.salt, out,
                         sizeof(out), NULL);
    ASSERT_EQ(n, (long)ECE_OUT_LEN(plen));
    ASSERT_EQ(n, 144);
    ASSERT(same_b64(out, (size_t)n, RFC_BODY));
}

TEST(notif_ece_rfc8291_derived_keys)
{
    struct rfc_inputs in;
    struct ece_keys k;
    uint8_t out[ECE_OUT_LEN(64)];
    rfc_inputs(&in);
    ASSERT_OK_SO_FAR();
    ASSERT(ece_encrypt(in.ua_pub, in.auth, RFC_PLAINTEXT, strlen(RFC_PLAINTEXT), in.as_priv,
                       in.salt, out, sizeof(out), &k) > 0);
    ASSERT(same_b64(k.as_public, 65, RFC_AS_PUBLIC));
    ASSERT(same_b64(k.ecdh_secret, 32, RFC_ECDH));
    ASSERT(same_b64(k.ikm, 32, RFC_IKM));
    ASSERT(same_b64(k.prk, 32, RFC_PRK));
    ASSERT(same_b64(k.cek, 16, RFC_CEK));
    ASSERT(same_b64(k.nonce, 12, RFC_NONCE));
}

TEST(notif_ece_hkdf_steps)
{
    /* The first two HKDF steps of RFC 8291 section 3.3, computed one by one. */
    uint8_t auth[16], ecdh[32], prk_key[32], ikm[32], ua[65], as[65];
    uint8_t info[14 + 130];
    ASSERT_EQ(dec(RFC_AUTH, auth, sizeof(auth)), 16);
    ASSERT_EQ(dec(RFC_ECDH, ecdh, sizeof(ecdh)), 32);
    ASSERT_EQ(dec(RFC_UA_PUBLIC, ua, sizeof(ua)), 65);
    ASSERT_EQ(dec(RFC_AS_PUBLIC, as, sizeof(as)), 65);
    ASSERT_EQ(ece_hkdf_extract(auth, 16, ecdh, 32, prk_key), 0);
    ASSERT(same_b64(prk_key, 32, RFC_PRK_KEY));
    memcpy(info, "WebPush: info", 14);   /* with its NUL */
    memcpy(info + 14, ua, 65);
    memcpy(info + 79, as, 65);
    ASSERT_EQ(ece_hkdf_expand(prk_key, info, sizeof(info), ikm, 32), 0);
    ASSERT(same_b64(ikm, 32, RFC_IKM));
    ASSERT(ece_hkdf_expand(prk_key, info, sizeof(info), ikm, 33) < 0);
}

TEST(notif_ece_fresh_key_and_salt_each_time)
{
    struct rfc_inputs in;
    uint8_t a[ECE_OUT_LEN(8)], b[ECE_OUT_LEN(8)];
    rfc_inputs(&in);
    ASSERT_OK_SO_FAR();
    ASSERT_EQ(ece_encrypt(in.ua_pub, in.auth, "12345678", 8, NULL, NULL, a, sizeof(a), NULL),
              (long)sizeof(a));
    ASSERT_EQ(ece_encrypt(in.ua_pub, in.auth, "12345678", 8, NULL, NULL, b, sizeof(b), NULL),
              (long)sizeof(b));
    ASSERT(memcmp(a, b, ECE_SALT_LEN) != 0);                     /* salt */
    ASSERT(memcmp(a + 21, b + 21, ECE_KEY_LEN) != 0);            /* sender key */
    ASSERT_EQ(a[20], 65);
    ASSERT_EQ(a[18], 0x10);                                      /* rs = 4096 */
    ASSERT(ece_point_valid(a + 21));
}

TEST(notif_ece_rejects_bad_input)
{
    struct rfc_inputs in;
    uint8_t out[ECE_OUT_LEN(8)];
    rfc_inputs(&in);
    ASSERT_OK_SO_FAR();
    ASSERT(ece_point_valid(in.ua_pub));
    uint8_t bad[65];
    memcpy(bad, in.ua_pub, 65);
    bad[64] ^= 1;                                                /* off the curve */
    ASSERT(!ece_point_valid(bad));
    ASSERT(ece_encrypt(bad, in.auth, "x", 1, NULL, NULL, out, sizeof(out), NULL) < 0);
    bad[64] ^= 1;
    bad[0] = 0x02;                                               /* compressed tag */
    ASSERT(!ece_point_valid(bad));
    ASSERT(ece_encrypt(in.ua_pub, in.auth, "123456789", 9, NULL, NULL, out, sizeof(out),
                       NULL) < 0);                               /* no room */
    static uint8_t big[ECE_OUT_LEN(ECE_MAX_PLAINTEXT + 1)];
    ASSERT(ece_encrypt(in.ua_pub, in.auth, big, ECE_MAX_PLAINTEXT + 1, NULL, NULL, big,
                       sizeof(big), NULL) < 0);                  /* over one record */
}
