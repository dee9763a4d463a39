/* message_settings.c: the message module's keys, one row each. */
#include "message_settings.h"

#define M struct msg_settings

static const struct setting rows[] = {
    SETTING_INT_ROW("message", "max_body_bytes", M, max_body_bytes, 1, 1 << 20, "4096",
                    "bytes of a message's text"),
    SETTING_DOUBLE_ROW("limits", "messages_per_s", M, messages_per_s, 0.001, 1e6, "20",
                       "messages per user, HTTP and WebSocket together; then 429"),
    SETTING_INT_ROW("limits", "messages_burst", M, messages_burst, 1, 1000000, "100",
                    "messages a user may send at once before messages_per_s applies"),
};

const struct setting_table msg_settings_table = SETTING_TABLE(rows, struct msg_settings);

const struct msg_settings *msg_settings(const struct chatd_config *cfg)
{
    return config_module_settings(cfg, &msg_settings_table);
}
