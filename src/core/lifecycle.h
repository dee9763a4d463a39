/* lifecycle.h: the server's start, drain and stop sequence (used by main.c). */
#ifndef CHATD_CORE_LIFECYCLE_H
#define CHATD_CORE_LIFECYCLE_H

#include "chatd/config.h"

/* Runs the server with cfg (ownership passes in) until SIGTERM/SIGINT and a full
 * drain. Returns the process exit status. */
int lifecycle_run_server(struct chatd_config *cfg);
/* Runs a command-line verb with config, log and an open database, no loop running. */
int lifecycle_run_command(struct chatd_config *cfg,
                          int (*run)(struct chatd *app, int argc, char **argv),
                          int argc, char **argv);

#endif
