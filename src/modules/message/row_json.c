/* row_json.c: the JSON of the store's rows (message_store.h), as the API shows them:
 * a message, a room, a room's members. */
#include <stdint.h>
#include <cjson/cJSON.h>
#include "message_internal.h"

/* Keys are literals, added without a copy (CS): every stored message builds one of
 * these on the writer, and every copied key is a malloc and a free. */
static void add_num(cJSON *o, const char *key, int64_t v)
{
    cJSON_AddItemToObjectCS(o, key, cJSON_CreateNumber((double)v));
}

cJSON *msg_row_json(const struct msg_row *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    add_num(o, "id", m->id);
    add_num(o, "room_id", m->room_id);
    add_num(o, "seq", m->seq);
    add_num(o, "sender_id", m->sender_id);
    cJSON_AddItemToObjectCS(o, "sender", cJSON_CreateString(m->sender ? m->sender : ""));
    cJSON_AddItemToObjectCS(o, "body", cJSON_CreateString(m->body ? m->body : ""));
    cJSON_AddItemToObjectCS(o, "client_msg_id", m->client_msg_id
                                                ? cJSON_CreateString(m->client_msg_id)
                                                : cJSON_CreateNull());
    add_num(o, "created_at", m->created_at);
    return o;
}

cJSON *room_row_json(const struct room_row *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "id", (double)r->id);
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "kind", r->kind);
    cJSON_AddNumberToObject(o, "owner_id", (double)r->owner_id);
    cJSON_AddNumberToObject(o, "created_at", (double)r->created_at);
    cJSON_AddNumberToObject(o, "last_seq", (double)r->last_seq);
    return o;
}

cJSON *members_json(const struct member_ref *m, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)m[i].id);
        cJSON_AddStringToObject(o, "username", m[i].username);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}
