/* message_settings.h: the chatd.conf keys the message module reads ([message], and its
 * two [limits]); core fills the struct from message_settings.c's table. */
#ifndef CHATD_MESSAGE_SETTINGS_H
#define CHATD_MESSAGE_SETTINGS_H

#include "chatd/config.h"
#include "chatd/settings.h"

struct msg_settings {
    int    max_body_bytes;          /* [message] */
    double messages_per_s;          /* [limits], per user */
    int    messages_burst;          /* [limits] */
};

extern const struct setting_table msg_settings_table;

/* The values in cfg (NULL: the defaults). To change them (tests), write through
 * config_module_settings(cfg, &msg_settings_table). */
const struct msg_settings *msg_settings(const struct chatd_config *cfg);

#endif
