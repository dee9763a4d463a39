/* push.c: the "notification.push" consumer of notification.requested.
 *
 * One delivery = one message to one subscription:
 *   loop:  build the payload from MSG, hand the rest to the thread pool
 *   pool:  read the subscription, encrypt (a fresh ECDH key per message), sign the
 *          VAPID JWT: the CPU-heavy part stays off the loop
 *   loop:  POST it (core's HTTP client, to a public address unless the operator
 *          allows private ones: netcheck.c's hook), then complete the delivery:
 *          2xx ok; 404/410 the subscription is gone (deleted, ok); anything else
 *          (429, 5xx, timeouts, TLS errors) fails it, and the bus retries with
 *          backoff, then dead-letters it with the last error; unless the
 *          subscription is failing (sub_health.c): then the attempt is the last.
 *
 * A dead letter keeps a reference to the message (id, room, seq), not a copy of it:
 * a replay asks the message module for the message again (message.sync as the
 * recipient, so a recipient who has left the room gets nothing). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/config.h"
#include "chatd/db.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "notification_internal.h"

char *push_payload(const struct ev_msg *msg)
{
    const char *sender = msg->sender ? msg->sender : "";
    const char *body = msg->body ? msg->body : "";

    /* A notification shows a preview: 200 characters, never half of one. */
    char *cut = strndup(body, notif_utf8_cut(body, strlen(body), NOTIF_BODY_CHARS));
    cJSON *p = cJSON_CreateObject(), *m = cJSON_CreateObject();
    char *out = NULL;
    if (!cut || !p || !m ||
        !cJSON_AddNumberToObject(m, "id", (double)msg->id) ||
        !cJSON_AddNumberToObject(m, "seq", (double)msg->seq) ||
        !cJSON_AddStringToObject(m, "sender", sender) ||
        !cJSON_AddStringToObject(m, "body", cut) ||
        !cJSON_AddStringToObject(p, "type", "message") ||
        !cJSON_AddNumberToObject(p, "room_id", (double)msg->room_id)) {
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
    char *plain;                     /* owned: the push message before encryption */
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
    free(j->plain);
    free(j->body);
    free(j->headers);
    free(j);
}

/* Pool thread. */
static int prepare_fn(struct db_conn *conn, void *arg)
{
    struct push_job *j = arg;
    struct notif *n = j->n;
    char origin[NOTIF_ENDPOINT_MAX + 1];
    int rc = notif_store_sub_get(&n->store, conn, j->sub_id, &j->t);
    if (rc == -ENOENT || (rc == 0 && j->t.user_id != j->recipient))
        return 0;                    /* gone, or the endpoint moved to another user */
    if (rc < 0) {
        snprintf(j->error, sizeof(j->error), "subscription read failed (%d)", rc);
        return rc;
    }
    j->found = 1;
    size_t plen = strlen(j->plain);
    if (vapid_origin(j->t.endpoint, origin, sizeof(origin)) < 0) {
        snprintf(j->error, sizeof(j->error), "bad endpoint");
        return -EINVAL;
    }
    char *jwt = vapid_jwt(n->vapid, origin, now_ms() / 1000 + VAPID_TTL_S,
                          notif_settings(n->app->cfg)->vapid_subject);
    j->body = malloc(ECE_OUT_LEN(plen));
    if (!jwt || !j->body) {
        free(jwt);
        snprintf(j->error, sizeof(j->error), "cannot sign the VAPID token");
        return -ENOMEM;
    }
    j->blen = ece_encrypt(j->t.p256dh, j->t.auth, j->plain, plen, NULL, NULL, j->body,
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

/* A failing subscription gets one attempt per message: its failure ends the delivery
 * as done, with no retry or dead letter. A replay the operator asked for is the
 * exception: its failure stays in its row. */
static int no_second_try(struct bus_delivery *d, int failing)
{
    return failing && !bus_delivery_is_replay(d);
}

static void finish(struct push_job *j, int status, const char *error)
{
    struct notif *n = j->n;
    bus_complete(j->d, status, error);
    job_free(j);
    notif_work_done(n);
}

static void on_sent(void *arg, const struct http_client_result *res)
{
    struct push_job *j = arg;
    struct notif *n = j->n;
    int status = res->status;
    const char *error = res->error;
    char why[192];
    if (status >= 200 && status < 300) {
        METRIC_INC(n->m.push_ok);
        subs_record_outcome(n, j->sub_id, &j->t, NULL);
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
    if (status == -ECANCELED) {            /* shutting down: not the endpoint's fault */
        finish(j, status, why);
        return;
    }
    /* The owner sees last_error: what the host resolved to is the operator's to know
     * (a name of the local network would give its addresses away), so the log and the
     * dead letter keep it, the subscription does not. */
    const char *shown = status == OUTBOUND_NOT_PUBLIC ? "the endpoint's host has no public address"
                                                      : why;
    if (no_second_try(j->d, subs_record_outcome(n, j->sub_id, &j->t, shown))) {
        finish(j, 0, NULL);
        return;
    }
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
    int flags =
        notif_settings(n->app->cfg)->allow_private_endpoints ? 0 : OUTBOUND_PUBLIC_ONLY;
    struct http_client_request rq = {
        .method = "POST", .url = j->t.endpoint, .headers = j->headers, .body = j->body,
        .body_len = (size_t)j->blen,
        .pick = (flags & OUTBOUND_PUBLIC_ONLY) ? net_first_public : NULL,
        .replayable = 1,                    /* the bus would send it again anyway */
    };
    int rc = http_client_send(n->out, &rq, on_sent, j);
    if (rc < 0) {
        const char *why = rc == -EAGAIN ? "too many outbound requests"
                        : rc == -ECANCELED ? "shutting down" : "bad endpoint URL";
        int failing = j->t.failing_since || subs_is_failing(n, j->sub_id);
        METRIC_INC(n->m.push_failed);
        if (rc == -EINVAL)           /* stored before the URL checks: the endpoint's fault */
            failing = subs_record_outcome(n, j->sub_id, &j->t, why);
        if (rc != -ECANCELED && no_second_try(j->d, failing))
            rc = 0;
        finish(j, rc, rc ? why : NULL);
    }
}

/* Hands the delivery of MSG to the pool (prepare_fn): BUS_ASYNC, or an error with
 * the reason set on d. */
static int start_push(struct notif *n, struct bus_delivery *d, int64_t recipient,
                      int64_t sub_id, const struct ev_msg *msg)
{
    if (n->closed || n->out_closing) {
        bus_delivery_set_error(d, "shutting down");
        return -ECANCELED;
    }
    if (n->prepares >= NOTIF_MAX_PREPARES) {
        if (no_second_try(d, subs_is_failing(n, sub_id))) {
            METRIC_INC(n->m.push_failed);
            return 0;
        }
        bus_delivery_set_error(d, "too many push messages being prepared");
        return -EAGAIN;
    }
    struct push_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->plain = push_payload(msg))) {
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

/* ---- a replayed dead letter: the message again, from the message module ---- */

struct rebuild {
    struct notif *n;
    struct bus_delivery *d;
    int64_t recipient, sub_id, msg_id;
};

static const struct ev_msg *find_message(const struct ev_message_sync_reply *reply,
                                         int64_t id)
{
    for (size_t r = 0; reply && r < reply->nrooms; r++)
        for (size_t m = 0; m < reply->rooms[r].nmessages; m++)
            if (reply->rooms[r].messages[m].id == id)
                return &reply->rooms[r].messages[m];
    return NULL;
}

static void rebuilt(void *ctx, int status, const void *reply)
{
    struct rebuild *r = ctx;
    struct notif *n = r->n;
    const struct ev_msg *msg = status < 0 ? NULL : find_message(reply, r->msg_id);
    n->prepares--;
    if (status < 0) {
        bus_complete(r->d, status, "cannot read the message again");
    } else if (!msg) {
        METRIC_INC(n->m.push_skipped);
        LOG_INFO(n->app, NOTIF_MOD, "push not replayed: message %lld is gone or user %lld "
                 "left its room", (long long)r->msg_id, (long long)r->recipient);
        bus_complete(r->d, 0, NULL);
    } else {
        int rc = start_push(n, r->d, r->recipient, r->sub_id, msg);
        if (rc != BUS_ASYNC)
            bus_complete(r->d, rc, NULL);
    }
    free(r);
    notif_work_done(n);
}

static int rebuild(struct notif *n, struct bus_delivery *d, int64_t recipient,
                   int64_t sub_id, const struct ev_msg_ref *ref)
{
    /* One page of one message: the message after seq - 1, if the recipient may read it
     * (events.h, message.sync). */
    struct ev_sync_room_ask ask = { .room_id = ref->room_id, .after = ref->seq - 1,
                                    .limit = 1 };
    struct ev_message_sync q = { .user_id = recipient, .rooms = &ask, .nrooms = 1,
                                 .max_messages = 1 };
    struct rebuild *r = calloc(1, sizeof(*r));
    if (!r) {
        bus_delivery_set_error(d, "out of memory");
        return -ENOMEM;
    }
    r->n = n;
    r->d = d;
    r->recipient = recipient;
    r->sub_id = sub_id;
    r->msg_id = ref->id;
    int64_t id = bus_request_ev(n->app->bus, &EV_MESSAGE_SYNC, &q, NOTIF_REBUILD_TIMEOUT_MS,
                                rebuilt, r);
    if (id < 0) {
        free(r);
        bus_delivery_set_error(d, "cannot ask for the message");
        return (int)id;
    }
    n->prepares++;
    return BUS_ASYNC;
}

/* Decoded and encoded by the codec like any payload: a dead letter is replayed as a
 * notification.requested, so it has to be one. */
cJSON *push_dead_letter(const struct bus_event *ev, void *ctx)
{
    const struct ev_notification_requested *req = ev->data;
    cJSON *out = NULL;
    (void)ctx;
    if (!req)
        return NULL;                 /* not a push we can rebuild: kept as it is */
    if (req->channel == EV_CHANNEL_PUSH && req->subscription_id && req->message) {
        struct ev_msg_ref ref = { .id = req->message->id, .room_id = req->message->room_id,
                                  .seq = req->message->seq };
        struct ev_notification_requested reduced = {
            .channel = EV_CHANNEL_PUSH, .recipient_id = req->recipient_id,
            .subscription_id = req->subscription_id, .message_ref = &ref,
        };
        out = ev_encode(&EV_NOTIFICATION_REQUESTED, &reduced);
    }
    return out;
}

int push_on_request(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    const struct ev_notification_requested *req = ev->data;
    struct notif *n = ctx;
    if (req->channel != EV_CHANNEL_PUSH)
        return 0;                    /* the webhook consumer's */
    if (!req->subscription_id || (!req->message && !req->message_ref)) {
        bus_delivery_set_error(d, "malformed notification.requested");
        return -EINVAL;
    }
    if (!req->message)
        return rebuild(n, d, req->recipient_id, req->subscription_id, req->message_ref);
    return start_push(n, d, req->recipient_id, req->subscription_id, req->message);
}
