/* notification_internal.h: the notification module's private interfaces.
 *
 * The pieces, each in its own file:
 *   ece.c           RFC 8291 / RFC 8188 aes128gcm payload encryption (one record)
 *   vapid.c         the VAPID P-256 key (<data_dir>/vapid.pem, or in the database on
 *                   PostgreSQL) and ES256 JWTs (RFC 8292)
 *   netcheck.c      which hosts and addresses a push may go to (no private networks);
 *                   the requests themselves go through core's HTTP client
 *   idset.c         a bounded set of ids on an int64 map (online users, subscribers)
 *   notification_store.h  the tables behind an interface: push subscriptions and
 *                   their health (engines: notification_store_sqlite*.c,
 *                   notification_store_pg*.c)
 *   subscriptions.c the jobs on subscriptions: subscribe, remove, who has any
 *   subs_list.c     GET /v1/push/subscriptions: a user's subscriptions and their health
 *   sub_health.c    failures in a row, failing subscriptions and their removal
 *   routes.c        GET /v1/push/vapid-public-key, GET/POST/DELETE /v1/push/subscriptions
 *   fanout.c        message.stored -> one notification.requested per recipient and channel
 *   push.c          the "notification.push" consumer: encrypt, sign, send
 *   webhook.c       the "notification.webhook" consumer: sign with HMAC, send
 *   drain.c         the drain: waits for work in flight, then closes the client
 *   notification_module.c  the descriptor: init, start, drain, destroy
 */
#ifndef CHATD_NOTIFICATION_INTERNAL_H
#define CHATD_NOTIFICATION_INTERNAL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <uv.h>
#include <cjson/cJSON.h>
#include "chatd/chatd.h"
#include "chatd/bus.h"
#include "chatd/http.h"
#include "chatd/http_client.h"
#include "chatd/i64map.h"
#include "notification_store.h"
#include "notif_settings.h"

#define NOTIF_MOD "notification"

/* ---- ece.c: RFC 8291 (Web Push message encryption), RFC 8188 framing ---- */
#define ECE_KEY_LEN 65          /* uncompressed P-256 point: 0x04 || X || Y */
#define ECE_PRIV_LEN 32
#define ECE_AUTH_LEN 16
#define ECE_SALT_LEN 16
#define ECE_TAG_LEN 16
#define ECE_RECORD_SIZE 4096
#define ECE_HEADER_LEN (ECE_SALT_LEN + 4 + 1 + ECE_KEY_LEN)          /* 86 */
/* One record holds the plaintext, the 0x02 delimiter and the tag. */
#define ECE_MAX_PLAINTEXT (ECE_RECORD_SIZE - ECE_TAG_LEN - 1)       /* 4079 */
#define ECE_OUT_LEN(n) (ECE_HEADER_LEN + (n) + 1 + ECE_TAG_LEN)

/* HKDF-SHA256 (RFC 5869). expand: outlen <= 32 (one block is all RFC 8291 needs). */
int ece_hkdf_extract(const uint8_t *salt, size_t saltlen, const uint8_t *ikm, size_t ikmlen,
                     uint8_t prk[32]);
int ece_hkdf_expand(const uint8_t prk[32], const uint8_t *info, size_t infolen,
                    uint8_t *out, size_t outlen);

/* The keys RFC 8291 derives, exposed for tests against its worked example. */
struct ece_keys {
    uint8_t ecdh_secret[32];
    uint8_t ikm[32];
    uint8_t prk[32];
    uint8_t cek[16];
    uint8_t nonce[12];
    uint8_t as_public[ECE_KEY_LEN];
};

/* 1 when pub is an uncompressed point on P-256, else 0. */
int ece_point_valid(const uint8_t pub[ECE_KEY_LEN]);

/* Encrypts plain for the user agent (ua_public, auth) into out (ECE_OUT_LEN(len) bytes):
 * header (salt, rs = 4096, keyid = the sender's ephemeral public key), then one record
 * (plaintext || 0x02, AES-128-GCM, tag). as_private and salt are normally NULL (fresh
 * key and random salt); tests pass fixed ones. keys (may be NULL) receives the steps.
 * Returns the length written or a negative error (-EINVAL bad key or too long). */
long ece_encrypt(const uint8_t ua_public[ECE_KEY_LEN], const uint8_t auth[ECE_AUTH_LEN],
                 const void *plain, size_t len, const uint8_t *as_private,
                 const uint8_t *salt, uint8_t *out, size_t outcap, struct ece_keys *keys);

/* ---- vapid.c: RFC 8292 ---- */
#define VAPID_TTL_S (12 * 3600)     /* JWT lifetime; push services allow up to 24 h */

/* Loads the P-256 key at path, or makes one (mode 0600) when the file does not exist.
 * Blocking: start-up only. */
int  vapid_load_or_create(const char *path, EVP_PKEY **out, char *err, size_t errlen);
/* On PostgreSQL: the key kept in the database under VAPID_KEY_NAME (made by the first
 * start, shared by every node of the database). Blocking: start-up only. */
#define VAPID_KEY_NAME "vapid.pem"   /* also its file name in data_dir on SQLite */
struct db;
int  vapid_keep_in_db(struct db *db, EVP_PKEY **out, char *err, size_t errlen);
/* The public key as an uncompressed point. */
int  vapid_public_raw(EVP_PKEY *key, uint8_t out[ECE_KEY_LEN]);
/* "scheme://host[:port]" of an http(s) URL, the default port left out (RFC 6454). */
int  vapid_origin(const char *url, char *out, size_t outlen);
/* An ES256 JWT {"typ":"JWT","alg":"ES256"}.{"aud","exp","sub"}: the signature is the
 * raw R || S of JWS (RFC 7518 section 3.4), not DER. malloc'ed string or NULL.
 * Thread-safe (the key is only read). */
char *vapid_jwt(EVP_PKEY *key, const char *aud, int64_t exp, const char *sub);

/* ---- netcheck.c: push endpoints go to the public Internet only ---- */
struct sockaddr;
/* NULL when a push may connect to sa (a globally reachable unicast address), else
 * what it is ("a loopback address"). */
const char *net_addr_refusal(const struct sockaddr *sa);
/* NULL when host (a URL's host, without brackets) may name a push service; else why
 * not ("a private address", "is not a host name"). A name still has to resolve to
 * addresses net_addr_refusal allows. */
const char *net_host_refusal(const char *host);
struct addrinfo;
/* The first address of res (a resolution of host) a push may connect to; NULL when
 * there is none, with why ("h resolves to 10.0.0.5, a private address: ..."). */
const struct addrinfo *net_first_public(const struct addrinfo *res, const char *host,
                                        char *why, size_t whylen);

/* ---- idset.c: a set of positive int64 ids with a value, bounded ---- */
struct idset {
    struct i64map map;          /* id -> val (u64); bound: 3/4 of max rounded up to 2^n */
};
/* Room for initial ids at first; -ENOMEM. */
int  idset_init(struct idset *s, size_t initial, size_t max);
void idset_free(struct idset *s);
/* 0, or -ENOSPC when the set is at its bound (the id is not added). */
int  idset_put(struct idset *s, int64_t id, uint32_t val);
/* 1 and *val (may be NULL) when present. */
int  idset_get(const struct idset *s, int64_t id, uint32_t *val);
void idset_del(struct idset *s, int64_t id);
/* Empties the set, keeping its memory. */
void idset_clear(struct idset *s);

/* ---- the outbound requests: core's HTTP client (chatd/http_client.h) ---- */
/* A push connects only to an address net_first_public allows (the one judged is the
 * one connected to), else fails with OUTBOUND_NOT_PUBLIC. */
#define OUTBOUND_PUBLIC_ONLY 1
#define OUTBOUND_NOT_PUBLIC HTTP_CLIENT_REFUSED
/* The client's settings for push services and webhooks. */
#define NOTIF_MAX_INFLIGHT 64          /* outbound requests at once */
#define NOTIF_MAX_QUEUED 1024          /* waiting for one of them or their origin */
#define NOTIF_CONNS_PER_ORIGIN 8       /* push services and receivers expect a handful */
#define NOTIF_CONNECT_TIMEOUT_MS 10000
#define NOTIF_RESPONSE_TIMEOUT_MS 30000
#define NOTIF_IDLE_PER_ORIGIN 4        /* kept-alive connections per push service */
#define NOTIF_IDLE_MAX 64              /* and in all */
#define NOTIF_IDLE_TIMEOUT_MS 30000    /* push services close theirs after about 60 s */
#define NOTIF_MAX_ANSWER_BODY (64 * 1024)   /* answers are read and dropped */

/* ---- the module state ---- */
struct notif_metrics {
    uint64_t *push_ok, *push_gone, *push_failed, *push_skipped;
    uint64_t *webhook_ok, *webhook_failed;
};

struct notif {
    struct chatd *app;               /* not owned */
    EVP_PKEY *vapid;                 /* owned */
    char vapid_pub_b64[96];          /* base64url of the uncompressed point */
    struct http_client *out;         /* owned: push services and the webhook */
    struct notification_store store; /* owned: the tables (notification_store.h) */
    struct idset online;             /* users with an open WebSocket (presence.changed) */
    struct idset subscribers;        /* users that may have push subscriptions; val = gen */
    struct idset failures;           /* subscription id -> failed attempts in a row seen */
    int subscribers_overflow;        /* set at its bound: every recipient is looked up */
    uint32_t gen;                    /* bumped at each subscribe, see fanout.c */
    int lookups;                     /* subscription lookups in flight (db_read) */
    int prepares;                    /* push deliveries being prepared off-loop */
    int draining, closed;
    int out_closing, out_closed;     /* drain: http_client_close called / finished */
    uv_timer_t drain_timer;
    uv_timer_t health_timer;         /* sub_health.c: drops long-failing subscriptions */
    int health_on;                   /* health_timer initialised */
    void (*drain_done)(void *);
    struct notif_metrics m;
};

#define NOTIF_MAX_LOOKUPS 256        /* fan-out lookups in flight; beyond: bus retry */
#define NOTIF_MAX_PREPARES 256       /* push preparations in flight; beyond: bus retry */
#define NOTIF_SUBS_PER_USER 16       /* more: the oldest subscription is dropped */
#define NOTIF_FAILURES_MAX (1u << 16)   /* failing subscriptions tracked in memory */
#define NOTIF_BODY_CHARS 200
#define NOTIF_PUSH_TTL_S 86400
#define NOTIF_REBUILD_TIMEOUT_MS 10000   /* a replay asking for its message again */

/* subscriptions.c */
_Static_assert(ECE_KEY_LEN == NOTIF_P256DH_LEN && ECE_AUTH_LEN == NOTIF_AUTH_LEN,
               "the store keeps the keys ece.c uses");
/* Init: picks the store's engine (n->store) and brings its tables up to date. */
int  subs_store_open(struct notif *n);
/* The descriptor's migrate: the same migration, alone (chatd migrate-db). */
int  subs_store_migrate(struct chatd *app);
/* Loop thread, at start: fills n->subscribers in the background (until then every
 * offline recipient is looked up). */
int  subs_load_subscribers(struct notif *n);
/* POST /v1/push/subscriptions after validation: stores (or moves, when the endpoint
 * is known) the subscription and answers 201 {"id"}. Answers the request itself. */
void subs_add(struct notif *n, struct http_req *req, const char *endpoint,
              const uint8_t p256dh[ECE_KEY_LEN], const uint8_t auth[ECE_AUTH_LEN]);
/* DELETE /v1/push/subscriptions/{id}: 204, or 404 unless it is the caller's. */
void subs_remove(struct notif *n, struct http_req *req, int64_t id);
/* Loop thread: queue the removal of a subscription (after 404/410). */
void subs_delete_gone(struct notif *n, int64_t sub_id);

/* subs_list.c: GET /v1/push/subscriptions, the caller's subscriptions and their
 * health. Answers the request itself. */
void subs_list(struct notif *n, struct http_req *req);

/* sub_health.c: failing subscriptions. Loop thread. */
/* After an attempt: error NULL for a success (clears a failure state), else the
 * reason; t is what the attempt read. 1 when the subscription is failing now (the
 * attempt is not to be retried or dead-lettered), else 0. */
int  subs_record_outcome(struct notif *n, int64_t sub_id, const struct subs_target *t,
                         const char *error);
/* 1 when this process saw sub_id fail subscription_max_failures times in a row. */
int  subs_is_failing(const struct notif *n, int64_t sub_id);
/* Starts the timer that drops subscriptions failing for longer than
 * [notification] subscription_failing_ttl; health_stop closes it (drain). */
int  subs_health_start(struct notif *n);
void subs_health_stop(struct notif *n);

/* routes.c */
int  notif_routes_add(struct notif *n);

/* fanout.c */
int  notif_on_message_stored(struct bus_delivery *d, struct bus_event *ev, void *ctx);
int  notif_on_presence(struct bus_delivery *d, struct bus_event *ev, void *ctx);
/* Cuts s to at most max code points without splitting one; returns the new length. */
size_t notif_utf8_cut(const char *s, size_t len, size_t max_chars);

/* push.c, webhook.c */
int  push_on_request(struct bus_delivery *d, struct bus_event *ev, void *ctx);
/* The push consumer's dead letter: {"channel","recipient_id","subscription_id",
 * "message_ref":{"id","room_id","seq"}} instead of the whole message. */
cJSON *push_dead_letter(const struct bus_event *ev, void *ctx);
int  webhook_on_request(struct bus_delivery *d, struct bus_event *ev, void *ctx);
/* Builds the push payload for MSG: malloc'ed JSON text. */
struct ev_msg;
char *push_payload(const struct ev_msg *msg);
/* "sha256=<hex>" of HMAC-SHA256(secret, body) into out (at least 72 bytes). */
void webhook_signature(const char *secret, const void *body, size_t len, char *out);

/* drain.c: called when an asynchronous piece of work ends, so a drain can finish once
 * nothing is in flight. */
void notif_work_done(struct notif *n);
/* Starts the drain: done(n) once nothing is in flight and the client is closed, the
 * requests still going after NOTIF_DRAIN_MS cancelled. */
void notif_drain_start(struct notif *n, void (*done)(void *));

#endif
