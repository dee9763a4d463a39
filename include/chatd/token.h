/* token.h: the gateway's check of access tokens (RS256 JWTs, RFC 7515 and 7519).
 * Checking a token needs only public keys: the auth module signs, and publishes the
 * public half as a JWK Set (RFC 7517) that the gateway parses once into a key set
 * (gateway_keys_set, or the bus event TOPIC_AUTH_KEYS). A process without the auth
 * module checks tokens the same way once it has that JWK Set.
 *
 * The checks: the header must say RS256 and name a key of the set (no other algorithm
 * is ever tried, so neither "none" nor HS256 keyed with the public key gets through),
 * the signature must verify over the bytes as received, and only then is the payload
 * read, for exp, nbf, iat (TOKEN_LEEWAY_S of skew), iss, aud and sub. */
#ifndef CHATD_TOKEN_H
#define CHATD_TOKEN_H

#include <stddef.h>
#include <stdint.h>

struct chatd;
struct http_user;
struct evp_md_ctx_st;                  /* OpenSSL's EVP_MD_CTX */

#define TOKEN_AUDIENCE "chatd"
#define TOKEN_LEEWAY_S 60              /* clock skew allowed on exp, nbf, iat */
#define TOKEN_MAX 8192                 /* longer bearer tokens are malformed */
#define TOKEN_KEYS_MAX 8               /* keys in one JWK Set (old and new on rotation) */
#define TOKEN_KEY_BITS_MIN 2048
#define TOKEN_CACHE_SLOTS 1024

/* Rejection reasons, also the labels of chatd_token_rejections_total. */
#define TOKEN_REJECT_REASONS(X) \
    X(malformed) X(bad_alg) X(unknown_kid) X(bad_signature) X(expired) \
    X(not_yet_valid) X(bad_issuer) X(bad_audience) X(unknown_user)
enum token_reject {
#define TOKEN_REJECT_ENUM(n) TOKEN_REJECT_##n,
    TOKEN_REJECT_REASONS(TOKEN_REJECT_ENUM)
#undef TOKEN_REJECT_ENUM
    TOKEN_REJECT_COUNT
};
/* A digest context ready to sign or verify once with RS256: a copy of a key's
 * template, set to finish in place (without the flag, OpenSSL 3.0 duplicates the
 * context again at the end so that it could be reused, which we never do). The
 * gateway verifies with it, the auth module signs with it. NULL when out of memory. */
struct evp_md_ctx_st *token_rs256_ctx(const struct evp_md_ctx_st *tmpl);

/* Index of a reason name (TOKEN_REJECT_malformed for one not in the list). */
int token_reject_index(const char *reason);
const char *token_reject_name(int i);

/* ---- token_keys.c: public keys from a JWK Set (read-only once made: any thread) -- */
struct token_keys;
/* Parses {"keys":[{"kty":"RSA","kid","n","e","alg"?:"RS256","use"?:"sig"}...]}.
 * Refuses a set with private members ("d", ...), keys other than RSA of at least
 * TOKEN_KEY_BITS_MIN bits, or more than TOKEN_KEYS_MAX keys: -EINVAL with err set. */
int  token_keys_from_jwks(struct token_keys **out, const char *json, size_t len,
                          char *err, size_t errlen);
void token_keys_free(struct token_keys *k);
int  token_keys_count(const struct token_keys *k);
/* 1 when a and b hold the same keys (kid, n, e) in the same order. */
int  token_keys_same(const struct token_keys *a, const struct token_keys *b);

/* ---- token_verify.c (any thread) ------------------------------------------------- */
/* Checks a bearer token against the keys with the claims rules of api.md. Does not
 * check that the user exists. On failure returns -EACCES with *reason one of the
 * TOKEN_REJECT_* names and *user zeroed. */
int token_verify(const struct token_keys *k, const char *issuer, const char *token,
                 int64_t now_s, struct http_user *user, const char **reason);

/* ---- token_cache.c (loop thread) ------------------------------------------------- */
/* Tokens that passed token_verify, by SHA-256, so that one presented again costs a
 * hash instead of an RSA verification; the expiry is checked on every use. */
struct token_cache;
int  token_cache_new(struct token_cache **out);
void token_cache_free(struct token_cache *c);
void token_cache_clear(struct token_cache *c);    /* the keys changed */
/* token_verify, answered from the cache when it can be (c may be NULL). */
int  token_cache_check(struct token_cache *c, const struct token_keys *k,
                       const char *issuer, const char *token, int64_t now_s,
                       struct http_user *user, const char **reason);

/* ---- token_gateway.c: what the gateway checks with (loop thread) ----------------- */
/* Replaces the gateway's key set with the keys of a JWK Set; the verified-token cache
 * starts over unless the keys are the same. 0, or -EINVAL (err set) and the old keys
 * stay. */
int  gateway_keys_set(struct chatd *app, const char *jwks, size_t len,
                      char *err, size_t errlen);
/* Users 1..max_id exist (users are never deleted): a token for a higher id is
 * refused as unknown_user. Only ever raised. Until it is first set the gateway
 * cannot tell, and checks the token alone. */
void gateway_users_known(struct chatd *app, int64_t max_id);
/* Takes the keys and the users bound from the bus (TOPIC_AUTH_KEYS, TOPIC_AUTH_USERS):
 * how a process without the auth module learns them. After bus_new. */
int  gateway_tokens_subscribe(struct chatd *app);

#endif
