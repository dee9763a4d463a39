/* The message module (not built yet: this descriptor only registers it). */
#include <stdlib.h>
#include "chatd/module.h"

static int  message_init(struct chatd *app, void **state) { (void)app; *state = NULL; return 0; }
static int  message_start(void *state) { (void)state; return 0; }
static void message_drain(void *state, void (*done)(void *)) { done(state); }
static void message_destroy(void *state) { (void)state; }

const struct chatd_module message_module = {
    .name = "message", .init = message_init, .start = message_start,
    .drain = message_drain, .destroy = message_destroy,
};
