/* heartbeat.c: one timer for every connection (a timer per connection would cost
 * memory and timer-heap work for nothing). Each tick it
 *   - sends a ping to every open connection once per heartbeat_ms (one shared frame),
 *     and frees the grown queue ring of those with nothing queued,
 *   - closes a connection silent for two periods (no byte, pong included) with 4000,
 *   - closes one left mid-frame or mid-message with no byte of it for a period with
 *     4002 (its stream knows),
 *   - closes a connection whose token expired more than WS_AUTH_GRACE_MS ago without
 *     an "auth" frame replacing it with 4001,
 *   - closes a connection whose sync replay waited sync_stall_ms for a client that
 *     took nothing with 1013 (sync.c),
 *   - ends the close handshake of connections past their linger deadline (their
 *     streams are asked: the deadline is the transport's).
 * The tick is half a period (at most one second), so a silent connection goes
 * between 2 and 2.5 periods after its last byte (2 periods + 1 s for long periods).
 * A pass over many connections is cut into slices of a loop turn (sweep_slice).
 *
 * Drain: new sends are refused with an "unavailable" error frame (dispatch.c); once
 * every send of our connections was stored or refused (acked), or WS_DRAIN_WAIT_MS
 * passed, every connection is closed with 1001; done() runs when the last is gone.
 * The tick notices the deadline; an answer or a connection gone may end it sooner. */
#include <errno.h>
#include <stdlib.h>

#include "chatd/log.h"

#include "ws_internal.h"

static uint64_t tick_ms(const struct ws_module *m)
{
    uint64_t t = (uint64_t)m->heartbeat_ms / 2;
    return t > 1000 ? 1000 : t < 20 ? 20 : t;
}

/* One pass visits every connection; with tens of thousands of them a pass takes
 * milliseconds (a cache miss each), so it runs in slices of WS_SWEEP_SLICE_NS,
 * continued by a zero timeout, as the flush is. */
#define SWEEP_CLOCK_EVERY 64      /* connections between clock reads */

static void visit(struct ws_module *m, struct ws_conn *c, struct ws_buf *ping,
                  uint64_t now, int64_t wall)
{
    const struct ws_stream_ops *ops = m->ops;
    uint64_t silent = 2 * (uint64_t)m->heartbeat_ms;

    if (!c->open) {
        ops->expire(c->stream, now);
        return;
    }
    /* Stalled first: a connection silent mid-frame is told the more precise code */
    if (ops->stalled(c->stream, now, (uint64_t)m->heartbeat_ms)) {
        ws_conn_close(c, WS_CLOSE_STALLED, "incomplete frame stalled");
    } else if (now - ops->last_rx_ms(c->stream) >= silent) {
        ws_conn_close(c, WS_CLOSE_HEARTBEAT, "heartbeat timeout");
    } else if (c->token_exp > 0 && wall > ws_exp_ms(c->token_exp) + WS_AUTH_GRACE_MS) {
        ws_conn_close(c, WS_CLOSE_TOKEN_EXPIRED, "token expired");
    } else {
        if (c->sync)
            ws_sync_check_stall(c, now);
        if (ping && c->open) {
            ops->trim(c->stream);
            ws_conn_queue(c, ping, WS_PRIO_CONTROL);
        }
    }
}

/* Visits connections from the pass's cursor until the list ends or the slice is used
 * up; returns 1 when the pass is over. conn_freed moves the cursor past a connection
 * freed between slices; connections made during a pass wait for the next one. */
static int sweep_slice(struct ws_module *m, uint64_t now)
{
    static const uint8_t ping_frame[2] = { 0x89, 0x00 };   /* FIN + ping, empty, unmasked */
    struct ws_buf *ping = m->sweep_ping ? ws_buf_raw(ping_frame, sizeof(ping_frame)) : NULL;
    uint64_t t0 = uv_hrtime();
    int64_t wall = now_ms();
    unsigned n = 0;

    while (m->sweep_next) {
        struct ws_conn *c = m->sweep_next;
        m->sweep_next = c->next;
        visit(m, c, ping, now, wall);
        if (++n % SWEEP_CLOCK_EVERY == 0 && uv_hrtime() - t0 > WS_SWEEP_SLICE_NS)
            break;
    }
    if (ping)
        ws_buf_unref(ping);
    return m->sweep_next == NULL;
}

/* Each tick starts a pass (with pings when they are due, one shared frame), which
 * goes on in slices until it has seen every connection. */
static void on_tick(uv_timer_t *t)
{
    struct ws_module *m = t->data;
    uint64_t now = mono_ms();
    int done;

    if (!m->sweep_next) {
        m->sweep_next = m->all;
        m->sweep_ping = now >= m->next_ping_ms;
        if (m->sweep_ping)
            m->next_ping_ms = now + (uint64_t)m->heartbeat_ms;
    }
    done = sweep_slice(m, now);
    if (done)
        m->sweep_ping = 0;
    uv_timer_start(&m->tick, on_tick, done ? tick_ms(m) : 0, 0);
    if (m->draining)
        ws_drain_check(m);
}

int ws_heartbeat_start(struct ws_module *m)
{
    int rc = uv_timer_init(m->app->loop, &m->tick);

    if (rc < 0)
        return rc;
    m->tick.data = m;
    m->tick_started = 1;
    m->next_ping_ms = mono_ms() + (uint64_t)m->heartbeat_ms;
    m->sweep_next = NULL;
    m->sweep_ping = 0;
    rc = uv_timer_start(&m->tick, on_tick, tick_ms(m), 0);
    uv_unref((uv_handle_t *)&m->tick);
    return rc;
}

/* The handles close here; their memory is the module's, freed after the loop ran. */
static void stop_handles(struct ws_module *m)
{
    if (m->tick_started && !uv_is_closing((uv_handle_t *)&m->tick))
        uv_close((uv_handle_t *)&m->tick, NULL);
    m->ops->tx_stop(m->tx);
}

void ws_drain_check(struct ws_module *m)
{
    if (!m->draining || !m->drain_done)
        return;
    if (!m->drain_closing) {
        if (m->pending_sends > 0 && mono_ms() < m->drain_deadline)
            return;
        if (m->pending_sends > 0)
            LOG_WARN(m->app, "websocket", "drain: sends still unanswered pending=%llu",
                     (unsigned long long)m->pending_sends);
        m->drain_closing = 1;
        for (struct ws_conn *c = m->all, *next; c; c = next) {
            next = c->next;
            ws_conn_close(c, 1001, "server shutting down");
        }
        ws_flush_all(m);
    }
    if (m->nalive == 0) {
        void (*done)(void *) = m->drain_done;
        m->drain_done = NULL;
        stop_handles(m);
        LOG_INFO(m->app, "websocket", "drained");
        done(m);
    }
}
