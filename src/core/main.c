/* main.c: the process. Parses the command line, then either runs a verb
 * (check-config, dlq, migrate-db, a module's command) or the server (lifecycle.c). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "chatd/chatd.h"
#include "chatd/backup.h"
#include "chatd/bus.h"
#include "chatd/module.h"
#include "cli.h"
#include "lifecycle.h"
#include "migrate_db.h"

typedef int (*command_fn)(struct chatd *app, int argc, char **argv);

/* A module command name may be several words ("user add"): it matches when argv starts
 * with the same words. */
static int command_matches(const char *name, int argc, char **argv)
{
    int i = 0;
    const char *p = name;

    while (*p) {
        size_t n = strcspn(p, " ");
        if (i >= argc || strlen(argv[i]) != n || strncmp(argv[i], p, n) != 0)
            return 0;
        i++;
        p += n;
        while (*p == ' ')
            p++;
    }
    return 1;
}

static command_fn find_command(int argc, char **argv)
{
    if (strcmp(argv[0], "dlq") == 0)
        return bus_dlq_command;
    for (size_t i = 0; i < chatd_module_count; i++) {
        const struct chatd_command *c = chatd_modules[i]->commands;
        for (; c && c->name; c++)
            if (command_matches(c->name, argc, argv))
                return c->run;
    }
    return NULL;
}

static int load_config(const struct cli_opts *o, struct chatd_config **out)
{
    char err[512];
    struct chatd_config *cfg = malloc(sizeof(*cfg));

    if (!cfg) {
        fprintf(stderr, "chatd: out of memory\n");
        return -1;
    }
    if (cli_load_config(o, cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        free(cfg);
        return -1;
    }
    *out = cfg;
    return 0;
}

static int check_config(const struct cli_opts *o)
{
    struct chatd_config *cfg;

    if (o->vargc > 1) {
        fprintf(stderr, "chatd: check-config: unexpected argument %s\n", o->vargv[1]);
        return 2;
    }
    if (load_config(o, &cfg) < 0)
        return 1;
    free(cfg);
    printf("ok\n");
    return 0;
}

static int backup_command(struct chatd *app, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: chatd backup FILE\n");
        return 2;
    }
    return chatd_backup(app, argv[1]) < 0 ? 1 : 0;
}

/* A verb given the wrong --data-dir would otherwise work on a new, empty database and
 * report success ("no dead letters", a backup of nothing). Only `user add` (so the
 * first account can be made before the first start) and `keygen` (which writes a key
 * file, not the database) go on without one. */
static int database_present(const struct chatd_config *cfg, const char *verb)
{
    char path[CFG_PATH_MAX + 16];

    if (cfg->database.url[0])
        return 1;                      /* PostgreSQL: the start says if it is not there */
    snprintf(path, sizeof(path), "%s/chatd.db", cfg->server.data_dir);
    if (access(path, F_OK) == 0 || strcmp(verb, "keygen") == 0)
        return 1;
    if (strcmp(verb, "user") == 0) {
        fprintf(stderr, "chatd: creating a new database at %s\n", path);
        return 1;
    }
    fprintf(stderr, "chatd: %s: no database at %s (give the server's -c or --data-dir)\n",
            verb, path);
    return 0;
}

static int run_verb(const struct cli_opts *o)
{
    struct chatd_config *cfg;
    const char *to = NULL;
    command_fn run;

    if (strcmp(o->vargv[0], "check-config") == 0)
        return check_config(o);
    if (strcmp(o->vargv[0], "backup") == 0) {
        run = backup_command;
    } else if (strcmp(o->vargv[0], "migrate-db") == 0) {
        if (migrate_db_args(o->vargc, o->vargv, &to) < 0)
            return 2;
        run = migrate_db_run;
    } else {
        run = find_command(o->vargc, o->vargv);
    }
    if (!run) {
        fprintf(stderr, "chatd: unknown command %s\n", o->vargv[0]);
        cli_usage(stderr);
        return 2;
    }
    if (load_config(o, &cfg) < 0)
        return 1;
    if (to)
        cfg->database.url[0] = '\0';   /* its source is data_dir's SQLite database */
    if (!database_present(cfg, o->vargv[0]) || (to && migrate_db_target(cfg, to) < 0)) {
        free(cfg);
        return 1;
    }
    return lifecycle_run_command(cfg, run, o->vargc, o->vargv);
}

int main(int argc, char **argv)
{
    struct cli_opts o;
    struct chatd_config *cfg;
    int status;

    /* A peer closing its socket must give EPIPE on write, not kill the process. */
    signal(SIGPIPE, SIG_IGN);

    switch (cli_parse(argc, argv, &o)) {
    case CLI_EXIT_OK: return 0;
    case CLI_USAGE:   return 2;
    }
    if (o.vargc > 0)
        status = run_verb(&o);
    else if (load_config(&o, &cfg) < 0)
        status = 1;
    else
        status = lifecycle_run_server(cfg);
    free(o.vargv);
    return status;
}
