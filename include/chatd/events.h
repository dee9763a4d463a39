/* events.h: the bus topics and their payloads: the whole contract between modules.
 *
 * Every topic has a C struct below and a descriptor (event_codec.h: EV_<TOPIC>), the
 * one encode/decode pair of its payload. Publishers fill the struct; handlers get it
 * decoded (ev->data). The JSON form is the wire form, what a broker between processes
 * carries: an object with "v" (the payload's version, 1 for all of these today) and
 * the fields named in each comment; ids are integers; MSG and ROOM are the API shapes
 * (docs/api.md). Strings of a decoded struct point into the event's payload and live
 * as long as the event.
 *
 * "origin" names where an answer goes (struct ev_origin): the node and run of the
 * process that asked, and in it a websocket connection ("conn") or an HTTP request
 * ("http") of the publishing module; consumers copy it into their result untouched. */
#ifndef CHATD_EVENTS_H
#define CHATD_EVENTS_H

#include <stddef.h>
#include <stdint.h>

/* websocket -> message: a "send" frame.
 * {"room_id","sender_id","sender","body","client_msg_id"?,"origin"} */
#define TOPIC_MESSAGE_SUBMITTED   "message.submitted"
/* message -> all, after COMMIT (or a client_msg_id repeat: "duplicate":true):
 * {"message":MSG,"member_ids":[...],"origin"?,"duplicate"} */
#define TOPIC_MESSAGE_STORED      "message.stored"
/* message -> origin: a submitted message that was not stored.
 * {"origin","client_msg_id"?,"room_id","code","message"} code as in api.md errors */
#define TOPIC_MESSAGE_REJECTED    "message.rejected"

/* websocket -> message: {"room_id","user_id","origin"} (typing frame) */
#define TOPIC_TYPING_SUBMITTED    "typing.submitted"
/* message -> websocket: {"room_id","user_id","member_ids"} (members other than user) */
#define TOPIC_ROOM_TYPING         "room.typing"
/* websocket -> message: {"room_id","user_id","seq","origin"} (read frame) */
#define TOPIC_READ_SUBMITTED      "read.submitted"
/* message -> all after the marker moved: {"room_id","user_id","seq","member_ids"} */
#define TOPIC_ROOM_READ           "room.read"
/* message -> all on membership changes: {"event":"joined"|"left","room":ROOM,
 * "user_id","member_ids"} member_ids: who should hear it (members after a join,
 * members before a leave, so the leaver hears it too) */
#define TOPIC_ROOM_CHANGED        "room.changed"

/* Requests (bus_request), answered with bus_reply. */
/* websocket -> message: one page of a sync.
 * {"user_id","rooms":[{"room_id","after","limit"}...],"max_messages","max_bytes"}
 * reply {"rooms":[{"room_id","messages":[MSG...],"truncated","more","next_seq"}...]}:
 * the rooms asked for, in order, until the page is full (max_messages, or the message
 * that reaches max_bytes); per room the messages after `after` in seq order, at most
 * `limit` (1 to 500). truncated: the room has more than `limit`; more: the page ended
 * inside the room (the last entry), ask again from next_seq - 1. A room the user is not
 * a member of answers no messages. "rooms":[] reads nothing: {"rooms":[]} comes once
 * the message.stored events of every write queued before it were published (a round
 * through the writer), so after those of every message an earlier page carried. */
#define TOPIC_MESSAGE_SYNC        "message.sync"
/* presence/notification -> message: {"user_id"} -> {"user_ids":[...]} the users who
 * share at least one room with user_id (user_id itself excluded) */
#define TOPIC_ROOMS_PEERS         "rooms.peers"
/* message -> auth: {"usernames":[...]} -> {"users":[{"id","username"}...]} known ones */
#define TOPIC_USERS_LOOKUP        "users.lookup"

/* websocket -> presence: {"user_id","conn_id","at"} */
#define TOPIC_WS_CONNECTED        "ws.connected"
/* websocket -> presence: {"user_id","conn_id","at","code"} (close code) */
#define TOPIC_WS_DISCONNECTED     "ws.disconnected"
/* presence -> websocket, notification: {"user_id","status":"online"|"offline",
 * "last_seen_at","recipient_ids":[...]} (connected users sharing a room) */
#define TOPIC_PRESENCE_CHANGED    "presence.changed"

/* auth -> all: {"user":{"id","username"}} */
#define TOPIC_USER_REGISTERED     "user.registered"

/* auth -> gateway (core), at start and whenever the keys change: the JWK Set the
 * tokens are checked with, {"keys":[{"kty":"RSA","kid","n","e","alg","use"}...]},
 * public keys only (the same document as GET /.well-known/jwks.json) */
#define TOPIC_AUTH_KEYS           "auth.keys"
/* auth -> gateway (core), at start and whenever it rises: {"max_user_id"} users
 * 1..max_user_id exist; a token for a higher id is refused (unknown_user) */
#define TOPIC_AUTH_USERS          "auth.users"

/* notification internal (retried and dead-lettered by the bus):
 * {"channel":"push"|"webhook","recipient_id","subscription_id"?,"message":MSG}; a
 * push's dead letter carries "message_ref":{"id","room_id","seq"} instead of MSG */
#define TOPIC_NOTIFICATION_REQUESTED "notification.requested"

/* bus -> all when the server begins to drain: {} */
#define TOPIC_SERVER_DRAINING     "server.draining"


/* ---- the payloads ----------------------------------------------------------------- */

/* {"node","run","conn"?,"http"?}: exactly one of conn and http is non-zero. */
struct ev_origin {
    int64_t node;                    /* 0 for the one process of today */
    int64_t run;                     /* the bus's run id (bus_run_id) */
    int64_t conn;                    /* a websocket connection id, or 0 */
    int64_t http;                    /* an HTTP request id, or 0 */
};

/* MSG */
struct ev_msg {
    int64_t id, room_id, seq, sender_id, created_at;
    const char *sender, *body;
    const char *client_msg_id;       /* NULL travels as null */
};

/* ROOM (as room.changed carries it: no members, read_seq or unread) */
struct ev_room {
    int64_t id, owner_id, created_at, last_seq;
    const char *name, *kind;         /* kind "group" | "direct" */
};

struct ev_user {
    int64_t id;
    const char *username;
};

struct ev_ids {
    const int64_t *v;
    size_t n;
};

struct ev_message_submitted {
    int64_t room_id, sender_id;
    const char *sender, *body;
    const char *client_msg_id;       /* optional */
    struct ev_origin *origin;
};

struct ev_message_stored {
    struct ev_msg *message;
    struct ev_ids member_ids;
    struct ev_origin *origin;        /* optional */
    int duplicate;
};

struct ev_message_rejected {
    struct ev_origin *origin;
    const char *client_msg_id;       /* optional */
    int64_t room_id;
    const char *code;                /* an api.md error code: "rate_limited" ... */
    const char *message;
    int64_t retry_after_ms;          /* optional (0): with 429 */
};

struct ev_typing_submitted {
    int64_t room_id, user_id;
    struct ev_origin *origin;
};

struct ev_room_typing {
    int64_t room_id, user_id;
    struct ev_ids member_ids;
};

struct ev_read_submitted {
    int64_t room_id, user_id, seq;
    struct ev_origin *origin;
};

struct ev_room_read {
    int64_t room_id, user_id, seq;
    struct ev_ids member_ids;
};

enum ev_room_change { EV_ROOM_JOINED, EV_ROOM_LEFT };
struct ev_room_changed {
    int event;                       /* enum ev_room_change: "joined" | "left" */
    struct ev_room *room;
    int64_t user_id;
    struct ev_ids member_ids;
};

struct ev_sync_room_ask {
    int64_t room_id, after, limit;
};
struct ev_message_sync {
    int64_t user_id;
    struct ev_sync_room_ask *rooms;
    size_t nrooms;
    int64_t max_messages, max_bytes;
};
struct ev_sync_room_page {
    int64_t room_id;
    struct ev_msg *messages;
    size_t nmessages;
    int truncated, more;
    int64_t next_seq;
};
struct ev_message_sync_reply {
    struct ev_sync_room_page *rooms;
    size_t nrooms;
};

struct ev_rooms_peers {
    int64_t user_id;
};
struct ev_rooms_peers_reply {
    struct ev_ids user_ids;
};

struct ev_users_lookup {
    const char **usernames;
    size_t nusernames;
};
struct ev_users_lookup_reply {
    struct ev_user *users;
    size_t nusers;
};

struct ev_ws_connected {
    int64_t user_id, conn_id, at;
};

struct ev_ws_disconnected {
    int64_t user_id, conn_id, at, code;
};

enum ev_presence_status { EV_OFFLINE, EV_ONLINE };
struct ev_presence_changed {
    int64_t user_id;
    int status;                      /* enum ev_presence_status: "offline" | "online" */
    int64_t last_seen_at;            /* optional (0) */
    struct ev_ids recipient_ids;
};

struct ev_user_registered {
    struct ev_user *user;
};

struct ev_jwk {
    const char *kty, *kid, *n, *e, *alg, *use;
    const char *d;                   /* an RSA private key's exponent: never published;
                                      * decoded so that a set carrying it is refused */
};
struct ev_auth_keys {
    struct ev_jwk *keys;
    size_t nkeys;
};

struct ev_auth_users {
    int64_t max_user_id;
};

/* {"id","room_id","seq"}: what a push's dead letter keeps instead of the message */
struct ev_msg_ref {
    int64_t id, room_id, seq;
};
enum ev_channel { EV_CHANNEL_PUSH, EV_CHANNEL_WEBHOOK };
struct ev_notification_requested {
    int channel;                     /* enum ev_channel: "push" | "webhook" */
    int64_t recipient_id;
    int64_t subscription_id;         /* optional (0) */
    struct ev_msg *message;          /* one of message and message_ref */
    struct ev_msg_ref *message_ref;
};

struct ev_server_draining {
    int unused;                      /* {} */
};

/* The payload of a failed reply (status < 0), when the responder gave one. */
struct ev_error {
    const char *code, *message;
};

#endif
