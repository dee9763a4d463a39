/* What a push carries and how a webhook is signed: the payload shape, the body cut
 * to 200 characters without splitting one, and the HMAC signature header. */
#include <stdlib.h>
#include <string.h>
#include "chatd/event_codec.h"
#include "chatd/events.h"
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
    struct ev_msg msg = { .id = 42, .room_id = 7, .seq = 3, .sender_id = 1,
                          .sender = "alice", .body = body, .client_msg_id = "c1" };
    char *p = push_payload(&msg);
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
}

/* An event as the bus hands it to a dead-letter hook: payload and decoded struct. */
static struct bus_event *typed_event(const struct ev_notification_requested *r)
{
    struct bus_event *ev = bus_event_new_ev(&EV_NOTIFICATION_REQUESTED, r);
    char why[128];
    if (ev && ev_decode(&EV_NOTIFICATION_REQUESTED, ev->payload, &ev->data, why,
                        sizeof(why)) < 0) {
        bus_event_unref(ev);
        return NULL;
    }
    return ev;
}

/* A push's dead letter keeps a reference to the message instead of the message; a
 * webhook's, or one that holds a reference already, is kept as it is (NULL). */
TEST(notif_push_dead_letter_keeps_a_reference)
{
    struct ev_msg msg = { .id = 42, .room_id = 7, .seq = 3, .sender_id = 1,
                          .sender = "alice", .body = "a secret body", .created_at = 5 };
    struct ev_msg_ref ref = { 42, 7, 3 };
    struct ev_notification_requested push = { .channel = EV_CHANNEL_PUSH, .recipient_id = 2,
                                              .subscription_id = 9, .message = &msg };
    struct ev_notification_requested hook = { .channel = EV_CHANNEL_WEBHOOK,
                                              .recipient_id = 2, .message = &msg };
    struct ev_notification_requested again = { .channel = EV_CHANNEL_PUSH, .recipient_id = 2,
                                               .subscription_id = 9, .message_ref = &ref };
    struct bus_event *full = typed_event(&push);
    cJSON *dl = push_dead_letter(full, NULL);
    char *text = dl ? cJSON_PrintUnformatted(dl) : NULL;
    struct ev_notification_requested *back = NULL;
    char why[128];
    ASSERT(text && !strstr(text, "secret"));
    ASSERT_EQ(ev_decode(&EV_NOTIFICATION_REQUESTED, dl, (void **)&back, why, sizeof(why)), 0);
    ASSERT(back->channel == EV_CHANNEL_PUSH && back->recipient_id == 2 &&
           back->subscription_id == 9 && !back->message && back->message_ref);
    ASSERT(back->message_ref->id == 42 && back->message_ref->room_id == 7 &&
           back->message_ref->seq == 3);
    ev_free(back);
    free(text);
    cJSON_Delete(dl);
    bus_event_unref(full);
    full = typed_event(&hook);
    ASSERT(full && push_dead_letter(full, NULL) == NULL);
    bus_event_unref(full);
    full = typed_event(&again);
    ASSERT(full && push_dead_letter(full, NULL) == NULL);
    bus_event_unref(full);
    /* One whose payload did not decode keeps it as it is. */
    full = bus_event_new(TOPIC_NOTIFICATION_REQUESTED, cJSON_Parse("{\"channel\":1}"));
    ASSERT(full && push_dead_letter(full, NULL) == NULL);
    bus_event_unref(full);
}

TEST(notif_webhook_signature_hmac_sha256)
{
    /* RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?". */
    char sig[80];
    const char *data = "what do ya want for nothing?";
    webhook_signature("Jefe", data, strlen(data), sig);
    ASSERT_STR_EQ(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}
