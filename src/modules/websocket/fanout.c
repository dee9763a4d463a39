/* fanout.c: the outbound side. A frame is encoded once into a refcounted ws_buf
 * (header + payload: server frames are unmasked, so every recipient gets the same
 * bytes) and a reference is queued on each recipient connection. Connections with
 * something queued sit on the module's dirty list; a uv_check handle, which runs
 * right after each poll phase (where reads happen) and after the bus's dispatch
 * check (normally run first: bus/dispatch.c), hands each such
 * connection's whole queue to the kernel in one uv_write with many buffers (writev).
 * A turn writes for at most WS_TURN_SLICE_NS; connections left wait, oldest first,
 * for the next turn, so a broadcast to a large room does not stall timers, reads and
 * acks for the length of a thousand writes. Per connection the order never changes.
 * One write is in flight per connection at a time; what arrives meanwhile waits in
 * the ring and goes out with the next writev. The queue is bounded: when the bytes
 * the kernel has not accepted yet would pass send_queue_bytes, the connection is
 * closed with 1013 and its queue freed at once. Memory held per connection is thus
 * at most send_queue_bytes plus what the kernel took of the write in flight. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/metrics.h"
#include "ws_internal.h"

struct ws_wreq {
    uv_write_t req;
    struct ws_conn *c;
    struct ws_wreq *next;            /* module's cache */
};

/* --- frames ------------------------------------------------------------------------ */

struct ws_buf *ws_buf_new(size_t payload_len, int opcode, uint8_t **payload)
{
    size_t hlen = payload_len < 126 ? 2 : payload_len <= 0xffff ? 4 : 10;
    struct ws_buf *b;

    if (payload_len > UINT32_MAX - 16)
        return NULL;
    b = malloc(sizeof(*b) + hlen + payload_len);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = (uint32_t)(hlen + payload_len);
    b->data[0] = (uint8_t)(0x80 | (opcode & 0x0f));       /* FIN, no mask */
    if (hlen == 2) {
        b->data[1] = (uint8_t)payload_len;
    } else if (hlen == 4) {
        b->data[1] = 126;
        b->data[2] = (uint8_t)(payload_len >> 8);
        b->data[3] = (uint8_t)payload_len;
    } else {
        b->data[1] = 127;
        for (int i = 0; i < 8; i++)
            b->data[2 + i] = (uint8_t)((uint64_t)payload_len >> (56 - 8 * i));
    }
    *payload = b->data + hlen;
    return b;
}

struct ws_buf *ws_buf_text(const char *json, size_t len)
{
    uint8_t *p;
    struct ws_buf *b = ws_buf_new(len, WSLAY_TEXT_FRAME, &p);

    if (b)
        memcpy(p, json, len);
    return b;
}

struct ws_buf *ws_buf_raw(const void *bytes, size_t len)
{
    struct ws_buf *b = malloc(sizeof(*b) + len);

    if (!b)
        return NULL;
    b->refs = 1;
    b->len = (uint32_t)len;
    memcpy(b->data, bytes, len);
    return b;
}

void ws_buf_unref(struct ws_buf *b)
{
    if (b && --b->refs == 0)
        free(b);
}

/* --- the per-connection queue ------------------------------------------------------ */

static int queue_grow(struct ws_conn *c)
{
    uint32_t ncap = c->q_cap ? c->q_cap * 2 : 8;
    struct ws_buf **nq = malloc(ncap * sizeof(*nq));

    if (!nq)
        return -ENOMEM;
    for (uint32_t i = 0; i < c->q_len; i++)
        nq[i] = c->q[(c->q_head + i) & (c->q_cap - 1)];
    free(c->q);
    c->q = nq;
    c->q_cap = ncap;
    c->q_head = 0;
    return 0;
}

/* The flush list is a FIFO: a connection waits behind those dirtied before it, so
 * when a flush is cut short none is passed over for ever, and the origin of a send,
 * whose ack is queued before the broadcast, is written first. */
void ws_mark_dirty(struct ws_conn *c)
{
    struct ws_module *m = c->m;

    if (c->dirty || c->state == WS_FREEING)
        return;
    c->dirty = 1;
    c->dirty_next = NULL;
    c->dirty_prev = m->dirty_tail;
    if (m->dirty_tail)
        m->dirty_tail->dirty_next = c;
    else
        m->dirty = c;
    m->dirty_tail = c;
}

void ws_unmark_dirty(struct ws_conn *c)
{
    struct ws_module *m = c->m;

    if (!c->dirty)
        return;
    if (c->dirty_prev)
        c->dirty_prev->dirty_next = c->dirty_next;
    else
        m->dirty = c->dirty_next;
    if (c->dirty_next)
        c->dirty_next->dirty_prev = c->dirty_prev;
    else
        m->dirty_tail = c->dirty_prev;
    c->dirty_next = c->dirty_prev = NULL;
    c->dirty = 0;
}

/* Bytes the kernel has not taken yet: those waiting in our ring, plus what libuv
 * still holds of the write in flight (it writes what it can at once; the rest waits
 * for the socket to drain). What the kernel took is the client's to read: a burst
 * that its socket buffers absorb is not a slow consumer. */
size_t ws_conn_unsent(const struct ws_conn *c)
{
    size_t waiting = c->q_bytes - c->q_inflight_bytes;

    if (c->q_inflight && c->tcp)
        waiting += uv_stream_get_write_queue_size((const uv_stream_t *)c->tcp);
    return waiting;
}

uint64_t ws_conn_taken(const struct ws_conn *c)
{
    return c->q_total - ws_conn_unsent(c);
}

/* Held-back messages are counted whole, though other recipients may share them: the
 * bound holds whatever the others do. */
size_t ws_conn_backlog(const struct ws_conn *c)
{
    return ws_conn_unsent(c) + (c->sync ? c->sync->held_bytes : 0);
}

int ws_conn_queue(struct ws_conn *c, struct ws_buf *b, int prio)
{
    struct ws_module *m = c->m;

    if (c->state >= WS_SHUT || c->write_failed)
        return -EPIPE;
    if (prio != WS_PRIO_CONTROL) {
        if (c->state != WS_OPEN)
            return -EPIPE;
        size_t backlog = ws_conn_backlog(c);
        if (prio == WS_PRIO_TYPING && backlog > m->send_queue_bytes / 2)
            return -EAGAIN;
        if (backlog + b->len > m->send_queue_bytes) {
            ws_conn_close(c, 1013, "slow consumer");
            return -ENOBUFS;
        }
    }
    if (c->q_len == c->q_cap && queue_grow(c) < 0) {
        ws_conn_close(c, 1011, "out of memory");
        return -ENOMEM;
    }
    c->q[(c->q_head + c->q_len) & (c->q_cap - 1)] = b;
    c->q_len++;
    b->refs++;
    c->q_bytes += b->len;
    c->q_total += b->len;
    m->queue_bytes += b->len;
    METRIC_INC(m->metrics.frames_out);
    ws_mark_dirty(c);
    return 0;
}

int ws_conn_send_json(struct ws_conn *c, const char *json, size_t len)
{
    struct ws_buf *b = ws_buf_text(json, len);
    int rc;

    if (!b)
        return -ENOMEM;
    rc = ws_conn_queue(c, b, WS_PRIO_NORMAL);
    ws_buf_unref(b);
    return rc;
}

/* Pops n frames from the head of the ring. */
static void queue_pop(struct ws_conn *c, uint32_t n)
{
    for (uint32_t i = 0; i < n && c->q_len; i++) {
        struct ws_buf *b = c->q[c->q_head];
        c->q_head = (c->q_head + 1) & (c->q_cap - 1);
        c->q_len--;
        c->q_bytes -= b->len;
        c->m->queue_bytes -= b->len;
        ws_buf_unref(b);
    }
}

void ws_conn_queue_drop(struct ws_conn *c)
{
    /* Frames after the in-flight ones were never handed to the kernel: dropping them
     * keeps the stream well-formed. Pop from the tail. */
    while (c->q_len > c->q_inflight) {
        uint32_t i = (c->q_head + c->q_len - 1) & (c->q_cap - 1);
        struct ws_buf *b = c->q[i];
        c->q_len--;
        c->q_bytes -= b->len;
        c->q_total -= b->len;        /* never sent: not taken either */
        c->m->queue_bytes -= b->len;
        ws_buf_unref(b);
    }
}

void ws_conn_queue_trim(struct ws_conn *c)
{
    /* Once a heartbeat period (heartbeat.c), not on the write path: a busy connection
     * keeps its grown ring between bursts; an idle one shrinks back to nothing (its
     * next frame takes the smallest ring). */
    if (c->q_len == 0 && c->q_cap > 8 && !c->q_inflight) {
        free(c->q);
        c->q = NULL;
        c->q_cap = c->q_head = 0;
    }
}

void ws_conn_queue_free(struct ws_conn *c)
{
    queue_pop(c, c->q_len);
    free(c->q);
    c->q = NULL;
    c->q_cap = c->q_len = c->q_head = c->q_inflight = 0;
    c->q_inflight_bytes = 0;
}

/* --- writing ----------------------------------------------------------------------- */

static void write_done(struct ws_conn *c, int status)
{
    queue_pop(c, c->q_inflight);
    c->q_inflight = 0;
    c->q_inflight_bytes = 0;
    if (c->state == WS_FREEING)
        return;
    if (status < 0) {
        c->write_failed = 1;
        ws_conn_queue_drop(c);
        ws_conn_destroy(c);
        return;
    }
    if (c->sync)
        ws_sync_drained(c);
    if (c->q_len)
        ws_mark_dirty(c);
    else
        ws_conn_drained(c);
}

static void on_write(uv_write_t *req, int status)
{
    struct ws_wreq *w = (struct ws_wreq *)req;
    struct ws_conn *c = w->c;
    struct ws_module *m = c->m;

    if (m->nwreq_free < WS_WREQ_CACHE) {
        w->next = m->wreq_free;
        m->wreq_free = w;
        m->nwreq_free++;
    } else {
        free(w);
    }
    write_done(c, status);
}

static void flush_one(struct ws_conn *c)
{
    struct ws_module *m = c->m;
    uint32_t n;
    struct ws_wreq *w;

    if (c->q_inflight || c->write_failed || c->state == WS_FREEING)
        return;
    ws_conn_pump(c);
    if (c->state == WS_FREEING)
        return;
    if (!c->q_len) {
        if (c->state != WS_OPEN)
            ws_conn_drained(c);
        return;
    }
    n = c->q_len < WS_MAX_IOV ? c->q_len : WS_MAX_IOV;
    c->q_inflight_bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct ws_buf *b = c->q[(c->q_head + i) & (c->q_cap - 1)];
        m->iov[i] = uv_buf_init((char *)b->data, b->len);
        c->q_inflight_bytes += b->len;
    }
    c->q_inflight = n;
    if (!c->tcp) {
        /* Unit tests: the bytes land in the capture buffer. */
        for (uint32_t i = 0; i < n && m->capture; i++)
            strbuf_append(m->capture, m->iov[i].base, m->iov[i].len);
        write_done(c, 0);
        return;
    }
    /* Most of the time the socket buffer takes everything: try at once, with no
     * request and no callback deferred to the next turn, and hand libuv only what the
     * kernel left. */
    int wr = uv_try_write((uv_stream_t *)c->tcp, m->iov, n);
    if (wr < 0 && wr != UV_EAGAIN) {
        write_done(c, wr);
        return;
    }
    size_t done = wr > 0 ? (size_t)wr : 0;
    if (done == c->q_inflight_bytes) {
        write_done(c, 0);
        return;
    }
    uint32_t k = 0;
    while (done >= m->iov[k].len) {
        done -= m->iov[k].len;
        k++;
    }
    queue_pop(c, k);                 /* written whole */
    c->q_inflight = n - k;
    c->q_inflight_bytes = 0;
    for (uint32_t i = k; i < n; i++)
        c->q_inflight_bytes += m->iov[i].len;
    m->iov[k].base += done;          /* the head was written in part */
    m->iov[k].len -= done;
    w = m->wreq_free;
    if (w) {
        m->wreq_free = w->next;
        m->nwreq_free--;
    } else if (!(w = malloc(sizeof(*w)))) {
        ws_conn_close(c, 1011, "out of memory");
        write_done(c, -ENOMEM);      /* the stream cannot continue mid-frame */
        return;
    }
    w->c = c;
    int rc = uv_write(&w->req, (uv_stream_t *)c->tcp, m->iov + k, n - k, on_write);
    if (rc < 0) {
        free(w);
        write_done(c, rc);
        return;
    }
    /* The socket took part of it: a sync replay may fill the queue up again behind the
     * rest, rather than wait for the whole write, which a slow reader may take long to
     * finish. */
    if (wr > 0 && c->sync)
        ws_sync_drained(c);
}

void ws_flush_all(struct ws_module *m)
{
    ws_flush_some(m, UINT64_MAX);
}

/* One at a time from the head: flushing may dirty a connection again (it goes to the
 * tail) or free one (conn_freed unlinks it), so no private copy of the list. */
int ws_flush_some(struct ws_module *m, uint64_t budget_ns)
{
    uint64_t start = uv_hrtime();
    unsigned n = 0;
    struct ws_conn *c;

    while ((c = m->dirty)) {
        ws_unmark_dirty(c);
        flush_one(c);
        if (++n % WS_FLUSH_CHECK_EVERY == 0 && uv_hrtime() - start >= budget_ns)
            break;
    }
    return m->dirty != NULL;
}

static void on_idle(uv_idle_t *h)
{
    (void)h;   /* its being active is what counts: the next poll does not block */
}

/* After each poll phase. A flush cut short resumes in the next turn; meanwhile the
 * idle handle keeps that turn's poll from waiting for I/O. Frames queued meanwhile on
 * a connection still waiting go out with it, in the same write. */
static void on_check(uv_check_t *h)
{
    struct ws_module *m = h->data;

    if (ws_flush_some(m, WS_TURN_SLICE_NS)) {
        if (!uv_is_active((uv_handle_t *)&m->flush_idle))
            uv_idle_start(&m->flush_idle, on_idle);
    } else if (uv_is_active((uv_handle_t *)&m->flush_idle)) {
        uv_idle_stop(&m->flush_idle);
    }
}

int ws_fanout_start(struct ws_module *m)
{
    int rc = uv_check_init(m->app->loop, &m->flush_check);

    if (rc < 0)
        return rc;
    m->flush_check.data = m;
    m->handles_open++;
    if ((rc = uv_idle_init(m->app->loop, &m->flush_idle)) < 0)
        return rc;
    m->flush_idle.data = m;
    m->handles_open++;
    uv_unref((uv_handle_t *)&m->flush_idle);
    rc = uv_check_start(&m->flush_check, on_check);
    uv_unref((uv_handle_t *)&m->flush_check);
    return rc;
}

static void handle_closed(uv_handle_t *h)
{
    struct ws_module *m = h->data;
    m->handles_open--;
}

void ws_fanout_stop(struct ws_module *m)
{
    if (m->flush_check.loop && !uv_is_closing((uv_handle_t *)&m->flush_check))
        uv_close((uv_handle_t *)&m->flush_check, handle_closed);
    if (m->flush_idle.loop && !uv_is_closing((uv_handle_t *)&m->flush_idle))
        uv_close((uv_handle_t *)&m->flush_idle, handle_closed);
}

void ws_fanout_free(struct ws_module *m)
{
    while (m->wreq_free) {
        struct ws_wreq *w = m->wreq_free;
        m->wreq_free = w->next;
        free(w);
    }
    m->nwreq_free = 0;
}
