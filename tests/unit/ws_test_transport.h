/* ws_test_transport.h: a test transport for the websocket module, an implementation of
 * struct ws_stream_ops with no socket and no wslay. Frames are "written" at once, in
 * order, into one buffer shared by every stream; a close appends a close frame with its
 * code and tells the owner "closing", and the stream is gone (its owner told) at the
 * next wstt_settle, as a real stream is only after its socket's close callback. A test
 * may make a stream look slow (unsent bytes) or hand its owner a text message. */
#ifndef CHATD_WS_TEST_TRANSPORT_H
#define CHATD_WS_TEST_TRANSPORT_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/util.h"
#include "chatd/ws_transport.h"

struct wstt;

/* A stream of this transport (the module holds it as its opaque struct ws_stream),
 * its owner's memory after it in the same block, as core's transport does it. */
struct wstt_stream {
    struct wstt *tt;
    void    *owner;
    struct wstt_stream **prevp;      /* in tt->all */
    int      state;                  /* 0 open, 1 closing, 2 gone (told) */
    size_t   unsent;                 /* set by a test: bytes "the kernel" has not taken */
    uint64_t taken;
    int      fresh;                  /* bytes written since the last flush_all */
    uint64_t last_rx_ms;
    int      started;
    struct wstt_stream *next;
};

struct wstt {
    const struct ws_stream_events *ev;
    struct strbuf out;               /* every frame, in the order sent */
    struct wstt_stream *all;
    size_t   queued;                 /* bytes sent, for queue_bytes */
    int      flushes;
};

static inline struct wstt_stream *wstt_of(const struct ws_stream *s)
{
    return (struct wstt_stream *)s;
}

static inline void wstt_op_start(struct ws_stream *s) { wstt_of(s)->started = 1; }

static inline int wstt_send(struct ws_stream *ss, struct ws_buf *b, int control)
{
    struct wstt_stream *s = wstt_of(ss);

    if (s->state == 2 || (!control && s->state != 0))
        return -EPIPE;
    if (strbuf_append(&s->tt->out, b->data, b->len) < 0)
        return -ENOMEM;
    s->taken += b->len;
    s->tt->queued += b->len;
    s->fresh = 1;
    return 0;
}

static inline void wstt_close(struct ws_stream *ss, uint16_t code, const char *reason)
{
    struct wstt_stream *s = wstt_of(ss);
    uint8_t frame[4] = { 0x88, 2, (uint8_t)(code >> 8), (uint8_t)code };
    (void)reason;

    if (s->state != 0)
        return;
    s->state = 1;
    strbuf_append(&s->tt->out, frame, sizeof(frame));
    s->tt->ev->closing(s->owner, code);
}

static inline size_t wstt_unsent(const struct ws_stream *s) { return wstt_of(s)->unsent; }
static inline uint64_t wstt_taken(const struct ws_stream *s) { return wstt_of(s)->taken; }
static inline uint64_t wstt_last_rx(const struct ws_stream *s)
{
    return wstt_of(s)->last_rx_ms;
}
static inline int wstt_stalled(const struct ws_stream *s, uint64_t now, uint64_t after)
{
    (void)s; (void)now; (void)after;
    return 0;
}
static inline void wstt_trim(struct ws_stream *s) { (void)s; }

static inline void wstt_unlink(struct wstt_stream *s)
{
    *s->prevp = s->next;
    if (s->next)
        s->next->prevp = s->prevp;
}

static inline void wstt_release(struct ws_stream *ss)
{
    wstt_unlink(wstt_of(ss));
    free(ss);
}
static inline void wstt_expire(struct ws_stream *s, uint64_t now) { (void)s; (void)now; }
static inline int wstt_tx_start(void *tx) { (void)tx; return 0; }
static inline void wstt_tx_stop(void *tx) { (void)tx; }

/* The streams closed meanwhile go: their owners hear "gone". */
static inline void wstt_settle(struct wstt *tt)
{
    for (struct wstt_stream *s = tt->all, *next; s; s = next) {
        next = s->next;
        if (s->state == 1) {
            wstt_unlink(s);
            s->state = 2;
            tt->ev->gone(s->owner);
            free(s);
        }
    }
}

/* As a real flush: every stream that was written to hears that the client took it. */
static inline void wstt_flush_all(void *tx)
{
    struct wstt *tt = tx;

    tt->flushes++;
    for (struct wstt_stream *s = tt->all; s; s = s->next)
        if (s->fresh && s->state == 0) {
            s->fresh = 0;
            tt->ev->taken(s->owner);
        }
}

static inline size_t wstt_queue_bytes(const void *tx)
{
    return ((const struct wstt *)tx)->queued;
}

static inline void wstt_tx_free(void *tx)
{
    struct wstt *tt = tx;

    while (tt->all)
        wstt_release((struct ws_stream *)tt->all);
    strbuf_free(&tt->out);
    free(tt);
}

static const struct ws_stream_ops wstt_ops = {
    .start = wstt_op_start, .send = wstt_send, .close = wstt_close,
    .unsent = wstt_unsent, .taken = wstt_taken, .last_rx_ms = wstt_last_rx,
    .stalled = wstt_stalled, .trim = wstt_trim, .expire = wstt_expire,
    .release = wstt_release,
    .tx_start = wstt_tx_start, .tx_stop = wstt_tx_stop, .tx_free = wstt_tx_free,
    .flush_all = wstt_flush_all, .queue_bytes = wstt_queue_bytes,
};

static inline struct wstt *wstt_new(const struct ws_stream_events *ev)
{
    struct wstt *tt = calloc(1, sizeof(*tt));

    if (tt) {
        tt->ev = ev;
        strbuf_init(&tt->out, 64 << 20);
    }
    return tt;
}

#define WSTT_SIZE ((sizeof(struct wstt_stream) + 15) & ~(size_t)15)

static inline struct ws_stream *wstt_stream(struct wstt *tt, size_t owner_size, void **owner)
{
    struct wstt_stream *s = calloc(1, WSTT_SIZE + owner_size);

    if (!s)
        return NULL;
    s->tt = tt;
    s->owner = *owner = (char *)s + WSTT_SIZE;
    s->last_rx_ms = mono_ms();
    s->next = tt->all;
    if (tt->all)
        tt->all->prevp = &s->next;
    s->prevp = &tt->all;
    tt->all = s;
    return (struct ws_stream *)s;
}

/* The client sent a text message. */
static inline void wstt_text(struct ws_stream *ss, const char *text)
{
    struct wstt_stream *s = wstt_of(ss);

    if (s->state == 0)
        s->tt->ev->text(s->owner, text, strlen(text));
}

#endif
