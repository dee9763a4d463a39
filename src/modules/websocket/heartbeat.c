/* heartbeat.c: one timer for every connection (a timer per connection would cost
 * memory and timer-heap work for nothing). Each tick it
 *   - sends a ping to every open connection once per heartbeat_ms (one shared frame),
 *     and frees the grown queue ring of those with nothing queued,
 *   - closes a connection silent for two periods (no byte, pong included) with 4000,
 *   - closes a connection whose token expired more than WS_AUTH_GRACE_MS ago without
 *     an "auth" frame replacing it with 4001,
 *   - ends the close handshake of connections past their linger deadline.
 * The tick is half a period (at most one second), so a silent connection goes
 * between 2 and 2.5 periods after its last byte (2 periods + 1 s for long periods). */
#include <errno.h>
#include <stdlib.h>

#include "ws_internal.h"

static uint64_t tick_ms(const struct ws_module *m)
{
    uint64_t t = (uint64_t)m->heartbeat_ms / 2;
    return t > 1000 ? 1000 : t < 20 ? 20 : t;
}

static void ping_all(struct ws_module *m)
{
    static const uint8_t ping[2] = { 0x89, 0x00 };   /* FIN + ping, empty, unmasked */
    struct ws_buf *b = ws_buf_raw(ping, sizeof(ping));

    if (!b)
        return;
    for (struct ws_conn *c = m->all; c; c = c->next) {
        if (c->state != WS_OPEN)
            continue;
        ws_conn_queue_trim(c);
        ws_conn_queue(c, b, WS_PRIO_CONTROL);
    }
    ws_buf_unref(b);
}

static void sweep(struct ws_module *m, uint64_t now)
{
    int64_t wall = now_ms();
    uint64_t silent = 2 * (uint64_t)m->heartbeat_ms;
    struct ws_conn *c, *next;

    for (c = m->all; c; c = next) {
        next = c->next;
        switch (c->state) {
        case WS_OPEN:
            if (now - c->last_rx_ms >= silent)
                ws_conn_close(c, WS_CLOSE_HEARTBEAT, "heartbeat timeout");
            else if (c->token_exp > 0 &&
                     wall > ws_exp_ms(c->token_exp) + WS_AUTH_GRACE_MS)
                ws_conn_close(c, WS_CLOSE_TOKEN_EXPIRED, "token expired");
            break;
        case WS_CLOSING:
        case WS_SHUT:
            if (now >= c->close_deadline)
                ws_conn_destroy(c);
            break;
        default:
            break;
        }
    }
}

static void on_tick(uv_timer_t *t)
{
    struct ws_module *m = t->data;
    uint64_t now = mono_ms();

    if (now >= m->next_ping_ms) {
        m->next_ping_ms = now + (uint64_t)m->heartbeat_ms;
        ping_all(m);
    }
    sweep(m, now);
    if (m->draining)
        ws_drain_check(m);
}

int ws_heartbeat_start(struct ws_module *m)
{
    int rc = uv_timer_init(m->app->loop, &m->tick);

    if (rc < 0)
        return rc;
    m->tick.data = m;
    m->handles_open++;
    m->next_ping_ms = mono_ms() + (uint64_t)m->heartbeat_ms;
    rc = uv_timer_start(&m->tick, on_tick, tick_ms(m), tick_ms(m));
    uv_unref((uv_handle_t *)&m->tick);
    return rc;
}

static void tick_closed(uv_handle_t *h)
{
    struct ws_module *m = h->data;
    m->handles_open--;
}

void ws_heartbeat_stop(struct ws_module *m)
{
    if (m->tick.loop && !uv_is_closing((uv_handle_t *)&m->tick))
        uv_close((uv_handle_t *)&m->tick, tick_closed);
}
