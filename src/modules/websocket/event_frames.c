/* event_frames.c: the server frames made from bus events, printed straight from the
 * decoded structs (events.h) into a buffer. The text is the one the client protocol
 * has always had (docs/protocol.md): keys in the API's order, strings escaped as
 * cJSON escapes them, integers with all their digits. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ws_internal.h"

static int put(struct strbuf *b, const char *s)
{
    return strbuf_append(b, s, strlen(s));
}

int ws_json_put_i64(struct strbuf *b, int64_t v)
{
    char tmp[24], buf[24];
    uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
    size_t k = 0, n = 0;

    do {
        tmp[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[n++] = '-';
    while (k)
        buf[n++] = tmp[--k];
    return strbuf_append(b, buf, n);
}

/* ,"key":<v> */
static int put_i64_field(struct strbuf *b, const char *key, int64_t v)
{
    int rc = strbuf_append(b, ",\"", 2);

    if (rc == 0)
        rc = put(b, key);
    if (rc == 0)
        rc = strbuf_append(b, "\":", 2);
    return rc < 0 ? rc : ws_json_put_i64(b, v);
}

/* ,"key":"<s>" (or null when s is NULL and nullable) */
static int put_str_field(struct strbuf *b, const char *key, const char *s, int nullable)
{
    int rc = strbuf_append(b, ",\"", 2);

    if (rc == 0)
        rc = put(b, key);
    if (rc == 0)
        rc = strbuf_append(b, "\":", 2);
    if (rc < 0)
        return rc;
    return !s && nullable ? strbuf_append(b, "null", 4) : ws_json_put_string(b, s);
}

int ws_json_put_msg(struct strbuf *b, const struct ev_msg *msg)
{
    int rc = strbuf_append(b, "{\"id\":", 6);

    if (rc == 0)
        rc = ws_json_put_i64(b, msg->id);
    if (rc == 0)
        rc = put_i64_field(b, "room_id", msg->room_id);
    if (rc == 0)
        rc = put_i64_field(b, "seq", msg->seq);
    if (rc == 0)
        rc = put_i64_field(b, "sender_id", msg->sender_id);
    if (rc == 0)
        rc = put_str_field(b, "sender", msg->sender, 0);
    if (rc == 0)
        rc = put_str_field(b, "body", msg->body, 0);
    if (rc == 0)
        rc = put_str_field(b, "client_msg_id", msg->client_msg_id, 1);
    if (rc == 0)
        rc = put_i64_field(b, "created_at", msg->created_at);
    return rc < 0 ? rc : strbuf_append(b, "}", 1);
}

static int put_members(struct strbuf *b, const struct ev_user *members, size_t n)
{
    int rc = put(b, ",\"members\":[");

    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = put(b, i ? ",{\"id\":" : "{\"id\":");
        if (rc == 0)
            rc = ws_json_put_i64(b, members[i].id);
        if (rc == 0)
            rc = put_str_field(b, "username", members[i].username, 0);
        if (rc == 0)
            rc = strbuf_append(b, "}", 1);
    }
    return rc < 0 ? rc : strbuf_append(b, "]", 1);
}

static int put_room(struct strbuf *b, const struct ev_room *r, const struct ev_user *members,
                    size_t nmembers)
{
    int rc = put(b, "{\"id\":");

    if (rc == 0)
        rc = ws_json_put_i64(b, r->id);
    if (rc == 0)
        rc = put_str_field(b, "name", r->name, 0);
    if (rc == 0)
        rc = put_str_field(b, "kind", r->kind, 0);
    if (rc == 0)
        rc = put_i64_field(b, "owner_id", r->owner_id);
    if (rc == 0)
        rc = put_i64_field(b, "created_at", r->created_at);
    if (rc == 0)
        rc = put_i64_field(b, "last_seq", r->last_seq);
    if (rc == 0 && members)
        rc = put_members(b, members, nmembers);
    return rc < 0 ? rc : strbuf_append(b, "}", 1);
}

/* The buffer's text handed over as a malloc'ed string, or NULL (and b freed). */
static char *take(struct strbuf *b, int rc, size_t *len)
{
    if (rc < 0 || !b->data) {
        strbuf_free(b);
        return NULL;
    }
    *len = b->len;
    return b->data;
}

char *ws_json_room_frame(const struct ev_room_changed *ev, const struct ev_user *members,
                         size_t nmembers, size_t *len)
{
    struct strbuf b;
    int rc;

    strbuf_init(&b, SIZE_MAX);
    rc = put(&b, "{\"type\":\"room\"");
    if (rc == 0)
        rc = put_str_field(&b, "event", ev->event == EV_ROOM_LEFT ? "left" : "joined", 0);
    if (rc == 0)
        rc = put(&b, ",\"room\":");
    if (rc == 0)
        rc = put_room(&b, ev->room, members, nmembers);
    if (rc == 0)
        rc = put_i64_field(&b, "user_id", ev->user_id);
    if (rc == 0)
        rc = strbuf_append(&b, "}", 1);
    return take(&b, rc, len);
}

char *ws_json_presence_frame(const struct ev_presence_changed *ev, size_t *len)
{
    return ws_json_printf(len, "{\"type\":\"presence\",\"user_id\":%lld,\"status\":\"%s\","
                          "\"last_seen_at\":%lld}", (long long)ev->user_id,
                          ev->status == EV_ONLINE ? "online" : "offline",
                          (long long)ev->last_seen_at);
}
