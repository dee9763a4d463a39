/* The websocket module (not built yet: this descriptor only registers it). */
#include <stdlib.h>
#include "chatd/module.h"

static int  websocket_init(struct chatd *app, void **state) { (void)app; *state = NULL; return 0; }
static int  websocket_start(void *state) { (void)state; return 0; }
static void websocket_drain(void *state, void (*done)(void *)) { done(state); }
static void websocket_destroy(void *state) { (void)state; }

const struct chatd_module websocket_module = {
    .name = "websocket", .init = websocket_init, .start = websocket_start,
    .drain = websocket_drain, .destroy = websocket_destroy,
};
