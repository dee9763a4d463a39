/* ws_internal.h: the websocket module's private structures.
 *
 * Layers, one file each:
 *   upgrade.c   GET /v1/ws: header checks, Sec-WebSocket-Accept, hand-over from HTTP
 *   conn.c      one connection: wslay for the inbound side, close handshake, lifetime
 *   conn_wslay.c  wslay's callbacks, its contexts lent to connections between frames
 *   inbound.c   the bytes of incoming messages as they arrive; the stall check
 *   control.c   control frames we write ourselves: pongs in order, the close after a
 *               stream wslay gave up on
 *   fanout.c    outbound: shared encoded frames (ws_buf), per-connection queue, writev
 *   frames.c    JSON frames: client frame decoding, server frame encoding
 *   event_frames.c  server frames printed from bus events' structs (MSG, room, presence)
 *   dispatch.c  what each client frame does (send, typing, read, sync, auth, ping)
 *   events.c    bus events turned into frames (message.stored, room.typing, ...)
 *   sync.c      sync: the request to the message module and the paced replay
 *   registry.c  user id -> connections, connection id -> connection
 *   heartbeat.c one tick timer: pings, silent connections, token expiry, close deadlines
 *
 * Outbound bytes all go through one queue per connection, in order: data frames are
 * encoded by us (server frames are unmasked, so a broadcast frame is built once and
 * shared by reference), control frames (pong, close) come from wslay's send callback
 * and are appended to the same queue, so bytes never interleave. */
#ifndef CHATD_WS_INTERNAL_H
#define CHATD_WS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <wslay/wslay.h>
#include <cjson/cJSON.h>

#include "chatd/chatd.h"
#include "chatd/events.h"
#include "chatd/http.h"
#include "chatd/util.h"

#define WS_SUBPROTOCOL        "chatd.v1"
#define WS_READ_BUF           65536   /* shared by every connection's read callback */
#define WS_MAX_IOV            512     /* frames gathered into one writev */
#define WS_BAD_FRAMES_MAX     10      /* bad frames within WS_BAD_WINDOW_MS: close 1008 */
#define WS_BAD_WINDOW_MS      60000
#define WS_AUTH_GRACE_MS      60000   /* after exp without an "auth" frame: close 4001 */
#define WS_CLOSE_LINGER_MS    3000    /* wait this long for the peer's close / EOF */
#define WS_SYNC_TIMEOUT_MS    30000   /* for one page's answer */
#define WS_SYNC_MAX_ROOMS     1000
#define WS_SYNC_LIMIT         500     /* messages of one room in one sync */
#define WS_SYNC_PAGE          64      /* messages in one page of the replay */
#define WS_SYNC_PAGE_ROOMS    64      /* rooms named in one page request */
#define WS_DRAIN_WAIT_MS      10000   /* waiting for acks of in-flight sends */
#define WS_WREQ_CACHE         64
#define WS_RATELIMIT_ADDRS    4096
#define WS_WSLAY_POOL         64      /* idle wslay contexts kept for reuse */
/* What a loop turn may spend on one pass over many connections: flushing queues (a
 * broadcast to a large room is one write per connection, about 8 us each here, so
 * 1,000 recipients would hold the loop for several milliseconds) and the heartbeat's
 * visit of every connection. Past this the rest waits for the next turn, after
 * timers and reads had their go. */
#define WS_TURN_SLICE_NS      (500 * 1000)
#define WS_FLUSH_CHECK_EVERY  8       /* connections between clock reads */
#define WS_JSON_SCRATCH_KEEP  (256 * 1024)   /* past this the print buffer is freed */

/* Close codes of our own (4000-4999 are the application's). */
#define WS_CLOSE_TOKEN_EXPIRED  4001
#define WS_CLOSE_HEARTBEAT      4000
#define WS_CLOSE_STALLED        4002   /* a frame or message left incomplete (inbound.c) */
#define WS_CLOSE_ABNORMAL       1006   /* never sent: recorded when the socket just went */

/* A token's exp (seconds) in milliseconds. The signature is checked, but nothing bounds
 * exp: one far in the future must not overflow the product, so exp counts at most as
 * the last second of year 9999. */
#define WS_EXP_MAX_S 253402300799LL
static inline int64_t ws_exp_ms(int64_t exp_s)
{
    if (exp_s > WS_EXP_MAX_S)
        exp_s = WS_EXP_MAX_S;
    else if (exp_s < -WS_EXP_MAX_S)
        exp_s = -WS_EXP_MAX_S;
    return exp_s * 1000;
}

/* One encoded server frame (header + payload), shared by reference among the queues
 * of every recipient. Loop thread only, so the count needs no atomics. */
struct ws_buf {
    uint32_t refs;
    uint32_t len;
    uint8_t  data[];
};

struct ws_module;
struct ws_conn;

/* A user with at least one open connection. Owned by the registry. */
struct ws_user {
    int64_t id;
    char    name[40];
    struct ws_conn *conns;           /* list through ws_conn.user_next / user_prev */
    int     nconns;
    struct token_bucket typing_bucket;
};

/* Sync in progress on one connection (sync.c). Owned by the connection. */
struct ws_held {
    struct ws_buf *buf;
    int64_t room_id, seq;
};
struct ws_sync_room {
    int64_t room_id;
    int64_t after;                   /* the replay goes on after this seq */
    int64_t max_seq;                 /* highest seq replayed, 0 for none */
    int     left;                    /* messages the room may still replay */
};
struct ws_sync {
    int64_t req_id;                  /* page request: > 0 waiting, 0 none */
    struct ws_sync_room *rooms;      /* the client's rooms, in its order */
    int     nrooms, room_next;       /* rooms[room_next..] are not done yet */
    uint64_t progress_ms;            /* monotonic: the client last took bytes, or a page came */
    uint64_t seen_taken;             /* ws_conn_taken at the last stall check */
    struct ws_held *held;            /* live messages that arrived meanwhile */
    size_t  nheld, held_cap, held_bytes;
};

enum ws_conn_state {
    WS_OPEN = 0,
    WS_CLOSING,                      /* close frame queued; waiting for it to go out */
    WS_SHUT,                         /* close frame written (or socket dead): linger */
    WS_FREEING                       /* uv_close called */
};

struct ws_conn {
    struct ws_module *m;
    uv_tcp_t *tcp;                   /* not owned (http layer's); NULL in unit tests */
    wslay_event_context_ptr wslay;   /* owned while attached; NULL when idle (conn.c) */
    uint64_t fed, consumed;          /* bytes given to wslay / in complete frames */
    uint64_t frame_bytes;            /* size of the frame being received */
    uint64_t rx_progress_ms;         /* monotonic: last byte of the open frame / message */
    uint8_t *rx;                     /* owned: the open message's bytes (inbound.c) */
    uint32_t rx_len, rx_cap;
    uint64_t id;
    struct ws_user *user;            /* registry's; NULL once unregistered */
    int64_t  user_id;
    int64_t  token_exp;              /* seconds since the epoch */
    uint64_t last_rx_ms;             /* monotonic: last frame (any kind) */
    uint64_t close_deadline;         /* monotonic, in WS_SHUT / WS_CLOSING */
    struct ws_conn *user_next, *user_prev;   /* ws_user.conns; prev so that leaving is O(1) */
    struct ws_conn *prev, *next;     /* module's list of every connection */
    struct ws_conn *dirty_next, *dirty_prev;   /* module's flush list (FIFO) */
    /* outbound queue: a ring of frames; the first q_inflight are being written */
    struct ws_buf **q;
    uint32_t q_head, q_len, q_cap, q_inflight;
    size_t   q_bytes;                /* bytes queued, in flight included */
    uint64_t q_total;                /* bytes ever queued, less those dropped unsent */
    size_t   q_inflight_bytes;       /* of which in the write in flight */
    struct ws_sync *sync;            /* owned; NULL when no sync runs */
    struct keycount_ent *addr;       /* its count in m->conns_by_addr, while open */
    uint64_t bad_window_start;
    uint16_t bad_count;
    uint16_t close_code;             /* what we sent or recorded */
    uint32_t pending_sends;          /* send frames not yet acked or refused */
    uint8_t  state;                  /* enum ws_conn_state */
    uint8_t  dirty;
    uint8_t  reading_done;           /* EOF or read error seen */
    uint8_t  write_failed;
    uint8_t  shutdown_sent;
    uint8_t  announced;              /* ws.connected went out */
    uint8_t  in_message;             /* a fragmented data message is open */
    /* ws_conn_feed is on the stack, and with it wslay's callbacks for this
     * connection: a destroy or a close there leaves freeing the connection and its
     * receive buffer to ws_conn_feed, never inside a callback of its own. */
    uint8_t  in_own_callback;
    uint8_t  frame_opcode;           /* of the frame being received */
    uint8_t  wslay_dead;             /* wslay failed on the stream: input dropped (control.c) */
    uint8_t  wslay_payload_next;     /* wslay's next send callback is a payload */
    uint8_t  wslay_dropping;         /* ... of its own pong, dropped (control.c) */
};

/* Metrics pointers (counters from metrics_counter). */
struct ws_metrics {
    uint64_t *frames_in, *frames_out, *deliveries, *upgrades, *rejected_upgrades;
    uint64_t *closes[16];            /* by ws_close_slot() */
};

struct ws_wreq;

/* The bytes being fed to one connection, for wslay's recv callback. Feeding is
 * synchronous and never nested. */
struct ws_input { const uint8_t *data; size_t len, off; };

/* Module state: everything hangs off here (no globals). */
struct ws_module {
    struct chatd *app;
    int max_message_bytes, heartbeat_ms;
    size_t send_queue_bytes;
    uint64_t sync_stall_ms;
    double typing_per_s;
    struct ratelimit *connect_rl;    /* owned */
    int      conns_per_user;         /* [limits] connections_per_user (open ones) */
    uint32_t conns_per_addr;         /* [limits] connections_per_address */
    struct keycount *conns_by_addr;  /* owned: open connections per client address */
    /* registry */
    struct ws_map *users;            /* user id -> struct ws_user */
    struct ws_map *conns_by_id;      /* conn id -> struct ws_conn */
    struct ws_conn *all;             /* every connection not yet freed */
    int      nconns;                 /* open (registered) connections */
    int      nalive;                 /* not yet freed */
    uint64_t next_conn_id;
    size_t   queue_bytes;            /* sum of q_bytes, for the gauge */
    /* outbound */
    uv_check_t flush_check;
    uv_idle_t flush_idle;            /* active while a flush is cut short: poll won't block */
    struct ws_conn *dirty, *dirty_tail;   /* connections with frames to write, oldest first */
    struct ws_wreq *wreq_free;       /* cache of write requests */
    int      nwreq_free;
    uv_buf_t iov[WS_MAX_IOV];        /* scratch for one writev */
    struct strbuf json;              /* scratch: a message printed once for its frames */
    /* heartbeat.c */
    uv_timer_t tick;
    uint64_t next_ping_ms;
    struct ws_conn *sweep_next;      /* the pass's cursor; NULL: no pass under way */
    int      sweep_ping;             /* this pass queues a ping to each open connection */
    /* drain */
    int      draining;
    int      drain_closing;          /* 1001 sent to everyone */
    uint64_t drain_deadline;
    uint64_t pending_sends;          /* all connections', closed ones included */
    void   (*drain_done)(void *state);
    int      handles_open;
    struct ws_input *input;          /* during ws_conn_feed only */
    const uint8_t *rx_direct;        /* inbound.c, during ws_conn_feed: a whole message */
    size_t   rx_direct_len;          /* in wslay's read buffer */
    uint64_t rx_first_len;           /* the frame just started: its payload length, */
    uint8_t  rx_first, rx_first_fin; /* its first chunk still to come, its FIN bit */
    struct ws_conn *cur;             /* the connection inside a wslay call (never nested) */
    wslay_event_context_ptr pool[WS_WSLAY_POOL];  /* owned: idle contexts */
    int      npool;
    struct ws_metrics metrics;
    char     rbuf[WS_READ_BUF];
    /* Tests: when set, frames are written here instead of to a socket, and text
     * messages go to on_text instead of dispatch. */
    struct strbuf *capture;
    void   (*on_text)(struct ws_conn *c, const char *text, size_t len);
};

/* registry.c */
struct ws_map;
int   ws_map_new(struct ws_map **out);
void  ws_map_free(struct ws_map *map);
void *ws_map_get(const struct ws_map *map, int64_t key);
int   ws_map_put(struct ws_map *map, int64_t key, void *val);
void  ws_map_del(struct ws_map *map, int64_t key);
size_t ws_map_count(const struct ws_map *map);
/* Adds c to its user's list (creating the user); 0 or -ENOMEM. */
int   ws_registry_add(struct ws_module *m, struct ws_conn *c, const char *username);
void  ws_registry_remove(struct ws_module *m, struct ws_conn *c);
struct ws_user *ws_registry_user(struct ws_module *m, int64_t user_id);
struct ws_conn *ws_registry_conn(struct ws_module *m, uint64_t conn_id);

/* fanout.c */
struct ws_buf *ws_buf_new(size_t payload_len, int opcode, uint8_t **payload);
/* A text frame holding json (len bytes). */
struct ws_buf *ws_buf_text(const char *json, size_t len);
struct ws_buf *ws_buf_raw(const void *bytes, size_t len);  /* bytes as they are */
static inline void ws_buf_ref(struct ws_buf *b) { b->refs++; }
void  ws_buf_unref(struct ws_buf *b);
enum ws_prio { WS_PRIO_NORMAL = 0, WS_PRIO_TYPING, WS_PRIO_CONTROL };
/* Queues a reference to b on c. Past send_queue_bytes (of backlog) the connection is
 * closed with 1013 (returns -ENOBUFS); typing frames are dropped past half of it
 * (-EAGAIN). Control frames are never refused while the socket is alive. */
int   ws_conn_queue(struct ws_conn *c, struct ws_buf *b, int prio);
/* Bytes queued for c that the kernel has not taken yet. */
size_t ws_conn_unsent(const struct ws_conn *c);
/* Bytes of c the kernel has taken so far: grows whenever the client reads, whatever
 * is queued meanwhile. */
uint64_t ws_conn_taken(const struct ws_conn *c);
/* What c holds for its client, counted against send_queue_bytes: the unsent bytes and
 * the live messages a running sync holds back. */
size_t ws_conn_backlog(const struct ws_conn *c);
/* Convenience: encode json once and queue it on one connection. */
int   ws_conn_send_json(struct ws_conn *c, const char *json, size_t len);
/* Drops frames not yet handed to the kernel (slow consumer). */
void  ws_conn_queue_drop(struct ws_conn *c);
void  ws_conn_queue_free(struct ws_conn *c);
/* Frees the ring of an empty queue. */
void  ws_conn_queue_trim(struct ws_conn *c);
void  ws_mark_dirty(struct ws_conn *c);
/* Takes c off the flush list (it is being freed). */
void  ws_unmark_dirty(struct ws_conn *c);
/* Writes every queue (tests, shutdown). */
void  ws_flush_all(struct ws_module *m);
/* Writes queues, oldest first, until budget_ns passed; 1 when some are left. */
int   ws_flush_some(struct ws_module *m, uint64_t budget_ns);
int   ws_fanout_start(struct ws_module *m);
void  ws_fanout_stop(struct ws_module *m);
void  ws_fanout_free(struct ws_module *m);

/* conn_wslay.c: the connection's wslay context, borrowed from the pool when bytes
 * arrive (0 or -ENOMEM), lent back when between frames, freed mid-frame. */
int   ws_wslay_acquire(struct ws_conn *c);
void  ws_wslay_release(struct ws_conn *c);
void  ws_wslay_drop(struct ws_conn *c);

/* conn.c */
int   ws_conn_new(struct ws_module *m, uv_tcp_t *tcp, const struct http_user *u,
                  struct ws_conn **out);
/* Feeds received bytes through wslay (also the bytes left over from the upgrade). */
void  ws_conn_feed(struct ws_conn *c, const uint8_t *data, size_t len);
int   ws_conn_start_reading(struct ws_conn *c);
/* Begins the close handshake with code (no-op once closing). */
void  ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason);
/* Moves wslay's pending output (pong, close) into the queue. */
void  ws_conn_pump(struct ws_conn *c);
/* The connection stops counting as open (unregistered, presence told); code recorded. */
void  ws_conn_begin_closing(struct ws_conn *c, uint16_t code);
/* Closes the socket now (peer gone, linger over). */
void  ws_conn_destroy(struct ws_conn *c);
/* The write side finished everything queued (fanout.c calls this). */
void  ws_conn_drained(struct ws_conn *c);
/* A bad client frame: error frame, and 1008 after too many. */
void  ws_conn_bad_frame(struct ws_conn *c, const char *code, const char *msg,
                        const char *client_msg_id);
void  ws_count_close(struct ws_module *m, uint16_t code);

/* inbound.c */
/* Around wslay_event_recv in ws_conn_feed. */
void  ws_rx_feed_begin(struct ws_conn *c);
void  ws_rx_feed_end(struct ws_conn *c);
/* A frame begins; -EMSGSIZE when its message would pass max_message_bytes. */
int   ws_rx_frame_start(struct ws_conn *c, int opcode, int fin, uint64_t payload_len);
/* Payload bytes of the frame being received; -ENOMEM. */
int   ws_rx_chunk(struct ws_conn *c, const uint8_t *data, size_t len);
/* The text message just completed, valid until ws_rx_done. */
const char *ws_rx_text(struct ws_conn *c, size_t *len);
void  ws_rx_done(struct ws_conn *c);
/* 1 when c is mid-frame or mid-message with no byte of it for after_ms. */
int   ws_conn_stalled(const struct ws_conn *c, uint64_t now, uint64_t after_ms);

/* control.c */
/* Queues a pong answering a ping with this payload (nothing once closing). */
int   ws_conn_queue_pong(struct ws_conn *c, const uint8_t *payload, size_t len);
/* Queues a close frame with this code and no reason, built by us rather than wslay. */
int   ws_conn_queue_close_frame(struct ws_conn *c, uint16_t code);
/* For wslay's send callback: 1 when these bytes are part of wslay's pong. */
int   ws_conn_drop_wslay_pong(struct ws_conn *c, const uint8_t *data, int flags);

/* frames.c: client frames */
enum ws_frame_type {
    WS_F_UNKNOWN = 0, WS_F_SEND, WS_F_TYPING, WS_F_READ, WS_F_SYNC, WS_F_AUTH, WS_F_PING
};
struct ws_client_frame {
    int type;                        /* enum ws_frame_type */
    int64_t room_id, seq;
    const char *body;                /* borrowed from json */
    const char *client_msg_id;       /* borrowed; NULL when absent */
    const char *access_token;        /* borrowed */
    const cJSON *rooms;              /* sync: the object, borrowed */
    cJSON *json;                     /* owned */
};
/* 0, or -EINVAL with *err a static message; *f->json to free with ws_frame_free. */
int   ws_frame_decode(const char *text, size_t len, struct ws_client_frame *f,
                      const char **err);
void  ws_frame_free(struct ws_client_frame *f);
const char *ws_frame_type_name(int type);
/* server frames: malloc'ed JSON text (free()); NULL on OOM */
char *ws_json_hello(const struct ws_user *u, uint64_t conn_id, int heartbeat_ms,
                    int64_t now, size_t *len);
char *ws_json_error(const char *code, const char *message, const char *client_msg_id,
                    size_t *len);
/* The same with "retry_after_ms" when retry_after_ms > 0. */
char *ws_json_error_retry(const char *code, const char *message, const char *client_msg_id,
                          int64_t retry_after_ms, size_t *len);
/* {"type":<type>[,"client_msg_id":<cmid>],"<key>":<value>} as a text frame: value is
 * JSON text printed once for several frames. */
struct ws_buf *ws_buf_wrap(const char *type, const char *key, const char *value,
                           size_t value_len, const char *client_msg_id);
/* s as a JSON string (NULL as ""), escaped as cJSON escapes it; 0 or negative. */
int   ws_json_put_string(struct strbuf *b, const char *s);
char *ws_json_printf(size_t *len, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* event_frames.c: from the decoded structs of events.h, the text the protocol has */
int   ws_json_put_i64(struct strbuf *b, int64_t v);
/* MSG: {"id","room_id","seq","sender_id","sender","body","client_msg_id","created_at"} */
int   ws_json_put_msg(struct strbuf *b, const struct ev_msg *msg);
/* {"type":"room","event","room":ROOM,"user_id"}, ROOM with "members" when members is
 * not NULL. malloc'ed (free()); NULL on OOM. */
char *ws_json_room_frame(const struct ev_room_changed *ev, const struct ev_user *members,
                         size_t nmembers, size_t *len);
char *ws_json_presence_frame(const struct ev_presence_changed *ev, size_t *len);

/* dispatch.c */
void  ws_dispatch_text(struct ws_conn *c, const char *text, size_t len);

/* events.c */
int   ws_events_subscribe(struct ws_module *m);
/* An in-flight send finished (stored or rejected): drain may proceed. */
void  ws_send_finished(struct ws_module *m, struct ws_conn *c);

/* sync.c */
int   ws_sync_begin(struct ws_conn *c, const cJSON *rooms);
/* A live message for c while a sync runs: held back until the replay is over. When
 * it would take c's backlog past send_queue_bytes, c is closed with 1013 instead.
 * Returns 1 (nothing to queue) either way. */
int   ws_sync_hold(struct ws_conn *c, struct ws_buf *b, int64_t room_id, int64_t seq);
/* The kernel took bytes of c: the replay made progress, and may ask for its next page. */
void  ws_sync_drained(struct ws_conn *c);
/* Heartbeat: closes c with 1013 when its replay waited sync_stall_ms for a client that
 * took nothing. */
void  ws_sync_check_stall(struct ws_conn *c, uint64_t now);
void  ws_sync_free(struct ws_conn *c);

/* heartbeat.c */
int   ws_heartbeat_start(struct ws_module *m);
void  ws_heartbeat_stop(struct ws_module *m);

/* upgrade.c */
void  ws_upgrade_handler(struct http_req *req, void *ctx);
/* base64(SHA-1(key + GUID)) into out (29 bytes at least). 0 or -EINVAL. */
int   ws_accept_key(const char *key, char *out, size_t outlen);

/* websocket_module.c */
int   ws_module_new(struct chatd *app, struct ws_module **out);
void  ws_module_free(struct ws_module *m);
void  ws_drain_check(struct ws_module *m);
void  ws_publish_conn_event(struct ws_module *m, struct ws_conn *c, int connected);
void  ws_conn_freed(struct ws_module *m);

#endif
