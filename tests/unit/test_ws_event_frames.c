/* The frames printed from the bus's structs (event_frames.c) are the text cJSON gave
 * when they were made from the payload's JSON: the same keys in the same order, the
 * same escapes, the same digits. The objects below are built as the publishers built
 * their payloads and the handlers copied them into frames. */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "ws_test_util.h"

static cJSON *msg_json(const struct ev_msg *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)m->id);
    cJSON_AddNumberToObject(o, "room_id", (double)m->room_id);
    cJSON_AddNumberToObject(o, "seq", (double)m->seq);
    cJSON_AddNumberToObject(o, "sender_id", (double)m->sender_id);
    cJSON_AddStringToObject(o, "sender", m->sender);
    cJSON_AddStringToObject(o, "body", m->body);
    cJSON_AddItemToObject(o, "client_msg_id", m->client_msg_id
                          ? cJSON_CreateString(m->client_msg_id) : cJSON_CreateNull());
    cJSON_AddNumberToObject(o, "created_at", (double)m->created_at);
    return o;
}

static int same_as_cjson(const struct strbuf *b, cJSON *o)
{
    char *want = cJSON_PrintUnformatted(o);
    int same = want && b->data && strcmp(b->data, want) == 0;

    if (!same)
        fprintf(stderr, "printed %s\ncJSON   %s\n", b->data ? b->data : "(none)",
                want ? want : "(none)");
    free(want);
    cJSON_Delete(o);
    return same;
}

static const char *const strings[] = {
    "", "plain", "h\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", "\"quoted\" \\back\\ /slash/",
    "\n\t\r\b\f \x01\x1f\x7f", "</script>", "a\xe2\x80\xa8" "b",
};

TEST(ws_event_frames_msg_prints_as_cjson_did)
{
    static const int64_t ints[] = { 1, 9, 10, 2147483647, 2147483648LL, 1795737183000LL,
                                    999999999999999LL };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        for (size_t k = 0; k < sizeof(ints) / sizeof(ints[0]); k++) {
            struct ev_msg m = { .id = ints[k], .room_id = ints[(k + 1) % 7],
                                .seq = ints[(k + 2) % 7], .sender_id = ints[(k + 3) % 7],
                                .created_at = ints[(k + 4) % 7], .sender = strings[i],
                                .body = strings[(i + 1) % 7],
                                .client_msg_id = k % 2 ? NULL : strings[(i + 2) % 7] };
            struct strbuf b;
            strbuf_init(&b, SIZE_MAX);
            ASSERT_EQ(ws_json_put_msg(&b, &m), 0);
            ASSERT(same_as_cjson(&b, msg_json(&m)));
            strbuf_free(&b);
        }
    }
}

TEST(ws_event_frames_room_and_presence_print_as_cjson_did)
{
    struct ev_user members[] = { { 1, "alice" }, { 4, "d\"ave" } };
    struct ev_room room = { .id = 3, .owner_id = 1, .created_at = 1795737100000LL,
                            .last_seq = 12, .name = "te\"am \xc3\xa9\n", .kind = "direct" };
    for (int ev = EV_ROOM_JOINED; ev <= EV_ROOM_LEFT; ev++) {
        for (size_t n = 0; n <= 2; n++) {
            struct ev_room_changed rc = { .event = ev, .room = &room, .user_id = 4 };
            cJSON *o = cJSON_CreateObject(), *r = cJSON_CreateObject(), *ms;
            cJSON_AddStringToObject(o, "type", "room");
            cJSON_AddStringToObject(o, "event", ev == EV_ROOM_JOINED ? "joined" : "left");
            cJSON_AddNumberToObject(r, "id", 3);
            cJSON_AddStringToObject(r, "name", room.name);
            cJSON_AddStringToObject(r, "kind", room.kind);
            cJSON_AddNumberToObject(r, "owner_id", 1);
            cJSON_AddNumberToObject(r, "created_at", 1795737100000.0);
            cJSON_AddNumberToObject(r, "last_seq", 12);
            ms = cJSON_AddArrayToObject(r, "members");
            for (size_t i = 0; i < n; i++) {
                cJSON *u = cJSON_CreateObject();
                cJSON_AddNumberToObject(u, "id", (double)members[i].id);
                cJSON_AddStringToObject(u, "username", members[i].username);
                cJSON_AddItemToArray(ms, u);
            }
            cJSON_AddItemToObject(o, "room", r);
            cJSON_AddNumberToObject(o, "user_id", 4);
            struct strbuf b = { 0 };
            size_t len = 0;
            b.data = ws_json_room_frame(&rc, members, n, &len);
            b.len = len;
            ASSERT(b.data && strlen(b.data) == len);
            ASSERT(same_as_cjson(&b, o));
            free(b.data);
        }
    }
    /* Without members (a room.changed that has none): the room without the key. */
    struct ev_room_changed rc = { .event = EV_ROOM_LEFT, .room = &room, .user_id = 4 };
    size_t len = 0;
    char *s = ws_json_room_frame(&rc, NULL, 0, &len);
    ASSERT(s && strstr(s, "members") == NULL && strstr(s, "\"last_seq\":12}") != NULL);
    free(s);

    for (int st = EV_OFFLINE; st <= EV_ONLINE; st++) {
        struct ev_presence_changed p = { .user_id = 2147483648LL, .status = st,
                                         .last_seen_at = 1795737000000LL };
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "presence");
        cJSON_AddNumberToObject(o, "user_id", 2147483648.0);
        cJSON_AddStringToObject(o, "status", st == EV_ONLINE ? "online" : "offline");
        cJSON_AddNumberToObject(o, "last_seen_at", 1795737000000.0);
        struct strbuf b = { 0 };
        b.data = ws_json_presence_frame(&p, &len);
        b.len = len;
        ASSERT(same_as_cjson(&b, o));
        free(b.data);
    }
}
