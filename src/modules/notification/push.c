/* push.c: the "notification.push" consumer of notification.requested.
 *
 * One delivery = one message to one subscription:
 *   loop:  build the payload from MSG, hand the rest to the thread pool
 *   pool:  read the subscription, encrypt (a fresh ECDH key per message), sign the
 *          VAPID JWT: the CPU-heavy part stays off the loop
 *   loop:  POST it (outbound.c, to a public address unless the operator allows
 *          private ones), then complete the delivery:
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
#include "chatd/events.h"
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

static void on_sent(void *arg, int status, const char *error)
{
    struct push_job *j = arg;
    struct notif *n = j->n;
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
    int flags = n->app->cfg->notification.allow_private_endpoints ? 0 : OUTBOUND_PUBLIC_ONLY;
    int rc = outbound_send(n->out, "POST", j->t.endpoint, j->headers, j->body,
                           (size_t)j->blen, flags, on_sent, j);
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
                      int64_t sub_id, const cJSON *msg)
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

/* ---- a replayed dead letter: the message again, from the message module ---- */

struct rebuild {
    struct notif *n;
    struct bus_delivery *d;
    int64_t recipient, sub_id, msg_id;
};

static const cJSON *find_message(const cJSON *reply, int64_t id)
{
    const cJSON *room, *msg;
    cJSON_ArrayForEach(room, cJSON_GetObjectItemCaseSensitive(reply, "rooms")) {
        cJSON_ArrayForEach(msg, cJSON_GetObjectItemCaseSensitive(room, "messages")) {
            int64_t mid;
            if (json_get_i64(msg, "id", &mid) == 0 && mid == id)
                return msg;
        }
    }
    return NULL;
}

static void rebuilt(void *ctx, int status, const cJSON *reply)
{
    struct rebuild *r = ctx;
    struct notif *n = r->n;
    const cJSON *msg = status < 0 ? NULL : find_message(reply, r->msg_id);
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
                   int64_t sub_id, const cJSON *ref)
{
    int64_t room, seq;
    struct rebuild *r = calloc(1, sizeof(*r));
    cJSON *q = cJSON_CreateObject(), *rooms = cJSON_CreateArray(), *ask = cJSON_CreateObject();
    if (!r || !q || !rooms || !ask || json_get_i64(ref, "id", &r->msg_id) < 0 ||
        json_get_i64(ref, "room_id", &room) < 0 || json_get_i64(ref, "seq", &seq) < 0 ||
        seq < 1) {
        free(r);
        cJSON_Delete(q);
        cJSON_Delete(rooms);
        cJSON_Delete(ask);
        bus_delivery_set_error(d, "malformed message_ref");
        return -EINVAL;
    }
    /* One page of one message: the message after seq - 1, if the recipient may read it
     * (events.h, message.sync). */
    cJSON_AddNumberToObject(ask, "room_id", (double)room);
    cJSON_AddNumberToObject(ask, "after", (double)(seq - 1));
    cJSON_AddNumberToObject(ask, "limit", 1);
    cJSON_AddItemToArray(rooms, ask);
    cJSON_AddItemToObject(q, "rooms", rooms);
    cJSON_AddNumberToObject(q, "user_id", (double)recipient);
    cJSON_AddNumberToObject(q, "max_messages", 1);
    r->n = n;
    r->d = d;
    r->recipient = recipient;
    r->sub_id = sub_id;
    int64_t id = bus_request(n->app->bus, TOPIC_MESSAGE_SYNC, q, NOTIF_REBUILD_TIMEOUT_MS,
                             rebuilt, r);
    if (id < 0) {
        free(r);
        bus_delivery_set_error(d, "cannot ask for the message");
        return (int)id;
    }
    n->prepares++;
    return BUS_ASYNC;
}

cJSON *push_dead_letter(const cJSON *payload, void *ctx)
{
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(payload, "message");
    int64_t recipient, sub_id, id, room, seq;
    (void)ctx;
    if (json_get_i64(payload, "recipient_id", &recipient) < 0 ||
        json_get_i64(payload, "subscription_id", &sub_id) < 0 ||
        json_get_i64(msg, "id", &id) < 0 || json_get_i64(msg, "room_id", &room) < 0 ||
        json_get_i64(msg, "seq", &seq) < 0)
        return NULL;                 /* not a push we can rebuild: kept as it is */
    cJSON *p = cJSON_CreateObject(), *ref = cJSON_CreateObject();
    if (!p || !ref || !cJSON_AddStringToObject(p, "channel", "push") ||
        !cJSON_AddNumberToObject(p, "recipient_id", (double)recipient) ||
        !cJSON_AddNumberToObject(p, "subscription_id", (double)sub_id) ||
        !cJSON_AddNumberToObject(ref, "id", (double)id) ||
        !cJSON_AddNumberToObject(ref, "room_id", (double)room) ||
        !cJSON_AddNumberToObject(ref, "seq", (double)seq)) {
        cJSON_Delete(p);
        cJSON_Delete(ref);
        return NULL;
    }
    cJSON_AddItemToObject(p, "message_ref", ref);
    return p;
}

int push_on_request(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct notif *n = ctx;
    const cJSON *p = ev->payload;
    const char *channel;
    int64_t recipient, sub_id;
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(p, "message");
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(p, "message_ref");
    if (json_get_str(p, "channel", &channel) < 0 || strcmp(channel, "push") != 0)
        return 0;                    /* the webhook consumer's */
    if (json_get_i64(p, "recipient_id", &recipient) < 0 ||
        json_get_i64(p, "subscription_id", &sub_id) < 0 ||
        (!cJSON_IsObject(msg) && !cJSON_IsObject(ref))) {
        bus_delivery_set_error(d, "malformed notification.requested");
        return -EINVAL;
    }
    if (!cJSON_IsObject(msg))
        return rebuild(n, d, recipient, sub_id, ref);
    return start_push(n, d, recipient, sub_id, msg);
}
