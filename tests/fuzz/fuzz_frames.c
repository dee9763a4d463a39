/* fuzz_frames.c: the JSON frame decoder, for every client frame type. A frame that
 * decodes must hold what dispatch relies on (ids positive, strings present, sync rooms
 * well formed); every answer built from what the client sent (error frames echo its
 * client_msg_id, acks wrap its values) must print as JSON that parses back to the same
 * values. */
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

static void check_valid(const struct ws_client_frame *f)
{
    const cJSON *it;
    size_t len;

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
    /* An ack wraps the client's own frame (as the message module's answers do). */
    check_answer(ws_json_wrap("ack", "frame", f->json, f->client_msg_id, &len), len,
                 f->client_msg_id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ws_client_frame f;
    const char *err = NULL;
    size_t len;

    if (ws_frame_decode((const char *)data, size, &f, &err) < 0) {
        CHECK(err && err[0]);
        check_answer(ws_json_error("invalid_argument", err, f.client_msg_id, &len), len,
                     f.client_msg_id);
        check_answer(ws_json_error_retry("rate_limited", err, f.client_msg_id, 250, &len),
                     len, f.client_msg_id);
    } else {
        check_valid(&f);
    }
    ws_frame_free(&f);
    return 0;
}
