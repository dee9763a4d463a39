/* The fan-out of message.stored into notification.requested, on a real bus and
 * database: who is notified (not the sender, not the online), through which channel,
 * with which subscription; duplicates notify nobody; a user found without
 * subscriptions leaves the set of subscribers. */
#include <stdlib.h>
#include <string.h>
#include "bus_fixture.h"
#include "chatd/events.h"
#include "test.h"
#include "../../src/modules/notification/notification_internal.h"

struct seen {
    int n;
    char lines[64][96];              /* "push 2 sub 1" / "webhook 4" */
};

static int collect(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct seen *s = ctx;
    const char *channel = "?";
    int64_t recipient = 0, sub = 0, msg = 0;
    (void)d;
    json_get_str(ev->payload, "channel", &channel);
    json_get_i64(ev->payload, "recipient_id", &recipient);
    json_get_i64(ev->payload, "subscription_id", &sub);
    json_get_i64(cJSON_GetObjectItem(ev->payload, "message"), "id", &msg);
    if (s->n < 64)
        snprintf(s->lines[s->n++], sizeof(s->lines[0]), "%s %lld sub %lld msg %lld", channel,
                 (long long)recipient, (long long)sub, (long long)msg);
    return 0;
}

static int has(const struct seen *s, const char *line)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->lines[i], line) == 0)
            return 1;
    return 0;
}

static void publish(struct fx *f, const char *topic, const char *json)
{
    bus_publish(f->app.bus, bus_event_new(topic, cJSON_Parse(json)));
}

static void stored(struct fx *f, int id, const char *extra)
{
    char json[256];
    snprintf(json, sizeof(json), "{\"message\":{\"id\":%d,\"room_id\":1,\"seq\":%d,"
             "\"sender_id\":1,\"sender\":\"alice\",\"body\":\"hi\"},"
             "\"member_ids\":[1,2,3,4,5]%s}", id, id, extra);
    publish(f, TOPIC_MESSAGE_STORED, json);
}

static void sql(const char *path, const char *q)
{
    sqlite3 *c = NULL;
    sqlite3_open(path, &c);
    sqlite3_busy_timeout(c, 2000);
    sqlite3_exec(c, q, NULL, NULL, NULL);
    sqlite3_close(c);
}

TEST(notif_fanout_recipients_and_channels)
{
    struct fx f;
    struct notif n;
    struct seen s = {0};
    struct bus_sub_opts opts = { .consumer = "test.collect" };
    struct bus_sub_opts fan = { .consumer = "notification.fanout", .max_attempts = 3,
                                .retry_base_ms = 10 };
    ASSERT_EQ(fx_init(&f), 0);
    struct notif_settings *ns = config_module_settings(&f.cfg, &notif_settings_table);
    snprintf(ns->webhook_url, sizeof(ns->webhook_url), "https://hooks.example.net/chat");
    ASSERT_EQ(fx_start(&f, 1), 0);
    memset(&n, 0, sizeof(n));
    n.app = &f.app;
    ASSERT_EQ(idset_init(&n.online, 16, 1024), 0);
    ASSERT_EQ(idset_init(&n.subscribers, 16, 1024), 0);
    ASSERT_EQ(subs_store_open(&n), 0);
    sql(f.db_path, "INSERT INTO push_subscriptions"
        "(id, user_id, endpoint, p256dh, auth, created_at) VALUES"
        "(1, 2, 'https://p.example/2', x'04', x'00', 1),"
        "(2, 3, 'https://p.example/3', x'04', x'00', 1),"
        "(3, 2, 'https://p.example/2b', x'04', x'00', 1)");
    idset_put(&n.subscribers, 2, 0);
    idset_put(&n.subscribers, 3, 0);
    idset_put(&n.subscribers, 5, 0);  /* thinks it has one: the lookup corrects that */
    ASSERT_EQ(bus_subscribe(f.app.bus, TOPIC_PRESENCE_CHANGED, &opts, notif_on_presence, &n), 0);
    ASSERT_EQ(bus_subscribe(f.app.bus, TOPIC_MESSAGE_STORED, &fan, notif_on_message_stored, &n), 0);
    ASSERT_EQ(bus_subscribe(f.app.bus, TOPIC_NOTIFICATION_REQUESTED, &opts, collect, &s), 0);

    publish(&f, TOPIC_PRESENCE_CHANGED, "{\"user_id\":3,\"status\":\"online\"}");
    stored(&f, 10, "");
    ASSERT(FX_RUN_UNTIL(&f, s.n >= 5, 5000));
    FX_RUN_UNTIL(&f, 0, 50);          /* anything extra would show up now */
    ASSERT_EQ(s.n, 5);
    ASSERT(has(&s, "push 2 sub 1 msg 10"));
    ASSERT(has(&s, "push 2 sub 3 msg 10"));
    ASSERT(has(&s, "webhook 2 sub 0 msg 10"));
    ASSERT(has(&s, "webhook 4 sub 0 msg 10"));
    ASSERT(has(&s, "webhook 5 sub 0 msg 10"));
    ASSERT(idset_get(&n.subscribers, 2, NULL));
    ASSERT(!idset_get(&n.subscribers, 5, NULL));

    s.n = 0;                          /* a repeat of a client_msg_id notifies nobody */
    stored(&f, 10, ",\"duplicate\":true");
    FX_RUN_UNTIL(&f, 0, 50);
    ASSERT_EQ(s.n, 0);

    publish(&f, TOPIC_PRESENCE_CHANGED, "{\"user_id\":3,\"status\":\"offline\"}");
    publish(&f, TOPIC_PRESENCE_CHANGED, "{\"user_id\":2,\"status\":\"online\"}");
    stored(&f, 11, "");
    ASSERT(FX_RUN_UNTIL(&f, s.n >= 4, 5000));
    FX_RUN_UNTIL(&f, 0, 50);
    ASSERT_EQ(s.n, 4);
    ASSERT(has(&s, "push 3 sub 2 msg 11"));
    ASSERT(has(&s, "webhook 3 sub 0 msg 11"));
    ASSERT(has(&s, "webhook 4 sub 0 msg 11"));
    ASSERT(has(&s, "webhook 5 sub 0 msg 11"));
    ASSERT_EQ(n.lookups, 0);

    fx_stop(&f);
    idset_free(&n.online);
    idset_free(&n.subscribers);
}
