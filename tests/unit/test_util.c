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

#define V(s) utf8_valid(s, sizeof(s) - 1)

TEST(util_utf8)
{
    ASSERT_EQ(V(""), 1);
    ASSERT_EQ(V("plain ascii"), 1);
    ASSERT_EQ(V("h\xc3\xa9llo"), 1);                 /* é */
    ASSERT_EQ(V("\xe2\x82\xac"), 1);                 /* € */
    ASSERT_EQ(V("\xf0\x9f\x98\x80"), 1);             /* U+1F600 */
    ASSERT_EQ(V("\xf4\x8f\xbf\xbf"), 1);             /* U+10FFFF */
    ASSERT_EQ(V("\xed\x9f\xbf"), 1);                 /* U+D7FF */
    ASSERT_EQ(V("\xee\x80\x80"), 1);                 /* U+E000 */
    ASSERT_EQ(utf8_valid("a\0b", 3), 1);             /* NUL is a character */
    ASSERT_EQ(V("\xc0\xaf"), 0);                     /* overlong '/' */
    ASSERT_EQ(V("\xc1\xbf"), 0);                     /* overlong */
    ASSERT_EQ(V("\xe0\x80\xaf"), 0);                 /* overlong 3 bytes */
    ASSERT_EQ(V("\xe0\x9f\xbf"), 0);                 /* overlong 3 bytes, top */
    ASSERT_EQ(V("\xf0\x80\x80\xaf"), 0);             /* overlong 4 bytes */
    ASSERT_EQ(V("\xf0\x8f\xbf\xbf"), 0);             /* overlong 4 bytes, top */
    ASSERT_EQ(V("\xed\xa0\x80"), 0);                 /* U+D800 surrogate */
    ASSERT_EQ(V("\xed\xbf\xbf"), 0);                 /* U+DFFF surrogate */
    ASSERT_EQ(V("\xf4\x90\x80\x80"), 0);             /* U+110000 */
    ASSERT_EQ(V("\xf5\x80\x80\x80"), 0);
    ASSERT_EQ(V("\xff"), 0);
    ASSERT_EQ(V("\x80"), 0);                         /* lone continuation */
    ASSERT_EQ(V("\xc3"), 0);                         /* truncated */
    ASSERT_EQ(V("\xe2\x82"), 0);                     /* truncated */
    ASSERT_EQ(V("\xf0\x9f\x98"), 0);                 /* truncated */
    ASSERT_EQ(V("\xc3\x28"), 0);                     /* bad continuation */
    ASSERT_EQ(V("\xe2\x28\xa1"), 0);
    ASSERT_EQ(V("\xf0\x9f\x98\x28"), 0);
    /* truncation inside the length given, though the bytes continue after it */
    ASSERT_EQ(utf8_valid("\xe2\x82\xac", 2), 0);
}

/* text_check: one row per case, at the edges of each refused range. */
TEST(util_text_check_table)
{
    static const struct { const char *s; unsigned flags; enum text_fault want; } rows[] = {
        { "team", 0, TEXT_OK },
        { "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 0, TEXT_OK }, /* é € U+1F600 */
        { "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", 0, TEXT_OK },           /* Hebrew: RTL text */
        { "\xe2\x80\x8f", 0, TEXT_OK },           /* U+200F RLM: a mark, not an override */
        { "\xe2\x80\xa9", 0, TEXT_OK },           /* U+2029, next to U+202A */
        { "\xe2\x80\xaf", 0, TEXT_OK },           /* U+202F, after U+202E */
        { "\xe2\x81\xa5", 0, TEXT_OK },           /* U+2065, before U+2066 */
        { "\xe2\x81\xaa", 0, TEXT_OK },           /* U+206A, after U+2069 */
        { "\xc2\xa0", 0, TEXT_OK },                /* U+00A0, after the C1 block */
        { "\x7e", 0, TEXT_OK },                     /* '~', before DEL */
        { " ", 0, TEXT_OK },
        { "a\x01", 0, TEXT_CONTROL },
        { "\x1f", 0, TEXT_CONTROL },
        { "a\nb", 0, TEXT_CONTROL },
        { "a\tb", 0, TEXT_CONTROL },
        { "a\rb", 0, TEXT_CONTROL },
        { "\x7f", 0, TEXT_CONTROL },                /* DEL */
        { "\x1b[2J", 0, TEXT_CONTROL },             /* ESC: terminal escapes */
        { "\xc2\x80", 0, TEXT_CONTROL },           /* U+0080 */
        { "x\xc2\x85y", 0, TEXT_CONTROL },         /* U+0085 NEL */
        { "\xc2\x9b", 0, TEXT_CONTROL },           /* U+009B CSI */
        { "\xc2\x9f", 0, TEXT_CONTROL },           /* U+009F */
        { "a\nb\tc", TEXT_ALLOW_LINES, TEXT_OK },
        { "a\r\nb", TEXT_ALLOW_LINES, TEXT_CONTROL },
        { "\x0b", TEXT_ALLOW_LINES, TEXT_CONTROL },   /* vertical tab */
        { "\xc2\x85", TEXT_ALLOW_LINES, TEXT_CONTROL },
        { "\xe2\x80\xaa", 0, TEXT_BIDI },          /* U+202A LRE */
        { "evil\xe2\x80\xae" "exe.txt", 0, TEXT_BIDI }, /* U+202E RLO */
        { "\xe2\x80\xac", TEXT_ALLOW_LINES, TEXT_BIDI }, /* U+202C PDF */
        { "\xe2\x81\xa6", 0, TEXT_BIDI },          /* U+2066 LRI */
        { "\xe2\x81\xa9", 0, TEXT_BIDI },          /* U+2069 PDI */
        { "\xc2", 0, TEXT_NOT_UTF8 },               /* truncated, not a C1 control */
        { "\xe2\x80", 0, TEXT_NOT_UTF8 },
        { "\xc0\x80", 0, TEXT_NOT_UTF8 },           /* overlong NUL */
        { "\xed\xa0\x80", 0, TEXT_NOT_UTF8 },       /* surrogate */
        { "\x80\x85", 0, TEXT_NOT_UTF8 },           /* C1 as raw bytes */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        enum text_fault got = text_check(rows[i].s, strlen(rows[i].s), rows[i].flags);
        if (got != rows[i].want)
            fprintf(stderr, "row %zu: got %d, want %d\n", i, (int)got, (int)rows[i].want);
        ASSERT_EQ(got, rows[i].want);
    }
    ASSERT_EQ(text_check("a\0b", 3, TEXT_ALLOW_LINES), TEXT_CONTROL);   /* NUL */
    ASSERT_EQ(text_check("", 0, 0), TEXT_OK);
}

TEST(util_decimal_parse)
{
    static const struct { const char *s; int ok; int64_t v; } rows[] = {
        { "0", 1, 0 }, { "7", 1, 7 }, { "007", 1, 7 }, { "9007199254740992", 1, JSON_INT_MAX },
        { "9007199254740993", 0, 0 }, { "99999999999999999", 0, 0 },
        { "9223372036854775807", 0, 0 }, { "99999999999999999999999", 0, 0 },
        { "", 0, 0 }, { "-1", 0, 0 }, { "+1", 0, 0 }, { " 1", 0, 0 }, { "1 ", 0, 0 },
        { "1.5", 0, 0 }, { "1e3", 0, 0 }, { "0x10", 0, 0 }, { "abc", 0, 0 },
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int64_t v = -1;
        int rc = decimal_parse(rows[i].s, strlen(rows[i].s), &v);
        if ((rc == 0) != rows[i].ok)
            fprintf(stderr, "row %zu (%s): rc %d\n", i, rows[i].s, rc);
        ASSERT_EQ(rc == 0, rows[i].ok);
        if (rows[i].ok)
            ASSERT_EQ(v, rows[i].v);
    }
    int64_t v;
    ASSERT_EQ(decimal_parse("12,3", 2, &v), 0);        /* only the n bytes given */
    ASSERT_EQ(v, 12);
}

TEST(util_text_fault_messages)
{
    static const char *const m[] = TEXT_FAULT_MESSAGES("name", "");
    ASSERT(m[TEXT_OK] == NULL);
    ASSERT_STR_EQ(m[TEXT_NOT_UTF8], "name is not valid UTF-8");
    ASSERT_STR_EQ(m[TEXT_CONTROL], "name must not hold control characters");
    ASSERT(strstr(m[TEXT_BIDI], "U+202A..U+202E, U+2066..U+2069") != NULL);
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
