/* routes_messages.c: posting and reading messages, and read markers over HTTP.
 * A post takes the same road as a WebSocket "send": it is published as
 * message.submitted with the request as its origin, and answered when the matching
 * message.stored (or message.rejected) comes back after the commit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/util.h"
#include "message_internal.h"

/* A field of the request body as msg_validate takes it: NULL when absent or null, the
 * string, or MSG_NOT_A_STRING. */
static const char *body_string(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v))
        return NULL;
    return cJSON_IsString(v) ? v->valuestring : MSG_NOT_A_STRING;
}

/* The route's words for a fault: as message.rejected's, but for the room id, which
 * here is a path's, and the body's length, which names the limit. */
static void respond_fault(struct http_req *req, const struct msg_state *st, enum msg_fault f)
{
    if (f == MSG_FAULT_ROOM_ID)
        http_respond_error(req, 400, "invalid room id");
    else if (f == MSG_FAULT_BODY_LONG)
        http_respond_error(req, 400, "body is longer than %d bytes", st->max_body_bytes);
    else
        http_respond_error(req, 400, "%s", msg_fault_text(f));
}

static void route_post(struct http_req *req, void *ctx)
{
    struct msg_state *st = ctx;
    int64_t room_id = http_param_id(req, 0);
    if (room_id <= 0) {
        respond_fault(req, st, MSG_FAULT_ROOM_ID);
        return;
    }
    cJSON *in = http_json_body(req);
    if (!in)
        return;
    const char *body = body_string(in, "body"), *cmid = body_string(in, "client_msg_id");
    enum msg_fault fault = msg_validate(st, room_id, body, cmid);
    if (fault != MSG_VALID) {
        respond_fault(req, st, fault);
        goto out;
    }
    if (st->draining) {
        http_respond_error(req, 503, "the server is shutting down");
        goto out;
    }
    if (pending_put(&st->pending, req) < 0) {
        http_respond_error(req, 503, "too many messages waiting to be stored");
        goto out;
    }

    /* The sender is the authenticated user, whatever the body says. */
    struct ev_origin origin;
    bus_origin_http(st->app->bus, req->id, &origin);
    struct ev_message_submitted m = {
        .room_id = room_id, .sender_id = req->user.id, .sender = req->user.name,
        .body = body, .client_msg_id = cmid, .origin = &origin,
    };
    uint64_t req_id = req->id;
    if (bus_publish_ev(st->app->bus, &EV_MESSAGE_SUBMITTED, &m) < 0) {
        struct http_req *r = pending_take(&st->pending, req_id);
        if (r)
            http_respond_error(r, 503, "the message bus is not available");
    }
out:
    cJSON_Delete(in);
}

static void route_history(struct http_req *req, void *ctx)
{
    history_get(ctx, req);
}

static void route_read(struct http_req *req, void *ctx)
{
    struct msg_state *st = ctx;
    int64_t room_id = http_param_id(req, 0), seq;
    if (room_id <= 0) {
        http_respond_error(req, 400, "invalid room id");
        return;
    }
    cJSON *in = http_json_body(req);
    if (!in)
        return;
    if (json_get_i64(in, "seq", &seq) < 0 || seq < 0) {
        http_respond_error(req, 400, "seq must be a non-negative integer");
    } else if (st->draining) {
        http_respond_error(req, 503, "the server is shutting down");
    } else {
        reads_submit(st, req, room_id, req->user.id, seq);
    }
    cJSON_Delete(in);
}

int routes_messages_add(struct msg_state *st)
{
    struct http_server *s = st->app->http;
    int rc = 0;
    rc |= http_route(s, HTTP_VERB_POST, "/v1/rooms/{id}/messages", HTTP_ROUTE_AUTH,
                     route_post, st);
    rc |= http_route(s, HTTP_VERB_GET, "/v1/rooms/{id}/messages", HTTP_ROUTE_AUTH,
                     route_history, st);
    rc |= http_route(s, HTTP_VERB_POST, "/v1/rooms/{id}/read", HTTP_ROUTE_AUTH,
                     route_read, st);
    return rc ? -EINVAL : 0;
}
