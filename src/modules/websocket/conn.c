/* conn.c: one WebSocket connection of the chat protocol: the user it belongs to, its
 * place in the registry, its sync, its sends in flight. Its stream (the socket, wslay,
 * the queue) is the transport's: made at the upgrade, it tells the connection of each
 * text message, of the moment it stops being open, of the bytes the client took, and
 * of its end (ws_conn_events).
 *
 * Lifetime: its stream made (the 101 answer queued first), with the connection's
 * memory in the same block; set up and registered (ws_conn_init); opened (the hello
 * frame, ws.connected, reading); once its stream is closing it no longer counts as
 * open (unregistered, ws.disconnected published); forgotten when its stream is gone,
 * which frees the block. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "ws_internal.h"

static void publish_conn_event(struct ws_module *m, struct ws_conn *c, int connected)
{
    struct ev_ws_connected up = { .user_id = c->user_id, .conn_id = (int64_t)c->id,
                                  .at = now_ms() };
    struct ev_ws_disconnected down = { .user_id = c->user_id, .conn_id = (int64_t)c->id,
                                       .at = up.at, .code = c->close_code };

    if (!m->app->bus)
        return;
    if (connected)
        bus_publish_ev(m->app->bus, &EV_WS_CONNECTED, &up);
    else
        bus_publish_ev(m->app->bus, &EV_WS_DISCONNECTED, &down);
}

int ws_conn_init(struct ws_module *m, struct ws_conn *c, struct ws_stream *s,
                 const struct http_user *u)
{
    int rc;

    c->stream = s;
    c->id = ++m->next_conn_id;
    c->user_id = u->id;
    c->token_exp = u->token_exp;
    c->m = m;
    if ((rc = ws_registry_add(m, c, u->name)) < 0) {
        c->m = NULL;                 /* its stream's callbacks find nothing to do */
        return rc;
    }
    c->next = m->all;
    if (m->all)
        m->all->prev = c;
    m->all = c;
    m->nalive++;
    return 0;
}

void ws_conn_open(struct ws_conn *c)
{
    struct ws_module *m = c->m;
    size_t len;

    c->open = 1;
    /* Announced before the hello is sent: a hello that cannot be queued closes the
     * connection, and its ws.disconnected must come after this. */
    publish_conn_event(m, c, 1);
    ws_conn_send_frame(c, ws_json_hello(c->user, c->id, m->heartbeat_ms, now_ms(), &len),
                       &len);
    m->ops->start(c->stream);
}

static void unlink_conn(struct ws_conn *c)
{
    struct ws_module *m = c->m;

    if (m->sweep_next == c)
        m->sweep_next = c->next;
    if (c->prev)
        c->prev->next = c->next;
    else
        m->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    m->nalive--;
}

/* Out of every list; its memory is its stream's. */
static void forget(struct ws_conn *c)
{
    ws_sync_free(c);
    ws_registry_remove(c->m, c);
    keycount_release(c->m->conns_by_addr, c->addr);
    c->addr = NULL;
    unlink_conn(c);
}

void ws_conn_release(struct ws_conn *c)
{
    struct ws_stream *s = c->stream;

    forget(c);
    c->m->ops->release(s);
}

void ws_count_close(struct ws_module *m, uint16_t code)
{
    static const uint16_t known[] = { 1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008,
                                      1009, 1011, 1013, 4000, 4001, 4002 };
    size_t i;

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (known[i] == code)
            break;
    if (m->metrics.closes[i])
        METRIC_INC(m->metrics.closes[i]);
}

/* --- what the stream tells its connection --------------------------------------------- */

static void on_text(void *owner, const char *text, size_t len)
{
    ws_dispatch_text(owner, text, len);
}

/* Pongs bypass the queue bound (every ping is answered), so a peer that pings without
 * ever reading would grow them without end: past the bound it is a slow consumer like
 * any other. */
static void on_read_done(void *owner)
{
    struct ws_conn *c = owner;

    if (ws_conn_backlog(c) > c->m->send_queue_bytes)
        ws_conn_close(c, 1013, "slow consumer");
}

/* The connection stops counting as open: no more deliveries, presence hears of it. */
static void on_closing(void *owner, uint16_t code)
{
    struct ws_conn *c = owner;
    struct ws_module *m = c->m;

    if (!m)
        return;
    c->open = 0;
    c->close_code = code;
    ws_count_close(m, code);
    ws_sync_free(c);
    ws_registry_remove(m, c);
    keycount_release(m->conns_by_addr, c->addr);   /* the caps count open connections */
    c->addr = NULL;
    publish_conn_event(m, c, 0);
    LOG_DEBUG(m->app, "websocket", "closing conn=%llu user=%lld code=%u",
              (unsigned long long)c->id, (long long)c->user_id, code);
}

static void on_taken(void *owner)
{
    ws_sync_drained(owner);
}

static void on_gone(void *owner)
{
    struct ws_conn *c = owner;
    struct ws_module *m = c->m;

    if (!m)
        return;
    forget(c);
    c->stream = NULL;
    if (m->draining)
        ws_drain_check(m);
}

const struct ws_stream_events ws_conn_events = {
    .text = on_text,
    .read_done = on_read_done,
    .closing = on_closing,
    .taken = on_taken,
    .gone = on_gone,
};
