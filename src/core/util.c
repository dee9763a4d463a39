/* util.c: small helpers shared by every module (see util.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/rand.h>
#include "chatd/text.h"
#include "chatd/util.h"

/* --- time and randomness ---------------------------------------------------------- */

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t mono_ms(void)
{
    return mono_ns() / 1000000u;
}

int random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    /* RAND_bytes takes an int: feed large requests in pieces. */
    while (len > 0) {
        int n = len > (1u << 30) ? (1 << 30) : (int)len;
        if (RAND_bytes(p, n) != 1)
            return -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* --- base64url, hex, constant-time compare --------------------------------------- */

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t base64url_enc_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t base64url_encode(const void *in, size_t n, char *out)
{
    const unsigned char *s = in;
    size_t o = 0, i = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

long base64url_decode(const char *in, size_t n, void *out, size_t outcap)
{
    unsigned char *d = out;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (n % 4 == 1)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val((unsigned char)in[i]);
        if (v < 0)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == outcap)
                return -EINVAL;
            d[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero: one encoding per byte string. */
    if (acc != 0)
        return -EINVAL;
    return (long)o;
}

int hex_digit(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

void hex_encode(const void *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[s[i] >> 4];
        out[2 * i + 1] = hex[s[i] & 15];
    }
    out[2 * n] = '\0';
}

int ct_equal(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
}

/* --- strbuf ----------------------------------------------------------------------- */

int username_fold(const char *in, char *out, size_t outlen)
{
    size_t n = in ? strlen(in) : 0;

    if (n < USERNAME_MIN || n > USERNAME_MAX || n >= outlen)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return -EINVAL;
        out[i] = c;
    }
    out[n] = '\0';
    return 0;
}

void strbuf_init(struct strbuf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    /* One byte is always kept for the NUL: a cap of SIZE_MAX would wrap. */
    b->max = max < SIZE_MAX / 2 ? max : SIZE_MAX / 2;
}

void strbuf_free(struct strbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Makes room for n more bytes plus the NUL. */
static int strbuf_reserve(struct strbuf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return -ENOBUFS;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int strbuf_append(struct strbuf *b, const void *p, size_t n)
{
    int rc = strbuf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof(small))
        return strbuf_append(b, small, (size_t)n);
    int rc = strbuf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* --- JSON ------------------------------------------------------------------------- */

int json_get_str(const cJSON *obj, const char *key, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return -ENOENT;
    if (!cJSON_IsString(v) || !v->valuestring)
        return -EINVAL;
    *out = v->valuestring;
    return 0;
}

int json_get_i64(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return -ENOENT;
    if (!cJSON_IsNumber(v))
        return -EINVAL;
    double d = v->valuedouble;
    /* Past 2^53 a double no longer holds every integer: refuse rather than round. */
    if (!isfinite(d) || d != floor(d) || fabs(d) > (double)JSON_INT_MAX)
        return -EINVAL;
    *out = (int64_t)d;
    return 0;
}

#define JSON_DEPTH_MAX 32

/* cJSON recurses once per nesting level (up to 1000): count brackets outside strings
 * first, so hostile input is refused before it reaches the parser. */
static int json_depth_ok(const char *s, size_t n)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > JSON_DEPTH_MAX)
                return 0;
        } else if (c == '}' || c == ']') {
            if (--depth < 0)
                return 0;   /* not JSON anyway */
        }
    }
    return 1;
}

int json_has_nul_escape(const char *s, size_t n)
{
    /* In valid JSON a backslash only appears inside strings and always starts an
     * escape, so walking escape by escape finds every \u0000 and nothing else. */
    for (size_t i = 0; s && i + 1 < n; i++) {
        if (s[i] != '\\')
            continue;
        if (s[i + 1] == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0)
            return 1;
        i++;                         /* skip the escaped character */
    }
    return 0;
}

cJSON *json_parse_object(const char *s, size_t n)
{
    const char *end = NULL;

    /* cJSON keeps strings NUL-terminated: "zz\u0000a" would come out as "zz", so two
     * different client_msg_ids, passwords or names could meet as one. */
    if (!s || !json_depth_ok(s, n) || json_has_nul_escape(s, n))
        return NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if (!v)
        return NULL;
    if (!cJSON_IsObject(v))
        goto fail;
    /* Only whitespace may follow the object. */
    for (; end && end < s + n; end++)
        if (*end != ' ' && *end != '\t' && *end != '\r' && *end != '\n' && *end != '\0')
            goto fail;
    return v;
fail:
    cJSON_Delete(v);
    return NULL;
}

char *json_print(const cJSON *v)
{
    return cJSON_PrintUnformatted(v);
}

/* --- token buckets ---------------------------------------------------------------- */

/* A zeroed bucket is a full one: callers need no initialisation. */
int64_t token_bucket_take(struct token_bucket *b, double rate, double burst, uint64_t now)
{
    if (b->last_ms == 0 && b->tokens == 0) {
        b->tokens = burst;
    } else if (now > b->last_ms) {
        b->tokens += (double)(now - b->last_ms) * rate / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
    }
    if (now > b->last_ms || b->last_ms == 0)
        b->last_ms = now;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        if (b->tokens == 0 && b->last_ms == 0)
            b->last_ms = 1;   /* keep "empty" apart from "never used" */
        return 0;
    }
    if (rate <= 0)
        return INT64_MAX / 2;
    int64_t wait = (int64_t)ceil((1.0 - b->tokens) * 1000.0 / rate);
    return wait > 0 ? wait : 1;
}
