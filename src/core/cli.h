/* cli.h: command-line parsing for main.c. */
#ifndef CHATD_CORE_CLI_H
#define CHATD_CORE_CLI_H

#include <stdio.h>
#include "chatd/config.h"

struct cli_opts {
    const char *config;      /* -c FILE, or NULL */
    const char *listen;      /* --listen HOST:PORT, or NULL */
    const char *data_dir;    /* --data-dir DIR, or NULL */
    int vargc;               /* the verb and its arguments, options removed; */
    char **vargv;            /* vargc == 0: run the server. Owned (free()). */
};

enum { CLI_OK = 0, CLI_EXIT_OK = 1, CLI_USAGE = 2 };

/* Takes the options out of argv wherever they are ("chatd backup FILE -c CONF" works);
 * what is left is the verb and its arguments ("--" ends the options). Returns CLI_OK,
 * CLI_EXIT_OK (after --help or --version was printed) or CLI_USAGE (error and usage
 * printed on stderr). */
int  cli_parse(int argc, char **argv, struct cli_opts *o);
void cli_usage(FILE *f);
/* Defaults, then the config file (o->config, else ./chatd.conf if present), then flags.
 * For the check-config verb, also opens the files the configuration names (key_file,
 * ca_file, the log file's directory). Returns 0, or a negative error with the message
 * in err. */
int  cli_load_config(const struct cli_opts *o, struct chatd_config *cfg, char *err,
                     size_t errlen);

#endif
