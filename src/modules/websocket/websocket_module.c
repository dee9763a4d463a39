/* The websocket module: GET /v1/ws and the real-time protocol (see ws_internal.h for
 * the layout of the files and docs/protocol.md for the frames) over core's WebSocket
 * transport. The drain is heartbeat.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/bus.h"
#include "chatd/config.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/http.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/module.h"
#include "ws_internal.h"
#include "ws_settings.h"

static double gauge_connections(void *ctx)
{
    return ((struct ws_module *)ctx)->nconns;
}

static double gauge_queue_bytes(void *ctx)
{
    struct ws_module *m = ctx;
    return (double)m->ops->queue_bytes(m->tx);
}

static void metrics_register(struct ws_module *m)
{
    static const char *const codes[] = { "1000", "1001", "1002", "1003", "1005", "1006",
                                         "1007", "1008", "1009", "1011", "1013", "4000",
                                         "4001", "4002", "other" };
    struct metrics *mx = m->app->metrics;
    char labels[32];

    if (!mx)
        return;
    m->metrics.frames_in = metrics_counter(mx, "chatd_ws_frames_in_total", NULL,
                                           "WebSocket messages received.");
    m->metrics.frames_out = metrics_counter(mx, "chatd_ws_frames_out_total", NULL,
                                            "WebSocket frames queued for sending.");
    m->metrics.deliveries = metrics_counter(mx, "chatd_ws_deliveries_total", NULL,
                                            "Chat messages delivered to connections.");
    m->metrics.upgrades = metrics_counter(mx, "chatd_ws_upgrades_total", NULL,
                                          "WebSocket upgrades accepted.");
    m->metrics.rejected_upgrades = metrics_counter(mx, "chatd_ws_upgrades_rejected_total",
                                                   NULL, "WebSocket upgrades refused "
                                                   "(bad handshake, rate limit, draining).");
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        snprintf(labels, sizeof(labels), "code=\"%s\"", codes[i]);
        m->metrics.closes[i] = metrics_counter(mx, "chatd_ws_closes_total", labels,
                                               "WebSocket connections closed, by close code.");
    }
    metrics_gauge_fn(mx, "chatd_ws_connections", NULL, "Open WebSocket connections.",
                     gauge_connections, m);
    metrics_gauge_fn(mx, "chatd_ws_queue_bytes", NULL,
                     "Bytes queued for sending on all WebSocket connections.",
                     gauge_queue_bytes, m);
}

int ws_module_new(struct chatd *app, struct ws_module **out)
{
    struct ws_module *m = calloc(1, sizeof(*m));
    const struct chatd_config *cfg = app->cfg;
    const struct ws_settings *set = ws_settings(cfg);
    int rc;

    if (!m)
        return -ENOMEM;
    m->app = app;
    m->max_message_bytes = set->max_message_bytes;
    m->heartbeat_ms = set->heartbeat_ms;
    m->send_queue_bytes = (size_t)set->send_queue_bytes;
    m->sync_stall_ms = (uint64_t)set->sync_stall_ms;
    m->typing_per_s = set->typing_per_s;
    m->conns_per_user = set->connections_per_user;
    m->conns_per_addr = (uint32_t)set->connections_per_address;
    strbuf_init(&m->json, SIZE_MAX);
    i64map_init(&m->users, 0);
    i64map_init(&m->conns_by_id, 0);
    /* An address is in the table while it holds an open connection, and the HTTP layer
     * holds at most max_connections sockets: the table cannot fill before the listener. */
    if ((rc = ratelimit_new(&m->connect_rl, WS_RATELIMIT_ADDRS, set->connects_per_s,
                            set->connects_burst)) < 0 ||
        (rc = keycount_new(&m->conns_by_addr, (size_t)cfg->server.max_connections)) < 0) {
        ws_module_free(m);
        return rc;
    }
    metrics_register(m);
    struct ws_transport_config tc = { .max_message_bytes = m->max_message_bytes,
                                      .frames_in = m->metrics.frames_in,
                                      .frames_out = m->metrics.frames_out };
    struct ws_transport *t;
    if ((rc = ws_transport_new(app->loop, &tc, &ws_conn_events, &t)) < 0) {
        ws_module_free(m);
        return rc;
    }
    m->ops = &ws_stream_socket_ops;
    m->tx = t;
    *out = m;
    return 0;
}

void ws_module_use_transport(struct ws_module *m, const struct ws_stream_ops *ops, void *tx)
{
    if (m->ops)
        m->ops->tx_free(m->tx);
    m->ops = ops;
    m->tx = tx;
}

void ws_module_free(struct ws_module *m)
{
    if (!m)
        return;
    /* Connections left (a drain cut short): released with their streams. */
    while (m->all)
        ws_conn_release(m->all);
    if (m->ops)
        m->ops->tx_free(m->tx);
    ratelimit_free(m->connect_rl);
    keycount_free(m->conns_by_addr);
    i64map_free(&m->users);
    i64map_free(&m->conns_by_id);
    strbuf_free(&m->json);
    free(m);
}

/* --- module descriptor ----------------------------------------------------------- */

static int websocket_init(struct chatd *app, void **state)
{
    struct ws_module *m;
    int rc = ws_module_new(app, &m);

    if (rc < 0)
        return rc;
    *state = m;
    return 0;
}

static int websocket_start(void *state)
{
    struct ws_module *m = state;
    int rc;

    if ((rc = m->ops->tx_start(m->tx)) < 0 || (rc = ws_heartbeat_start(m)) < 0 ||
        (rc = ws_bus_frames_subscribe(m)) < 0)
        return rc;
    return http_route(m->app->http, HTTP_VERB_GET, "/v1/ws",
                      HTTP_ROUTE_AUTH | HTTP_ROUTE_RAW_TOKEN, ws_upgrade_handler, m);
}

static void websocket_drain(void *state, void (*done)(void *))
{
    struct ws_module *m = state;

    m->draining = 1;
    m->drain_done = done;
    m->drain_deadline = mono_ms() + WS_DRAIN_WAIT_MS;
    ws_drain_check(m);
}

static void websocket_destroy(void *state)
{
    ws_module_free(state);
}

const struct chatd_module websocket_module = {
    .settings = &ws_settings_table,
    .name = "websocket", .init = websocket_init, .start = websocket_start,
    .drain = websocket_drain, .destroy = websocket_destroy,
};
