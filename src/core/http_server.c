/* http_server.c: the listener, accepting (max_connections), the token verifier, and
 * the server's lifecycle. A parsed request goes to its route in http_dispatch.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <strings.h>

#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "http_internal.h"
#include "token_internal.h"

static const double latency_bounds[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

static double gauge_conns(void *ctx)
{
    return ((struct http_server *)ctx)->nconns;
}

int http_server_new(struct http_server **out, struct chatd *app)
{
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->app = app;
    s->listener_closed = 1;
    s->parse = &http_parse_ops;
    if (app->metrics) {
        s->latency = metrics_histogram(app->metrics, "chatd_http_request_duration_seconds",
                                       NULL, "Time from a request's first byte to its answer",
                                       latency_bounds,
                                       (int)(sizeof(latency_bounds) / sizeof(latency_bounds[0])));
        metrics_gauge_fn(app->metrics, "chatd_http_connections", NULL,
                         "Open client sockets (HTTP and upgraded)", gauge_conns, s);
    }
    int rc = http_ops_register(s);
    if (rc == 0)
        rc = token_gateway_new(&s->tokens, app);
    if (rc < 0) {
        http_server_free(s);
        return rc;
    }
    http_set_verifier(s, token_gateway_verify, s->tokens);
    *out = s;
    return 0;
}

void http_set_verifier(struct http_server *s, http_verify_fn fn, void *ctx)
{
    s->verify = fn;
    s->verify_ctx = ctx;
}

int http_verify_token(struct http_server *s, const char *token, struct http_user *user,
                      const char **reason)
{
    *reason = "no_verifier";
    if (!s->verify)
        return -ENOSYS;
    if (!token || !*token) {
        *reason = "missing";
        return -EINVAL;
    }
    memset(user, 0, sizeof(*user));
    *reason = "invalid";
    return s->verify(s->verify_ctx, token, user, reason);
}

int http_server_connections(const struct http_server *s)
{
    return s->nconns;
}

/* ---- listening and accepting ---- */

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct http_server *s = listener->data;
    if (status < 0) {
        LOG_WARN(s->app, "http", "accept failed err=%s", uv_strerror(status));
        return;
    }
    struct http_sock *sock = calloc(1, sizeof(*sock));
    if (!sock)
        return;
    sock->server = s;
    uv_tcp_init(s->app->loop, &sock->tcp);
    s->nconns++;
    if (uv_accept(listener, (uv_stream_t *)&sock->tcp) < 0) {
        uv_close((uv_handle_t *)&sock->tcp, free_handle);
        s->nconns--;
        return;
    }
    /* No TCP_NODELAY here: Linux gives accepted sockets the listener's (set in
     * http_server_listen), which saves a setsockopt per connection. */
    struct http_conn *c;
    if (http_conn_new(s, sock, &c) < 0) {
        http_upgraded_close(&sock->tcp, NULL, NULL);
        return;
    }
    sock->tcp.data = c;
    struct sockaddr_storage sa;
    int salen = sizeof(sa);
    if (uv_tcp_getpeername(&sock->tcp, (struct sockaddr *)&sa, &salen) == 0) {
        if (sa.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&sa, c->client_ip, sizeof(c->client_ip));
        else
            uv_ip4_name((struct sockaddr_in *)&sa, c->client_ip, sizeof(c->client_ip));
    }
    http_conn_start(c);
    int max = s->app->cfg->server.max_connections;
    if (s->closing || (max > 0 && s->nconns > max)) {
        /* Accepted anyway so the client hears why, instead of waiting in the backlog. */
        http_conn_fail(c, 503, s->closing ? "server is shutting down"
                                          : "too many connections");
    }
}

int http_server_listen(struct http_server *s, char *bound, size_t boundlen)
{
    const struct chatd_config *cfg = s->app->cfg;
    struct sockaddr_storage sa;
    const char *host = cfg->server.listen_host[0] ? cfg->server.listen_host : "127.0.0.1";
    int port = cfg->server.listen_port;
    int rc;
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&sa);
    if (rc < 0)
        return rc;
    rc = uv_tcp_init(s->app->loop, &s->listener);
    if (rc < 0)
        return rc;
    s->listener.data = s;
    s->listener_closed = 0;
    s->listening = 1;
    rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0);
    /* Answers and frames leave whole, in one write each: Nagle would only hold the
     * next one back behind a delayed ACK. Accepted sockets inherit the option. */
    if (rc == 0)
        rc = uv_tcp_nodelay(&s->listener, 1);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (rc < 0) {
        LOG_ERROR(s->app, "http", "cannot listen addr=%s port=%d err=%s", host, port,
                  uv_strerror(rc));
        http_server_stop_accepting(s);
        return rc;
    }
    struct sockaddr_storage got;
    int len = sizeof(got);
    char name[64] = "";
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
    if (got.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&got, name, sizeof(name));
        snprintf(bound, boundlen, "[%s]:%d", name,
                 ntohs(((struct sockaddr_in6 *)&got)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)&got, name, sizeof(name));
        snprintf(bound, boundlen, "%s:%d", name, ntohs(((struct sockaddr_in *)&got)->sin_port));
    }
    return 0;
}

/* ---- shutdown ---- */

static void on_listener_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    s->listener_closed = 1;
    http_server_check_closed(s);
}

void http_server_stop_accepting(struct http_server *s)
{
    if (!s->listening)
        return;
    s->listening = 0;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

/* Closes every HTTP connection (upgraded sockets belong to their new owner) and calls
 * done once they and the listener are gone. A request still with its handler answers
 * into the void. */
void http_server_close(struct http_server *s, void (*done)(void *arg), void *arg)
{
    s->closing = 1;
    s->close_done = done;
    s->close_arg = arg;
    http_server_stop_accepting(s);
    while (s->conns)
        http_conn_close(s->conns);
    /* Every close above completes later, from the loop; with nothing open at all the
     * listener may already be gone, so check now too. */
    http_server_check_closed(s);
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    http_router_free(&s->router);
    http_ops_free(s);
    token_gateway_free(s->tokens);
    free(s);
}
