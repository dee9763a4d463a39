/* frames.c: the JSON inside the frames. Client frames are decoded into a small struct
 * with every field checked (type, ids, strings), so dispatch.c deals only with valid
 * input; server frames are printed here. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_internal.h"

static const struct { const char *name; int type; } frame_types[] = {
    { "send", WS_F_SEND }, { "typing", WS_F_TYPING }, { "read", WS_F_READ },
    { "sync", WS_F_SYNC }, { "auth", WS_F_AUTH }, { "ping", WS_F_PING },
};

const char *ws_frame_type_name(int type)
{
    for (size_t i = 0; i < sizeof(frame_types) / sizeof(frame_types[0]); i++)
        if (frame_types[i].type == type)
            return frame_types[i].name;
    return "unknown";
}

static int positive_id(const cJSON *obj, const char *key, int64_t *out)
{
    return json_get_i64(obj, key, out) == 0 && *out > 0 ? 0 : -EINVAL;
}

/* "rooms": {"<room id>": <last seq seen>, ...} */
static int check_sync_rooms(const cJSON *rooms, const char **err)
{
    int n = 0;
    const cJSON *it;

    if (!cJSON_IsObject(rooms)) {
        *err = "sync needs \"rooms\": an object of room id to last seq seen";
        return -EINVAL;
    }
    cJSON_ArrayForEach(it, rooms) {
        char *end;
        long long id = strtoll(it->string, &end, 10);
        if (!it->string[0] || *end || id <= 0) {
            *err = "sync rooms: keys must be room ids";
            return -EINVAL;
        }
        /* Range first: converting a double past int64 to an integer is undefined.
         * 2^53, as json_get_i64: past it a double no longer holds every integer. */
        if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0) ||
            it->valuedouble > 9007199254740992.0 ||
            it->valuedouble != (double)(int64_t)it->valuedouble) {
            *err = "sync rooms: values must be sequence numbers (integers >= 0)";
            return -EINVAL;
        }
        if (++n > WS_SYNC_MAX_ROOMS) {
            *err = "sync rooms: too many rooms in one sync";
            return -EINVAL;
        }
    }
    return 0;
}

static int decode_fields(struct ws_client_frame *f, const char **err)
{
    const cJSON *j = f->json;

    switch (f->type) {
    case WS_F_SEND:
        if (positive_id(j, "room_id", &f->room_id) < 0) {
            *err = "send needs \"room_id\"";
            return -EINVAL;
        }
        if (json_get_str(j, "body", &f->body) < 0) {
            *err = "send needs \"body\": a string";
            return -EINVAL;
        }
        return 0;
    case WS_F_TYPING:
        if (positive_id(j, "room_id", &f->room_id) < 0) {
            *err = "typing needs \"room_id\"";
            return -EINVAL;
        }
        return 0;
    case WS_F_READ:
        if (positive_id(j, "room_id", &f->room_id) < 0 ||
            json_get_i64(j, "seq", &f->seq) < 0 || f->seq < 0) {
            *err = "read needs \"room_id\" and \"seq\"";
            return -EINVAL;
        }
        return 0;
    case WS_F_SYNC:
        f->rooms = cJSON_GetObjectItemCaseSensitive(j, "rooms");
        return check_sync_rooms(f->rooms, err);
    case WS_F_AUTH:
        if (json_get_str(j, "access_token", &f->access_token) < 0 || !f->access_token[0]) {
            *err = "auth needs \"access_token\"";
            return -EINVAL;
        }
        return 0;
    case WS_F_PING:
        return 0;
    }
    *err = "unknown frame type";
    return -EINVAL;
}

int ws_frame_decode(const char *text, size_t len, struct ws_client_frame *f,
                    const char **err)
{
    const char *type;
    const cJSON *cmid;

    memset(f, 0, sizeof(*f));
    f->json = json_parse_object(text, len);
    if (!f->json) {
        *err = "a frame must hold one JSON object";
        return -EINVAL;
    }
    cmid = cJSON_GetObjectItemCaseSensitive(f->json, "client_msg_id");
    if (cJSON_IsString(cmid))
        f->client_msg_id = cmid->valuestring;
    else if (cmid && !cJSON_IsNull(cmid)) {
        *err = "\"client_msg_id\" must be a string";
        return -EINVAL;
    }
    if (json_get_str(f->json, "type", &type) < 0) {
        *err = "a frame needs a \"type\" string";
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof(frame_types) / sizeof(frame_types[0]); i++)
        if (strcmp(type, frame_types[i].name) == 0)
            f->type = frame_types[i].type;
    return decode_fields(f, err);
}

void ws_frame_free(struct ws_client_frame *f)
{
    cJSON_Delete(f->json);
    f->json = NULL;
}

/* --- server frames ------------------------------------------------------------------- */

static char *print_and_free(cJSON *o, size_t *len)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;

    cJSON_Delete(o);
    if (s)
        *len = strlen(s);
    return s;
}

char *ws_json_hello(const struct ws_user *u, uint64_t conn_id, int heartbeat_ms,
                    int64_t now, size_t *len)
{
    cJSON *o = cJSON_CreateObject(), *user = cJSON_CreateObject();

    if (!o || !user) {
        cJSON_Delete(o);
        cJSON_Delete(user);
        return NULL;
    }
    cJSON_AddStringToObject(o, "type", "hello");
    cJSON_AddNumberToObject(user, "id", (double)u->id);
    cJSON_AddStringToObject(user, "username", u->name);
    cJSON_AddItemToObject(o, "user", user);
    cJSON_AddNumberToObject(o, "conn_id", (double)conn_id);
    cJSON_AddNumberToObject(o, "heartbeat_ms", heartbeat_ms);
    cJSON_AddNumberToObject(o, "server_time", (double)now);
    return print_and_free(o, len);
}

char *ws_json_error_retry(const char *code, const char *message, const char *client_msg_id,
                          int64_t retry_after_ms, size_t *len)
{
    cJSON *o = cJSON_CreateObject();

    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "type", "error");
    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddStringToObject(o, "message", message ? message : code);
    if (client_msg_id)
        cJSON_AddStringToObject(o, "client_msg_id", client_msg_id);
    if (retry_after_ms > 0)
        cJSON_AddNumberToObject(o, "retry_after_ms", (double)retry_after_ms);
    return print_and_free(o, len);
}

char *ws_json_error(const char *code, const char *message, const char *client_msg_id,
                    size_t *len)
{
    return ws_json_error_retry(code, message, client_msg_id, 0, len);
}

char *ws_json_wrap(const char *type, const char *key, const cJSON *value,
                   const char *client_msg_id, size_t *len)
{
    cJSON *o = cJSON_CreateObject();

    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "type", type);
    if (client_msg_id)
        cJSON_AddStringToObject(o, "client_msg_id", client_msg_id);
    /* A reference: value stays the caller's (the event's payload). */
    cJSON_AddItemReferenceToObject(o, key, (cJSON *)value);
    return print_and_free(o, len);
}

char *ws_json_printf(size_t *len, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return s;
}
