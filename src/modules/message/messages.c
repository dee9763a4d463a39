/* messages.c: storing one message. message.submitted (from an HTTP post of this
 * module or from the websocket module) becomes a message of the open batch
 * (batch.c), which checks the membership, deduplicates on (sender_id, client_msg_id)
 * and takes the next seq of the room inside the group transaction; after COMMIT the
 * loop publishes message.stored or message.rejected. Nobody hears of a message before
 * its transaction is durable. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/events.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "message_internal.h"

/* Keys are literals, added without a copy (CS): every stored message builds one of
 * these on the writer, and every copied key is a malloc and a free. */
static void add_num(cJSON *o, const char *key, int64_t v)
{
    cJSON_AddItemToObjectCS(o, key, cJSON_CreateNumber((double)v));
}

cJSON *msg_row_json(const struct msg_row *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    add_num(o, "id", m->id);
    add_num(o, "room_id", m->room_id);
    add_num(o, "seq", m->seq);
    add_num(o, "sender_id", m->sender_id);
    cJSON_AddItemToObjectCS(o, "sender", cJSON_CreateString(m->sender ? m->sender : ""));
    cJSON_AddItemToObjectCS(o, "body", cJSON_CreateString(m->body ? m->body : ""));
    cJSON_AddItemToObjectCS(o, "client_msg_id", m->client_msg_id
                                                ? cJSON_CreateString(m->client_msg_id)
                                                : cJSON_CreateNull());
    add_num(o, "created_at", m->created_at);
    return o;
}

static cJSON *rejected_payload_retry(const cJSON *origin, const char *cmid, int64_t room_id,
                                     int status, const char *msg, int64_t retry_after_ms);

/* ---------- the job ---------- */
void msg_job_free(struct msg_job *j)
{
    if (!j)
        return;
    free(j->dup);
    cJSON_Delete(j->origin);
    free(j);
}

/* One allocation for the job and its strings: the loop makes one per message. */
struct msg_job *msg_job_new(struct msg_state *st, int64_t room_id, int64_t sender_id,
                            const char *sender, const char *body, const char *cmid,
                            const cJSON *origin)
{
    size_t ls = strlen(sender) + 1, lb = strlen(body) + 1, lc = cmid ? strlen(cmid) + 1 : 0;
    struct msg_job *j = malloc(sizeof(*j) + ls + lb + lc);
    if (!j)
        return NULL;
    memset(j, 0, sizeof(*j));
    char *p = (char *)(j + 1);
    j->st = st;
    j->room_id = room_id;
    j->sender_id = sender_id;
    j->sender = memcpy(p, sender, ls);
    j->body = memcpy(p + ls, body, lb);
    j->client_msg_id = cmid ? memcpy(p + ls + lb, cmid, lc) : NULL;
    j->origin = origin ? cJSON_Duplicate(origin, 1) : NULL;
    j->t0_ns = mono_ns();
    if (origin && !j->origin) {
        msg_job_free(j);
        return NULL;
    }
    return j;
}

void msg_job_reset(struct msg_job *j)
{
    j->status = 0;
    j->errmsg = NULL;
    j->member_ids = NULL;
    j->nmembers = 0;
    free(j->dup);
    j->dup = NULL;
    memset(&j->row, 0, sizeof(j->row));
}

void msg_job_fail(struct msg_job *j, int status, const char *msg)
{
    j->status = status;
    j->errmsg = msg;
}

static cJSON *stored_payload(const struct msg_job *j, cJSON *origin)
{
    cJSON *p = cJSON_CreateObject();
    if (!p) {
        cJSON_Delete(origin);
        return NULL;
    }
    cJSON_AddItemToObjectCS(p, "message", msg_row_json(&j->row));
    cJSON_AddItemToObjectCS(p, "member_ids", ids_json(j->member_ids, j->nmembers));
    if (origin)
        cJSON_AddItemToObjectCS(p, "origin", origin);
    cJSON_AddItemToObjectCS(p, "duplicate", cJSON_CreateBool(j->status == 200));
    return p;
}

cJSON *msg_job_stored_payload(const struct msg_job *j)
{
    return stored_payload(j, j->origin ? cJSON_Duplicate(j->origin, 1) : NULL);
}

static cJSON *rejected_payload(const cJSON *origin, const char *cmid, int64_t room_id,
                               int status, const char *msg)
{
    return rejected_payload_retry(origin, cmid, room_id, status, msg, 0);
}

static cJSON *rejected_payload_retry(const cJSON *origin, const char *cmid, int64_t room_id,
                                     int status, const char *msg, int64_t retry_after_ms)
{
    cJSON *p = cJSON_CreateObject();
    if (!p)
        return NULL;
    cJSON_AddItemToObject(p, "origin",
                          origin ? cJSON_Duplicate(origin, 1) : cJSON_CreateObject());
    if (cmid)
        cJSON_AddStringToObject(p, "client_msg_id", cmid);
    cJSON_AddNumberToObject(p, "room_id", (double)room_id);
    cJSON_AddStringToObject(p, "code", msg_code_of_status(status));
    cJSON_AddStringToObject(p, "message", msg);
    if (retry_after_ms > 0)
        cJSON_AddNumberToObject(p, "retry_after_ms", (double)retry_after_ms);
    return p;
}

cJSON *msg_job_rejected_payload(const struct msg_job *j)
{
    return rejected_payload(j->origin, j->client_msg_id, j->room_id,
                            j->status >= 400 ? j->status : 503,
                            j->errmsg ? j->errmsg : "could not store the message");
}

/* Loop: what became of a message goes to its HTTP post, if it came from one of ours
 * (answered here, not through our own subscription), then to every other module. */
static int publish_result(struct msg_state *st, struct bus_event *ev, int stored)
{
    if (!ev)
        return -ENOMEM;
    msg_answer_http(st, ev->payload, stored);
    return bus_publish(st->app->bus, ev);
}

/* Loop, after COMMIT: tells everybody what became of the message, and frees it. */
void msg_job_post_result(struct msg_state *st, struct msg_job *j)
{
    struct bus_event *ev;
    int stored = j->status == 201 || j->status == 200;

    if (stored) {
        METRIC_INC(j->status == 201 ? st->m_stored : st->m_duplicates);
        metrics_observe(st->m_latency, (double)(mono_ns() - j->t0_ns) / 1e9);
        /* Commit-time members, in commit order: the freshest the cache can get. */
        if (j->nmembers > 0 && j->nmembers <= MSG_ROOM_MAX_MEMBERS)
            mcache_put(st->members, j->room_id, j->member_ids, j->nmembers);
        /* The job ends here: its origin moves into the event instead of a copy. */
        ev = bus_event_new(TOPIC_MESSAGE_STORED, stored_payload(j, j->origin));
        j->origin = NULL;
    } else {
        METRIC_INC(st->m_rejected);
        ev = bus_event_new(TOPIC_MESSAGE_REJECTED, msg_job_rejected_payload(j));
    }
    if (publish_result(st, ev, stored) == -ECANCELED)
        LOG_WARN(st->app, "message", "result not delivered: bus closing room_id=%lld",
                 (long long)j->room_id);
    msg_job_free(j);
}

/* ---------- message.submitted on the loop ---------- */
static void reject_now(struct msg_state *st, const cJSON *origin, const char *cmid,
                       int64_t room_id, int status, const char *msg)
{
    struct bus_event *ev = bus_event_new(TOPIC_MESSAGE_REJECTED,
                                         rejected_payload(origin, cmid, room_id, status, msg));
    METRIC_INC(st->m_rejected);
    publish_result(st, ev, 0);
}

/* The rate limit's key for a sender: its id in decimal (snprintf costs more than the
 * rest of the limit check, on every message). */
static void id_key(char *out, int64_t id)
{
    char tmp[24];
    uint64_t u = (uint64_t)id;
    int n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        *out++ = tmp[--n];
    *out = '\0';
}

void msg_submit(struct msg_state *st, const cJSON *p)
{
    int64_t room_id = 0, sender_id = 0;
    const char *sender = NULL;
    const cJSON *origin = cJSON_GetObjectItemCaseSensitive(p, "origin");
    const char *body = msg_json_string(p, "body"), *cmid = msg_json_string(p, "client_msg_id");

    if (json_get_i64(p, "room_id", &room_id) < 0)
        room_id = 0;
    enum msg_fault fault = msg_validate(st, room_id, body, cmid);
    if (cmid == MSG_NOT_A_STRING)
        cmid = NULL;                 /* the rejection carries no client_msg_id then */
    if (fault == MSG_FAULT_ROOM_ID)
        return reject_now(st, origin, cmid, room_id, 400, msg_fault_text(fault));
    if (json_get_i64(p, "sender_id", &sender_id) < 0 || sender_id <= 0 ||
        json_get_str(p, "sender", &sender) < 0)
        return reject_now(st, origin, cmid, room_id, 400, "sender is missing");
    if (fault != MSG_VALID)
        return reject_now(st, origin, cmid, room_id, 400, msg_fault_text(fault));
    if (st->draining)
        return reject_now(st, origin, cmid, room_id, 503, "the server is shutting down");
    /* Every send passes here, HTTP and WebSocket alike: one budget per sender. */
    char key[24];
    id_key(key, sender_id);
    int64_t wait_ms = ratelimit_take(st->send_limit, key, mono_ms());
    if (wait_ms > 0) {
        struct bus_event *ev = bus_event_new(TOPIC_MESSAGE_REJECTED,
            rejected_payload_retry(origin, cmid, room_id, 429, "too many messages: slow down",
                                   wait_ms));
        METRIC_INC(st->m_rejected);
        publish_result(st, ev, 0);
        return;
    }

    struct msg_job *j = msg_job_new(st, room_id, sender_id, sender, body, cmid, origin);
    if (!j)
        return reject_now(st, origin, cmid, room_id, 503, "out of memory");
    if (__atomic_load_n(&st->jobs_inflight, __ATOMIC_RELAXED) >= MSG_QUEUED_MAX) {
        msg_job_free(j);
        return reject_now(st, origin, cmid, room_id, 503,
                          "too many messages waiting to be stored");
    }
    __atomic_fetch_add(&st->jobs_inflight, 1, __ATOMIC_RELAXED);
    int rc = msg_batch_queue(st, j);
    if (rc < 0) {
        __atomic_fetch_sub(&st->jobs_inflight, 1, __ATOMIC_RELAXED);
        msg_job_free(j);
        return reject_now(st, origin, cmid, room_id, 503,
                          rc == -EAGAIN ? "too many messages waiting to be stored"
                                        : "the database is not available");
    }
}

/* ---------- answers to this module's HTTP posts ---------- */
void msg_answer_http(struct msg_state *st, const cJSON *p, int stored)
{
    const cJSON *origin = cJSON_GetObjectItemCaseSensitive(p, "origin");
    const cJSON *http = cJSON_GetObjectItemCaseSensitive(origin, "http");
    if (!cJSON_IsNumber(http))
        return;
    struct http_req *req = pending_take(&st->pending, (uint64_t)http->valuedouble);
    if (!req)
        return;                      /* another process's, or already answered */
    if (stored) {
        const cJSON *dup = cJSON_GetObjectItemCaseSensitive(p, "duplicate");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "message",
            cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(p, "message"), 1));
        http_respond_json(req, cJSON_IsTrue(dup) ? 200 : 201, o);
        return;
    }
    const char *code = NULL, *msg = NULL;
    int64_t retry_ms = 0;
    json_get_str(p, "code", &code);
    json_get_str(p, "message", &msg);
    if (msg_status_of_code(code) == 429) {
        json_get_i64(p, "retry_after_ms", &retry_ms);
        http_respond_rate_limited(req, retry_ms);
        return;
    }
    http_respond_error(req, msg_status_of_code(code), "%s", msg ? msg : "not stored");
}
