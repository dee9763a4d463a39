/* ws_settings.h: the chatd.conf keys the websocket module reads ([websocket], and its
 * [limits]); core fills the struct from ws_settings.c's table. */
#ifndef CHATD_WS_SETTINGS_H
#define CHATD_WS_SETTINGS_H

#include "chatd/config.h"
#include "chatd/settings.h"

struct ws_settings {
    int    max_message_bytes;
    int    heartbeat_ms;
    int    send_queue_bytes;        /* per connection */
    int    sync_stall_ms;
    double typing_per_s;            /* [limits], per user */
    double connects_per_s;          /* [limits], upgrades per client address */
    int    connects_burst;          /* [limits] */
    int    connections_per_user;    /* [limits], open at once */
    int    connections_per_address; /* [limits], open at once */
};

extern const struct setting_table ws_settings_table;

/* The values in cfg (NULL: the defaults). To change them (tests), write through
 * config_module_settings(cfg, &ws_settings_table). */
const struct ws_settings *ws_settings(const struct chatd_config *cfg);

#endif
