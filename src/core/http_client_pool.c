/* http_client_pool.c: the idle connections, oldest first. A connection is reused for
 * the same origin (scheme, host, port) under the same address policy: one opened for
 * a caller that may go anywhere is never handed to one that checks addresses. At most
 * max_idle_per_origin per origin (the newest is not kept past it) and max_idle in all
 * (the oldest gives way). The lists are short (max_idle), so they are scanned. */
#include <string.h>
#include "http_client_impl.h"

static int same_origin(const struct hc_conn *k, const struct http_client_origin *o,
                       http_client_addr_pick pick)
{
    return k->pick == pick && k->o.tls == o->tls && strcmp(k->o.port, o->port) == 0 &&
           strcmp(k->o.host, o->host) == 0;
}

void hc_pool_remove(struct http_client *c, struct hc_conn *k)
{
    if (k->idle_prev)
        k->idle_prev->idle_next = k->idle_next;
    else
        c->idle_head = k->idle_next;
    if (k->idle_next)
        k->idle_next->idle_prev = k->idle_prev;
    else
        c->idle_tail = k->idle_prev;
    k->idle_prev = k->idle_next = NULL;
    c->idle--;
}

/* The newest first: it is the least likely to have been closed by the server. */
struct hc_conn *hc_pool_take(struct http_client *c, const struct hc_req *r)
{
    for (struct hc_conn *k = c->idle_tail; k; k = k->idle_prev) {
        if (same_origin(k, &r->t.o, r->pick)) {
            hc_pool_remove(c, k);
            return k;
        }
    }
    return NULL;
}

struct hc_conn *hc_pool_put(struct http_client *c, struct hc_conn *k)
{
    int same = 0;
    if (c->opts.max_idle_per_origin <= 0 || c->opts.max_idle <= 0)
        return k;
    for (struct hc_conn *i = c->idle_head; i; i = i->idle_next)
        same += same_origin(i, &k->o, k->pick);
    if (same >= c->opts.max_idle_per_origin)
        return k;
    struct hc_conn *evict = NULL;
    if (c->idle >= c->opts.max_idle) {
        evict = c->idle_head;
        hc_pool_remove(c, evict);
    }
    k->idle_next = NULL;
    k->idle_prev = c->idle_tail;
    if (c->idle_tail)
        c->idle_tail->idle_next = k;
    else
        c->idle_head = k;
    c->idle_tail = k;
    c->idle++;
    return evict;
}
