/* The gateway's token check with nothing but a JWK Set: the auth module's key signs a
 * token and is freed before anything is checked, so no state of the auth module is
 * left. The check accepts the token and refuses a tampered one, one of another key,
 * alg none, HS256 keyed with the public key. A JWK Set that is not public RS256 keys
 * is refused. The gateway takes its keys (and the users bound) directly or from the
 * bus, as a process without the auth module would, and starts its cache over when
 * the keys change. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "test.h"
#include "bus_fixture.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/http.h"
#include "chatd/token.h"
#include "chatd/util.h"
#include "../../src/modules/auth/auth_internal.h"

#define ISS "chatd"                    /* the default [auth] issuer the gateway uses */

int test_auth_new_key(struct auth_key *k);   /* test_auth_rs256.c */

/* What the auth module hands out, and nothing else of it. */
struct published {
    char *jwks;                        /* the JWK Set */
    char *pub_pem;                     /* the public key as PEM, for the HS256 forgery */
    char *token;                       /* signed for user 7 "alice" */
    char kid[48];
};

static int publish_and_forget(struct published *p, int64_t now, int64_t uid)
{
    struct auth_key k;
    int rc;

    memset(p, 0, sizeof *p);
    if ((rc = test_auth_new_key(&k)) < 0)
        return rc;
    p->jwks = auth_jwks_json(&k);
    p->pub_pem = strdup(k.pub_pem);
    snprintf(p->kid, sizeof p->kid, "%s", k.kid);
    rc = auth_token_sign(&k, ISS, uid, "alice", now, 600, &p->token);
    auth_key_free(&k);
    return p->jwks && p->pub_pem && rc == 0 ? 0 : -1;
}

static void published_free(struct published *p)
{
    free(p->jwks);
    free(p->pub_pem);
    free(p->token);
}

static const char *check(const struct token_keys *ks, const char *tok, int64_t now)
{
    struct http_user u;
    const char *reason = "?";
    if (token_verify(ks, ISS, tok, now, &u, &reason) < 0)
        return u.id == 0 ? reason : "user left set";
    return u.id == 7 && strcmp(u.name, "alice") == 0 ? "ok" : "wrong user";
}

static char *b64(const void *p, size_t n)
{
    char *out = malloc(base64url_enc_len(n) + 1);
    base64url_encode(p, n, out);
    return out;
}

/* tok's payload and signature under another header; signed with HMAC-SHA256 keyed
 * with secret when secret is given, else with an empty signature. */
static char *reheader(const char *tok, const char *header, const char *secret)
{
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    char *h = b64(header, strlen(header)), *in = NULL, *sig = NULL, *out = NULL;
    unsigned char mac[32];
    unsigned int maclen = 0;

    if (asprintf(&in, "%s%.*s", h, (int)(d2 - d1), d1) < 0)
        in = NULL;
    if (in && secret)
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)in,
             strlen(in), mac, &maclen);
    sig = b64(mac, maclen);
    if (in && asprintf(&out, "%s.%s", in, sig) < 0)
        out = NULL;
    free(h);
    free(in);
    free(sig);
    return out;
}

TEST(token_gateway_checks_with_the_jwks_only)
{
    struct published p, other;
    struct token_keys *ks = NULL;
    int64_t now = (int64_t)time(NULL);
    char err[160], hdr[160], *t;

    ASSERT_EQ(publish_and_forget(&p, now, 7), 0);
    ASSERT_EQ(publish_and_forget(&other, now, 7), 0);
    ASSERT_EQ(token_keys_from_jwks(&ks, p.jwks, strlen(p.jwks), err, sizeof err), 0);
    ASSERT_EQ(token_keys_count(ks), 1);

    ASSERT_STR_EQ(check(ks, p.token, now), "ok");
    /* tampered: one character of the payload */
    t = strdup(p.token);
    char *c = strchr(t, '.') + 5;
    *c = *c == 'A' ? 'B' : 'A';
    ASSERT_STR_EQ(check(ks, t, now), "bad_signature");
    free(t);
    /* signed by another key, naming that key: not a key of the set */
    ASSERT_STR_EQ(check(ks, other.token, now), "unknown_kid");
    /* another key's signature under our kid */
    snprintf(hdr, sizeof hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", p.kid);
    {
        const char *sig = strrchr(other.token, '.');
        char *h = b64(hdr, strlen(hdr));
        const char *d1 = strchr(other.token, '.');
        ASSERT(asprintf(&t, "%s%.*s%s", h, (int)(sig - d1), d1, sig) > 0);
        free(h);
        ASSERT_STR_EQ(check(ks, t, now), "bad_signature");
        free(t);
    }
    /* alg none, with and without our kid */
    t = reheader(p.token, "{\"alg\":\"none\",\"typ\":\"JWT\"}", NULL);
    ASSERT_STR_EQ(check(ks, t, now), "bad_alg");
    free(t);
    snprintf(hdr, sizeof hdr, "{\"alg\":\"none\",\"kid\":\"%s\"}", p.kid);
    t = reheader(p.token, hdr, NULL);
    ASSERT_STR_EQ(check(ks, t, now), "bad_alg");
    free(t);
    /* HS256 keyed with the public key, as PEM and as the JWK Set itself */
    snprintf(hdr, sizeof hdr, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", p.kid);
    t = reheader(p.token, hdr, p.pub_pem);
    ASSERT_STR_EQ(check(ks, t, now), "bad_alg");
    free(t);
    t = reheader(p.token, hdr, p.jwks);
    ASSERT_STR_EQ(check(ks, t, now), "bad_alg");
    free(t);
    /* the claims behind the signature are checked too */
    ASSERT_STR_EQ(check(ks, p.token, now + 600 + TOKEN_LEEWAY_S), "expired");
    token_keys_free(ks);
    published_free(&p);
    published_free(&other);
}

/* A JWK Set of p's key with one member of the JWK replaced or added. */
static char *jwks_with(const char *jwks, const char *name, cJSON *value)
{
    cJSON *root = cJSON_Parse(jwks);
    cJSON *jwk = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "keys"), 0);
    char *out;

    cJSON_DeleteItemFromObject(jwk, name);
    cJSON_AddItemToObject(jwk, name, value);
    out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

static int refused(const char *jwks, const char *want_in_err)
{
    struct token_keys *ks = NULL;
    char err[160] = "";
    int rc = token_keys_from_jwks(&ks, jwks, strlen(jwks), err, sizeof err);

    if (rc == 0) {
        token_keys_free(ks);
        return 0;
    }
    return rc == -EINVAL && ks == NULL && strstr(err, want_in_err) != NULL;
}

TEST(token_gateway_refuses_jwks_that_is_not_public_rs256)
{
    struct published p;
    char *j, *n_short;
    int64_t now = (int64_t)time(NULL);

    ASSERT_EQ(publish_and_forget(&p, now, 7), 0);
    ASSERT(!refused(p.jwks, ""));                      /* the genuine one passes */
    ASSERT(refused("not json", "JSON"));
    ASSERT(refused("{\"keys\":[]}", "keys"));
    ASSERT(refused("{\"keys\":{}}", "keys"));
    ASSERT(refused("{}", "keys"));
#define REFUSED_WITH(member, value, why) do {              \
        j = jwks_with(p.jwks, member, value);              \
        ASSERT(refused(j, why));                           \
        free(j);                                           \
    } while (0)
    REFUSED_WITH("d", cJSON_CreateString("AQAB"), "private");   /* a private key */
    REFUSED_WITH("kty", cJSON_CreateString("EC"), "RSA");
    REFUSED_WITH("alg", cJSON_CreateString("HS256"), "RS256");
    REFUSED_WITH("use", cJSON_CreateString("enc"), "RS256");
    REFUSED_WITH("kid", cJSON_CreateString(""), "kid");
    REFUSED_WITH("kid", cJSON_CreateNumber(1), "kid");
    REFUSED_WITH("n", cJSON_CreateString("!!"), "RSA public key");
    REFUSED_WITH("e", cJSON_CreateNull(), "n or e");
    /* 1024 bits of modulus: too short */
    {
        cJSON *root = cJSON_Parse(p.jwks);
        const char *n = cJSON_GetObjectItem(
            cJSON_GetArrayItem(cJSON_GetObjectItem(root, "keys"), 0), "n")->valuestring;
        ASSERT(strlen(n) > 300);
        n_short = strndup(n, 172);          /* 129 bytes: 1032 bits */
        cJSON_Delete(root);
        REFUSED_WITH("n", cJSON_CreateString(n_short), "2048");
        free(n_short);
    }
    /* the same kid twice; more keys than a set holds */
    {
        cJSON *root = cJSON_Parse(p.jwks), *keys = cJSON_GetObjectItem(root, "keys");
        cJSON_AddItemToArray(keys, cJSON_Duplicate(cJSON_GetArrayItem(keys, 0), 1));
        j = cJSON_PrintUnformatted(root);
        ASSERT(refused(j, "repeated"));
        free(j);
        for (int i = 0; i < TOKEN_KEYS_MAX; i++)
            cJSON_AddItemToArray(keys, cJSON_Duplicate(cJSON_GetArrayItem(keys, 0), 1));
        j = cJSON_PrintUnformatted(root);
        ASSERT(refused(j, "more than"));
        free(j);
        cJSON_Delete(root);
    }
#undef REFUSED_WITH
    published_free(&p);
}

/* The gateway of a process with no auth module: an HTTP server and a bus. */
struct gw {
    struct fx f;
    struct http_server *s;
};

static int gw_init(struct gw *g)
{
    if (fx_init(&g->f) < 0 || fx_start(&g->f, 0) < 0 ||
        http_server_new(&g->s, &g->f.app) < 0)
        return -1;
    g->f.app.http = g->s;
    return gateway_tokens_subscribe(&g->f.app);
}

static void gw_free(struct gw *g)
{
    http_server_close(g->s, NULL, NULL);
    uv_run(&g->f.loop, UV_RUN_NOWAIT);
    http_server_free(g->s);
    fx_stop(&g->f);
}

static const char *gw_check(struct gw *g, const char *tok)
{
    struct http_user u;
    const char *reason = "?";
    return http_verify_token(g->s, tok, &u, &reason) == 0 && u.id > 0 ? "ok" : reason;
}

static void gw_publish(struct gw *g, const char *topic, const char *json)
{
    bus_publish(g->f.app.bus, bus_event_new(topic, cJSON_Parse(json)));
}

static double rejections(struct gw *g, const char *reason)
{
    struct strbuf out;
    char pat[96];
    const char *at;
    double v = -1;

    strbuf_init(&out, 1 << 16);
    metrics_render(g->f.app.metrics, &out);
    snprintf(pat, sizeof pat, "chatd_token_rejections_total{reason=\"%s\"} ", reason);
    if (out.data && (at = strstr(out.data, pat)))
        v = strtod(at + strlen(pat), NULL);
    strbuf_free(&out);
    return v;
}

TEST(token_gateway_takes_keys_and_users_from_the_bus)
{
    struct gw g;
    struct published p, next;
    int64_t now = (int64_t)time(NULL);
    char err[160], users[64];

    ASSERT_EQ(gw_init(&g), 0);
    ASSERT_EQ(publish_and_forget(&p, now, 7), 0);
    ASSERT_EQ(publish_and_forget(&next, now, 7), 0);
    /* no keys yet: nothing passes */
    ASSERT_STR_EQ(gw_check(&g, p.token), "no_keys");
    /* the keys as auth.keys carries them */
    gw_publish(&g, TOPIC_AUTH_KEYS, p.jwks);
    ASSERT(FX_RUN_UNTIL(&g.f, strcmp(gw_check(&g, p.token), "ok") == 0, 5000));
    ASSERT_STR_EQ(gw_check(&g, p.token), "ok");          /* again, from the cache */
    ASSERT_STR_EQ(gw_check(&g, next.token), "unknown_kid");
    ASSERT_EQ(rejections(&g, "unknown_kid"), 1);
    /* users 1..5 exist: user 7 does not (yet) */
    gw_publish(&g, TOPIC_AUTH_USERS, "{\"max_user_id\":5}");
    ASSERT(FX_RUN_UNTIL(&g.f, strcmp(gw_check(&g, p.token), "unknown_user") == 0, 5000));
    ASSERT(rejections(&g, "unknown_user") >= 1);
    snprintf(users, sizeof users, "{\"max_user_id\":%d}", 7);
    gw_publish(&g, TOPIC_AUTH_USERS, users);
    ASSERT(FX_RUN_UNTIL(&g.f, strcmp(gw_check(&g, p.token), "ok") == 0, 5000));
    gateway_users_known(&g.f.app, 3);                     /* never lowered */
    ASSERT_STR_EQ(gw_check(&g, p.token), "ok");
    /* a set that is not one keeps the old keys */
    ASSERT_EQ(gateway_keys_set(&g.f.app, "{\"keys\":[]}", 11, err, sizeof err), -EINVAL);
    ASSERT_STR_EQ(gw_check(&g, p.token), "ok");
    /* the keys change: the cached token of the old key passes no more */
    ASSERT_EQ(gateway_keys_set(&g.f.app, next.jwks, strlen(next.jwks), err, sizeof err), 0);
    ASSERT_STR_EQ(gw_check(&g, p.token), "unknown_kid");
    ASSERT_STR_EQ(gw_check(&g, next.token), "ok");
    published_free(&p);
    published_free(&next);
    gw_free(&g);
}

/* auth.keys as a struct (what the auth module publishes): taken; a set the gateway
 * refuses leaves the keys it had (the users event behind it shows it was handled). */
static int count_event(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    (*(int *)ctx)++;
    return 0;
}

TEST(token_gateway_takes_typed_keys_and_keeps_them_on_a_bad_set)
{
    struct gw g;
    struct published p;
    int64_t now = (int64_t)time(NULL);
    cJSON *doc;
    const cJSON *k;
    struct ev_jwk jwk;
    struct ev_auth_keys keys = { .keys = &jwk, .nkeys = 1 };
    struct ev_auth_users users = { .max_user_id = 5 };

    ASSERT_EQ(gw_init(&g), 0);
    ASSERT_EQ(publish_and_forget(&p, now, 7), 0);
    ASSERT((doc = cJSON_Parse(p.jwks)) != NULL);
    k = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "keys"), 0);
    jwk = (struct ev_jwk){ .kty = "RSA", .alg = "RS256", .use = "sig",
                           .kid = cJSON_GetObjectItem(k, "kid")->valuestring,
                           .n = cJSON_GetObjectItem(k, "n")->valuestring,
                           .e = cJSON_GetObjectItem(k, "e")->valuestring };
    ASSERT_EQ(bus_publish_ev(g.f.app.bus, &EV_AUTH_KEYS, &keys), 0);
    ASSERT(FX_RUN_UNTIL(&g.f, strcmp(gw_check(&g, p.token), "ok") == 0, 5000));
    jwk.kty = "EC";
    ASSERT_EQ(bus_publish_ev(g.f.app.bus, &EV_AUTH_KEYS, &keys), 0);
    ASSERT_EQ(bus_publish_ev(g.f.app.bus, &EV_AUTH_USERS, &users), 0);
    ASSERT(FX_RUN_UNTIL(&g.f, strcmp(gw_check(&g, p.token), "unknown_user") == 0, 5000));
    users.max_user_id = 7;                   /* the signature still checks: same keys */
    ASSERT_EQ(bus_publish_ev(g.f.app.bus, &EV_AUTH_USERS, &users), 0);
    ASSERT(FX_RUN_UNTIL(&g.f, strcmp(gw_check(&g, p.token), "ok") == 0, 5000));
    /* A set carrying a private key under another kid is refused too: taken, it would
     * leave the token's kid unknown. A subscriber after the gateway's shows when the
     * gateway has had the event. */
    int seen = 0;
    ASSERT_EQ(bus_subscribe(g.f.app.bus, TOPIC_AUTH_KEYS, NULL, count_event, &seen), 0);
    jwk.kty = "RSA";
    jwk.kid = "another";
    jwk.d = jwk.e;
    ASSERT_EQ(bus_publish_ev(g.f.app.bus, &EV_AUTH_KEYS, &keys), 0);
    ASSERT(FX_RUN_UNTIL(&g.f, seen == 1, 5000));
    ASSERT_STR_EQ(gw_check(&g, p.token), "ok");
    cJSON_Delete(doc);
    published_free(&p);
    gw_free(&g);
}
