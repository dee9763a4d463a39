/* lg.h: the chatd load generator (bench/). One libuv loop drives every client
 * connection, open-loop: senders fire on a timer at a fixed rate whatever the
 * answers do, so a server that falls behind shows it as latency. Payloads carry the
 * send time (CLOCK_MONOTONIC ns, shared by processes on one machine). */
#ifndef LG_H
#define LG_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---- log-bucket latency histogram: 1 us .. ~1000 s, 8 buckets per power of 2 ---- */
#define HIST_SUB 8
#define HIST_BUCKETS (40 * HIST_SUB)
struct hist {
    uint64_t count, max_ns, sum_ns;
    uint64_t b[HIST_BUCKETS];
};
void     hist_add(struct hist *h, uint64_t ns);
uint64_t hist_quantile(const struct hist *h, double q);   /* ns, bucket upper bound */
void     hist_print(const struct hist *h, const char *name); /* name_p50_ms=... lines */

uint64_t lg_now_ns(void);

/* ---- one client connection: WebSocket (chatd) or RESP (redis) ----
 * The receive path is the same for both targets and as cheap per delivery as we can
 * make it, so that the generator measures the server rather than itself: every
 * connection reads into one shared buffer per loop, every whole frame or reply in a
 * read is parsed in place (no copy, no allocation), and the clock is read once per
 * read, not once per message. Only an incomplete tail is copied to the connection. */
enum conn_kind { CONN_WS, CONN_RESP };
struct lg_conn;
/* now: CLOCK_MONOTONIC ns when the read that brought the message returned */
typedef void (*lg_frame_fn)(struct lg_conn *c, const uint8_t *p, size_t n, uint64_t now);
typedef void (*lg_event_fn)(struct lg_conn *c, int status);

struct lg_conn {
    uv_tcp_t tcp;
    int kind, open, closing;
    int index;                      /* position in the scenario's array */
    void *user;                     /* scenario data */
    char *request;                  /* handshake or SUBSCRIBE bytes still to send */
    uint8_t *in; size_t in_len, in_cap;           /* incomplete input left by a read */
    uint8_t *msg; size_t msg_len, msg_cap;        /* fragmented WebSocket message */
    int msg_op;                     /* opcode of the fragmented message */
    int handshake_done;
    int upgrade_status;             /* HTTP status of the upgrade answer (0: none yet) */
    int uring_armed;                /* a multishot recv is in the ring for this socket */
    lg_frame_fn on_frame;           /* one whole message (WS text / RESP message payload) */
    lg_event_fn on_open, on_close;
};

/* Per-loop receive state: io_uring (lg_uring.c) or, where the kernel has none, epoll
 * and read(2) into one shared buffer; and what it has seen. LG_IO=epoll in the
 * environment forces the second (to compare the two). */
#define LG_READ_BUF (256 * 1024)
struct lg_uring;
struct lg_io {
    uint64_t reads, frames, bytes;  /* reads (or recv completions) with data; messages; bytes */
    struct lg_uring *uring;         /* NULL: epoll */
    struct wslay_frame_context *wsf; /* encodes (and masks) every client frame on this loop */
    uint8_t *out; size_t out_len, out_cap;  /* the frame wslay is writing into */
    uint8_t buf[LG_READ_BUF];
};
struct lg_io *lg_io_of(uv_loop_t *loop);   /* created on first use, kept in loop->data */
const char *lg_io_name(uv_loop_t *loop);

typedef void (*lg_uring_data_fn)(struct lg_conn *c, const uint8_t *p, size_t n, uint64_t now);
struct lg_uring *lg_uring_new(uv_loop_t *loop, lg_uring_data_fn on_data);
int  lg_uring_recv(struct lg_uring *u, struct lg_conn *c);
int  lg_uring_cancel(struct lg_uring *u, struct lg_conn *c);
void lg_conn_finish_close(struct lg_conn *c);   /* after the ring let go of the socket */
void lg_conn_read_plain(struct lg_conn *c);     /* read through libuv instead */

int  lg_conn_open(uv_loop_t *loop, struct lg_conn *c, const char *host, int port, int kind,
                  const char *path_or_cmd, const char *token);
int  lg_ws_send_text(struct lg_conn *c, const char *p, size_t n);
int  lg_raw_send(struct lg_conn *c, const char *p, size_t n);
void lg_conn_close(struct lg_conn *c);
/* Input of one read: every whole message to on_frame, an incomplete tail kept. */
void lg_conn_feed(struct lg_conn *c, const uint8_t *p, size_t n, uint64_t now);
int  lg_self_test(void);        /* the parsers on split and joined input; 0 if all pass */

/* ---- blocking HTTP: one connection per request for set-up (not measured), or a
 * kept-alive connection (lg_http_ka, one per thread) for the auth scenario ---- */
int lg_http(const char *host, int port, const char *method, const char *path,
            const char *token, const char *body, char *out, size_t outcap);

struct lg_http_ka {
    const char *host; int port;
    int fd;                         /* -1: not connected */
    char *buf; size_t len, cap;     /* bytes read past the last answer */
    uint64_t connects;              /* connections opened (1 if keep-alive held) */
};
void lg_http_ka_init(struct lg_http_ka *k, const char *host, int port);
int  lg_http_ka(struct lg_http_ka *k, const char *method, const char *path,
                const char *token, const char *body, char *out, size_t outcap);
void lg_http_ka_close(struct lg_http_ka *k);

#endif
