/* auth_internal.h: the auth module's private interfaces. The module owns the users
 * and refresh-token tables, the RSA signing key and the /v1/auth routes. It checks no
 * bearer token itself: it publishes the public key to the gateway (gateway.c), whose
 * check (chatd/token.h) every protected route and the WebSocket module use.
 *
 * Threads: the parts marked "any thread" (password hashing, token signing, key
 * handling) touch nothing but their arguments and the read-only
 * key, so they run on libuv's thread pool. Everything else runs on the loop thread,
 * except db_job apply/done callbacks, which run on the database writer thread. */
#ifndef CHATD_AUTH_INTERNAL_H
#define CHATD_AUTH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <openssl/evp.h>

#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/module.h"
#include "chatd/db.h"
#include "chatd/http.h"
#include "chatd/token.h"
#include "chatd/util.h"
#include "auth_store.h"
#include "auth_settings.h"

#define AUTH_MOD "auth"
#define AUTH_AUDIENCE TOKEN_AUDIENCE   /* what the gateway's check wants */
#define AUTH_KEY_BITS TOKEN_KEY_BITS_MIN   /* generated keys; loaded keys at least this */

/* Usernames and passwords (api.md "Conventions"). */
#define AUTH_USERNAME_MAX USERNAME_MAX
#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 1024

/* ---- passwords.c (any thread) ------------------------------------------------ */
/* scrypt parameters: N = 2^ln. ln=14, r=8, p=1 costs about 50 ms and 16 MiB here;
 * ln is [auth] password_cost (default 14). The encoded string names its parameters,
 * so changing the cost later only changes new hashes; old ones keep verifying and are
 * rehashed at their next login. */
#define AUTH_SCRYPT_LN 14
#define AUTH_SCRYPT_R 8
#define AUTH_SCRYPT_P 1
#define AUTH_SALT_BYTES 16
#define AUTH_HASH_BYTES 32
#define AUTH_PWHASH_MAX AUTH_STORE_HASH_MAX   /* "$scrypt$ln=..,r=..,p=..$salt$hash" + NUL */

/* Hash with a fresh random salt into out. 0 or negative. */
int auth_password_hash(const char *pw, size_t len, int ln, char *out, size_t outlen);
/* Same with the salt and cost given (tests, and the dummy hash). */
int auth_password_hash_with(const char *pw, size_t len, const uint8_t *salt, size_t saltlen,
                            int ln, int r, int p, char *out, size_t outlen);
/* 1 when pw matches encoded, 0 when not, -EINVAL when encoded is not a hash we know. */
int auth_password_verify(const char *pw, size_t len, const char *encoded);
int auth_password_needs_rehash(const char *encoded, int ln);

/* ---- accounts.c: names --------------------------------------------------------- */
/* Case-folds in into out (AUTH_USERNAME_MAX + 1 bytes) and checks length and
 * alphabet. 0, or -EINVAL with a message for the client in *why. */
int auth_username_normalize(const char *in, char *out, const char **why);
int auth_password_check(const char *pw, size_t len, const char **why);

/* ---- keys.c (any thread once loaded) ------------------------------------------ */
/* Signing runs on contexts copied from the one set up at load: a fresh
 * EVP_DigestSignInit looks the algorithms up in OpenSSL 3's provider store, under its
 * locks, on every call, and parsing the PEM each time (as libjwt does) costs far more.
 * The template is only ever read (copied), so any thread may use it at once. Tokens
 * are verified by the gateway, with the public key from the JWK Set (jwks.c). */
struct auth_key {
    EVP_PKEY *pkey;                    /* owned; the key pair, signs */
    EVP_MD_CTX *sign_tmpl;             /* owned; RS256 signing set up on pkey */
    char *pub_pem;  size_t pub_len;    /* owned; SPKI PEM (what outside verifiers use) */
    char *n_b64;                       /* owned; modulus, base64url */
    char  e_b64[16];                   /* public exponent, base64url */
    char  kid[48];                     /* RFC 7638 thumbprint, base64url SHA-256 */
    int   bits;
};
/* Loads a PEM private key (PKCS#1 or PKCS#8) from memory. */
int  auth_key_from_pem(struct auth_key *k, const char *pem, size_t len,
                       char *err, size_t errlen);
int  auth_key_load(struct auth_key *k, const char *path, char *err, size_t errlen);
/* Writes a new RSA key to path (mode 0600); never replaces an existing file
 * (-EEXIST). */
int  auth_key_generate(const char *path, int bits, char *err, size_t errlen);
/* A new RSA key as PKCS#8 PEM text (malloc'ed, NUL-terminated; the caller cleanses
 * and frees it). */
int  auth_key_generate_pem(int bits, char **pem, size_t *len, char *err, size_t errlen);
/* The configured key file: [auth] key_file, else <data_dir>/jwt.pem. */
int  auth_key_path(const struct chatd_config *cfg, char *out, size_t outlen);
void auth_key_free(struct auth_key *k);

/* ---- jwks.c --------------------------------------------------------------------- */
/* RFC 7638 thumbprint of an RSA public key given as base64url n and e. */
int   auth_jwk_thumbprint(const char *n_b64, const char *e_b64, char *out, size_t outlen);
/* {"keys":[{...}]} for the key; malloc'ed. */
char *auth_jwks_json(const struct auth_key *k);

/* ---- tokens.c (any thread) ----------------------------------------------------- */
/* Signs an RS256 access token, with the claims the gateway's check wants
 * (chatd/token.h); *out is malloc'ed (free()). */
int auth_token_sign(const struct auth_key *k, const char *issuer, int64_t user_id,
                    const char *name, int64_t iat, int ttl, char **out);

/* ---- gateway.c (loop thread) ---------------------------------------------------- */
/* Hands the gateway the JWK Set, directly and as TOPIC_AUTH_KEYS, and the users
 * bound as TOPIC_AUTH_USERS (for a gateway in another process). */
struct auth;
int  auth_gateway_publish_keys(struct auth *a);
void auth_gateway_publish_users(struct auth *a);

/* ---- throttle.c (loop thread) -------------------------------------------------- */
/* Login failures per key (a username, an address or a pair: login_throttle.c): after `limit` failures within a
 * minute the key is locked out for 30 s, doubling with each further lockout up to an
 * hour; the count is forgotten after an hour without failures. Bounded: the least
 * recently used key is forgotten when the table is full. */
struct auth_throttle;
int  auth_throttle_new(struct auth_throttle **out, size_t capacity, int limit);
void auth_throttle_free(struct auth_throttle *t);
/* 0 when key may try now, else the ms until it may. */
int64_t auth_throttle_check(struct auth_throttle *t, const char *key, uint64_t now_ms);
void auth_throttle_fail(struct auth_throttle *t, const char *key, uint64_t now_ms);
void auth_throttle_forget(struct auth_throttle *t, const char *key);
/* 1 when key has a failure in the last hour that the table still remembers. */
int  auth_throttle_seen(struct auth_throttle *t, const char *key, uint64_t now_ms);
/* Tries in flight: begin when a try is admitted, end once its outcome is counted (or
 * it came to nothing). room is 1 while this minute's failures and the tries in flight
 * are below the limit, so that requests sent side by side cannot all start before the
 * first failures are counted. */
void auth_throttle_begin(struct auth_throttle *t, const char *key);
void auth_throttle_end(struct auth_throttle *t, const char *key);
int  auth_throttle_room(struct auth_throttle *t, const char *key, uint64_t now_ms);
int  auth_throttle_pending(struct auth_throttle *t, const char *key);
size_t auth_throttle_size(const struct auth_throttle *t);

/* ---- login_throttle.c (loop thread) --------------------------------------------- */
/* The login throttle (api.md, "Throttling"): failures counted per address (an IPv6
 * address by its /64), per username and per (username, address). A locked address or
 * pair waits. A locked username waits only from addresses that have failed for it, so
 * failures from elsewhere cannot lock its owner out; an address that never failed for
 * it gets one try at a time, and a wrong password there marks the address, which then
 * waits like the others. Tries in flight count against the limits as failures would.
 * Three tables, so that churn in one (many addresses) never evicts the entries of
 * another. */
struct login_throttle {
    struct auth_throttle *by_user, *by_addr, *by_pair;     /* owned */
};
#define LOGIN_THROTTLE_BUSY_MS 1000  /* the wait when tries in flight fill the limit */
int  login_throttle_init(struct login_throttle *lt, size_t capacity, int limit);
void login_throttle_destroy(struct login_throttle *lt);
/* ms to wait before this login may be tried, 0 when now. name NULL: no such user can
 * exist (only the address counts). A try admitted (0) is in flight until
 * login_throttle_settle, which must follow exactly once, whatever came of it. */
int64_t login_throttle_admit(struct login_throttle *lt, const char *name, const char *ip,
                             uint64_t now_ms);
void login_throttle_failed(struct login_throttle *lt, const char *name, const char *ip,
                           uint64_t now_ms);
/* A correct password: the pair's failures are forgotten, and the username's too
 * unless it is locked out (a login from one address ends no lockout of the others). */
void login_throttle_succeeded(struct login_throttle *lt, const char *name, const char *ip,
                              uint64_t now_ms);
void login_throttle_settle(struct login_throttle *lt, const char *name, const char *ip);

/* ---- refresh.c ------------------------------------------------------------------ */
#define AUTH_REFRESH_BYTES 32
#define AUTH_REFRESH_CHARS 43          /* base64url of 32 bytes, no padding */
/* A new random refresh token (text, NUL-terminated) and its SHA-256. */
int  auth_refresh_new(char token[AUTH_REFRESH_CHARS + 1], uint8_t hash[32]);
/* SHA-256 of a presented token; -EINVAL when it cannot be one of ours. */
int  auth_refresh_hash(const char *token, uint8_t hash[32]);

/* ---- the module state (auth_module.c) ------------------------------------------ */
struct auth_metrics {
    uint64_t *logins_ok, *logins_bad, *logins_throttled;
    uint64_t *tokens_issued;
    uint64_t *registrations;
    uint64_t *refresh_ok, *refresh_invalid, *refresh_reused;
    struct metrics_hist *hash_seconds;
};

struct auth {
    struct chatd *app;                 /* not owned */
    struct auth_store store;           /* owned; the users and refresh-token tables */
    struct auth_key key;               /* owned; read-only after init */
    char *jwks;                        /* owned; the JWK Set, built once */
    size_t jwks_len;
    char dummy_hash[AUTH_PWHASH_MAX];  /* verified for unknown users: same time */
    int64_t max_user_id;               /* users are never deleted: 1..max exist */
    struct login_throttle throttle;    /* owned; login failures */
    struct ratelimit *reg_limit;       /* owned; registrations per client address */
    int hashing;                       /* password hashes queued or running */
    int hash_running;                  /* of which handed to the thread pool */
    int hash_parallel;                 /* at most this many there at once */
    int early_sign;                    /* refresh signs while rotating (session.c):
                                          only with more than one core */
    struct auth_op *hash_head, *hash_tail;   /* waiting for a turn, FIFO */
    int inflight;                      /* requests being worked on */
    int draining;
    void (*drain_done)(void *state);
    uv_timer_t *gc_timer;              /* owned (freed by its close callback); deletes
                                          expired refresh tokens hourly */
    struct auth_metrics m;
};

/* Hash jobs allowed at once; past it requests answer 503 (bounded thread-pool queue).
 * Only hash_parallel of them sit in libuv's thread pool at a time, so that database
 * reads of every module, which share that pool, never queue behind a burst of logins. */
#define AUTH_HASHING_MAX 64
#define AUTH_THROTTLE_ENTRIES 16384          /* per login throttle table */
#define AUTH_REG_LIMIT_ENTRIES 16384

/* ---- ops.c: one request's trip through threads --------------------------------- */
/* An operation hops loop -> thread pool / writer -> loop; each stage ends by calling
 * next on the loop with status. Ops are counted so that drain waits for them. */
struct auth_op {
    struct auth *a;
    struct http_req *req;              /* answered exactly once, then NULL */
    int status;                        /* result of the last stage */
    void (*next)(struct auth_op *op);  /* loop thread */
    void (*work_fn)(struct auth_op *op);       /* thread pool */
    int (*apply_fn)(struct auth_op *op, struct db_conn *conn);  /* writer thread */
    int (*read_fn)(struct auth_op *op, struct db_conn *conn);   /* thread pool */
    void (*free_fn)(struct auth_op *op);
    uv_work_t work;
    struct db_job job;
    struct auth_op *hash_next;         /* in the hash queue */
};
/* Counts work in flight; the last end during a drain completes the drain. */
void auth_inflight_begin(struct auth *a);
void auth_inflight_end(struct auth *a);
void auth_op_init(struct auth_op *op, struct auth *a, struct http_req *req,
                  void (*free_fn)(struct auth_op *op));
void auth_op_done(struct auth_op *op);     /* frees it; may finish a drain */
int  auth_op_work(struct auth_op *op, void (*fn)(struct auth_op *),
                  void (*next)(struct auth_op *));
/* Like auth_op_work for a password hash: waits its turn in the module's queue. */
void auth_op_hash(struct auth_op *op, void (*fn)(struct auth_op *),
                  void (*next)(struct auth_op *));
/* Thread-pool slots for hashing: fewer than the pool has, no more than the cores. */
int  auth_hash_parallelism(void);
int  auth_op_write(struct auth_op *op, int (*apply)(struct auth_op *, struct db_conn *),
                   void (*next)(struct auth_op *));
int  auth_op_read(struct auth_op *op, int (*fn)(struct auth_op *, struct db_conn *),
                  void (*next)(struct auth_op *));

/* ---- accounts.c / refresh.c / routes.c (loop thread) --------------------------- */
/* The store of the database's engine (db_engine), its tables migrated. Start-up and
 * CLI only (blocking). */
int  auth_store_open(struct auth_store *s, struct db *db);
/* The module's migrate (module.h): the tables alone, for `chatd migrate-db`. */
int  auth_migrate(struct chatd *app);
/* key_source.c (start-up): loads a->key from [auth] key_file when set; else on SQLite
 * from <data_dir>/jwt.pem and on PostgreSQL from the keys kept in the database
 * (db_key_keep, under the same name), made by the first start either way. */
#define AUTH_KEY_KEPT_NAME "jwt.pem"
int  auth_signing_key_load(struct auth *a);
int  auth_load_max_user_id(struct auth *a);
int  auth_users_start(struct auth *a);     /* bus: users.lookup */
int  auth_routes_start(struct auth *a);    /* routes, and the keys to the gateway */
/* A user known to exist: raises max_user_id, and the gateway's bound with it. */
void auth_note_user(struct auth *a, int64_t id);

/* Sessions (refresh.c): the rules of the refresh tokens on the store's ops. create,
 * rotate and revoke run on the writer thread (in a job's apply), live on a read. */
struct auth_session {
    int64_t user_id;
    char username[AUTH_USERNAME_MAX + 1];
    uint8_t old_hash[32];              /* presented (rotate, revoke) */
    uint8_t new_hash[32];              /* to store (login, rotate) */
    char new_token[AUTH_REFRESH_CHARS + 1];
    int64_t family_id;
    int result;                        /* enum auth_session_result */
};
enum auth_session_result { AUTH_SESSION_OK = 0, AUTH_SESSION_INVALID, AUTH_SESSION_REUSED };
int auth_session_create(const struct auth_store *st, struct db_conn *c, struct auth_session *s,
                        int64_t now_ms, int ttl_s);
int auth_session_rotate(const struct auth_store *st, struct db_conn *c, struct auth_session *s,
                        int64_t now_ms, int ttl_s);
int auth_session_revoke(const struct auth_store *st, struct db_conn *c, struct auth_session *s,
                        int64_t now_ms);
/* 1 with *row when hash is a token a rotation at now_ms would accept (it exists, is
 * unspent and unexpired, its family is not revoked and its user exists), 0 when not,
 * or a negative storage error. Writes nothing but *row. */
int auth_session_live(const struct auth_store *st, struct db_conn *c,
                      const uint8_t hash[AUTH_STORE_TOKEN_HASH], int64_t now_ms,
                      struct auth_token_row *row);

/* ---- cli.c ---------------------------------------------------------------------- */
extern const struct chatd_command auth_commands[];

#endif
