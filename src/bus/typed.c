/* typed.c: the bus's side of typed events (event_codec.h): a struct made into an
 * event, and payloads decoded for the handlers and the requesters on the way out.
 * Publishing, asking and answering with structs is typed_send.c's. */
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

int bus_event_decode(struct bus_event *ev, const struct ev_type *type, char *why,
                     size_t whylen)
{
    int rc = ev_decode(type, ev->payload, &ev->data, why, whylen);

    if (rc == -ENOMEM)
        snprintf(why, whylen, "out of memory decoding the payload");
    return rc;
}

/* --- the requester's reply --------------------------------------------------------- */

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
