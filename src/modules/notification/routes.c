/* routes.c: the push HTTP API (docs/api.md, "Push notifications").
 *   GET    /v1/push/vapid-public-key     the applicationServerKey for pushManager.subscribe
 *   GET    /v1/push/subscriptions        the caller's subscriptions and their health
 *   POST   /v1/push/subscriptions        a browser PushSubscription (toJSON()) -> 201 {"id"}
 *   DELETE /v1/push/subscriptions/{id}   204, or 404 unless it is the caller's */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "chatd/config.h"
#include "chatd/util.h"
#include "notification_internal.h"

static void get_vapid_key(struct http_req *req, void *ctx)
{
    struct notif *n = ctx;
    char body[160];
    int len = snprintf(body, sizeof(body), "{\"key\":\"%s\"}", n->vapid_pub_b64);
    http_respond_json_str(req, 200, body, (size_t)len);
}

/* Browsers send base64url without padding; be lenient about '=' padding and the
 * standard alphabet, which some older clients produced. */
static long decode_key(const char *s, uint8_t *out, size_t cap)
{
    char buf[128];
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n >= sizeof(buf))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        buf[i] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
    return base64url_decode(buf, n, out, cap);
}

/* An https URL with a host and a numeric port; no spaces, control characters or
 * user info; and unless the operator allows private push services, a host on the
 * public Internet (netcheck.c; the address is judged again when connecting).
 * 0, or the length of the reason written to why. */
static int check_endpoint(const struct notif *n, const char *ep, char *why, size_t whylen)
{
    char origin[NOTIF_ENDPOINT_MAX + 1];
    struct http_client_origin t;
    const char *refusal;
    size_t len = strlen(ep);
    if (len == 0 || len > NOTIF_ENDPOINT_MAX)
        return snprintf(why, whylen, "endpoint must be 1 to 2048 characters");
    if (strncmp(ep, "https://", 8) != 0)
        return snprintf(why, whylen, "endpoint must be an https URL");
    for (const unsigned char *p = (const unsigned char *)ep; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return snprintf(why, whylen, "endpoint must be a URL without spaces or "
                                         "control characters");
    if (vapid_origin(ep, origin, sizeof(origin)) < 0 || http_client_parse_url(&t, ep) < 0)
        return snprintf(why, whylen, "endpoint must be an https URL with a host and "
                                     "a port from 1 to 65535");
    if (!notif_settings(n->app->cfg)->allow_private_endpoints &&
        (refusal = net_host_refusal(t.host)))
        return snprintf(why, whylen, "endpoint host %s %s%s: push services are on the "
                        "public Internet", t.host, strncmp(refusal, "a ", 2) == 0 ||
                        strncmp(refusal, "an ", 3) == 0 ? "is " : "", refusal);
    return 0;
}

static void post_subscription(struct http_req *req, void *ctx)
{
    struct notif *n = ctx;
    const char *endpoint, *p256dh, *auth;
    char why[NOTIF_ENDPOINT_MAX + 160];
    uint8_t key[ECE_KEY_LEN + 1], secret[ECE_AUTH_LEN + 1];
    cJSON *body = http_json_body(req);
    if (!body)
        return;                                  /* answered 400 already */
    cJSON *keys = cJSON_GetObjectItemCaseSensitive(body, "keys");
    if (json_get_str(body, "endpoint", &endpoint) < 0 || !cJSON_IsObject(keys) ||
        json_get_str(keys, "p256dh", &p256dh) < 0 || json_get_str(keys, "auth", &auth) < 0) {
        http_respond_error(req, 400, "expected {\"endpoint\",\"keys\":{\"p256dh\",\"auth\"}}");
        goto done;
    }
    if (check_endpoint(n, endpoint, why, sizeof(why)) > 0) {
        http_respond_error(req, 400, "%s", why);
        goto done;
    }
    if (decode_key(p256dh, key, sizeof(key)) != ECE_KEY_LEN || !ece_point_valid(key)) {
        http_respond_error(req, 400, "keys.p256dh must be an uncompressed P-256 point "
                                     "in base64url (65 bytes)");
        goto done;
    }
    if (decode_key(auth, secret, sizeof(secret)) != ECE_AUTH_LEN) {
        http_respond_error(req, 400, "keys.auth must be 16 bytes in base64url");
        goto done;
    }
    subs_add(n, req, endpoint, key, secret);
done:
    cJSON_Delete(body);
}

static void list_subscriptions(struct http_req *req, void *ctx)
{
    subs_list(ctx, req);
}

static void delete_subscription(struct http_req *req, void *ctx)
{
    int64_t id = http_param_id(req, 0);
    /* A malformed id is the client's mistake, as for room and user ids in paths. */
    if (id <= 0) {
        http_respond_error(req, 400, "invalid subscription id");
        return;
    }
    subs_remove(ctx, req, id);
}

int notif_routes_add(struct notif *n)
{
    struct http_server *s = n->app->http;
    int rc;
    if ((rc = http_route(s, HTTP_VERB_GET, "/v1/push/vapid-public-key", 0, get_vapid_key, n)) < 0 ||
        (rc = http_route(s, HTTP_VERB_GET, "/v1/push/subscriptions", HTTP_ROUTE_AUTH,
                         list_subscriptions, n)) < 0 ||
        (rc = http_route(s, HTTP_VERB_POST, "/v1/push/subscriptions", HTTP_ROUTE_AUTH,
                         post_subscription, n)) < 0 ||
        (rc = http_route(s, HTTP_VERB_DELETE, "/v1/push/subscriptions/{id}", HTTP_ROUTE_AUTH,
                         delete_subscription, n)) < 0)
        return rc;
    return 0;
}
