/* What the auth module says on the bus, as typed events: auth.keys carries the JWK
 * Set of GET /.well-known/jwks.json member for member, auth.users the users bound;
 * users.lookup answers with the users found (names folded, bad ones skipped) through
 * bus_request_ev, as another module asks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth_store_fixture.h"
#include "test.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/http.h"
#include "../../src/modules/auth/auth_internal.h"

int test_auth_new_key(struct auth_key *k);   /* test_auth_rs256.c */

struct heard {
    char *keys, *users;                /* the payloads, printed */
    int nkeys;
    char kid[64], kty[8], alg[8], use[8];
    int n_same, e_same;
    int64_t max_user_id;
    const struct auth_key *key;
};

static int on_keys(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct heard *h = ctx;
    const struct ev_auth_keys *m = ev->data;

    h->nkeys = (int)m->nkeys;
    if (m->nkeys == 1) {
        snprintf(h->kid, sizeof h->kid, "%s", m->keys[0].kid);
        snprintf(h->kty, sizeof h->kty, "%s", m->keys[0].kty);
        snprintf(h->alg, sizeof h->alg, "%s", m->keys[0].alg ? m->keys[0].alg : "");
        snprintf(h->use, sizeof h->use, "%s", m->keys[0].use ? m->keys[0].use : "");
        h->n_same = strcmp(m->keys[0].n, h->key->n_b64) == 0;
        h->e_same = strcmp(m->keys[0].e, h->key->e_b64) == 0;
    }
    h->keys = json_print(ev->payload);
    return 0;
}

static int on_users(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct heard *h = ctx;
    const struct ev_auth_users *m = ev->data;

    h->max_user_id = m->max_user_id;
    free(h->users);
    h->users = json_print(ev->payload);
    return 0;
}

TEST(auth_publishes_typed_keys_and_users)
{
    static const struct bus_sub_opts keys_opts = { .consumer = "test.keys" };
    static const struct bus_sub_opts users_opts = { .consumer = "test.users" };
    struct fx f;
    struct auth a;
    struct http_server *s = NULL;
    struct heard h;
    cJSON *doc, *jwk;

    memset(&a, 0, sizeof a);
    memset(&h, 0, sizeof h);
    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    ASSERT_EQ(http_server_new(&s, &f.app), 0);
    f.app.http = s;
    a.app = &f.app;
    a.max_user_id = 3;
    ASSERT_EQ(test_auth_new_key(&a.key), 0);
    ASSERT((a.jwks = auth_jwks_json(&a.key)) != NULL);
    a.jwks_len = strlen(a.jwks);
    h.key = &a.key;
    ASSERT_EQ(bus_subscribe(f.app.bus, TOPIC_AUTH_KEYS, &keys_opts, on_keys, &h), 0);
    ASSERT_EQ(bus_subscribe(f.app.bus, TOPIC_AUTH_USERS, &users_opts, on_users, &h), 0);

    ASSERT_EQ(auth_gateway_publish_keys(&a), 0);
    ASSERT(FX_RUN_UNTIL(&f, h.keys && h.users, 5000));
    ASSERT_EQ(h.nkeys, 1);
    ASSERT_STR_EQ(h.kid, a.key.kid);
    ASSERT_STR_EQ(h.kty, "RSA");
    ASSERT_STR_EQ(h.alg, "RS256");
    ASSERT_STR_EQ(h.use, "sig");
    ASSERT(h.n_same && h.e_same);
    ASSERT_EQ(h.max_user_id, 3);
    /* The wire form: the JWKS document's one key with all its members, and "v". */
    ASSERT((doc = cJSON_Parse(h.keys)) != NULL);
    jwk = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "keys"), 0);
    ASSERT_EQ(cJSON_GetArraySize(jwk), 6);
    ASSERT_EQ(cJSON_GetObjectItem(doc, "v")->valueint, 1);
    cJSON_Delete(doc);
    ASSERT_STR_EQ(h.users, "{\"max_user_id\":3,\"v\":1}");

    auth_note_user(&a, 5);                   /* a new user raises the bound */
    ASSERT(FX_RUN_UNTIL(&f, h.max_user_id == 5, 5000));
    free(h.keys);
    free(h.users);
    free(a.jwks);
    auth_key_free(&a.key);
    http_server_close(s, NULL, NULL);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    http_server_free(s);
    fx_stop(&f);
}

struct answer {
    int done, status, n;
    int64_t ids[4];
    char names[4][USERNAME_MAX + 1];
};

static void on_answer(void *ctx, int status, const void *reply)
{
    struct answer *ans = ctx;
    const struct ev_users_lookup_reply *r = reply;

    ans->status = status;
    for (size_t i = 0; status == 0 && r && i < r->nusers && i < 4; i++) {
        ans->ids[i] = r->users[i].id;
        snprintf(ans->names[i], sizeof ans->names[i], "%s", r->users[i].username);
        ans->n++;
    }
    ans->done = 1;
}

TEST(auth_users_lookup_answers_typed)
{
    struct store_fx s;
    struct auth a;
    struct answer ans;
    const char *names[] = { "Alice", "nobody", "no such name!", "bob" };
    struct ev_users_lookup q = { .usernames = names, .nusernames = 4 };
    int64_t alice = 0, bob = 0;

    memset(&a, 0, sizeof a);
    memset(&ans, 0, sizeof ans);
    ASSERT_EQ(store_fx_open(&s, &store_engines[0]), 0);
    ASSERT_EQ(auth_store_user_insert(&s.store, s.conn, "alice", "h", 1, &alice), 0);
    ASSERT_EQ(auth_store_user_insert(&s.store, s.conn, "bob", "h", 1, &bob), 0);
    ASSERT_EQ(bus_new(&s.f.app.bus, &s.f.app), 0);
    ASSERT_EQ(db_start(s.f.app.db), 0);
    ASSERT_EQ(bus_start(s.f.app.bus), 0);
    a.app = &s.f.app;
    a.store = s.store;
    ASSERT_EQ(auth_users_start(&a), 0);

    ASSERT(bus_request_ev(s.f.app.bus, &EV_USERS_LOOKUP, &q, 5000, on_answer, &ans) > 0);
    ASSERT(FX_RUN_UNTIL(&s.f, ans.done, 5000));
    ASSERT_EQ(ans.status, 0);
    ASSERT_EQ(ans.n, 2);
    ASSERT_EQ(ans.ids[0], alice);
    ASSERT_STR_EQ(ans.names[0], "alice");
    ASSERT_EQ(ans.ids[1], bob);
    ASSERT_STR_EQ(ans.names[1], "bob");
    ASSERT_EQ(a.inflight, 0);
    store_fx_close(&s);
}
