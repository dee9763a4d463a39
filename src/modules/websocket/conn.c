/* conn.c: one WebSocket connection on an upgraded libuv stream.
 *
 * Inbound: bytes from the socket (and first the bytes left over from the upgrade
 * request) are fed to wslay (its callbacks and contexts: conn_wslay.c), which checks
 * masking, fragmentation, control frames between fragments, UTF-8 of text (1007), the
 * size limit (1009) and protocol errors (1002), and hands us messages (their bytes:
 * inbound.c). All of a read is consumed before the read callback returns, so the
 * module can lend one read buffer to every connection.
 *
 * Outbound: see fanout.c. wslay's own close comes through its send callback and is
 * copied into the same queue as our data frames; pongs we queue ourselves (control.c).
 *
 * Lifetime: OPEN -> CLOSING (close frame queued; the connection no longer counts as
 * open: unregistered, ws.disconnected published) -> SHUT (close frame written, FIN
 * sent, waiting for the peer's close or EOF, at most WS_CLOSE_LINGER_MS) -> FREEING
 * (uv_close; the memory goes in the close callback, never inside a callback of the
 * connection's own). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/log.h"
#include "chatd/metrics.h"
#include "ws_internal.h"

static void conn_pump(struct ws_conn *c);

/* --- creation ------------------------------------------------------------------------ */

static void send_hello(struct ws_conn *c)
{
    size_t len;
    char *json = ws_json_hello(c->user, c->id, c->m->heartbeat_ms, now_ms(), &len);

    if (json) {
        ws_conn_send_json(c, json, len);
        free(json);
    }
}

int ws_conn_new(struct ws_module *m, uv_tcp_t *tcp, const struct http_user *u,
                struct ws_conn **out)
{
    struct ws_conn *c = calloc(1, sizeof(*c));
    int rc;

    if (!c)
        return -ENOMEM;
    c->m = m;
    c->tcp = tcp;
    c->id = ++m->next_conn_id;
    c->user_id = u->id;
    c->token_exp = u->token_exp;
    c->last_rx_ms = mono_ms();
    rc = ws_registry_add(m, c, u->name);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->next = m->all;
    if (m->all)
        m->all->prev = c;
    m->all = c;
    m->nalive++;
    if (tcp)
        tcp->data = c;
    send_hello(c);
    ws_publish_conn_event(m, c, 1);
    c->announced = 1;
    *out = c;
    return 0;
}

/* --- input --------------------------------------------------------------------------- */

static void conn_freed(void *arg);

/* wslay gave up on the stream (control.c says why its own close never goes out): our
 * close takes its place unless one was sent already, the context goes, and the
 * connection closes as any other, its further input dropped. */
static void conn_fail(struct ws_conn *c, int rc)
{
    uint16_t code = rc == WSLAY_ERR_NOMEM ? 1011 : WSLAY_CODE_PROTOCOL_ERROR;
    int close_sent = wslay_event_get_close_sent(c->wslay);

    if (c->state == WS_OPEN)
        ws_conn_begin_closing(c, code);
    else
        code = c->close_code;   /* the close we had decided on, still inside wslay */
    ws_wslay_drop(c);
    c->wslay_dead = 1;
    if (!close_sent && ws_conn_queue_close_frame(c, code) == -ENOMEM)
        ws_conn_destroy(c);
}

static void feed(struct ws_conn *c, const uint8_t *data, size_t len)
{
    struct ws_module *m = c->m;
    struct ws_input in = { data, len, 0 };
    int rc;

    c->last_rx_ms = mono_ms();
    if (c->wslay_dead)
        return;   /* after a failed stream: bytes are read and dropped until EOF */
    ws_rx_feed_begin(c);
    if (ws_wslay_acquire(c) < 0) {
        ws_conn_destroy(c);
        return;
    }
    if (!wslay_event_get_read_enabled(c->wslay))
        return;   /* after a close: bytes are read and dropped until EOF */
    c->fed += len;
    m->input = &in;
    m->cur = c;
    rc = wslay_event_recv(c->wslay);
    m->input = NULL;
    m->cur = NULL;
    ws_rx_feed_end(c);
    if (rc < 0) {
        conn_fail(c, rc);
        return;
    }
    /* wslay shut reading: it queued a close for a protocol error, a bad UTF-8 text
     * (1007) or an oversized message (1009), or answered the peer's close. */
    if (c->state == WS_OPEN && !wslay_event_get_read_enabled(c->wslay)) {
        conn_pump(c);
        if (c->state == WS_OPEN)
            ws_conn_begin_closing(c, wslay_event_get_status_code_sent(c->wslay));
    }
    conn_pump(c);
    if (c->state == WS_FREEING)
        return;   /* the pump failed: the context may be gone */
    /* Pongs bypass the queue bound (every ping is answered), so a peer that
     * pings without ever reading would grow them without end: past the bound it is a
     * slow consumer like any other. */
    if (c->state == WS_OPEN && ws_conn_backlog(c) > m->send_queue_bytes)
        ws_conn_close(c, 1013, "slow consumer");
    if (c->state == WS_SHUT && wslay_event_get_close_received(c->wslay))
        ws_conn_destroy(c);
    else
        ws_wslay_release(c);
}

void ws_conn_feed(struct ws_conn *c, const uint8_t *data, size_t len)
{
    if (c->state == WS_FREEING || !len)
        return;
    /* A destroy in here (a failed pump; a frame the module refuses, closing from
     * inside wslay's callback) must not free c or its wslay context under our feet:
     * without a socket that free would be at once. No bus handler runs in here: the
     * events a frame publishes are dispatched after the read callback. */
    c->in_own_callback = 1;
    feed(c, data, len);
    c->in_own_callback = 0;
    if (c->state != WS_OPEN)
        ws_rx_done(c);   /* closing: nothing more is dispatched */
    if (c->state == WS_FREEING && !c->tcp)
        conn_freed(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct ws_conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->m->rbuf, sizeof(c->m->rbuf));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct ws_conn *c = s->data;
    (void)buf;

    if (nread > 0) {
        ws_conn_feed(c, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;   /* EAGAIN: not EOF */
    c->reading_done = 1;
    uv_read_stop(s);
    if (c->state == WS_OPEN)
        ws_conn_begin_closing(c, WS_CLOSE_ABNORMAL);
    ws_conn_destroy(c);
}

int ws_conn_start_reading(struct ws_conn *c)
{
    return uv_read_start((uv_stream_t *)c->tcp, alloc_cb, read_cb);
}

/* --- closing ------------------------------------------------------------------------- */

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

/* The connection stops counting as open: no more deliveries, presence hears of it. */
void ws_conn_begin_closing(struct ws_conn *c, uint16_t code)
{
    struct ws_module *m = c->m;

    if (c->state != WS_OPEN)
        return;
    c->state = WS_CLOSING;
    c->close_code = code;
    c->close_deadline = mono_ms() + WS_CLOSE_LINGER_MS;
    ws_count_close(m, code);
    if (c->sync)
        ws_sync_free(c);
    if (!c->in_own_callback)
        ws_rx_done(c);   /* nothing more is dispatched (ws_conn_feed frees it after) */
    ws_registry_remove(m, c);
    keycount_release(m->conns_by_addr, c->addr);   /* the caps count open connections */
    c->addr = NULL;
    if (c->announced)
        ws_publish_conn_event(m, c, 0);
    c->announced = 0;
    LOG_DEBUG(m->app, "websocket", "closing conn=%llu user=%lld code=%u",
              (unsigned long long)c->id, (long long)c->user_id, code);
}

void ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason)
{
    if (c->state != WS_OPEN)
        return;
    if (ws_wslay_acquire(c) < 0) {
        ws_conn_destroy(c);
        return;
    }
    ws_conn_begin_closing(c, code);
    if (code == 1013)
        ws_conn_queue_drop(c);   /* its memory goes now, not when the peer reads */
    wslay_event_queue_close(c->wslay, code, (const uint8_t *)reason,
                            reason ? strlen(reason) : 0);
    ws_mark_dirty(c);            /* the close frame is produced at the next flush */
}

/* Moves wslay's pending output (pong, close) into our queue. Never called from inside
 * a wslay callback, so no wslay call is ever inside another: m->cur is this one's. */
static void conn_pump(struct ws_conn *c)
{
    int rc;

    if (c->state == WS_FREEING || !c->wslay || !wslay_event_want_write(c->wslay))
        return;
    c->m->cur = c;
    rc = wslay_event_send(c->wslay);
    c->m->cur = NULL;
    if (rc < 0)
        ws_conn_destroy(c);
}

void ws_conn_pump(struct ws_conn *c)
{
    conn_pump(c);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

void ws_conn_drained(struct ws_conn *c)
{
    if (c->state == WS_OPEN || c->state == WS_FREEING)
        return;
    conn_pump(c);
    if (c->q_len || c->state == WS_FREEING)
        return;   /* the close frame is queued now: back here once it is written */
    if (!c->tcp || (c->wslay ? wslay_event_get_close_received(c->wslay) : !c->wslay_dead)) {
        ws_conn_destroy(c);
        return;
    }
    if (c->state == WS_CLOSING) {
        c->state = WS_SHUT;
        c->close_deadline = mono_ms() + WS_CLOSE_LINGER_MS;
        uv_shutdown_t *req = malloc(sizeof(*req));
        if (req && uv_shutdown(req, (uv_stream_t *)c->tcp, shutdown_cb) == 0)
            c->shutdown_sent = 1;
        else
            free(req);
    }
}

static void conn_freed(void *arg)
{
    struct ws_conn *c = arg;
    struct ws_module *m = c->m;

    ws_conn_queue_free(c);
    if (c->sync)
        ws_sync_free(c);
    free(c->rx);
    ws_wslay_drop(c);
    ws_unmark_dirty(c);
    if (m->sweep_next == c)
        m->sweep_next = c->next;
    if (c->prev)
        c->prev->next = c->next;
    else
        m->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    m->nalive--;
    free(c);
    ws_conn_freed(m);
}

void ws_conn_destroy(struct ws_conn *c)
{
    if (c->state == WS_FREEING)
        return;
    if (c->state == WS_OPEN)
        ws_conn_begin_closing(c, WS_CLOSE_ABNORMAL);
    c->state = WS_FREEING;
    ws_conn_queue_drop(c);
    if (c->tcp) {
        uv_read_stop((uv_stream_t *)c->tcp);
        http_upgraded_close(c->tcp, conn_freed, c);
    } else {
        /* Unit tests: no socket, nothing in flight. Inside ws_conn_feed, it frees. */
        if (!c->in_own_callback)
            conn_freed(c);
    }
}

/* --- bad input ----------------------------------------------------------------------- */

void ws_conn_bad_frame(struct ws_conn *c, const char *code, const char *msg,
                       const char *client_msg_id)
{
    uint64_t now = mono_ms();
    size_t len;
    char *json;

    if (now - c->bad_window_start > WS_BAD_WINDOW_MS || !c->bad_window_start) {
        c->bad_window_start = now;
        c->bad_count = 0;
    }
    json = ws_json_error(code, msg, client_msg_id, &len);
    if (json) {
        ws_conn_send_json(c, json, len);
        free(json);
    }
    if (++c->bad_count >= WS_BAD_FRAMES_MAX)
        ws_conn_close(c, WSLAY_CODE_POLICY_VIOLATION, "too many bad frames");
}
