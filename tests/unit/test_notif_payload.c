/* What a push carries and how a webhook is signed: the payload shape, the body cut
 * to 200 characters without splitting one, and the HMAC signature header. */
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "../../src/modules/notification/notification_internal.h"

TEST(notif_utf8_cut_never_splits)
{
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";   /* a é € 😀 z */
    size_t n = strlen(s);
    ASSERT_EQ(notif_utf8_cut(s, n, 0), 0);
    ASSERT_EQ(notif_utf8_cut(s, n, 1), 1);
    ASSERT_EQ(notif_utf8_cut(s, n, 2), 3);
    ASSERT_EQ(notif_utf8_cut(s, n, 3), 6);
    ASSERT_EQ(notif_utf8_cut(s, n, 4), 10);
    ASSERT_EQ(notif_utf8_cut(s, n, 5), 11);
    ASSERT_EQ(notif_utf8_cut(s, n, 200), 11);
    ASSERT_EQ(notif_utf8_cut(s, 9, 200), 6);     /* a truncated emoji is left out */
}

TEST(notif_push_payload_shape_and_cut)
{
    char body[4 * 300 + 1] = "";
    for (int i = 0; i < 300; i++)
        strcat(body, "\xe2\x82\xac");               /* 300 euro signs, 3 bytes each */
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddNumberToObject(msg, "id", 42);
    cJSON_AddNumberToObject(msg, "room_id", 7);
    cJSON_AddNumberToObject(msg, "seq", 3);
    cJSON_AddNumberToObject(msg, "sender_id", 1);
    cJSON_AddStringToObject(msg, "sender", "alice");
    cJSON_AddStringToObject(msg, "body", body);
    cJSON_AddStringToObject(msg, "client_msg_id", "c1");
    char *p = push_payload(msg);
    ASSERT(p);
    cJSON *j = cJSON_Parse(p);
    ASSERT(j);
    ASSERT_STR_EQ(cJSON_GetObjectItem(j, "type")->valuestring, "message");
    ASSERT_EQ(cJSON_GetObjectItem(j, "room_id")->valuedouble, 7);
    cJSON *m = cJSON_GetObjectItem(j, "message");
    ASSERT(m);
    ASSERT_EQ(cJSON_GetObjectItem(m, "id")->valuedouble, 42);
    ASSERT_EQ(cJSON_GetObjectItem(m, "seq")->valuedouble, 3);
    ASSERT_STR_EQ(cJSON_GetObjectItem(m, "sender")->valuestring, "alice");
    ASSERT_EQ(strlen(cJSON_GetObjectItem(m, "body")->valuestring), 600);
    ASSERT(cJSON_GetObjectItem(m, "client_msg_id") == NULL);
    ASSERT_EQ(cJSON_GetArraySize(m), 4);
    ASSERT_EQ(cJSON_GetArraySize(j), 3);
    cJSON_Delete(j);
    free(p);
    cJSON_Delete(msg);
}

TEST(notif_webhook_signature_hmac_sha256)
{
    /* RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?". */
    char sig[80];
    const char *data = "what do ya want for nothing?";
    webhook_signature("Jefe", data, strlen(data), sig);
    ASSERT_STR_EQ(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}
