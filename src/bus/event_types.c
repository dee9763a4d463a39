/* event_types.c: the descriptor of every payload in events.h, field by field, in the
 * order the wire form has always listed them. A field added to a struct goes here
 * too (the round-trip test compares every field of every topic). */
#include <stddef.h>
#include <string.h>
#include "chatd/event_codec.h"

#define FLD(S, m, k, fl)      { #m, k, fl, offsetof(S, m), 0, NULL, NULL }
#define I64(S, m, fl)         FLD(S, m, EVK_I64, fl)
#define BOOL(S, m)            FLD(S, m, EVK_BOOL, 0)
#define STR(S, m, fl)         FLD(S, m, EVK_STR, fl)
#define IDS(S, m)             FLD(S, m, EVK_IDS, 0)
#define OBJ(S, m, T, fl)      { #m, EVK_OBJ, fl, offsetof(S, m), 0, &T, NULL }
#define OBJS(S, m, n, T)      { #m, EVK_OBJS, 0, offsetof(S, m), offsetof(S, n), &T, NULL }
#define STRS(S, m, n)         { #m, EVK_STRS, 0, offsetof(S, m), offsetof(S, n), NULL, NULL }
#define ENUM(S, m, names)     { #m, EVK_ENUM, 0, offsetof(S, m), 0, NULL, names }
#define NFIELDS(a)            (sizeof(a) / sizeof((a)[0]))
#define SHAPE(V, nm, S, F)    const struct ev_type V = { NULL, nm, 1, sizeof(S), F, NFIELDS(F), NULL }
#define TOPIC(V, tp, S, F, R) const struct ev_type V = { tp, tp, 1, sizeof(S), F, NFIELDS(F), R }

/* --- shapes inside payloads ---------------------------------------------------------- */

static const struct ev_field origin_f[] = {
    /* An origin without node and run (a payload of before they existed) decodes as
     * run 0: no process's, so nobody takes it for their own. */
    I64(struct ev_origin, node, EVF_LAX), I64(struct ev_origin, run, EVF_LAX),
    I64(struct ev_origin, conn, EVF_OPT | EVF_POS), I64(struct ev_origin, http, EVF_OPT | EVF_POS),
};
SHAPE(EV_ORIGIN, "origin", struct ev_origin, origin_f);

static const struct ev_field msg_f[] = {
    I64(struct ev_msg, id, EVF_POS), I64(struct ev_msg, room_id, EVF_POS),
    I64(struct ev_msg, seq, EVF_POS), I64(struct ev_msg, sender_id, EVF_POS),
    STR(struct ev_msg, sender, 0), STR(struct ev_msg, body, 0),
    STR(struct ev_msg, client_msg_id, EVF_NULL), I64(struct ev_msg, created_at, EVF_LAX),
};
SHAPE(EV_MSG, "MSG", struct ev_msg, msg_f);

static const struct ev_field room_f[] = {
    I64(struct ev_room, id, EVF_POS), STR(struct ev_room, name, 0), STR(struct ev_room, kind, 0),
    I64(struct ev_room, owner_id, 0), I64(struct ev_room, created_at, 0),
    I64(struct ev_room, last_seq, 0),
};
SHAPE(EV_ROOM, "ROOM", struct ev_room, room_f);

static const struct ev_field user_f[] = {
    I64(struct ev_user, id, EVF_POS), STR(struct ev_user, username, 0),
};
SHAPE(EV_USER, "user", struct ev_user, user_f);

static const struct ev_field jwk_f[] = {
    STR(struct ev_jwk, kty, 0), STR(struct ev_jwk, use, EVF_OPT),
    STR(struct ev_jwk, alg, EVF_OPT), STR(struct ev_jwk, kid, 0),
    STR(struct ev_jwk, n, 0), STR(struct ev_jwk, e, 0), STR(struct ev_jwk, d, EVF_OPT),
};
SHAPE(EV_JWK, "JWK", struct ev_jwk, jwk_f);

static const struct ev_field msg_ref_f[] = {
    I64(struct ev_msg_ref, id, EVF_POS), I64(struct ev_msg_ref, room_id, EVF_POS),
    I64(struct ev_msg_ref, seq, EVF_POS),
};
SHAPE(EV_MSG_REF, "message_ref", struct ev_msg_ref, msg_ref_f);

static const struct ev_field sync_ask_f[] = {
    I64(struct ev_sync_room_ask, room_id, EVF_POS), I64(struct ev_sync_room_ask, after, EVF_LAX),
    I64(struct ev_sync_room_ask, limit, EVF_LAX),
};
SHAPE(EV_SYNC_ROOM_ASK, "sync room", struct ev_sync_room_ask, sync_ask_f);

static const struct ev_field sync_page_f[] = {
    I64(struct ev_sync_room_page, room_id, EVF_POS),
    OBJS(struct ev_sync_room_page, messages, nmessages, EV_MSG),
    BOOL(struct ev_sync_room_page, truncated), BOOL(struct ev_sync_room_page, more),
    I64(struct ev_sync_room_page, next_seq, 0),
};
SHAPE(EV_SYNC_ROOM_PAGE, "sync page", struct ev_sync_room_page, sync_page_f);

static const struct ev_field error_f[] = {
    STR(struct ev_error, code, EVF_OPT), STR(struct ev_error, message, EVF_OPT),
};
SHAPE(EV_ERROR, "error", struct ev_error, error_f);

/* --- topics -------------------------------------------------------------------------- */

static const struct ev_field submitted_f[] = {
    I64(struct ev_message_submitted, room_id, 0),
    I64(struct ev_message_submitted, sender_id, EVF_POS),
    STR(struct ev_message_submitted, sender, 0), STR(struct ev_message_submitted, body, 0),
    STR(struct ev_message_submitted, client_msg_id, EVF_OPT),
    OBJ(struct ev_message_submitted, origin, EV_ORIGIN, 0),
};
TOPIC(EV_MESSAGE_SUBMITTED, TOPIC_MESSAGE_SUBMITTED, struct ev_message_submitted, submitted_f, NULL);

static const struct ev_field stored_f[] = {
    OBJ(struct ev_message_stored, message, EV_MSG, 0), IDS(struct ev_message_stored, member_ids),
    OBJ(struct ev_message_stored, origin, EV_ORIGIN, EVF_OPT),
    FLD(struct ev_message_stored, duplicate, EVK_BOOL, EVF_LAX),
};
TOPIC(EV_MESSAGE_STORED, TOPIC_MESSAGE_STORED, struct ev_message_stored, stored_f, NULL);

static const struct ev_field rejected_f[] = {
    OBJ(struct ev_message_rejected, origin, EV_ORIGIN, 0),
    STR(struct ev_message_rejected, client_msg_id, EVF_OPT),
    I64(struct ev_message_rejected, room_id, 0), STR(struct ev_message_rejected, code, 0),
    STR(struct ev_message_rejected, message, 0),
    I64(struct ev_message_rejected, retry_after_ms, EVF_OPT),
};
TOPIC(EV_MESSAGE_REJECTED, TOPIC_MESSAGE_REJECTED, struct ev_message_rejected, rejected_f, NULL);

static const struct ev_field typing_sub_f[] = {
    I64(struct ev_typing_submitted, room_id, 0), I64(struct ev_typing_submitted, user_id, EVF_POS),
    OBJ(struct ev_typing_submitted, origin, EV_ORIGIN, 0),
};
TOPIC(EV_TYPING_SUBMITTED, TOPIC_TYPING_SUBMITTED, struct ev_typing_submitted, typing_sub_f, NULL);

static const struct ev_field typing_f[] = {
    I64(struct ev_room_typing, room_id, EVF_POS), I64(struct ev_room_typing, user_id, EVF_POS),
    IDS(struct ev_room_typing, member_ids),
};
TOPIC(EV_ROOM_TYPING, TOPIC_ROOM_TYPING, struct ev_room_typing, typing_f, NULL);

static const struct ev_field read_sub_f[] = {
    I64(struct ev_read_submitted, room_id, 0), I64(struct ev_read_submitted, user_id, EVF_POS),
    I64(struct ev_read_submitted, seq, 0), OBJ(struct ev_read_submitted, origin, EV_ORIGIN, 0),
};
TOPIC(EV_READ_SUBMITTED, TOPIC_READ_SUBMITTED, struct ev_read_submitted, read_sub_f, NULL);

static const struct ev_field read_f[] = {
    I64(struct ev_room_read, room_id, EVF_POS), I64(struct ev_room_read, user_id, EVF_POS),
    I64(struct ev_room_read, seq, 0), IDS(struct ev_room_read, member_ids),
};
TOPIC(EV_ROOM_READ, TOPIC_ROOM_READ, struct ev_room_read, read_f, NULL);

static const char *const room_change_names[] = { "joined", "left", NULL };
static const struct ev_field changed_f[] = {
    ENUM(struct ev_room_changed, event, room_change_names),
    OBJ(struct ev_room_changed, room, EV_ROOM, 0), I64(struct ev_room_changed, user_id, EVF_POS),
    IDS(struct ev_room_changed, member_ids),
};
TOPIC(EV_ROOM_CHANGED, TOPIC_ROOM_CHANGED, struct ev_room_changed, changed_f, NULL);

static const struct ev_field sync_reply_f[] = {
    OBJS(struct ev_message_sync_reply, rooms, nrooms, EV_SYNC_ROOM_PAGE),
};
TOPIC(EV_MESSAGE_SYNC_REPLY, TOPIC_MESSAGE_SYNC, struct ev_message_sync_reply, sync_reply_f, NULL);
static const struct ev_field sync_f[] = {
    I64(struct ev_message_sync, user_id, EVF_POS),
    OBJS(struct ev_message_sync, rooms, nrooms, EV_SYNC_ROOM_ASK),
    I64(struct ev_message_sync, max_messages, EVF_OPT),
    I64(struct ev_message_sync, max_bytes, EVF_OPT),
};
TOPIC(EV_MESSAGE_SYNC, TOPIC_MESSAGE_SYNC, struct ev_message_sync, sync_f, &EV_MESSAGE_SYNC_REPLY);

static const struct ev_field peers_reply_f[] = { IDS(struct ev_rooms_peers_reply, user_ids) };
TOPIC(EV_ROOMS_PEERS_REPLY, TOPIC_ROOMS_PEERS, struct ev_rooms_peers_reply, peers_reply_f, NULL);
static const struct ev_field peers_f[] = { I64(struct ev_rooms_peers, user_id, EVF_POS) };
TOPIC(EV_ROOMS_PEERS, TOPIC_ROOMS_PEERS, struct ev_rooms_peers, peers_f, &EV_ROOMS_PEERS_REPLY);

static const struct ev_field lookup_reply_f[] = {
    OBJS(struct ev_users_lookup_reply, users, nusers, EV_USER),
};
TOPIC(EV_USERS_LOOKUP_REPLY, TOPIC_USERS_LOOKUP, struct ev_users_lookup_reply, lookup_reply_f, NULL);
static const struct ev_field lookup_f[] = {
    STRS(struct ev_users_lookup, usernames, nusernames),
};
TOPIC(EV_USERS_LOOKUP, TOPIC_USERS_LOOKUP, struct ev_users_lookup, lookup_f, &EV_USERS_LOOKUP_REPLY);

static const struct ev_field connected_f[] = {
    I64(struct ev_ws_connected, user_id, EVF_POS), I64(struct ev_ws_connected, conn_id, EVF_POS),
    I64(struct ev_ws_connected, at, 0),
};
TOPIC(EV_WS_CONNECTED, TOPIC_WS_CONNECTED, struct ev_ws_connected, connected_f, NULL);

static const struct ev_field disconnected_f[] = {
    I64(struct ev_ws_disconnected, user_id, EVF_POS),
    I64(struct ev_ws_disconnected, conn_id, EVF_POS), I64(struct ev_ws_disconnected, at, 0),
    I64(struct ev_ws_disconnected, code, 0),
};
TOPIC(EV_WS_DISCONNECTED, TOPIC_WS_DISCONNECTED, struct ev_ws_disconnected, disconnected_f, NULL);

static const char *const presence_names[] = { "offline", "online", NULL };
static const struct ev_field presence_f[] = {
    I64(struct ev_presence_changed, user_id, EVF_POS),
    ENUM(struct ev_presence_changed, status, presence_names),
    I64(struct ev_presence_changed, last_seen_at, EVF_LAX),
    FLD(struct ev_presence_changed, recipient_ids, EVK_IDS, EVF_LAX),
};
TOPIC(EV_PRESENCE_CHANGED, TOPIC_PRESENCE_CHANGED, struct ev_presence_changed, presence_f, NULL);

static const struct ev_field registered_f[] = {
    OBJ(struct ev_user_registered, user, EV_USER, 0),
};
TOPIC(EV_USER_REGISTERED, TOPIC_USER_REGISTERED, struct ev_user_registered, registered_f, NULL);

static const struct ev_field keys_f[] = { OBJS(struct ev_auth_keys, keys, nkeys, EV_JWK) };
TOPIC(EV_AUTH_KEYS, TOPIC_AUTH_KEYS, struct ev_auth_keys, keys_f, NULL);

static const struct ev_field users_f[] = { I64(struct ev_auth_users, max_user_id, 0) };
TOPIC(EV_AUTH_USERS, TOPIC_AUTH_USERS, struct ev_auth_users, users_f, NULL);

static const char *const channel_names[] = { "push", "webhook", NULL };
static const struct ev_field requested_f[] = {
    ENUM(struct ev_notification_requested, channel, channel_names),
    I64(struct ev_notification_requested, recipient_id, EVF_POS),
    I64(struct ev_notification_requested, subscription_id, EVF_OPT | EVF_POS),
    OBJ(struct ev_notification_requested, message, EV_MSG, EVF_OPT),
    OBJ(struct ev_notification_requested, message_ref, EV_MSG_REF, EVF_OPT),
};
TOPIC(EV_NOTIFICATION_REQUESTED, TOPIC_NOTIFICATION_REQUESTED,
      struct ev_notification_requested, requested_f, NULL);

const struct ev_type EV_SERVER_DRAINING = {
    TOPIC_SERVER_DRAINING, TOPIC_SERVER_DRAINING, 1, sizeof(struct ev_server_draining),
    NULL, 0, NULL
};

/* Requests come first: a topic's descriptor is the request's, not its reply's. */
const struct ev_type *const ev_all_types[] = {
    &EV_MESSAGE_SUBMITTED, &EV_MESSAGE_STORED, &EV_MESSAGE_REJECTED, &EV_TYPING_SUBMITTED,
    &EV_ROOM_TYPING, &EV_READ_SUBMITTED, &EV_ROOM_READ, &EV_ROOM_CHANGED, &EV_MESSAGE_SYNC,
    &EV_ROOMS_PEERS, &EV_USERS_LOOKUP, &EV_WS_CONNECTED, &EV_WS_DISCONNECTED,
    &EV_PRESENCE_CHANGED, &EV_USER_REGISTERED, &EV_AUTH_KEYS, &EV_AUTH_USERS,
    &EV_NOTIFICATION_REQUESTED, &EV_SERVER_DRAINING,
    &EV_MESSAGE_SYNC_REPLY, &EV_ROOMS_PEERS_REPLY, &EV_USERS_LOOKUP_REPLY, NULL
};

const struct ev_type *ev_type_of_topic(const char *topic)
{
    for (size_t i = 0; ev_all_types[i]; i++)
        if (strcmp(ev_all_types[i]->topic, topic) == 0)
            return ev_all_types[i];
    return NULL;
}
