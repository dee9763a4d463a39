/* util.h: small shared helpers: time, randomness, base64url, growable buffers, JSON
 * field access, token buckets (the checks of text and decimal numbers are in text.h).
 * No state; safe from any thread. */
#ifndef CHATD_UTIL_H
#define CHATD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

int64_t now_ms(void);                 /* wall clock, ms since the epoch */
uint64_t mono_ms(void);               /* monotonic ms */
uint64_t mono_ns(void);               /* monotonic ns */
int  random_bytes(void *buf, size_t len);   /* OpenSSL RAND_bytes; 0 or -EIO */

/* base64url without padding (RFC 4648 section 5). enc writes a NUL-terminated string
 * of base64url_enc_len(n) chars (+1 for NUL). dec accepts no padding and no
 * whitespace; returns the decoded length or -EINVAL. */
size_t base64url_enc_len(size_t n);
size_t base64url_encode(const void *in, size_t n, char *out);
long   base64url_decode(const char *in, size_t n, void *out, size_t outcap);

void hex_encode(const void *in, size_t n, char *out);   /* lower-case, NUL-terminated */
int  hex_digit(int ch);            /* '0'-'9', 'a'-'f', 'A'-'F' -> 0..15; else -1 */
int  ct_equal(const void *a, const void *b, size_t n);  /* constant time: 1 if equal */

/* Usernames (api.md): 3..32 of [a-z0-9_.-], case-folded. Writes the folded name into
 * out (outlen >= n + 1). 0, or -EINVAL when in breaks the rule or does not fit. */
#define USERNAME_MIN 3
#define USERNAME_MAX 32
int  username_fold(const char *in, char *out, size_t outlen);

/* A growable byte buffer with a hard cap: appends past cap fail with -ENOBUFS. */
struct strbuf {
    char  *data;    /* owned; NUL-terminated when len > 0 */
    size_t len, cap, max;
};
void strbuf_init(struct strbuf *b, size_t max);
void strbuf_free(struct strbuf *b);
int  strbuf_append(struct strbuf *b, const void *p, size_t n);
int  strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* JSON field helpers. Return 0 when the field exists with the right type,
 * -ENOENT when missing, -EINVAL when the type is wrong. */
int json_get_str(const cJSON *obj, const char *key, const char **out);
int json_get_i64(const cJSON *obj, const char *key, int64_t *out); /* integral numbers only */
/* NULL unless a JSON object of depth <= 32 with no \u0000 in any string (cJSON would
 * cut the string there). */
cJSON *json_parse_object(const char *s, size_t n);
int    json_has_nul_escape(const char *s, size_t n);     /* 1 when a string holds \u0000 */
char  *json_print(const cJSON *v);                  /* unformatted; free() */

/* Token bucket: rate tokens/s, up to burst. take returns 0, or the ms until a token. */
struct token_bucket { double tokens; uint64_t last_ms; };
int64_t token_bucket_take(struct token_bucket *b, double rate, double burst, uint64_t now);


/* A bounded table of token buckets by string key (client address, user id, username).
 * When full, the least recently used key is forgotten (a forgotten key starts with a
 * full bucket): memory stays bounded whatever the number of clients. Loop thread only. */
struct ratelimit;
int  ratelimit_new(struct ratelimit **out, size_t capacity, double rate, double burst);
void ratelimit_free(struct ratelimit *rl);
/* Takes one token for key. Returns 0 when allowed, else the ms to wait (> 0). */
int64_t ratelimit_take(struct ratelimit *rl, const char *key, uint64_t now_mono_ms);
/* Puts the bucket for key back to full (e.g. after a successful login). */
void ratelimit_reset(struct ratelimit *rl, const char *key);

/* Holders per string key (open connections per client address) for at most max_keys
 * keys; a key is kept while it has a holder. Loop thread only (keycount.c). */
struct keycount;
struct keycount_ent;
int  keycount_new(struct keycount **out, size_t max_keys);
void keycount_free(struct keycount *kc);
/* One more holder of key: 0 with *out to release later; -EBUSY when key has limit
 * holders already, -ENOSPC when max_keys other keys are held, -ENOMEM. */
int  keycount_acquire(struct keycount *kc, const char *key, uint32_t limit,
                      struct keycount_ent **out);
void keycount_release(struct keycount *kc, struct keycount_ent *e);   /* NULL: no-op */
uint32_t keycount_get(struct keycount *kc, const char *key);
size_t keycount_keys(const struct keycount *kc);
#endif
