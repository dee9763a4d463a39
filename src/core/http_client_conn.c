/* http_client_conn.c: a connection of the HTTP client up to connected:
 *   RESOLVING  uv_getaddrinfo on the thread pool; the caller's hook picks the address
 *   CONNECTING uv_tcp_connect to exactly that address
 * then http_client_io.c takes it over (handshake, exchanges, idle, close). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/chatd.h"
#include "http_client_impl.h"

static void on_connect(uv_connect_t *c, int status)
{
    struct hc_conn *k = c->data;
    if (k->state == HC_CLOSED)
        return;
    if (status < 0)
        hc_conn_fail_uv(k, "connect", status);
    else
        hc_conn_connected(k);
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    struct hc_conn *k = g->data;
    k->gai_pending = 0;
    if (k->state == HC_CLOSED || status < 0) {
        if (res)
            uv_freeaddrinfo(res);
        if (k->state != HC_CLOSED)
            hc_conn_fail_uv(k, "dns", status);
        hc_conn_maybe_free(k);
        return;
    }
    /* The address judged is the one connected to: a name resolving differently a
     * moment later changes nothing. */
    const struct addrinfo *ai = k->pick ? k->pick(res, k->o.host, k->error, sizeof(k->error))
                                        : res;
    if (!ai) {
        uv_freeaddrinfo(res);
        hc_conn_report_error(k, HTTP_CLIENT_REFUSED);
        return;
    }
    k->state = HC_CONNECTING;
    int rc = uv_tcp_init(k->client->app->loop, &k->tcp);
    if (rc == 0) {
        k->tcp.data = k;
        k->tcp_open = 1;
        k->handles++;
        k->connect.data = k;
        uv_tcp_nodelay(&k->tcp, 1);
        k->client->stats.connections++;
        rc = uv_tcp_connect(&k->connect, &k->tcp, ai->ai_addr, on_connect);
    }
    uv_freeaddrinfo(res);
    if (rc < 0)
        hc_conn_fail_uv(k, "connect", rc);
}

int hc_conn_open(struct http_client *c, struct hc_req *r)
{
    struct hc_conn *k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->client = c;
    k->o = r->t.o;
    k->pick = r->pick;
    k->origin = r->origin;             /* counted by the client once open */
    k->req = r;
    k->state = HC_RESOLVING;
    hc_response_init(&k->resp, c->opts.max_head_bytes, c->opts.max_body_bytes);
    k->next = c->conns;
    if (c->conns)
        c->conns->prev = k;
    c->conns = k;
    c->live++;
    uv_timer_init(c->app->loop, &k->timer);
    k->timer.data = k;
    k->handles++;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    k->gai.data = k;
    int rc = uv_getaddrinfo(c->app->loop, &k->gai, on_resolved, k->o.host, k->o.port, &hints);
    if (rc < 0) {
        /* Never report from inside the caller's send: the timer does. */
        k->deferred_status = rc;
        uv_timer_start(&k->timer, hc_conn_on_timer, 0, 0);
        return 0;
    }
    k->gai_pending = 1;
    uv_timer_start(&k->timer, hc_conn_on_timer, (uint64_t)c->opts.connect_timeout_ms, 0);
    return 0;
}
