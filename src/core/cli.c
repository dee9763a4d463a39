/* cli.c: "chatd [-c FILE] [--listen HOST:PORT] [--data-dir DIR] [verb args...]". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "chatd/chatd.h"
#include "chatd/module.h"
#include "chatd/settings.h"
#include "cli.h"

void cli_usage(FILE *f)
{
    fprintf(f,
            "usage: chatd [-c FILE] [--listen HOST:PORT] [--data-dir DIR]\n"
            "       chatd [-c FILE] VERB [ARGS...]\n"
            "\n"
            "options:\n"
            "  -c, --config FILE     read FILE (default: ./chatd.conf if present)\n"
            "  --listen HOST:PORT    listen address; port 0 picks a free port\n"
            "  --data-dir DIR        where the database and keys live\n"
            "  -h, --help            show this help\n"
            "  --help-config         show every configuration key, its kind, range and\n"
            "                        default, as a chatd.conf\n"
            "  -V, --version         show the version\n"
            "\n"
            "verbs:\n"
            "  check-config [-c FILE]  validate the configuration and the files it names,\n"
            "                          and print \"ok\"\n"
            "  backup FILE             copy the database to FILE while the server runs\n"
            "  migrate-db --to URL     copy this node's SQLite database into an empty\n"
            "                          PostgreSQL database (stop the node first)\n"
            "  dlq ...                 list and replay dead-lettered events\n");
    for (size_t i = 0; i < chatd_module_count; i++) {
        const struct chatd_command *c = chatd_modules[i]->commands;
        for (; c && c->name; c++)
            fprintf(f, "  %s\n", c->usage ? c->usage : c->name);
    }
}

/* Matches "-x VALUE", "--long VALUE" and "--long=VALUE". Returns 1 and sets *val (and
 * advances *i) on a match, 0 when arg is another option, -1 when the value is missing. */
static int opt_value(int argc, char **argv, int *i, const char *shrt, const char *lng,
                     const char **val)
{
    const char *a = argv[*i];
    size_t ln = strlen(lng);

    if (strncmp(a, lng, ln) == 0 && a[ln] == '=') {
        *val = a + ln + 1;
        return 1;
    }
    if (strcmp(a, lng) != 0 && !(shrt && strcmp(a, shrt) == 0))
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *val = argv[++*i];
    return 1;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "chatd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    cli_usage(stderr);
    return CLI_USAGE;
}

static int cli_done(struct cli_opts *o, int rc)
{
    free(o->vargv);
    o->vargv = NULL;
    o->vargc = 0;
    return rc;
}

int cli_parse(int argc, char **argv, struct cli_opts *o)
{
    int options = 1;

    memset(o, 0, sizeof(*o));
    o->vargv = calloc((size_t)argc + 1, sizeof(char *));
    if (!o->vargv) {
        fprintf(stderr, "chatd: out of memory\n");
        return CLI_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;

        if (!options || a[0] != '-' || a[1] == '\0') {
            o->vargv[o->vargc++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options = 0;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_usage(stdout);
            return cli_done(o, CLI_EXIT_OK);
        }
        if (strcmp(a, "--help-config") == 0) {
            config_print_help(stdout);
            return cli_done(o, CLI_EXIT_OK);
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("chatd %s\n", CHATD_VERSION);
            return cli_done(o, CLI_EXIT_OK);
        }
        if ((r = opt_value(argc, argv, &i, "-c", "--config", &o->config)) ||
            (r = opt_value(argc, argv, &i, NULL, "--listen", &o->listen)) ||
            (r = opt_value(argc, argv, &i, NULL, "--data-dir", &o->data_dir))) {
            if (r < 0)
                return cli_done(o, usage_error("option %s needs a value", a));
            continue;
        }
        if (o->vargc > 0) {
            /* After the verb, options we do not know are the verb's own
             * ("dlq replay --all"). */
            o->vargv[o->vargc++] = argv[i];
            continue;
        }
        return cli_done(o, usage_error("unknown option %s", a));
    }
    return CLI_OK;
}

int cli_load_config(const struct cli_opts *o, struct chatd_config *cfg, char *err,
                    size_t errlen)
{
    int rc;

    config_defaults(cfg);
    if (o->config) {
        rc = config_load(cfg, o->config, err, errlen);
        if (rc < 0)
            return rc;
    } else if (access("chatd.conf", F_OK) == 0) {
        rc = config_load(cfg, "chatd.conf", err, errlen);
        if (rc < 0)
            return rc;
    }
    if (o->listen && config_set_listen(cfg, o->listen) < 0) {
        snprintf(err, errlen, "--listen: expected host:port or [v6]:port, got \"%s\"",
                 o->listen);
        return -EINVAL;
    }
    if (o->data_dir) {
        if (o->data_dir[0] == '\0' || strlen(o->data_dir) >= sizeof(cfg->server.data_dir)) {
            snprintf(err, errlen, "--data-dir: empty or too long");
            return -EINVAL;
        }
        strcpy(cfg->server.data_dir, o->data_dir);
    }
    if (o->vargc > 0 && strcmp(o->vargv[0], "check-config") == 0)
        return config_check_files(cfg, o->config ? o->config : "chatd.conf", err, errlen);
    return 0;
}
