/* typed_send.c: the typed ways in (event_codec.h): publishing, asking and answering
 * with structs, encoded here and sent through publish.c and request.c. What comes
 * back is decoded by typed.c. */
#include <errno.h>
#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "bus_internal.h"

int bus_publish_ev(struct bus *b, const struct ev_type *type, const void *data)
{
    struct bus_event *ev = bus_event_new_ev(type, data);

    return ev ? bus_publish(b, ev) : -EINVAL;
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
