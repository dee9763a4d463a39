/* The presence module (not built yet: this descriptor only registers it). */
#include <stdlib.h>
#include "chatd/module.h"

static int  presence_init(struct chatd *app, void **state) { (void)app; *state = NULL; return 0; }
static int  presence_start(void *state) { (void)state; return 0; }
static void presence_drain(void *state, void (*done)(void *)) { done(state); }
static void presence_destroy(void *state) { (void)state; }

const struct chatd_module presence_module = {
    .name = "presence", .init = presence_init, .start = presence_start,
    .drain = presence_drain, .destroy = presence_destroy,
};
