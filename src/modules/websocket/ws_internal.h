/* ws_internal.h: the websocket module's private structures. The socket, wslay, the
 * frame queue and the writev path are core's (include/chatd/ws_transport.h): the module
 * keeps the chat protocol. Layers, one file each, each calling only those below it:
 *   frames.c        JSON frames: client frame decoding, server frame encoding
 *   event_frames.c  server frames printed from bus events' structs (MSG, room, presence)
 *   registry.c      user id -> connections, connection id -> connection
 *   send.c          what a connection may queue (send_queue_bytes; typing dropped past
 *                   half of it), "encode a frame and send it", the stream's ops
 *   sync.c          sync: the request to the message module and the paced replay
 *   heartbeat.c     one tick timer: pings, silent connections, token expiry, stalls,
 *                   close deadlines; the end of a drain
 *   dispatch.c      what each client frame does (send, typing, read, sync, auth, ping)
 *   bus_frames.c    bus events turned into frames and fanned out to their recipients
 *   conn.c          one connection: made, opened, told by its stream, gone
 *   upgrade.c       GET /v1/ws: header checks, Sec-WebSocket-Accept, the hand-over
 *   websocket_module.c  settings, metrics, the transport, start, drain, the descriptor
 *
 * Outbound bytes all go through one queue per connection, in order: data frames are
 * encoded here (server frames are unmasked, so a broadcast frame is built once and
 * shared by reference); control frames are the transport's, in the same queue. */
#ifndef CHATD_WS_INTERNAL_H
#define CHATD_WS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <cjson/cJSON.h>

#include "chatd/chatd.h"
#include "chatd/events.h"
#include "chatd/http.h"
#include "chatd/i64map.h"
#include "chatd/util.h"
#include "chatd/ws_transport.h"

#define WS_SUBPROTOCOL        "chatd.v1"
#define WS_BAD_FRAMES_MAX     10      /* bad frames within WS_BAD_WINDOW_MS: close 1008 */
#define WS_BAD_WINDOW_MS      60000
#define WS_AUTH_GRACE_MS      60000   /* after exp without an "auth" frame: close 4001 */
#define WS_SYNC_TIMEOUT_MS    30000   /* for one page's answer */
#define WS_SYNC_MAX_ROOMS     1000
#define WS_SYNC_LIMIT         500     /* messages of one room in one sync */
#define WS_SYNC_PAGE          64      /* messages in one page of the replay */
#define WS_SYNC_PAGE_ROOMS    64      /* rooms named in one page request */
#define WS_DRAIN_WAIT_MS      10000   /* waiting for acks of in-flight sends */
#define WS_RATELIMIT_ADDRS    4096
/* What a loop turn may spend on the heartbeat's visit of every connection (a
 * cache miss each; the transport slices its flush the same way). */
#define WS_SWEEP_SLICE_NS     (500 * 1000)
#define WS_JSON_SCRATCH_KEEP  (256 * 1024)   /* past this the print buffer is freed */

/* Close codes of our own (4000-4999 are the application's). */
#define WS_CLOSE_TOKEN_EXPIRED  4001
#define WS_CLOSE_HEARTBEAT      4000
#define WS_CLOSE_STALLED        4002   /* a frame or message left incomplete */

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

/* In the memory of its stream (one block per connection): freed with it. */
struct ws_conn {
    struct ws_module *m;             /* NULL: never set up (ws_conn_init failed) */
    struct ws_stream *stream;        /* the transport's, until it is gone */
    uint64_t id;
    struct ws_user *user;            /* registry's; NULL once unregistered */
    int64_t  user_id;
    int64_t  token_exp;              /* seconds since the epoch */
    struct ws_conn *user_next, *user_prev;   /* ws_user.conns; prev so that leaving is O(1) */
    struct ws_conn *prev, *next;     /* module's list of every connection */
    struct ws_sync *sync;            /* owned; NULL when no sync runs */
    struct keycount_ent *addr;       /* its count in m->conns_by_addr, while open */
    uint64_t bad_window_start;
    uint8_t  bad_count;              /* in the window: at WS_BAD_FRAMES_MAX it closes */
    uint8_t  open;                   /* opened, and its stream not closing yet */
    uint16_t close_code;             /* what its stream sent or recorded */
    uint32_t pending_sends;          /* send frames not yet acked or refused */
};

/* Metrics pointers (counters from metrics_counter). */
struct ws_metrics {
    uint64_t *frames_in, *frames_out, *deliveries, *upgrades, *rejected_upgrades;
    uint64_t *closes[16];            /* by the code's slot in ws_count_close */
};

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
    /* the transport: core's (ws_stream_socket_ops), or a test's */
    const struct ws_stream_ops *ops;
    void    *tx;                     /* owned: ops->tx_free */
    /* registry */
    /* Both maps hold at most one entry per open connection, and the HTTP layer holds
     * at most max_connections sockets: they need no bound of their own. */
    struct i64map users;             /* user id -> struct ws_user (owned) */
    struct i64map conns_by_id;       /* conn id -> struct ws_conn */
    struct ws_conn *all;             /* every connection not yet freed */
    int      nconns;                 /* open (registered) connections */
    int      nalive;                 /* not yet freed */
    uint64_t next_conn_id;
    struct strbuf json;              /* scratch: a message printed once for its frames */
    /* heartbeat.c */
    uv_timer_t tick;
    int      tick_started;
    uint64_t next_ping_ms;
    struct ws_conn *sweep_next;      /* the pass's cursor; NULL: no pass under way */
    int      sweep_ping;             /* this pass queues a ping to each open connection */
    /* drain */
    int      draining;
    int      drain_closing;          /* 1001 sent to everyone */
    uint64_t drain_deadline;
    uint64_t pending_sends;          /* all connections', closed ones included */
    void   (*drain_done)(void *state);
    struct ws_metrics metrics;
};

/* registry.c */
/* Adds c to its user's list (creating the user); 0, -EINVAL (no user or connection
 * id) or -ENOMEM. */
int   ws_registry_add(struct ws_module *m, struct ws_conn *c, const char *username);
void  ws_registry_remove(struct ws_module *m, struct ws_conn *c);
struct ws_user *ws_registry_user(struct ws_module *m, int64_t user_id);
struct ws_conn *ws_registry_conn(struct ws_module *m, uint64_t conn_id);

/* send.c */
enum ws_prio { WS_PRIO_NORMAL = 0, WS_PRIO_TYPING, WS_PRIO_CONTROL };
/* Queues a reference to b on c. Past send_queue_bytes (of backlog) the connection is
 * closed with 1013 (returns -ENOBUFS); typing frames are dropped past half of it
 * (-EAGAIN). Control frames are never refused while the stream is alive. */
int   ws_conn_queue(struct ws_conn *c, struct ws_buf *b, int prio);
/* Encodes json (len bytes) as a text frame and queues it. */
int   ws_conn_send_json(struct ws_conn *c, const char *json, size_t len);
/* The same for malloc'ed json, freed here; NULL (out of memory) sends nothing. len is
 * read through a pointer: the call that makes json sets it, and the order in which
 * arguments are evaluated is not defined. */
int   ws_conn_send_frame(struct ws_conn *c, char *json, const size_t *len);
/* Begins the close handshake with code (nothing once closing). */
void  ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason);
/* Bytes queued for c that the kernel has not taken yet. */
size_t ws_conn_unsent(const struct ws_conn *c);
/* Bytes of c the kernel has taken so far: grows whenever the client reads, whatever
 * is queued meanwhile. */
uint64_t ws_conn_taken(const struct ws_conn *c);
/* What c holds for its client, counted against send_queue_bytes: the unsent bytes and
 * the live messages a running sync holds back. */
size_t ws_conn_backlog(const struct ws_conn *c);
/* Writes every queue now (the drain, tests). */
void  ws_flush_all(struct ws_module *m);

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
/* Drain: once every send was answered (or WS_DRAIN_WAIT_MS passed) 1001 goes to every
 * connection; done() runs when the last is gone. Called whenever that may change. */
void  ws_drain_check(struct ws_module *m);

/* dispatch.c */
void  ws_dispatch_text(struct ws_conn *c, const char *text, size_t len);

/* bus_frames.c */
int   ws_bus_frames_subscribe(struct ws_module *m);
/* An in-flight send finished (stored or rejected): drain may proceed. */
void  ws_send_finished(struct ws_module *m, struct ws_conn *c);

/* conn.c */
/* What a stream tells its connection (the owner is the struct ws_conn). */
extern const struct ws_stream_events ws_conn_events;
/* A connection of user u in the memory its stream s holds for it (zeroed), counted in
 * the registry; 0 or -ENOMEM. */
int   ws_conn_init(struct ws_module *m, struct ws_conn *c, struct ws_stream *s,
                   const struct http_user *u);
/* c's stream is made and c set up: hello, ws.connected, and reading starts. */
void  ws_conn_open(struct ws_conn *c);
/* A connection left at shutdown (a drain cut short): forgotten, its stream released. */
void  ws_conn_release(struct ws_conn *c);
void  ws_count_close(struct ws_module *m, uint16_t code);

/* upgrade.c */
void  ws_upgrade_handler(struct http_req *req, void *ctx);
/* base64(SHA-1(key + GUID)) into out (29 bytes at least). 0 or -EINVAL. */
int   ws_accept_key(const char *key, char *out, size_t outlen);

/* websocket_module.c */
int   ws_module_new(struct chatd *app, struct ws_module **out);
/* Puts another transport in the place of the module's (tests): the old one is freed. */
void  ws_module_use_transport(struct ws_module *m, const struct ws_stream_ops *ops, void *tx);
void  ws_module_free(struct ws_module *m);

#endif
