/* push.c: the "notification.push" consumer of notification.requested.
 *
 * One delivery = one message to one subscription:
 *   loop:  build the payload from MSG, hand the rest to the thread pool
 *   pool:  read the subscription, encrypt (a fresh ECDH key per message), sign the
 *          VAPID JWT: the CPU-heavy part stays off the loop
 *   loop:  POST it (outbound.c), then complete the delivery:
 *          2xx ok; 404/410 the subscription is gone (deleted, ok); anything else
 *          (429, 5xx, timeouts, TLS errors) fails it, and the bus retries with
 *          backoff, then dead-letters it with the last error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/db.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "notification_internal.h"

char *push_payload(const cJSON *msg)
{
    int64_t id = 0, seq = 0, room = 0;
    const char *sender = "", *body = "";
    json_get_i64(msg, "id", &id);
    json_get_i64(msg, "seq", &seq);
    json_get_i64(msg, "room_id", &room);
    json_get_str(msg, "sender", &sender);
    json_get_str(msg, "body", &body);

    /* A notification shows a preview: 200 characters, never half of one. */
    char *cut = strndup(body, notif_utf8_cut(body, strlen(body), NOTIF_BODY_CHARS));
    cJSON *p = cJSON_CreateObject(), *m = cJSON_CreateObject();
    char *out = NULL;
    if (!cut || !p || !m ||
        !cJSON_AddNumberToObject(m, "id", (double)id) ||
        !cJSON_AddNumberToObject(m, "seq", (double)seq) ||
        !cJSON_AddStringToObject(m, "sender", sender) ||
        !cJSON_AddStringToObject(m, "body", cut) ||
        !cJSON_AddStringToObject(p, "type", "message") ||
        !cJSON_AddNumberToObject(p, "room_id", (double)room)) {
        cJSON_Delete(m);
        goto done;
    }
    cJSON_AddItemToObject(p, "message", m);
    out = json_print(p);
done:
    cJSON_Delete(p);
    free(cut);
    return out;
}

struct push_job {
    struct notif *n;
    struct bus_delivery *d;
    int64_t sub_id, recipient;
    char *payload;                   /* owned: the plaintext JSON */
    /* filled on the pool thread */
    int found;
    struct subs_target t;
    uint8_t *body;                   /* owned: the encrypted message */
    long blen;
    char *headers;                   /* owned */
    char error[128];
};

static void job_free(struct push_job *j)
{
    free(j->payload);
    free(j->body);
    free(j->headers);
    free(j);
}

/* Pool thread. */
static int prepare_fn(sqlite3 *conn, void *arg)
{
    struct push_job *j = arg;
    struct notif *n = j->n;
    char origin[NOTIF_ENDPOINT_MAX + 1];
    int rc = subs_get(conn, j->sub_id, &j->t);
    if (rc == -ENOENT || (rc == 0 && j->t.user_id != j->recipient))
        return 0;                    /* gone, or the endpoint moved to another user */
    if (rc < 0) {
        snprintf(j->error, sizeof(j->error), "subscription read failed (%d)", rc);
        return rc;
    }
    j->found = 1;
    size_t plen = strlen(j->payload);
    if (vapid_origin(j->t.endpoint, origin, sizeof(origin)) < 0) {
        snprintf(j->error, sizeof(j->error), "bad endpoint");
        return -EINVAL;
    }
    char *jwt = vapid_jwt(n->vapid, origin, now_ms() / 1000 + VAPID_TTL_S,
                          n->app->cfg->notification.vapid_subject);
    j->body = malloc(ECE_OUT_LEN(plen));
    if (!jwt || !j->body) {
        free(jwt);
        snprintf(j->error, sizeof(j->error), "cannot sign the VAPID token");
        return -ENOMEM;
    }
    j->blen = ece_encrypt(j->t.p256dh, j->t.auth, j->payload, plen, NULL, NULL, j->body,
                          ECE_OUT_LEN(plen), NULL);
    int hl = j->blen < 0 ? -1 :
        asprintf(&j->headers, "TTL: %d\r\nUrgency: normal\r\nContent-Encoding: aes128gcm\r\n"
                 "Content-Type: application/octet-stream\r\n"
                 "Authorization: vapid t=%s, k=%s\r\n", NOTIF_PUSH_TTL_S, jwt,
                 n->vapid_pub_b64);
    free(jwt);
    if (hl < 0) {
        j->headers = NULL;
        snprintf(j->error, sizeof(j->error), "cannot encrypt the payload");
        return -EIO;
    }
    return 0;
}

static void finish(struct push_job *j, int status, const char *error)
{
    struct notif *n = j->n;
    bus_complete(j->d, status, error);
    job_free(j);
    notif_work_done(n);
}

static void on_sent(void *arg, int status, const char *error)
{
    struct push_job *j = arg;
    struct notif *n = j->n;
    char why[192];
    if (status >= 200 && status < 300) {
        METRIC_INC(n->m.push_ok);
        finish(j, 0, NULL);
        return;
    }
    if (status == 404 || status == 410) {
        METRIC_INC(n->m.push_gone);
        LOG_INFO(n->app, NOTIF_MOD, "push subscription gone id=%lld user_id=%lld status=%d",
                 (long long)j->sub_id, (long long)j->recipient, status);
        subs_delete_gone(n, j->sub_id);
        finish(j, 0, NULL);
        return;
    }
    METRIC_INC(n->m.push_failed);
    if (status > 0)
        snprintf(why, sizeof(why), "push service answered %d", status);
    else
        snprintf(why, sizeof(why), "%s", error ? error : "push request failed");
    LOG_WARN(n->app, NOTIF_MOD, "push failed id=%lld attempt=%d error=\"%s\"",
             (long long)j->sub_id, bus_delivery_attempt(j->d), why);
    finish(j, -EIO, why);
}

static void prepared(void *arg, int status)
{
    struct push_job *j = arg;
    struct notif *n = j->n;
    n->prepares--;
    if (status < 0) {
        METRIC_INC(n->m.push_failed);
        finish(j, status, j->error[0] ? j->error : "cannot prepare the push message");
        return;
    }
    if (!j->found) {
        METRIC_INC(n->m.push_skipped);
        finish(j, 0, NULL);
        return;
    }
    int flags = n->app->cfg->notification.allow_private_endpoints ? 0 : OUTBOUND_PUBLIC_ONLY;
    int rc = outbound_send(n->out, "POST", j->t.endpoint, j->headers, j->body,
                           (size_t)j->blen, flags, on_sent, j);
    if (rc < 0) {
        METRIC_INC(n->m.push_failed);
        finish(j, rc, rc == -EAGAIN ? "too many outbound requests"
                    : rc == -ECANCELED ? "shutting down" : "bad endpoint URL");
    }
}

int push_on_request(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct notif *n = ctx;
    const cJSON *p = ev->payload;
    const char *channel;
    int64_t recipient, sub_id;
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(p, "message");
    if (json_get_str(p, "channel", &channel) < 0 || strcmp(channel, "push") != 0)
        return 0;                    /* the webhook consumer's */
    if (json_get_i64(p, "recipient_id", &recipient) < 0 ||
        json_get_i64(p, "subscription_id", &sub_id) < 0 || !cJSON_IsObject(msg)) {
        bus_delivery_set_error(d, "malformed notification.requested");
        return -EINVAL;
    }
    if (n->closed || n->out_closing) {
        bus_delivery_set_error(d, "shutting down");
        return -ECANCELED;
    }
    if (n->prepares >= NOTIF_MAX_PREPARES) {
        bus_delivery_set_error(d, "too many push messages being prepared");
        return -EAGAIN;
    }
    struct push_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->payload = push_payload(msg))) {
        free(j);
        bus_delivery_set_error(d, "out of memory");
        return -ENOMEM;
    }
    j->n = n;
    j->d = d;
    j->recipient = recipient;
    j->sub_id = sub_id;
    int rc = db_read(n->app->db, prepare_fn, prepared, j);
    if (rc < 0) {
        job_free(j);
        bus_delivery_set_error(d, "cannot start reading the subscription");
        return rc;
    }
    n->prepares++;
    return BUS_ASYNC;
}
