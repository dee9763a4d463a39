/* The one table that lists the modules, in start order. Drain and destroy run in
 * reverse. main.c reaches modules only through this table. */
#include "chatd/module.h"

extern const struct chatd_module auth_module;
extern const struct chatd_module message_module;
extern const struct chatd_module websocket_module;
extern const struct chatd_module presence_module;
extern const struct chatd_module notification_module;

const struct chatd_module *const chatd_modules[] = {
    &auth_module,
    &message_module,
    &websocket_module,
    &presence_module,
    &notification_module,
};

const size_t chatd_module_count = sizeof(chatd_modules) / sizeof(chatd_modules[0]);
