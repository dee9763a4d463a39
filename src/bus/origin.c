/* origin.c: the ids that name this process (bus.h: its node, and the run drawn at
 * start) and the origins stamped with them, which tell an event's answer where to go. */
#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "bus_internal.h"

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
