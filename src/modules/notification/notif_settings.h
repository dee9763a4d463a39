/* notif_settings.h: the chatd.conf keys the notification module reads
 * ([notification]); core fills the struct from notif_settings.c's table. */
#ifndef CHATD_NOTIF_SETTINGS_H
#define CHATD_NOTIF_SETTINGS_H

#include "chatd/config.h"
#include "chatd/settings.h"

struct notif_settings {
    char vapid_subject[256];        /* mailto: or https:// */
    char webhook_url[1024];         /* "": no webhook */
    char webhook_secret[256];
    char ca_file[CFG_PATH_MAX];     /* "": the system's CAs only */
    int  max_attempts;
    int  retry_base_ms;
    int  allow_private_endpoints;   /* yes: push endpoints may be loopback/private */
    int  subscription_max_failures; /* failed attempts in a row: failing */
    int  subscription_failing_ttl;  /* seconds failing, then dropped */
};

extern const struct setting_table notif_settings_table;

/* The values in cfg (NULL: the defaults). To change them (tests), write through
 * config_module_settings(cfg, &notif_settings_table). */
const struct notif_settings *notif_settings(const struct chatd_config *cfg);

#endif
