/* ws_settings.c: the websocket module's keys, one row each. */
#include "ws_settings.h"

#define W struct ws_settings

/* Lower bounds are low enough for tests (a 50 ms heartbeat). */
static const struct setting rows[] = {
    SETTING_INT_ROW("websocket", "max_message_bytes", W, max_message_bytes, 64, 16 << 20,
                    "65536", "a message, all its fragments together; more: close 1009"),
    SETTING_INT_ROW("websocket", "heartbeat_ms", W, heartbeat_ms, 10, 3600000, "30000",
                    "ping interval; a connection silent for two is closed"),
    SETTING_INT_ROW("websocket", "send_queue_bytes", W, send_queue_bytes, 1024, 1 << 30,
                    "1048576", "per connection; past it the client is closed with 1013"),
    SETTING_INT_ROW("websocket", "sync_stall_ms", W, sync_stall_ms, 100, 3600000, "30000",
                    "a sync replay the client takes nothing of for this long: 1013"),
    SETTING_DOUBLE_ROW("limits", "typing_per_s", W, typing_per_s, 0.001, 1e6, "2",
                       "typing frames per user; excess ones are dropped silently"),
    SETTING_DOUBLE_ROW("limits", "connects_per_s", W, connects_per_s, 0.001, 1e6, "50",
                       "WebSocket upgrades per client address; then 429"),
    SETTING_INT_ROW("limits", "connects_burst", W, connects_burst, 1, 1000000, "200",
                    "upgrades at once before connects_per_s applies"),
    SETTING_INT_ROW("limits", "connections_per_user", W, connections_per_user, 1, 1000000,
                    "100", "WebSocket connections open at once per user; then 429"),
    SETTING_INT_ROW("limits", "connections_per_address", W, connections_per_address, 1,
                    1000000, "1000", "the same per client address; then 429"),
};

const struct setting_table ws_settings_table = SETTING_TABLE(rows, struct ws_settings);

const struct ws_settings *ws_settings(const struct chatd_config *cfg)
{
    return config_module_settings(cfg, &ws_settings_table);
}
