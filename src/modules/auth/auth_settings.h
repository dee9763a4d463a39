/* auth_settings.h: the chatd.conf keys the auth module reads ([auth], and its two
 * [limits]); core fills the struct from auth_settings.c's table. [auth] issuer is
 * core's (its token gateway checks it): app->cfg->auth.issuer. */
#ifndef CHATD_AUTH_SETTINGS_H
#define CHATD_AUTH_SETTINGS_H

#include "chatd/config.h"
#include "chatd/settings.h"

struct auth_settings {
    int  access_ttl;                /* seconds */
    int  refresh_ttl;               /* seconds */
    int  registration_open;         /* registration = open (1) | closed (0) */
    int  password_cost;             /* scrypt log2(N) */
    char key_file[CFG_PATH_MAX];    /* "": <data_dir>/jwt.pem */
    int  registrations_per_min;     /* [limits], per client address */
    int  login_failures_per_min;    /* [limits] */
};

extern const struct setting_table auth_settings_table;

/* The values in cfg (NULL: the defaults). To change them (tests), write through
 * config_module_settings(cfg, &auth_settings_table). */
const struct auth_settings *auth_settings(const struct chatd_config *cfg);

#endif
