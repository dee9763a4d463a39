/* gateway.c: what the auth module tells the gateway, which checks the bearer tokens
 * (chatd/token.h): the JWK Set of the signing key, public half only, and the highest
 * user id, so that a token for a user this server never had is refused. In this
 * process the gateway gets them by a direct call first, so that no request is ever
 * checked before the keys are in place; the same values go out on the bus
 * (auth.keys, auth.users) for a gateway that runs in another process. The JWK Set is
 * also served at GET /.well-known/jwks.json. Loop thread. */
#include <errno.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "chatd/bus.h"
#include "chatd/events.h"
#include "chatd/log.h"
#include "chatd/token.h"
#include "auth_internal.h"

static void publish(struct auth *a, const char *topic, cJSON *payload)
{
    struct bus_event *e = payload ? bus_event_new(topic, payload) : NULL;

    if (!e || bus_publish(a->app->bus, e) < 0)
        LOG_WARN(a->app, AUTH_MOD, "publishing %s failed", topic);
}

int auth_gateway_publish_keys(struct auth *a)
{
    char err[160];
    int rc = gateway_keys_set(a->app, a->jwks, a->jwks_len, err, sizeof err);

    if (rc < 0) {
        LOG_ERROR(a->app, AUTH_MOD, "the gateway refused the key set: %s", err);
        return rc;
    }
    publish(a, TOPIC_AUTH_KEYS, cJSON_ParseWithLength(a->jwks, a->jwks_len));
    auth_gateway_publish_users(a);
    return 0;
}

void auth_gateway_publish_users(struct auth *a)
{
    cJSON *p = cJSON_CreateObject();

    gateway_users_known(a->app, a->max_user_id);
    if (p && !cJSON_AddNumberToObject(p, "max_user_id", (double)a->max_user_id)) {
        cJSON_Delete(p);
        p = NULL;
    }
    publish(a, TOPIC_AUTH_USERS, p);
}
