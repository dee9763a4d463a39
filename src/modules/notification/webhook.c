/* webhook.c: the "notification.webhook" consumer of notification.requested.
 *
 * POST [notification] webhook_url with {"type":"message","recipient_id","message":MSG},
 *   X-Chatd-Signature: sha256=<hex HMAC-SHA256(webhook_secret, body)>
 *   X-Chatd-Event-Id:  msg-<message id>-<recipient id>
 * The event id depends only on the message and the recipient, so it is the same on
 * every retry and every replay from the dead-letter table: receivers dedupe on it.
 * 2xx is success; anything else fails the delivery and the bus retries it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/hmac.h>
#include "chatd/event_codec.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "notification_internal.h"

void webhook_signature(const char *secret, const void *body, size_t len, char *out)
{
    uint8_t mac[32];
    unsigned int n = sizeof(mac);
    memcpy(out, "sha256=", 7);
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), body, len, mac, &n))
        memset(mac, 0, sizeof(mac));
    hex_encode(mac, sizeof(mac), out + 7);
}

struct webhook_job {
    struct notif *n;
    struct bus_delivery *d;
    char event_id[64];
};

static void on_sent(void *arg, const struct http_client_result *res)
{
    struct webhook_job *j = arg;
    struct notif *n = j->n;
    int status = res->status;
    const char *error = res->error;
    char why[192];
    if (status >= 200 && status < 300) {
        METRIC_INC(n->m.webhook_ok);
        bus_complete(j->d, 0, NULL);
    } else {
        METRIC_INC(n->m.webhook_failed);
        if (status > 0)
            snprintf(why, sizeof(why), "webhook answered %d", status);
        else
            snprintf(why, sizeof(why), "%s", error ? error : "webhook request failed");
        LOG_WARN(n->app, NOTIF_MOD, "webhook failed event_id=%s attempt=%d error=\"%s\"",
                 j->event_id, bus_delivery_attempt(j->d), why);
        bus_complete(j->d, -EIO, why);
    }
    free(j);
    notif_work_done(n);
}

/* MSG as the API shows it (docs/api.md), the fields in the order of message.stored. */
static cJSON *msg_json(const struct ev_msg *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddNumberToObject(o, "id", (double)m->id) ||
        !cJSON_AddNumberToObject(o, "room_id", (double)m->room_id) ||
        !cJSON_AddNumberToObject(o, "seq", (double)m->seq) ||
        !cJSON_AddNumberToObject(o, "sender_id", (double)m->sender_id) ||
        !cJSON_AddStringToObject(o, "sender", m->sender ? m->sender : "") ||
        !cJSON_AddStringToObject(o, "body", m->body ? m->body : "") ||
        !(m->client_msg_id ? cJSON_AddStringToObject(o, "client_msg_id", m->client_msg_id)
                           : cJSON_AddNullToObject(o, "client_msg_id")) ||
        !cJSON_AddNumberToObject(o, "created_at", (double)m->created_at)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static char *webhook_body(int64_t recipient, const struct ev_msg *msg)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *m = msg_json(msg);
    char *out = NULL;
    if (p && m && cJSON_AddStringToObject(p, "type", "message") &&
        cJSON_AddNumberToObject(p, "recipient_id", (double)recipient)) {
        cJSON_AddItemToObject(p, "message", m);
        m = NULL;
        out = json_print(p);
    }
    cJSON_Delete(m);
    cJSON_Delete(p);
    return out;
}

int webhook_on_request(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    const struct ev_notification_requested *req = ev->data;
    struct notif *n = ctx;
    const struct notif_settings *ns = notif_settings(n->app->cfg);
    if (req->channel != EV_CHANNEL_WEBHOOK)
        return 0;                    /* the push consumer's */
    if (!req->message) {
        bus_delivery_set_error(d, "malformed notification.requested");
        return -EINVAL;
    }
    int64_t recipient = req->recipient_id, msg_id = req->message->id;
    if (!ns->webhook_url[0]) {
        /* Replayed after the webhook was switched off: keep it for the operator. */
        bus_delivery_set_error(d, "no webhook_url configured");
        return -EINVAL;
    }
    if (n->closed || n->out_closing) {
        bus_delivery_set_error(d, "shutting down");
        return -ECANCELED;
    }
    struct webhook_job *j = calloc(1, sizeof(*j));
    char *body = webhook_body(recipient, req->message);
    char sig[80], headers[256];
    if (!j || !body) {
        free(j);
        free(body);
        bus_delivery_set_error(d, "out of memory");
        return -ENOMEM;
    }
    j->n = n;
    j->d = d;
    snprintf(j->event_id, sizeof(j->event_id), "msg-%lld-%lld", (long long)msg_id,
             (long long)recipient);
    webhook_signature(ns->webhook_secret, body, strlen(body), sig);
    snprintf(headers, sizeof(headers), "Content-Type: application/json\r\n"
             "X-Chatd-Event-Id: %s\r\nX-Chatd-Signature: %s\r\n", j->event_id, sig);
    struct http_client_request rq = {       /* the operator's own URL: no address hook */
        .method = "POST", .url = ns->webhook_url, .headers = headers,
        .body = body, .body_len = strlen(body),
        .replayable = 1,                    /* receivers dedupe by X-Chatd-Event-Id */
    };
    int rc = http_client_send(n->out, &rq, on_sent, j);
    free(body);
    if (rc < 0) {
        free(j);
        METRIC_INC(n->m.webhook_failed);
        bus_delivery_set_error(d, rc == -EAGAIN ? "too many outbound requests"
                                  : rc == -EINVAL ? "bad webhook_url" : "cannot send");
        return rc;
    }
    return BUS_ASYNC;
}
