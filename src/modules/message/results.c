/* results.c: what became of a submitted message, said twice: to its HTTP post when
 * it came from one of ours (answered here, not through our own subscription), then
 * to every other module as message.stored or message.rejected, whose origin is the
 * submitted one, copied. */
#include <errno.h>
#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "message_internal.h"

void msg_job_outcome(const struct msg_job *j, struct msg_outcome *o)
{
    int stored = j->status == 201 || j->status == 200;
    *o = (struct msg_outcome){
        .origin = &j->origin, .client_msg_id = j->client_msg_id, .room_id = j->room_id,
        .status = stored || j->status >= 400 ? j->status : 503,
        .errmsg = j->errmsg ? j->errmsg : "could not store the message",
        .row = stored ? &j->row : NULL,
        .member_ids = j->member_ids, .nmembers = j->nmembers,
    };
}

void msg_stored_ev(const struct msg_outcome *o, struct ev_message_stored *s, struct ev_msg *m)
{
    const struct msg_row *r = o->row;
    *m = (struct ev_msg){
        .id = r->id, .room_id = r->room_id, .seq = r->seq, .sender_id = r->sender_id,
        .created_at = r->created_at, .sender = r->sender ? r->sender : "",
        .body = r->body ? r->body : "", .client_msg_id = r->client_msg_id,
    };
    *s = (struct ev_message_stored){
        .message = m, .member_ids = { o->member_ids, (size_t)o->nmembers },
        .origin = (struct ev_origin *)o->origin, .duplicate = o->status == 200,
    };
}

void msg_rejected_ev(const struct msg_outcome *o, struct ev_message_rejected *r)
{
    static struct ev_origin nowhere;     /* {"node":0,"run":0}: nobody's */
    *r = (struct ev_message_rejected){
        .origin = (struct ev_origin *)(o->origin ? o->origin : &nowhere),
        .client_msg_id = o->client_msg_id, .room_id = o->room_id,
        .code = msg_code_of_status(o->status), .message = o->errmsg,
        .retry_after_ms = o->retry_after_ms,
    };
}

/* The post's answer, when the origin is one of our pending requests. */
static void answer_http(struct msg_state *st, const struct msg_outcome *o)
{
    if (!o->origin || !o->origin->http || !bus_origin_is_here(st->app->bus, o->origin))
        return;
    struct http_req *req = pending_take(&st->pending, (uint64_t)o->origin->http);
    if (!req)
        return;                      /* already answered */
    if (o->row) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddItemToObject(a, "message", msg_row_json(o->row));
        http_respond_json(req, o->status, a);
    } else if (o->status == 429) {
        http_respond_rate_limited(req, o->retry_after_ms);
    } else {
        http_respond_error(req, o->status, "%s", o->errmsg);
    }
}

int msg_publish_outcome(struct msg_state *st, const struct msg_outcome *o)
{
    answer_http(st, o);
    if (o->row) {
        struct ev_message_stored s;
        struct ev_msg m;
        msg_stored_ev(o, &s, &m);
        return bus_publish_ev(st->app->bus, &EV_MESSAGE_STORED, &s);
    }
    struct ev_message_rejected r;
    msg_rejected_ev(o, &r);
    return bus_publish_ev(st->app->bus, &EV_MESSAGE_REJECTED, &r);
}
