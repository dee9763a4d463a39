/* http_client_pool.c: the origins and the idle connections. A connection is reused for
 * the same origin (scheme, host, port) under the same address policy: one opened for
 * a caller that may go anywhere is never handed to one that checks addresses. Each
 * request and connection refers to its origin record, which counts the connections
 * open to it (for max_conns_per_origin) and those idle; the record goes with the last
 * reference. The idle ones are kept oldest first: at most max_idle_per_origin per
 * origin (the newest is not kept past it) and max_idle in all (the oldest gives way).
 * The lists are short (requests plus connections, max_idle), so they are scanned. */
#include <stdlib.h>
#include <string.h>
#include "http_client_impl.h"

static int same_origin(const struct hc_origin *g, const struct http_client_origin *o,
                       http_client_addr_pick pick)
{
    return g->pick == pick && g->o.tls == o->tls && strcmp(g->o.port, o->port) == 0 &&
           strcmp(g->o.host, o->host) == 0;
}

struct hc_origin *hc_origin_ref(struct http_client *c, const struct http_client_origin *o,
                                http_client_addr_pick pick)
{
    struct hc_origin *g = c->origins;
    while (g && !same_origin(g, o, pick))
        g = g->next;
    if (!g) {
        g = calloc(1, sizeof(*g));
        if (!g)
            return NULL;
        g->o = *o;
        g->pick = pick;
        g->next = c->origins;
        if (c->origins)
            c->origins->prev = g;
        c->origins = g;
    }
    g->refs++;
    return g;
}

static void origin_free(struct http_client *c, struct hc_origin *g)
{
    if (g->prev)
        g->prev->next = g->next;
    else
        c->origins = g->next;
    if (g->next)
        g->next->prev = g->prev;
    free(g);
}

void hc_origin_unref(struct http_client *c, struct hc_origin *g)
{
    if (g && --g->refs == 0)
        origin_free(c, g);
}

void hc_origins_free(struct http_client *c)
{
    while (c->origins)
        origin_free(c, c->origins);
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
    k->origin->idle--;
    c->idle--;
}

/* The newest first: it is the least likely to have been closed by the server. */
struct hc_conn *hc_pool_take(struct http_client *c, const struct hc_req *r)
{
    if (r->origin->idle == 0)
        return NULL;
    for (struct hc_conn *k = c->idle_tail; k; k = k->idle_prev) {
        if (k->origin == r->origin) {
            hc_pool_remove(c, k);
            return k;
        }
    }
    return NULL;
}

struct hc_conn *hc_pool_put(struct http_client *c, struct hc_conn *k)
{
    if (c->opts.max_idle_per_origin <= 0 || c->opts.max_idle <= 0 ||
        k->origin->idle >= c->opts.max_idle_per_origin)
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
    k->origin->idle++;
    c->idle++;
    return evict;
}
