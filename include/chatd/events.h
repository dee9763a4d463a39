/* events.h: the bus topics and their payloads: the whole contract between modules.
 * Payloads are JSON objects; ids are integers; MSG and ROOM are the API shapes
 * (docs/api.md). "origin" names where an answer goes: {"conn": <ws connection id>}
 * for the websocket module, {"http": <request id>} for an HTTP handler of the
 * publishing module; consumers copy it into their result event untouched. */
#ifndef CHATD_EVENTS_H
#define CHATD_EVENTS_H

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

#endif
