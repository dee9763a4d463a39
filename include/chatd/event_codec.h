/* event_codec.h: the one encode/decode pair of each topic's payload (events.h).
 *
 * A topic's descriptor (struct ev_type) lists the fields of its struct: name, kind,
 * where the field sits. One table-driven engine turns a struct into its JSON wire
 * form and back, so the wire form and the struct cannot drift apart, and a fuzz
 * target covers every decoder at once.
 *
 * Decoding checks types, not meaning: an integer field holds an integral number (no
 * more than 2^53 in magnitude, what a JSON number carries exactly), a string field a
 * string, an enum one of its names, an EVF_POS field a value > 0; a required field
 * must be there. Unknown fields are ignored (a newer publisher may add some), a "v"
 * newer than the descriptor's version is refused, and a payload without "v" is read
 * as version 1 (dead letters written before versions existed). A decoded struct
 * lives in memory of its own (ev_free) whose strings point into the JSON it came
 * from: it lives no longer than that JSON. */
#ifndef CHATD_EVENT_CODEC_H
#define CHATD_EVENT_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "chatd/events.h"

enum ev_kind {
    EVK_I64,        /* int64_t */
    EVK_BOOL,       /* int, 0 or 1 */
    EVK_STR,        /* const char * */
    EVK_ENUM,       /* int, an index into names[] (its JSON form: the name) */
    EVK_OBJ,        /* a pointer to the struct of `sub` */
    EVK_IDS,        /* struct ev_ids: an array of integers */
    EVK_STRS,       /* const char **, its count a size_t at count_off */
    EVK_OBJS,       /* an array of `sub` structs, its count a size_t at count_off */
};

#define EVF_OPT  1u  /* may be absent: decodes as 0 / NULL; encoding leaves out 0 / NULL */
#define EVF_NULL 2u  /* EVK_STR: NULL travels as JSON null */
#define EVF_POS  4u  /* EVK_I64: must be > 0 */
#define EVF_LAX  8u  /* may be absent when decoding (0 / NULL), always encoded */

struct ev_type;
struct ev_field {
    const char *name;
    uint8_t kind, flags;
    uint16_t off, count_off;
    const struct ev_type *sub;       /* EVK_OBJ, EVK_OBJS */
    const char *const *names;        /* EVK_ENUM, NULL-terminated */
};

struct ev_type {
    const char *topic;               /* NULL for a nested shape (MSG, ROOM, ...) */
    const char *name;                /* for messages: "message.stored", "MSG" */
    int version;
    size_t size;                     /* of the struct */
    const struct ev_field *fields;
    size_t nfields;
    const struct ev_type *reply;     /* a request's answer, or NULL */
};

/* The struct as a JSON object (with "v" at the top level); NULL when a required
 * field is missing (logged by the caller) or memory ran out. */
cJSON *ev_encode(const struct ev_type *t, const void *data);
/* json -> a new struct in *out (free with ev_free). 0, -EPROTO (why says which field
 * and what is wrong, always NUL-terminated) or -ENOMEM. */
int    ev_decode(const struct ev_type *t, const cJSON *json, void **out,
                 char *why, size_t whylen);
void   ev_free(void *data);

/* The descriptor of a topic's payload, or NULL for a topic without one. */
const struct ev_type *ev_type_of_topic(const char *topic);
/* Every topic descriptor, for tests and fuzzing: NULL-terminated. */
extern const struct ev_type *const ev_all_types[];

extern const struct ev_type EV_ORIGIN, EV_MSG, EV_ROOM, EV_USER, EV_JWK, EV_MSG_REF,
    EV_SYNC_ROOM_ASK, EV_SYNC_ROOM_PAGE, EV_ERROR;
extern const struct ev_type EV_MESSAGE_SUBMITTED, EV_MESSAGE_STORED, EV_MESSAGE_REJECTED,
    EV_TYPING_SUBMITTED, EV_ROOM_TYPING, EV_READ_SUBMITTED, EV_ROOM_READ, EV_ROOM_CHANGED,
    EV_MESSAGE_SYNC, EV_MESSAGE_SYNC_REPLY, EV_ROOMS_PEERS, EV_ROOMS_PEERS_REPLY,
    EV_USERS_LOOKUP, EV_USERS_LOOKUP_REPLY, EV_WS_CONNECTED, EV_WS_DISCONNECTED,
    EV_PRESENCE_CHANGED, EV_USER_REGISTERED, EV_AUTH_KEYS, EV_AUTH_USERS,
    EV_NOTIFICATION_REQUESTED, EV_SERVER_DRAINING;

#endif
