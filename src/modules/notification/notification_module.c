/* The notification module (not built yet: this descriptor only registers it). */
#include <stdlib.h>
#include "chatd/module.h"

static int  notification_init(struct chatd *app, void **state) { (void)app; *state = NULL; return 0; }
static int  notification_start(void *state) { (void)state; return 0; }
static void notification_drain(void *state, void (*done)(void *)) { done(state); }
static void notification_destroy(void *state) { (void)state; }

const struct chatd_module notification_module = {
    .name = "notification", .init = notification_init, .start = notification_start,
    .drain = notification_drain, .destroy = notification_destroy,
};
