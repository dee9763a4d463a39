/* lg.h: the chatd load generator (bench/). One libuv loop drives every client
 * connection, open-loop: senders fire on a timer at a fixed rate whatever the
 * answers do, so a server that falls behind shows it as latency. Payloads carry the
 * send time (CLOCK_MONOTONIC ns, shared by processes on one machine). */
#ifndef LG_H
#define LG_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <wslay/wslay.h>

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

/* ---- one client connection: WebSocket (chatd) or RESP (redis) ---- */
enum conn_kind { CONN_WS, CONN_RESP };
struct lg_conn;
typedef void (*lg_frame_fn)(struct lg_conn *c, const uint8_t *p, size_t n);
typedef void (*lg_event_fn)(struct lg_conn *c, int status);

struct lg_conn {
    uv_tcp_t tcp;
    int kind, open, closing;
    int index;                      /* position in the scenario's array */
    void *user;                     /* scenario data */
    char *request;                  /* handshake or SUBSCRIBE bytes still to send */
    uint8_t *in; size_t in_len, in_cap, in_off;   /* unparsed input */
    uint8_t *msg; size_t msg_len, msg_cap;        /* WebSocket message being assembled */
    uint64_t frame_got;             /* payload bytes of the current frame so far */
    wslay_frame_context_ptr ws;
    int handshake_done;
    lg_frame_fn on_frame;           /* one whole message (WS text / RESP message payload) */
    lg_event_fn on_open, on_close;
};

int  lg_conn_open(uv_loop_t *loop, struct lg_conn *c, const char *host, int port, int kind,
                  const char *path_or_cmd, const char *token);
int  lg_ws_send_text(struct lg_conn *c, const char *p, size_t n);
int  lg_raw_send(struct lg_conn *c, const char *p, size_t n);
void lg_conn_close(struct lg_conn *c);

/* ---- blocking HTTP for set-up (not measured) ---- */
int lg_http(const char *host, int port, const char *method, const char *path,
            const char *token, const char *body, char *out, size_t outcap);

#endif
