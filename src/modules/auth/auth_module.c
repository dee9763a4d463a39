/* The auth module (not built yet: this descriptor only registers it). */
#include <stdlib.h>
#include "chatd/module.h"

static int  auth_init(struct chatd *app, void **state) { (void)app; *state = NULL; return 0; }
static int  auth_start(void *state) { (void)state; return 0; }
static void auth_drain(void *state, void (*done)(void *)) { done(state); }
static void auth_destroy(void *state) { (void)state; }

const struct chatd_module auth_module = {
    .name = "auth", .init = auth_init, .start = auth_start,
    .drain = auth_drain, .destroy = auth_destroy,
};
