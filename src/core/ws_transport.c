/* ws_transport.c: WebSocket streams are made here, from an upgraded HTTP request or
 * any connected libuv stream, read here, and reached by their owner through
 * ws_stream_socket_ops. The transport holds what streams share: the read buffer (a
 * read is consumed before its callback returns), the wslay pool, the flush list and
 * its handles. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/http.h"
#include "chatd/util.h"
#include "ws_stream_internal.h"

static void close_upgraded(uv_stream_t *sock, void (*cb)(void *arg), void *arg)
{
    http_upgraded_close((uv_tcp_t *)sock, cb, arg);
}

int ws_transport_new(uv_loop_t *loop, const struct ws_transport_config *cfg,
                     const struct ws_stream_events *events, struct ws_transport **out)
{
    struct ws_transport *t = calloc(1, sizeof(*t));

    if (!t)
        return -ENOMEM;
    t->loop = loop;
    t->cfg = *cfg;
    if (!t->cfg.close_socket)
        t->cfg.close_socket = close_upgraded;
    t->ev = *events;
    ws_stream_install(t);
    *out = t;
    return 0;
}

int ws_transport_start(struct ws_transport *t)
{
    return ws_tx_start(t);
}

void ws_transport_stop(struct ws_transport *t)
{
    ws_tx_stop(t);
}

void ws_transport_free(struct ws_transport *t)
{
    if (!t)
        return;
    ws_pool_free(t);
    ws_tx_free_cache(t);
    free(t);
}

int ws_transport_flush(struct ws_transport *t, uint64_t budget_ns)
{
    return ws_tx_flush(t, budget_ns);
}

/* --- making a stream ----------------------------------------------------------------- */

/* A stream with first (the 101 answer) queued before anything else can be, and room
 * for its owner after it. */
static int stream_alloc(struct ws_transport *t, const void *first, size_t first_len,
                        size_t owner_size, struct ws_stream **out)
{
    struct ws_stream *s = calloc(1, WS_STREAM_SIZE + owner_size);
    struct ws_buf *b = NULL;
    int rc = s ? 0 : -ENOMEM;

    if (s) {
        s->t = t;
        s->last_rx_ms = mono_ms();
    }
    if (rc == 0 && first_len)
        rc = (b = ws_buf_raw(first, first_len)) ? ws_tx_queue_bytes(s, b) : -ENOMEM;
    if (rc == 0 && first_len)
        s->answer_unsent = 1;
    ws_buf_unref(b);
    if (rc < 0) {
        if (s)
            ws_stream_free_now(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Until start, the bytes read past the request wait where a message's bytes go. */
static void stream_attach(struct ws_stream *s, uv_stream_t *sock, char *head, size_t head_len,
                          void **owner, struct ws_stream **out)
{
    s->sock = sock;
    s->rx = (uint8_t *)head;
    s->rx_len = s->rx_cap = head ? (uint32_t)head_len : 0;
    sock->data = s;
    *owner = WS_OWNER(s);
    *out = s;
}

int ws_stream_open(struct ws_transport *t, uv_stream_t *sock, const void *first,
                   size_t first_len, char *head, size_t head_len, size_t owner_size,
                   void **owner, struct ws_stream **out)
{
    struct ws_stream *s;
    int rc = stream_alloc(t, first, first_len, owner_size, &s);

    if (rc < 0) {
        free(head);
        return rc;
    }
    stream_attach(s, sock, head, head_len, owner, out);
    return 0;
}

/* The request and its connection are let go of first: the stream's block then takes
 * the memory they leave (allocated the other way round, every upgraded connection kept
 * a hole of their size, some 60 bytes a connection more). */
int ws_stream_accept(struct ws_transport *t, struct http_req *req, const char *answer,
                     size_t answer_len, size_t owner_size, void **owner,
                     struct ws_stream **out)
{
    struct ws_stream *s;
    uv_tcp_t *tcp;
    char *head = NULL;
    size_t head_len = 0;
    int rc = http_upgrade_detach(req, &tcp, &head, &head_len);

    if (rc < 0)
        return rc;
    if ((rc = stream_alloc(t, answer, answer_len, owner_size, &s)) < 0) {
        free(head);
        http_upgraded_close(tcp, NULL, NULL);   /* the request is gone: nobody to tell */
        return -ECONNABORTED;
    }
    stream_attach(s, (uv_stream_t *)tcp, head, head_len, owner, out);
    return 0;
}

void ws_stream_abort(struct ws_stream *s)
{
    ws_stream_lost(s);
}

/* --- reading ------------------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct ws_stream *s = h->data;
    (void)suggested;
    *buf = uv_buf_init(s->t->rbuf, sizeof(s->t->rbuf));
}

static void read_cb(uv_stream_t *sock, ssize_t nread, const uv_buf_t *buf)
{
    struct ws_stream *s = sock->data;

    if (nread > 0)
        ws_stream_feed(s, (const uint8_t *)buf->base, (size_t)nread);
    else if (nread < 0)
        ws_stream_lost(s);   /* nread == 0 is EAGAIN, not EOF */
}

static void op_start(struct ws_stream *s)
{
    uint8_t *head = s->rx;
    size_t len = s->rx_len;

    s->rx = NULL;
    s->rx_len = s->rx_cap = 0;
    if (uv_read_start(s->sock, alloc_cb, read_cb) < 0)
        ws_stream_lost(s);
    else if (head)
        ws_stream_feed(s, head, len);
    free(head);
}

/* --- what the owner calls ------------------------------------------------------------ */

static int op_send(struct ws_stream *s, struct ws_buf *b, int control)
{
    int rc;

    if (!control && s->state != WS_OPEN)
        return -EPIPE;
    rc = ws_tx_queue(s, b);
    if (rc == -ENOMEM)
        ws_stream_close(s, 1011, "out of memory");
    return rc;
}

static uint64_t op_last_rx_ms(const struct ws_stream *s)
{
    return s->last_rx_ms;
}

static int op_tx_start(void *tx)
{
    return ws_transport_start(tx);
}

static void op_tx_stop(void *tx)
{
    ws_transport_stop(tx);
}

static void op_tx_free(void *tx)
{
    ws_transport_free(tx);
}

static void op_flush_all(void *tx)
{
    ws_tx_flush(tx, UINT64_MAX);
}

static size_t op_queue_bytes(const void *tx)
{
    return ((const struct ws_transport *)tx)->queue_bytes;
}

const struct ws_stream_ops ws_stream_socket_ops = {
    .start = op_start,
    .send = op_send,
    .close = ws_stream_close,
    .unsent = ws_tx_unsent,
    .taken = ws_tx_taken,
    .last_rx_ms = op_last_rx_ms,
    .stalled = ws_rx_stalled,
    .trim = ws_tx_trim,
    .expire = ws_stream_expire,
    .release = ws_stream_release,
    .tx_start = op_tx_start,
    .tx_stop = op_tx_stop,
    .tx_free = op_tx_free,
    .flush_all = op_flush_all,
    .queue_bytes = op_queue_bytes,
};
