/* frames.c: the JSON inside the frames. Client frames are decoded into a small struct
 * with every field checked (type, ids, strings), so dispatch.c deals only with valid
 * input; server frames are printed here. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/text.h"
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

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A room named twice ("3" and "3", or "1" and "01") would be replayed twice. */
static int has_repeat(int64_t *ids, int n)
{
    qsort(ids, (size_t)n, sizeof(*ids), cmp_i64);
    for (int i = 1; i < n; i++)
        if (ids[i] == ids[i - 1])
            return 1;
    return 0;
}

/* "rooms": {"<room id>": <last seq seen>, ...} */
static int check_sync_rooms(const cJSON *rooms, const char **err)
{
    int64_t ids[WS_SYNC_MAX_ROOMS];
    int n = 0;
    const cJSON *it;

    if (!cJSON_IsObject(rooms)) {
        *err = "sync needs \"rooms\": an object of room id to last seq seen";
        return -EINVAL;
    }
    cJSON_ArrayForEach(it, rooms) {
        int64_t id;
        if (decimal_parse(it->string, strlen(it->string), &id) < 0 || id <= 0) {
            *err = "sync rooms: keys must be room ids (decimals without sign or leading zero)";
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
        if (n == WS_SYNC_MAX_ROOMS) {
            *err = "sync rooms: too many rooms in one sync";
            return -EINVAL;
        }
        ids[n++] = id;
    }
    if (has_repeat(ids, n)) {
        *err = "sync rooms: a room named twice";
        return -EINVAL;
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

/* --- printing without cJSON_Print ----------------------------------------------------
 * cJSON_PrintUnformatted prints every number with sprintf and reads it back with
 * sscanf, and grows its buffer by realloc then copies it once more: in the profile of a
 * durable load, printing acks took more of the loop than anything else. The frames of
 * bus events are printed straight into a buffer that is reused instead (event_frames.c),
 * strings escaped here as cJSON escapes them. */

static int put(struct strbuf *b, const char *s, size_t n)
{
    return strbuf_append(b, s, n);
}

int ws_json_put_string(struct strbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s ? s : ""), *run = p;
    int rc = put(b, "\"", 1);

    for (; rc == 0 && *p; p++) {
        char esc[6] = { '\\', 0, '0', '0', 0, 0 };
        size_t n = 2;
        if (*p >= 0x20 && *p != '"' && *p != '\\')
            continue;
        switch (*p) {
        case '"':  esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            n = 6;
        }
        rc = put(b, (const char *)run, (size_t)(p - run));
        if (rc == 0)
            rc = put(b, esc, n);
        run = p + 1;
    }
    if (rc == 0)
        rc = put(b, (const char *)run, (size_t)(p - run));
    return rc < 0 ? rc : put(b, "\"", 1);
}

/* {"type":<type>[,"client_msg_id":<cmid>],"<key>": into b. */
static int put_wrap_head(struct strbuf *b, const char *type, const char *key,
                         const char *client_msg_id)
{
    int rc = put(b, "{\"type\":", 8);

    if (rc == 0)
        rc = ws_json_put_string(b, type);
    if (rc == 0 && client_msg_id) {
        rc = put(b, ",\"client_msg_id\":", 17);
        if (rc == 0)
            rc = ws_json_put_string(b, client_msg_id);
    }
    if (rc == 0)
        rc = put(b, ",", 1);
    if (rc == 0)
        rc = ws_json_put_string(b, key);
    return rc < 0 ? rc : put(b, ":", 1);
}

struct ws_buf *ws_buf_wrap(const char *type, const char *key, const char *value,
                           size_t value_len, const char *client_msg_id)
{
    struct strbuf head;
    struct ws_buf *b = NULL;
    uint8_t *p;

    strbuf_init(&head, SIZE_MAX);
    if (put_wrap_head(&head, type, key, client_msg_id) == 0 &&
        (b = ws_buf_new(head.len + value_len + 1, WS_OP_TEXT, &p))) {
        memcpy(p, head.data, head.len);
        memcpy(p + head.len, value, value_len);
        p[head.len + value_len] = '}';
    }
    strbuf_free(&head);
    return b;
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
