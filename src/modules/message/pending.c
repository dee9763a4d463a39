/* pending.c: the HTTP posts whose message is on its way to the writer, by request
 * id. The answer arrives later as a message.stored / message.rejected event naming
 * the request in its origin. Request ids count from 1; an origin's 0 ("not over
 * HTTP") is never a key, so taking it finds nothing. */
#include <errno.h>
#include "message_internal.h"

/* Allocated whole at start: a post at the bound is refused (-ENOSPC: 503), and one
 * below it never waits on an allocation. */
int pending_init(struct pending_table *t, size_t max)
{
    i64map_init(&t->map, max ? max : 1);
    return i64map_reserve(&t->map, t->map.max);
}

void pending_free(struct pending_table *t)
{
    i64map_free(&t->map);
}

int pending_put(struct pending_table *t, struct http_req *req)
{
    return i64map_put(&t->map, (int64_t)req->id, req);
}

struct http_req *pending_take(struct pending_table *t, uint64_t req_id)
{
    return i64map_take(&t->map, (int64_t)req_id);
}

size_t pending_count(const struct pending_table *t)
{
    return i64map_count(&t->map);
}
