/* ws_stream_tx.c: the outbound side of WebSocket streams. A frame is encoded once into
 * a refcounted ws_buf (header + payload: server frames are unmasked, so every recipient
 * gets the same bytes) and a reference is queued on each recipient's stream. Streams
 * with something queued sit on the transport's flush list; a uv_check handle, which
 * runs right after each poll phase (where reads happen) and after the bus's dispatch
 * check (normally run first: bus/dispatch.c), hands each such stream's whole queue to
 * the kernel in one write with many buffers (writev). A turn writes for at most
 * WS_TURN_SLICE_NS; streams left wait, oldest first, for the next turn, so a broadcast
 * to a large room does not stall timers, reads and acks for the length of a thousand
 * writes. Per stream the order never changes. One write is in flight per stream at a
 * time; what arrives meanwhile waits in the ring and goes out with the next writev.
 * How much a stream may hold is its owner's policy (ws_tx_unsent tells it). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/metrics.h"
#include "ws_stream_internal.h"

struct ws_wreq {
    uv_write_t req;
    struct ws_stream *s;
    struct ws_wreq *next;            /* transport's cache */
};

/* --- the per-stream queue ---------------------------------------------------------- */

static int queue_grow(struct ws_stream *s)
{
    uint32_t ncap = s->q_cap ? s->q_cap * 2 : 8;
    struct ws_buf **nq = malloc(ncap * sizeof(*nq));

    if (!nq)
        return -ENOMEM;
    for (uint32_t i = 0; i < s->q_len; i++)
        nq[i] = s->q[(s->q_head + i) & (s->q_cap - 1)];
    free(s->q);
    s->q = nq;
    s->q_cap = ncap;
    s->q_head = 0;
    return 0;
}

/* The flush list is a FIFO: a stream waits behind those dirtied before it, so when a
 * flush is cut short none is passed over for ever, and the origin of a send, whose
 * ack is queued before the broadcast, is written first. */
void ws_tx_mark_dirty(struct ws_stream *s)
{
    struct ws_transport *t = s->t;

    if (s->dirty || s->state == WS_GONE)
        return;
    s->dirty = 1;
    s->dirty_next = NULL;
    s->dirty_prev = t->dirty_tail;
    if (t->dirty_tail)
        t->dirty_tail->dirty_next = s;
    else
        t->dirty = s;
    t->dirty_tail = s;
}

void ws_tx_unmark_dirty(struct ws_stream *s)
{
    struct ws_transport *t = s->t;

    if (!s->dirty)
        return;
    if (s->dirty_prev)
        s->dirty_prev->dirty_next = s->dirty_next;
    else
        t->dirty = s->dirty_next;
    if (s->dirty_next)
        s->dirty_next->dirty_prev = s->dirty_prev;
    else
        t->dirty_tail = s->dirty_prev;
    s->dirty_next = s->dirty_prev = NULL;
    s->dirty = 0;
}

/* Bytes the kernel has not taken yet: those waiting in our ring, plus what libuv
 * still holds of the write in flight (it writes what it can at once; the rest waits
 * for the socket to drain). What the kernel took is the client's to read: a burst
 * that its socket buffers absorb is not a slow consumer. */
size_t ws_tx_unsent(const struct ws_stream *s)
{
    size_t waiting = s->q_bytes - s->q_inflight_bytes;

    if (s->q_inflight)
        waiting += uv_stream_get_write_queue_size(s->sock);
    return waiting;
}

uint64_t ws_tx_taken(const struct ws_stream *s)
{
    return s->q_total - ws_tx_unsent(s);
}

static inline int queue_push(struct ws_stream *s, struct ws_buf *b)
{
    if (s->state >= WS_SHUT)
        return -EPIPE;
    if (s->q_len == s->q_cap && queue_grow(s) < 0)
        return -ENOMEM;
    s->q[(s->q_head + s->q_len) & (s->q_cap - 1)] = b;
    s->q_len++;
    b->refs++;
    s->q_bytes += b->len;
    s->q_total += b->len;
    s->t->queue_bytes += b->len;
    ws_tx_mark_dirty(s);
    return 0;
}

int ws_tx_queue_bytes(struct ws_stream *s, struct ws_buf *b)
{
    return queue_push(s, b);
}

int ws_tx_queue(struct ws_stream *s, struct ws_buf *b)
{
    int rc = queue_push(s, b);

    if (rc == 0 && s->t->cfg.frames_out)
        METRIC_INC(s->t->cfg.frames_out);
    return rc;
}

/* Pops n frames from the head of the ring. */
static void queue_pop(struct ws_stream *s, uint32_t n)
{
    for (uint32_t i = 0; i < n && s->q_len; i++) {
        struct ws_buf *b = s->q[s->q_head];
        s->q_head = (s->q_head + 1) & (s->q_cap - 1);
        s->q_len--;
        s->q_bytes -= b->len;
        s->t->queue_bytes -= b->len;
        ws_buf_unref(b);
        s->answer_unsent = 0;        /* the head, the answer if anything, went out */
    }
}

void ws_tx_drop_unsent(struct ws_stream *s)
{
    /* Frames after the in-flight ones were never handed to the kernel: dropping them
     * keeps the stream well-formed. Pop from the tail. The 101 answer stays whatever
     * the state of its write: without it the close frame would land on what the
     * client still reads as HTTP. */
    uint32_t keep = s->q_inflight > s->answer_unsent ? s->q_inflight : s->answer_unsent;

    while (s->q_len > keep) {
        uint32_t i = (s->q_head + s->q_len - 1) & (s->q_cap - 1);
        struct ws_buf *b = s->q[i];
        s->q_len--;
        s->q_bytes -= b->len;
        s->q_total -= b->len;        /* never sent: not taken either */
        s->t->queue_bytes -= b->len;
        ws_buf_unref(b);
    }
}

void ws_tx_trim(struct ws_stream *s)
{
    /* Once a heartbeat period, not on the write path: a busy stream keeps its grown
     * ring between bursts; an idle one shrinks back to nothing (its next frame takes
     * the smallest ring). */
    if (s->q_len == 0 && s->q_cap > 8 && !s->q_inflight) {
        free(s->q);
        s->q = NULL;
        s->q_cap = s->q_head = 0;
    }
}

void ws_tx_free(struct ws_stream *s)
{
    queue_pop(s, s->q_len);
    free(s->q);
    s->q = NULL;
    s->q_cap = s->q_len = s->q_head = s->q_inflight = 0;
    s->q_inflight_bytes = 0;
}

/* --- writing ----------------------------------------------------------------------- */

static void write_done(struct ws_stream *s, int status)
{
    queue_pop(s, s->q_inflight);
    s->q_inflight = 0;
    s->q_inflight_bytes = 0;
    if (s->state == WS_GONE)
        return;
    if (status < 0) {
        ws_tx_drop_unsent(s);
        s->t->written(s, status);
        return;
    }
    s->t->ev.taken(WS_OWNER(s));
    if (s->q_len)
        ws_tx_mark_dirty(s);
    else
        s->t->written(s, 0);
}

static void on_write(uv_write_t *req, int status)
{
    struct ws_wreq *w = (struct ws_wreq *)req;
    struct ws_stream *s = w->s;
    struct ws_transport *t = s->t;

    if (s->orphan) {                 /* cancelled at shutdown: t may be gone */
        free(w);
        return;
    }
    if (t->nwreq_free < WS_WREQ_CACHE) {
        w->next = t->wreq_free;
        t->wreq_free = w;
        t->nwreq_free++;
    } else {
        free(w);
    }
    write_done(s, status);
}

static struct ws_wreq *wreq_get(struct ws_transport *t)
{
    struct ws_wreq *w = t->wreq_free;

    if (w) {
        t->wreq_free = w->next;
        t->nwreq_free--;
        return w;
    }
    return malloc(sizeof(*w));
}

/* The kernel took done bytes of the n buffers in t->iov: the rest goes to libuv. */
static void write_rest(struct ws_stream *s, uint32_t n, size_t done)
{
    struct ws_transport *t = s->t;
    struct ws_wreq *w;
    uint32_t k = 0;

    while (done >= t->iov[k].len) {
        done -= t->iov[k].len;
        k++;
    }
    queue_pop(s, k);                 /* written whole */
    s->q_inflight = n - k;
    s->q_inflight_bytes = 0;
    for (uint32_t i = k; i < n; i++)
        s->q_inflight_bytes += t->iov[i].len;
    t->iov[k].base += done;          /* the head was written in part */
    t->iov[k].len -= done;
    if (!(w = wreq_get(t))) {
        write_done(s, -ENOMEM);      /* the stream cannot continue mid-frame */
        return;
    }
    w->s = s;
    int rc = uv_write(&w->req, s->sock, t->iov + k, n - k, on_write);
    if (rc < 0) {
        free(w);
        write_done(s, rc);
    }
}

static void flush_one(struct ws_stream *s)
{
    struct ws_transport *t = s->t;
    uint32_t n;

    if (s->q_inflight || s->state == WS_GONE)
        return;
    t->pump(s);
    if (s->state == WS_GONE)
        return;
    if (!s->q_len) {
        if (s->state != WS_OPEN)
            t->written(s, 0);
        return;
    }
    n = s->q_len < WS_MAX_IOV ? s->q_len : WS_MAX_IOV;
    s->q_inflight_bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct ws_buf *b = s->q[(s->q_head + i) & (s->q_cap - 1)];
        t->iov[i] = uv_buf_init((char *)b->data, b->len);
        s->q_inflight_bytes += b->len;
    }
    s->q_inflight = n;
    /* Most of the time the socket buffer takes everything: try at once, with no
     * request and no callback deferred to the next turn, and hand libuv only what the
     * kernel left. */
    int wr = uv_try_write(s->sock, t->iov, n);
    if (wr < 0 && wr != UV_EAGAIN) {
        write_done(s, wr);
        return;
    }
    size_t done = wr > 0 ? (size_t)wr : 0;
    if (done == s->q_inflight_bytes) {
        write_done(s, 0);
        return;
    }
    write_rest(s, n, done);
    /* The socket took part of it: the owner may fill the queue up again behind the
     * rest (a sync replay), rather than wait for the whole write, which a slow reader
     * may take long to finish. */
    if (wr > 0 && s->state != WS_GONE && s->q_inflight)
        t->ev.taken(WS_OWNER(s));
}

/* One at a time from the head: flushing may dirty a stream again (it goes to the tail)
 * or free one (it unlinks itself), so no private copy of the list. */
int ws_tx_flush(struct ws_transport *t, uint64_t budget_ns)
{
    uint64_t start = uv_hrtime();
    unsigned n = 0;
    struct ws_stream *s;

    while ((s = t->dirty)) {
        ws_tx_unmark_dirty(s);
        flush_one(s);
        if (++n % WS_FLUSH_CHECK_EVERY == 0 && uv_hrtime() - start >= budget_ns)
            break;
    }
    return t->dirty != NULL;
}

static void on_idle(uv_idle_t *h)
{
    (void)h;   /* its being active is what counts: the next poll does not block */
}

/* After each poll phase. A flush cut short resumes in the next turn; meanwhile the
 * idle handle keeps that turn's poll from waiting for I/O. Frames queued meanwhile on
 * a stream still waiting go out with it, in the same write. */
static void on_check(uv_check_t *h)
{
    struct ws_transport *t = h->data;

    if (ws_tx_flush(t, WS_TURN_SLICE_NS)) {
        if (!uv_is_active((uv_handle_t *)&t->flush_idle))
            uv_idle_start(&t->flush_idle, on_idle);
    } else if (uv_is_active((uv_handle_t *)&t->flush_idle)) {
        uv_idle_stop(&t->flush_idle);
    }
}

int ws_tx_start(struct ws_transport *t)
{
    int rc = uv_check_init(t->loop, &t->flush_check);

    if (rc < 0)
        return rc;
    t->flush_check.data = t;
    if ((rc = uv_idle_init(t->loop, &t->flush_idle)) < 0) {
        uv_close((uv_handle_t *)&t->flush_check, NULL);
        return rc;
    }
    t->flush_idle.data = t;
    t->handles = 1;
    uv_unref((uv_handle_t *)&t->flush_idle);
    rc = uv_check_start(&t->flush_check, on_check);
    uv_unref((uv_handle_t *)&t->flush_check);
    return rc;
}

/* The handles are closed here and their memory lives in the transport, freed only
 * after the loop ran their close callbacks (the module's destroy comes after the loop
 * has stopped). */
void ws_tx_stop(struct ws_transport *t)
{
    if (!t->handles)
        return;
    t->handles = 0;
    uv_close((uv_handle_t *)&t->flush_check, NULL);
    uv_close((uv_handle_t *)&t->flush_idle, NULL);
}

void ws_tx_free_cache(struct ws_transport *t)
{
    while (t->wreq_free) {
        struct ws_wreq *w = t->wreq_free;
        t->wreq_free = w->next;
        free(w);
    }
    t->nwreq_free = 0;
}
