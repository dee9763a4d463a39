/* Tests for util.c and ratelimit.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include "chatd/util.h"
#include "test.h"

TEST(util_base64url_rfc4648)
{
    /* RFC 4648 section 10 vectors, without padding. */
    static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const enc[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE",
                                       "Zm9vYmFy" };
    char out[64];
    unsigned char dec[64];
    for (int i = 0; i < 7; i++) {
        size_t n = strlen(plain[i]);
        ASSERT_EQ(base64url_enc_len(n), strlen(enc[i]));
        ASSERT_EQ(base64url_encode(plain[i], n, out), strlen(enc[i]));
        ASSERT_STR_EQ(out, enc[i]);
        ASSERT_EQ(base64url_decode(enc[i], strlen(enc[i]), dec, sizeof(dec)), (long)n);
        ASSERT(memcmp(dec, plain[i], n) == 0);
    }
}

TEST(util_base64url_alphabet_and_errors)
{
    unsigned char in[] = { 0xfb, 0xff, 0xbf };
    char out[8];
    unsigned char dec[8];
    base64url_encode(in, 3, out);
    ASSERT_STR_EQ(out, "-_-_");
    ASSERT_EQ(base64url_decode("-_-_", 4, dec, sizeof(dec)), 3);
    ASSERT(memcmp(dec, in, 3) == 0);
    ASSERT_EQ(base64url_decode("Zg==", 4, dec, sizeof(dec)), -EINVAL);  /* padding */
    ASSERT_EQ(base64url_decode("+/+/", 4, dec, sizeof(dec)), -EINVAL);  /* std alphabet */
    ASSERT_EQ(base64url_decode("Zm 9", 4, dec, sizeof(dec)), -EINVAL);  /* whitespace */
    ASSERT_EQ(base64url_decode("Z", 1, dec, sizeof(dec)), -EINVAL);     /* impossible length */
    ASSERT_EQ(base64url_decode("Zh", 2, dec, sizeof(dec)), -EINVAL);    /* non-zero tail bits */
    ASSERT_EQ(base64url_decode("Zm9vYmFy", 8, dec, 5), -EINVAL);        /* no room */
}

TEST(util_hex_and_ct_equal)
{
    char out[16];
    hex_encode("\x00\xab\xff", 3, out);
    ASSERT_STR_EQ(out, "00abff");
    ASSERT_EQ(ct_equal("abc", "abc", 3), 1);
    ASSERT_EQ(ct_equal("abc", "abd", 3), 0);
    ASSERT_EQ(ct_equal("", "", 0), 1);
}

TEST(util_random_bytes)
{
    unsigned char a[32] = { 0 }, b[32] = { 0 };
    ASSERT_EQ(random_bytes(a, sizeof(a)), 0);
    ASSERT_EQ(random_bytes(b, sizeof(b)), 0);
    ASSERT(memcmp(a, b, sizeof(a)) != 0);
}

TEST(util_time)
{
    ASSERT(now_ms() > 1700000000000LL);
    uint64_t a = mono_ns(), b = mono_ns();
    ASSERT(b >= a);
    ASSERT(mono_ms() >= a / 1000000);
}

TEST(util_strbuf_caps)
{
    struct strbuf b;
    strbuf_init(&b, 10);
    ASSERT_EQ(strbuf_append(&b, "hello", 5), 0);
    ASSERT_EQ(strbuf_printf(&b, "%d", 12345), 0);
    ASSERT_EQ(b.len, 10);
    ASSERT_STR_EQ(b.data, "hello12345");
    ASSERT_EQ(strbuf_append(&b, "x", 1), -ENOBUFS);
    ASSERT_EQ(strbuf_printf(&b, "x"), -ENOBUFS);
    ASSERT_EQ(b.len, 10);
    ASSERT_STR_EQ(b.data, "hello12345");
    strbuf_free(&b);

    /* "no limit" must not wrap the capacity computation */
    strbuf_init(&b, SIZE_MAX);
    ASSERT_EQ(strbuf_append(&b, "unbounded", 9), 0);
    ASSERT_STR_EQ(b.data, "unbounded");
    strbuf_free(&b);

    /* long printf (past the small stack buffer) */
    strbuf_init(&b, 100000);
    char big[1000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ASSERT_EQ(strbuf_printf(&b, "<%s>", big), 0);
    ASSERT_EQ(b.len, 1001);
    ASSERT_EQ(b.data[0], '<');
    ASSERT_EQ(b.data[1000], '>');
    ASSERT_EQ(b.data[1001], '\0');
    strbuf_free(&b);

    strbuf_init(&b, 0);
    ASSERT_EQ(strbuf_append(&b, "", 0), 0);
    ASSERT_EQ(strbuf_append(&b, "a", 1), -ENOBUFS);
    strbuf_free(&b);
}

static char *nested(int depth)
{
    char *s = malloc((size_t)depth * 6 + 16);
    size_t o = 0;
    for (int i = 0; i < depth; i++)
        o += (size_t)sprintf(s + o, i == 0 ? "{" : "\"a\":{");
    for (int i = 0; i < depth; i++)
        s[o++] = '}';
    s[o] = '\0';
    return s;
}

TEST(util_json_depth)
{
    char *ok = nested(32), *deep = nested(33), *huge = nested(5000);
    cJSON *v = json_parse_object(ok, strlen(ok));
    int good = v != NULL;
    cJSON_Delete(v);
    v = json_parse_object(deep, strlen(deep));
    int bad = v == NULL;
    cJSON_Delete(v);
    v = json_parse_object(huge, strlen(huge));
    int bad2 = v == NULL;
    cJSON_Delete(v);
    free(ok);
    free(deep);
    free(huge);
    ASSERT(good);
    ASSERT(bad);
    ASSERT(bad2);

    /* brackets inside strings do not count */
    char s[400] = "{\"a\":\"";
    for (int i = 0; i < 100; i++)
        strcat(s, "[{");
    strcat(s, "\\\"\"}");
    v = json_parse_object(s, strlen(s));
    ASSERT(v != NULL);
    cJSON_Delete(v);
}

TEST(util_json_parse_object)
{
    cJSON *v;
    ASSERT((v = json_parse_object("[1]", 3)) == NULL);
    ASSERT((v = json_parse_object("1", 1)) == NULL);
    ASSERT((v = json_parse_object("{} x", 4)) == NULL);
    ASSERT((v = json_parse_object("{\"a\":", 5)) == NULL);
    ASSERT((v = json_parse_object("", 0)) == NULL);
    /* \u0000 would cut the string short in cJSON: refused; an escaped backslash
     * followed by "u0000" is text */
    const char *nul = "{\"a\":\"zz\\u0000x\"}", *text = "{\"a\":\"z\\\\u0000x\"}";
    ASSERT((v = json_parse_object(nul, strlen(nul))) == NULL);
    ASSERT(json_has_nul_escape(nul, strlen(nul)) == 1);
    ASSERT(json_has_nul_escape(text, strlen(text)) == 0);
    ASSERT(json_has_nul_escape("\"\\u00001\"", 9) == 1);
    ASSERT(json_has_nul_escape("\"\\u0001\"", 8) == 0);
    ASSERT((v = json_parse_object(text, strlen(text))) != NULL);
    ASSERT_STR_EQ(cJSON_GetObjectItem(v, "a")->valuestring, "z\\u0000x");
    cJSON_Delete(v);
    /* the length is respected: no reading past n */
    ASSERT((v = json_parse_object("{}garbage", 2)) != NULL);
    cJSON_Delete(v);
    ASSERT((v = json_parse_object(" {\"s\":\"x\",\"n\":42,\"f\":1.5,\"big\":1e300} \n", 40))
           != NULL);
    const char *str;
    int64_t n;
    ASSERT_EQ(json_get_str(v, "s", &str), 0);
    ASSERT_STR_EQ(str, "x");
    ASSERT_EQ(json_get_str(v, "n", &str), -EINVAL);
    ASSERT_EQ(json_get_str(v, "missing", &str), -ENOENT);
    ASSERT_EQ(json_get_i64(v, "n", &n), 0);
    ASSERT_EQ(n, 42);
    ASSERT_EQ(json_get_i64(v, "f", &n), -EINVAL);
    ASSERT_EQ(json_get_i64(v, "big", &n), -EINVAL);
    ASSERT_EQ(json_get_i64(v, "s", &n), -EINVAL);
    ASSERT_EQ(json_get_i64(v, "missing", &n), -ENOENT);
    char *p = json_print(v);
    ASSERT_STR_EQ(p, "{\"s\":\"x\",\"n\":42,\"f\":1.5,\"big\":1e+300}");
    free(p);
    cJSON_Delete(v);
}

TEST(util_token_bucket)
{
    struct token_bucket b = { 0 };
    uint64_t t = 1000;
    /* starts full: burst 3 */
    ASSERT_EQ(token_bucket_take(&b, 2, 3, t), 0);
    ASSERT_EQ(token_bucket_take(&b, 2, 3, t), 0);
    ASSERT_EQ(token_bucket_take(&b, 2, 3, t), 0);
    /* empty: at 2 tokens/s the next one is 500 ms away */
    ASSERT_EQ(token_bucket_take(&b, 2, 3, t), 500);
    ASSERT_EQ(token_bucket_take(&b, 2, 3, t + 250), 250);
    ASSERT_EQ(token_bucket_take(&b, 2, 3, t + 500), 0);
    /* refills at most to burst */
    t += 100000;
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(token_bucket_take(&b, 2, 3, t), 0);
    ASSERT(token_bucket_take(&b, 2, 3, t) > 0);
    /* time going backwards does not mint tokens */
    ASSERT(token_bucket_take(&b, 2, 3, t - 5000) > 0);
}

TEST(util_ratelimit_basic)
{
    struct ratelimit *rl;
    ASSERT_EQ(ratelimit_new(&rl, 4, 1, 2), 0);
    ASSERT_EQ(ratelimit_take(rl, "a", 1000), 0);
    ASSERT_EQ(ratelimit_take(rl, "a", 1000), 0);
    ASSERT_EQ(ratelimit_take(rl, "a", 1000), 1000);
    ASSERT_EQ(ratelimit_take(rl, "b", 1000), 0);   /* keys are independent */
    ratelimit_reset(rl, "a");
    ASSERT_EQ(ratelimit_take(rl, "a", 1000), 0);
    ratelimit_reset(rl, "never-seen");
    ratelimit_free(rl);
    ASSERT_EQ(ratelimit_new(&rl, 0, 1, 1), -EINVAL);
}

TEST(util_ratelimit_eviction)
{
    struct ratelimit *rl;
    char key[32];
    ASSERT_EQ(ratelimit_new(&rl, 3, 1, 1), 0);
    /* drain a, b, c */
    ASSERT_EQ(ratelimit_take(rl, "a", 1000), 0);
    ASSERT_EQ(ratelimit_take(rl, "b", 1000), 0);
    ASSERT_EQ(ratelimit_take(rl, "c", 1000), 0);
    ASSERT(ratelimit_take(rl, "a", 1000) > 0);      /* a is now most recent */
    ASSERT_EQ(ratelimit_take(rl, "d", 1000), 0);    /* evicts b, the least recent */
    ASSERT_EQ(ratelimit_take(rl, "b", 1000), 0);    /* b forgotten: full again; evicts c */
    ASSERT(ratelimit_take(rl, "a", 1000) > 0);      /* a survived both evictions */
    ASSERT(ratelimit_take(rl, "d", 1000) > 0);
    ASSERT_EQ(ratelimit_take(rl, "c", 1000), 0);    /* c was evicted */
    /* many distinct keys: memory stays bounded and nothing breaks */
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ASSERT_EQ(ratelimit_take(rl, key, 2000), 0);
    }
    ASSERT(ratelimit_take(rl, "k9999", 2000) > 0);
    ratelimit_free(rl);
}

TEST(util_keycount_limit_and_release)
{
    struct keycount *kc;
    struct keycount_ent *e[4];

    ASSERT_EQ(keycount_new(&kc, 100), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(keycount_acquire(kc, "10.0.0.1", 3, &e[i]), 0);
    ASSERT_EQ(keycount_acquire(kc, "10.0.0.1", 3, &e[3]), -EBUSY);
    ASSERT_EQ(keycount_get(kc, "10.0.0.1"), 3);
    keycount_release(kc, e[0]);
    ASSERT_EQ(keycount_acquire(kc, "10.0.0.1", 3, &e[0]), 0);
    for (int i = 0; i < 3; i++)
        keycount_release(kc, e[i]);
    ASSERT_EQ(keycount_get(kc, "10.0.0.1"), 0);
    ASSERT_EQ(keycount_keys(kc), 0);   /* a key without holders is gone */
    keycount_free(kc);
}

/* Full: a new key is refused, known keys go on counting, and a key whose last holder
 * left makes room again. Thousands of keys, so the slots grow meanwhile. */
TEST(util_keycount_bounded)
{
    enum { N = 5000 };
    struct keycount *kc;
    struct keycount_ent **e = calloc(N, sizeof(*e)), *x, *y;
    char key[32];

    ASSERT(e);
    ASSERT_EQ(keycount_new(&kc, N), 0);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "fd00::%d", i);
        ASSERT_EQ(keycount_acquire(kc, key, 10, &e[i]), 0);
    }
    ASSERT_EQ(keycount_keys(kc), N);
    ASSERT_EQ(keycount_acquire(kc, "fd00::new", 10, &x), -ENOSPC);
    ASSERT_EQ(keycount_acquire(kc, "fd00::7", 10, &x), 0);
    ASSERT_EQ(keycount_get(kc, "fd00::7"), 2);
    keycount_release(kc, x);
    keycount_release(kc, e[42]);
    ASSERT_EQ(keycount_acquire(kc, "fd00::new", 10, &y), 0);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "fd00::%d", i);
        ASSERT_EQ(keycount_get(kc, key), i == 42 ? 0u : 1u);
    }
    keycount_release(kc, NULL);
    keycount_free(kc);
    free(e);
}
