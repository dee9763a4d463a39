/* fuzz_frames.c: the JSON frame decoder, for every client frame type. A frame that
 * decodes must hold what dispatch relies on (ids positive, strings present, sync rooms
 * well formed); every answer built from what the client sent (error frames echo its
 * client_msg_id, a send's ack carries its body and client_msg_id) must print as JSON
 * that parses back to the same values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/modules/websocket/ws_internal.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

/* An answer printed by the server must parse back, with the same client_msg_id. */
static void check_answer(char *json, size_t len, const char *client_msg_id)
{
    cJSON *o;
    const cJSON *cmid;

    CHECK(json && strlen(json) == len);
    o = cJSON_ParseWithLength(json, len);
    CHECK(cJSON_IsObject(o));
    cmid = cJSON_GetObjectItemCaseSensitive(o, "client_msg_id");
    if (client_msg_id)
        CHECK(cJSON_IsString(cmid) && strcmp(cmid->valuestring, client_msg_id) == 0);
    else
        CHECK(cmid == NULL);
    cJSON_Delete(o);
    free(json);
}

/* The ack of a send: the stored message printed from its struct (as message.stored
 * brings it), wrapped; it parses back with the body and client_msg_id sent. */
static void check_ack(const struct ws_client_frame *f)
{
    struct ev_msg msg = { .id = 1, .room_id = f->room_id, .seq = 1, .sender_id = 1,
                          .created_at = 1, .sender = "fuzz", .body = f->body,
                          .client_msg_id = f->client_msg_id };
    struct strbuf b;
    struct ws_buf *ack;
    cJSON *o;
    const cJSON *body;

    strbuf_init(&b, SIZE_MAX);
    CHECK(ws_json_put_msg(&b, &msg) == 0);
    ack = ws_buf_wrap("ack", "message", b.data, b.len, f->client_msg_id);
    CHECK(ack);
    strbuf_free(&b);
    /* The frame's header is 2, 4 or 10 bytes: the payload is what follows it. */
    size_t hlen = ack->data[1] == 126 ? 4 : ack->data[1] == 127 ? 10 : 2;
    char *json = malloc(ack->len - hlen + 1);
    CHECK(json);
    memcpy(json, ack->data + hlen, ack->len - hlen);
    json[ack->len - hlen] = '\0';
    o = cJSON_Parse(json);
    body = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "message"),
                                            "body");
    CHECK(cJSON_IsString(body) && strcmp(body->valuestring, f->body) == 0);
    cJSON_Delete(o);
    check_answer(json, ack->len - hlen, f->client_msg_id);
    ws_buf_unref(ack);
}

static void check_valid(const struct ws_client_frame *f)
{
    const cJSON *it;

    switch (f->type) {
    case WS_F_SEND:
        CHECK(f->room_id > 0 && f->body);
        break;
    case WS_F_TYPING:
        CHECK(f->room_id > 0);
        break;
    case WS_F_READ:
        CHECK(f->room_id > 0 && f->seq >= 0);
        break;
    case WS_F_SYNC: {
        int n = 0;
        CHECK(cJSON_IsObject(f->rooms));
        cJSON_ArrayForEach(it, f->rooms) {
            CHECK(it->string && strtoll(it->string, NULL, 10) > 0);
            CHECK(cJSON_IsNumber(it) && it->valuedouble >= 0);
            n++;
        }
        CHECK(n <= WS_SYNC_MAX_ROOMS);
        break;
    }
    case WS_F_AUTH:
        CHECK(f->access_token && f->access_token[0]);
        break;
    case WS_F_PING:
        break;
    default:
        abort();                     /* an unknown type must not decode */
    }
    CHECK(strcmp(ws_frame_type_name(f->type), "unknown") != 0);
    if (f->type == WS_F_SEND)
        check_ack(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ws_client_frame f;
    const char *err = NULL;
    size_t len = 0;
    char *json;

    if (ws_frame_decode((const char *)data, size, &f, &err) < 0) {
        CHECK(err && err[0]);
        /* len is set by the call making json: read after it, not as an argument beside it
         * (the order arguments are evaluated in is the compiler's). */
        json = ws_json_error("invalid_argument", err, f.client_msg_id, &len);
        check_answer(json, len, f.client_msg_id);
        json = ws_json_error_retry("rate_limited", err, f.client_msg_id, 250, &len);
        check_answer(json, len, f.client_msg_id);
    } else {
        check_valid(&f);
    }
    ws_frame_free(&f);
    return 0;
}
