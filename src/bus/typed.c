/* typed.c: the bus's side of typed events (event_codec.h): structs encoded into
 * events on the way in, payloads decoded for the handlers and the requesters on the
 * way out, and the ids that name this process in an origin. */
#include <errno.h>
#include <stdio.h>
#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "bus_internal.h"

struct bus_event *bus_event_new_ev(const struct ev_type *type, const void *data)
{
    cJSON *p = type && type->topic ? ev_encode(type, data) : NULL;

    return p ? bus_event_new(type->topic, p) : NULL;
}

int bus_publish_ev(struct bus *b, const struct ev_type *type, const void *data)
{
    struct bus_event *ev = bus_event_new_ev(type, data);

    return ev ? bus_publish(b, ev) : -EINVAL;
}

int bus_event_decode(struct bus_event *ev, const struct ev_type *type, char *why,
                     size_t whylen)
{
    int rc = ev_decode(type, ev->payload, &ev->data, why, whylen);

    if (rc == -ENOMEM)
        snprintf(why, whylen, "out of memory decoding the payload");
    return rc;
}

/* --- request / reply --------------------------------------------------------------- */

void request_answer(struct bus_request *r, int status, const cJSON *payload)
{
    const struct ev_type *type = status == 0 ? r->reply_type : &EV_ERROR;
    void *data = NULL;
    char why[160];

    if (r->fn) {
        r->fn(r->ctx, status, payload);
        return;
    }
    if (payload && ev_decode(type, payload, &data, why, sizeof(why)) < 0 && status == 0)
        status = -EPROTO;
    else if (!payload && status == 0)
        status = -EPROTO;
    r->tfn(r->ctx, status, data);
    ev_free(data);
}

int64_t bus_request_ev(struct bus *b, const struct ev_type *type, const void *data,
                       int timeout_ms, bus_reply_ev_fn fn, void *ctx)
{
    cJSON *p;

    if (!type || !type->topic || !type->reply || !fn)
        return -EINVAL;
    if (!(p = ev_encode(type, data)))
        return -EINVAL;
    return bus_request_typed(b, type->topic, p, timeout_ms, fn, type->reply, ctx);
}

int bus_reply_ev(struct bus *b, const struct bus_event *request, int status,
                 const void *data)
{
    const struct ev_type *rt = NULL, *q = request ? ev_type_of_topic(request->topic) : NULL;
    cJSON *p = NULL;

    if (status == 0)
        rt = q ? q->reply : NULL;
    else if (data)
        rt = &EV_ERROR;
    if (rt && !(p = ev_encode(rt, data)))
        return -EINVAL;
    if (status == 0 && !p)
        return -EINVAL;
    return bus_reply(b, request, status, p);
}

/* --- this process ----------------------------------------------------------------- */

int64_t bus_node_id(const struct bus *b)
{
    return b->node;
}

int64_t bus_run_id(const struct bus *b)
{
    return b->run;
}

void bus_origin_conn(const struct bus *b, uint64_t conn_id, struct ev_origin *out)
{
    *out = (struct ev_origin){ .node = b->node, .run = b->run, .conn = (int64_t)conn_id };
}

void bus_origin_http(const struct bus *b, uint64_t request_id, struct ev_origin *out)
{
    *out = (struct ev_origin){ .node = b->node, .run = b->run, .http = (int64_t)request_id };
}

int bus_origin_is_here(const struct bus *b, const struct ev_origin *o)
{
    return o && o->node == b->node && o->run == b->run;
}
