/* config_tables.h: core's own table of keys (config_keys.c), read by config.c. */
#ifndef CHATD_CORE_CONFIG_TABLES_H
#define CHATD_CORE_CONFIG_TABLES_H

#include "chatd/settings.h"

/* Core's own keys; their struct is struct chatd_config itself. */
extern const struct setting_table config_core_keys;

#endif
