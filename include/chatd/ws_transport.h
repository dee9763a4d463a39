/* ws_transport.h: WebSocket streams, core's transport for upgraded sockets.
 *
 * After an HTTP upgrade the transport owns the socket, the wslay context (RFC 6455
 * framing, masking, UTF-8, control frames), the outbound frame queue and the writev
 * path. Its owner (the websocket module) sees an opaque stream: it sends frames it
 * encoded (ws_buf: server frames are unmasked, so one buffer serves every recipient,
 * shared by reference), asks to close, and hears text messages, the moment the
 * stream stops being open, the bytes the kernel took, and the end.
 *
 * A stream's life: OPEN -> CLOSING (a close frame queued, ours or the answer to the
 * peer's) -> SHUT (it is written and our side shut down: waiting for the peer's close
 * or EOF, at most WS_STREAM_LINGER_MS) -> GONE (the socket is closing; the memory goes
 * in its close callback). Every way out (a close asked for, the peer's close, a
 * protocol error, EOF, a failed write, the linger's end) goes through the same steps;
 * events.closing runs exactly once, events.gone last.
 *
 * The owner reaches the stream through struct ws_stream_ops, so that unit tests can
 * put a test transport (tests/unit/) in the place of this one. Loop thread only. */
#ifndef CHATD_WS_TRANSPORT_H
#define CHATD_WS_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_req;

#define WS_STREAM_LINGER_MS   3000    /* after our close: wait this long for the peer's */
#define WS_CLOSE_ABNORMAL     1006    /* never sent: recorded when the socket just went */
#define WS_OP_TEXT            1       /* the opcode of a text frame */

/* One encoded server frame (header + payload), shared by reference among the queues
 * of every recipient. Loop thread only, so the count needs no atomics. */
struct ws_buf {
    uint32_t refs;
    uint32_t len;
    uint8_t  data[];
};

/* A frame of this opcode with room for payload_len bytes at *payload; refs 1. */
struct ws_buf *ws_buf_new(size_t payload_len, int opcode, uint8_t **payload);
struct ws_buf *ws_buf_text(const char *text, size_t len);    /* a text frame */
struct ws_buf *ws_buf_raw(const void *bytes, size_t len);    /* bytes as they are */
static inline void ws_buf_ref(struct ws_buf *b) { b->refs++; }
void ws_buf_unref(struct ws_buf *b);

struct ws_stream;
struct ws_transport;

/* What a stream tells its owner (the pointer given when it was made). */
struct ws_stream_events {
    /* A complete text message, valid until the call returns. */
    void (*text)(void *owner, const char *text, size_t len);
    /* Every frame of a read was handled and the stream is still open. */
    void (*read_done)(void *owner);
    /* The stream stopped being open: code sent, received, or WS_CLOSE_ABNORMAL. Once. */
    void (*closing)(void *owner, uint16_t code);
    /* The kernel took queued bytes (a write finished, or went out in part). */
    void (*taken)(void *owner);
    /* The stream is gone; nothing of it may be used after this. */
    void (*gone)(void *owner);
};

/* Closes a stream's socket and runs cb(arg) from its close callback. */
typedef void (*ws_socket_close_fn)(uv_stream_t *sock, void (*cb)(void *arg), void *arg);

struct ws_transport_config {
    int max_message_bytes;           /* a message's bytes, fragments added up: 1009 past it */
    ws_socket_close_fn close_socket; /* NULL: upgraded HTTP sockets (http_upgraded_close) */
    uint64_t *frames_in;             /* counter of messages received (may be NULL) */
    uint64_t *frames_out;            /* counter of frames queued (may be NULL) */
};

/* What the owner calls. send: a reference to b is queued (the caller keeps its own);
 * control frames (pings) are refused only once the close frame went out, data frames
 * once the stream stopped being open: -EPIPE. */
struct ws_stream_ops {
    /* Starts reading; the bytes the client sent after its request come first. */
    void     (*start)(struct ws_stream *s);
    int      (*send)(struct ws_stream *s, struct ws_buf *b, int control);
    /* Begins the close handshake with code (nothing once closing). Code 1013 drops the
     * frames the kernel has not been handed: their memory goes at once. */
    void     (*close)(struct ws_stream *s, uint16_t code, const char *reason);
    size_t   (*unsent)(const struct ws_stream *s);     /* queued, not taken by the kernel */
    uint64_t (*taken)(const struct ws_stream *s);      /* taken by the kernel, ever */
    uint64_t (*last_rx_ms)(const struct ws_stream *s); /* monotonic: the last byte read */
    /* 1 when s is mid-frame or mid-message with no byte of it for after_ms. */
    int      (*stalled)(const struct ws_stream *s, uint64_t now_ms, uint64_t after_ms);
    void     (*trim)(struct ws_stream *s);             /* frees an idle queue's ring */
    void     (*expire)(struct ws_stream *s, uint64_t now_ms);   /* a linger that ran out */
    /* Lets go of a stream left at shutdown (a drain cut short): no more callbacks to
     * the owner, which must not touch it again; the socket is closed (unless it
     * already is closing) and the block, the owner's memory with it, is freed in its
     * close callback, which may come after the transport was freed. */
    void     (*release)(struct ws_stream *s);
    /* The transport as a whole (tx: a struct ws_transport here, a test's there). */
    int      (*tx_start)(void *tx);                    /* its handles, on the loop */
    void     (*tx_stop)(void *tx);
    void     (*tx_free)(void *tx);                     /* after every stream was released */
    void     (*flush_all)(void *tx);                   /* writes every queue now */
    size_t   (*queue_bytes)(const void *tx);           /* bytes queued on every stream */
};

/* This transport's operations. */
extern const struct ws_stream_ops ws_stream_socket_ops;

int  ws_transport_new(uv_loop_t *loop, const struct ws_transport_config *cfg,
                      const struct ws_stream_events *events, struct ws_transport **out);
/* The flush handles: after each poll phase, queues are written, a slice per turn. */
int  ws_transport_start(struct ws_transport *t);
void ws_transport_stop(struct ws_transport *t);
/* Frees the transport (its streams released first). */
void ws_transport_free(struct ws_transport *t);
/* Writes queues, oldest first, until budget_ns passed; 1 when some are left. */
int  ws_transport_flush(struct ws_transport *t, uint64_t budget_ns);

/* From a handler of an upgrade request: answer (the whole 101 response) becomes the
 * stream's first queued bytes, so nothing can go out before it; the socket and the
 * bytes read past the request pass to the stream. The owner's memory (owner_size
 * bytes, zeroed, in the stream's own allocation: one block per connection) comes back
 * in *owner; it lives until events.gone returns. On success the request is gone, as
 * it is after -ECONNABORTED (no memory for the stream: the socket was closed); after
 * -ENOTCONN (the request cannot be upgraded) it is still the caller's to answer.
 * Reading starts with ops->start, once the owner queued what must follow the answer. */
int  ws_stream_accept(struct ws_transport *t, struct http_req *req, const char *answer,
                      size_t answer_len, size_t owner_size, void **owner,
                      struct ws_stream **out);
/* Ends a stream at once (its owner could not take it on): "closing" now, "gone" from
 * the socket's close callback, as when the peer is lost. */
void ws_stream_abort(struct ws_stream *s);
/* The same over any connected libuv stream (closed with the config's close_socket);
 * head (malloc'ed or NULL) passes to the stream. */
int  ws_stream_open(struct ws_transport *t, uv_stream_t *sock, const void *first,
                    size_t first_len, char *head, size_t head_len, size_t owner_size,
                    void **owner, struct ws_stream **out);

#endif
