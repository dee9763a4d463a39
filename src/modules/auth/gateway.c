/* gateway.c: what the auth module tells the gateway, which checks the bearer tokens
 * (chatd/token.h): the JWK Set of the signing key, public half only, and the highest
 * user id, so that a token for a user this server never had is refused. In this
 * process the gateway gets them by a direct call first, so that no request is ever
 * checked before the keys are in place; the same values go out on the bus
 * (auth.keys, auth.users) for a gateway that runs in another process. The JWK Set is
 * also served at GET /.well-known/jwks.json. Loop thread. */
#include <errno.h>
#include <string.h>

#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/log.h"
#include "chatd/token.h"
#include "auth_internal.h"

static void publish(struct auth *a, const struct ev_type *type, const void *data)
{
    if (bus_publish_ev(a->app->bus, type, data) < 0)
        LOG_WARN(a->app, AUTH_MOD, "publishing %s failed", type->topic);
}

/* The JWK Set's one key, as GET /.well-known/jwks.json has it (jwks.c). */
static void publish_keys(struct auth *a)
{
    struct ev_jwk jwk = { .kty = "RSA", .use = "sig", .alg = "RS256", .kid = a->key.kid,
                          .n = a->key.n_b64, .e = a->key.e_b64 };
    struct ev_auth_keys keys = { .keys = &jwk, .nkeys = 1 };

    publish(a, &EV_AUTH_KEYS, &keys);
}

int auth_gateway_publish_keys(struct auth *a)
{
    char err[160];
    int rc = gateway_keys_set(a->app, a->jwks, a->jwks_len, err, sizeof err);

    if (rc < 0) {
        LOG_ERROR(a->app, AUTH_MOD, "the gateway refused the key set: %s", err);
        return rc;
    }
    publish_keys(a);
    auth_gateway_publish_users(a);
    return 0;
}

void auth_gateway_publish_users(struct auth *a)
{
    struct ev_auth_users users = { .max_user_id = a->max_user_id };

    gateway_users_known(a->app, a->max_user_id);
    publish(a, &EV_AUTH_USERS, &users);
}
