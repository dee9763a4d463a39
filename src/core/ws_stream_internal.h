/* ws_stream_internal.h: the WebSocket transport's private structures (include/chatd/
 * ws_transport.h is its interface). Layers, each calling only those below it:
 *   ws_stream_tx.c    frames (ws_buf), the per-stream queue, writev, the flush list
 *   ws_stream_rx.c    the bytes of incoming messages as they arrive; the stall check;
 *                     the control frames we answer input with (pong, close)
 *   ws_stream_pool.c  wslay contexts lent to streams between frames
 *   ws_stream.c       wslay's callbacks, feeding a read through wslay, the close path
 *   ws_transport.c    creation (upgrade hand-over), reading, the transport and its ops
 * The lower layers tell ws_stream.c of a finished write through hooks in struct
 * ws_transport, so that no two files call each other. */
#ifndef CHATD_WS_STREAM_INTERNAL_H
#define CHATD_WS_STREAM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <wslay/wslay.h>

#include "chatd/ws_transport.h"

#define WS_READ_BUF           65536   /* shared by every stream's read callback */
#define WS_MAX_IOV            512     /* frames gathered into one writev */
#define WS_WREQ_CACHE         64
#define WS_WSLAY_POOL         64      /* idle wslay contexts kept for reuse */
/* What a loop turn may spend flushing queues: a broadcast to a large room is one
 * write per connection, about 8 us each here, so 1,000 recipients would hold the loop
 * for several milliseconds. Past this the rest waits for the next turn, after timers
 * and reads had their go. */
#define WS_TURN_SLICE_NS      (500 * 1000)
#define WS_FLUSH_CHECK_EVERY  8       /* streams between clock reads */

enum ws_stream_state {
    WS_OPEN = 0,
    WS_CLOSING,                      /* a close frame queued; waiting for it to go out */
    WS_SHUT,                         /* close frame written, our side shut: linger */
    WS_GONE                          /* the socket is closing; freed in its callback */
};

/* A wslay context with the stream it serves now: wslay's user_data. Contexts go back
 * to a pool between frames, so the slot, not the context, names the stream. What is
 * known of the frames being received lives here too: it is only ever needed while a
 * context is lent (one is kept mid-frame and mid-message), so an idle stream does not
 * carry it. */
struct ws_slot {
    wslay_event_context_ptr ctx;
    struct ws_stream *s;
    uint64_t fed, consumed;          /* bytes given to wslay / in complete frames */
    uint64_t frame_bytes;            /* size of the frame being received */
    uint8_t  in_message;             /* a fragmented data message is open */
    uint8_t  frame_opcode;           /* of the frame being received */
    uint8_t  wslay_payload_next;     /* wslay's next send callback is a payload */
    uint8_t  wslay_dropping;         /* ... of its own pong, dropped */
};

/* A stream and its owner's memory are one allocation (WS_OWNER): an idle connection
 * costs one block. */
struct ws_stream {
    struct ws_transport *t;
    uv_stream_t *sock;               /* owned: closed with t->cfg.close_socket */
    uint8_t  state;                  /* enum ws_stream_state */
    uint8_t  dirty;                  /* on the flush list */
    uint8_t  wslay_dead;             /* wslay failed on the stream: input dropped */
    uint8_t  answer_unsent;          /* the ring's head is the 101 answer, not all written */
    uint16_t close_code;             /* what we sent or recorded */
    uint8_t  orphan;                 /* released at shutdown: its owner and transport are
                                      * gone, only the socket's close is awaited */
    uint64_t close_deadline;         /* monotonic, once not open */
    struct ws_stream *dirty_next, *dirty_prev;   /* flush list (FIFO) */
    /* input: wslay, and what of its frames arrived */
    struct ws_slot *wslay;           /* owned while lent; NULL when idle */
    uint64_t last_rx_ms;             /* monotonic: last byte read */
    uint64_t rx_progress_ms;         /* monotonic: last byte of the open frame / message */
    uint8_t *rx;                     /* owned: the open message's bytes; until start, */
    uint32_t rx_len, rx_cap;         /* the bytes read past the upgrade request */
    /* output: a ring of frames; the first q_inflight are being written */
    struct ws_buf **q;
    uint32_t q_head, q_len, q_cap, q_inflight;
    size_t   q_bytes;                /* bytes queued, in flight included */
    uint64_t q_total;                /* bytes ever queued, less those dropped unsent */
    size_t   q_inflight_bytes;       /* of which in the write in flight */
};

/* The owner's memory, right after the stream's: s + 1 is aligned as struct ws_stream
 * is (8 bytes, it holds pointers), which is what owners of pointers and 64-bit
 * integers need (16 would cost an idle connection 8 bytes of padding). */
#define WS_STREAM_SIZE sizeof(struct ws_stream)
#define WS_OWNER(s)    ((void *)((s) + 1))

/* The bytes being fed to one stream, for wslay's recv callback. Feeding is
 * synchronous and never nested. */
struct ws_input {
    struct ws_stream *s;
    const uint8_t *data;
    size_t len, off;
    const uint8_t *direct;           /* a whole message in wslay's read buffer */
    size_t direct_len;
    uint64_t first_len;              /* the frame just started: its payload length, */
    uint8_t first, first_fin;        /* its first chunk still to come, its FIN bit */
};

struct ws_wreq;

struct ws_transport {
    uv_loop_t *loop;
    struct ws_transport_config cfg;
    struct ws_stream_events ev;
    size_t   queue_bytes;            /* sum of q_bytes */
    /* hooks ws_stream.c sets: before a queue is written (wslay's pending output goes
     * in first) and after (status < 0: the write failed; 0: everything went out) */
    void   (*pump)(struct ws_stream *s);
    void   (*written)(struct ws_stream *s, int status);
    uv_check_t flush_check;
    uv_idle_t flush_idle;            /* active while a flush is cut short: poll won't block */
    int      handles;                /* 1 once the handles are initialised */
    struct ws_stream *dirty, *dirty_tail;   /* streams with frames to write, oldest first */
    struct ws_wreq *wreq_free;       /* cache of write requests */
    int      nwreq_free;
    uv_buf_t iov[WS_MAX_IOV];        /* scratch for one writev */
    struct ws_input *input;          /* during a feed only */
    struct ws_slot *pool[WS_WSLAY_POOL];   /* owned: idle contexts */
    int      npool;
    char     rbuf[WS_READ_BUF];
};

/* ws_stream_tx.c */
/* Appends a reference to b (a frame: counted in frames_out); -EPIPE once the close
 * frame went out, -ENOMEM. */
int   ws_tx_queue(struct ws_stream *s, struct ws_buf *b);
/* The same for bytes that are no frame (the 101 answer). */
int   ws_tx_queue_bytes(struct ws_stream *s, struct ws_buf *b);
size_t ws_tx_unsent(const struct ws_stream *s);
uint64_t ws_tx_taken(const struct ws_stream *s);
void  ws_tx_drop_unsent(struct ws_stream *s);   /* frames not handed to the kernel */
void  ws_tx_trim(struct ws_stream *s);
void  ws_tx_free(struct ws_stream *s);
void  ws_tx_mark_dirty(struct ws_stream *s);
void  ws_tx_unmark_dirty(struct ws_stream *s);
int   ws_tx_flush(struct ws_transport *t, uint64_t budget_ns);
int   ws_tx_start(struct ws_transport *t);
void  ws_tx_stop(struct ws_transport *t);
void  ws_tx_free_cache(struct ws_transport *t);

/* ws_stream_rx.c */
void  ws_rx_feed_begin(struct ws_input *in);
void  ws_rx_feed_end(struct ws_stream *s);
/* A frame begins; -EMSGSIZE when its message would pass max_message_bytes. */
int   ws_rx_frame_start(struct ws_stream *s, int opcode, int fin, uint64_t payload_len);
int   ws_rx_chunk(struct ws_stream *s, const uint8_t *data, size_t len);   /* -ENOMEM */
const char *ws_rx_text(struct ws_stream *s, size_t *len);   /* valid until ws_rx_done */
void  ws_rx_done(struct ws_stream *s);
int   ws_rx_stalled(const struct ws_stream *s, uint64_t now, uint64_t after_ms);
/* Control frames we build: a pong with this payload, a close with this code only. */
int   ws_rx_queue_pong(struct ws_stream *s, const uint8_t *payload, size_t len);
int   ws_rx_queue_close(struct ws_stream *s, uint16_t code);
/* For wslay's send callback: 1 when these bytes are part of wslay's own pong. */
int   ws_rx_is_wslay_pong(struct ws_stream *s, const uint8_t *data, int flags);

/* ws_stream_pool.c: a stream's wslay context, borrowed when bytes arrive (0 or
 * -ENOMEM), lent back when between frames, freed mid-frame. */
int   ws_pool_acquire(struct ws_stream *s, const struct wslay_event_callbacks *cbs);
void  ws_pool_release(struct ws_stream *s);
void  ws_pool_drop(struct ws_stream *s);
void  ws_pool_free(struct ws_transport *t);

/* ws_stream.c */
void  ws_stream_install(struct ws_transport *t);   /* sets the hooks above */
void  ws_stream_feed(struct ws_stream *s, const uint8_t *data, size_t len);
void  ws_stream_close(struct ws_stream *s, uint16_t code, const char *reason);
/* The peer went (EOF, a read error): the stream ends now. */
void  ws_stream_lost(struct ws_stream *s);
void  ws_stream_expire(struct ws_stream *s, uint64_t now_ms);
void  ws_stream_free_now(struct ws_stream *s);   /* no callbacks, socket untouched */
void  ws_stream_release(struct ws_stream *s);    /* shutdown: see ops.release */

#endif
