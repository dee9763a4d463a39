/* module.h: the descriptor every module exports (in the spirit of ngx_module_t).
 * main.c reaches modules only through the chatd_modules[] table in
 * src/modules/modules.c. Modules are started in table order and drained and
 * destroyed in reverse order. A module talks to the others only through the bus
 * (include/chatd/bus.h, topics in events.h) and its own HTTP routes. */
#ifndef CHATD_MODULE_H
#define CHATD_MODULE_H

#include <stddef.h>
#include "chatd/chatd.h"

/* A command-line verb a module offers ("chatd keygen", "chatd user add NAME").
 * run() gets the config, log and an open database (db_conn_for_cli) but no running
 * loop; argv[0] is the verb. Returns the process exit status. */
struct chatd_command {
    const char *name;
    const char *usage;               /* one line for --help */
    int (*run)(struct chatd *app, int argc, char **argv);
};

struct setting_table;

struct chatd_module {
    const char *name;
    const struct chatd_command *commands;   /* ends with {NULL}; may be NULL */
    /* The chatd.conf keys it reads and the size of its struct for them (settings.h);
     * NULL: none. Core fills that struct from the file before init; the module reads
     * it with config_module_settings(app->cfg, this table). */
    const struct setting_table *settings;
    /* Read config, open what it owns (db_migrate its tables). Runs before the loop
     * runs, so it may block. Returns 0 or a negative error; *state is the module's. */
    int  (*init)(struct chatd *app, void **state);
    /* Subscribe to topics, add routes. Returns 0 or a negative error. */
    int  (*start)(void *state);
    /* Stop taking new work, finish in-flight work, then call done(state) once
     * (possibly later, from the loop). */
    void (*drain)(void *state, void (*done)(void *state));
    /* Free everything. The loop is no longer running callbacks of this module. */
    void (*destroy)(void *state);
    /* The secrets it keeps in data_dir on SQLite (file names, NULL-ended), which it
     * keeps in the database on PostgreSQL (db_key_keep under the same name), so that
     * `chatd migrate-db` can carry them over. NULL: none. */
    const char *const *kept_keys;
    /* Creates or upgrades its tables on app->db (db_migrate with that engine's
     * migrations) and nothing else: init runs the same function, migrate-db runs it
     * alone on the target database. NULL: it owns no tables. */
    int  (*migrate)(struct chatd *app);
};

extern const struct chatd_module *const chatd_modules[];
extern const size_t chatd_module_count;

#endif
