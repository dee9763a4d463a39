/* config_help.c: `chatd --help-config`, every key printed from the same tables the
 * parser reads, as a chatd.conf that holds the defaults (so the output itself passes
 * check-config). */
#include <stdio.h>
#include <string.h>
#include "chatd/config.h"
#include "chatd/settings.h"

#define HELP_SECTIONS_MAX 64   /* more sections than this are printed after the rest */

struct sections {
    const char *names[HELP_SECTIONS_MAX];
    size_t n;
};

/* Sections in the order their first key appears (core's, then the modules'). */
static int collect_section(const struct setting *s, void *values, void *arg)
{
    struct sections *l = arg;

    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->names[i], s->section) == 0)
            return 0;
    if (l->n < HELP_SECTIONS_MAX)
        l->names[l->n++] = s->section;
    return 0;
}

struct print_ctx {
    FILE *f;
    const char *section;     /* NULL: every key of a section not in the list */
    const struct sections *listed;
};

static int listed(const struct sections *l, const char *section)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->names[i], section) == 0)
            return 1;
    return 0;
}

static int print_key(const struct setting *s, void *values, void *arg)
{
    struct print_ctx *p = arg;
    char kind[96];

    if (p->section ? strcmp(s->section, p->section) != 0 : listed(p->listed, s->section))
        return 0;
    if (!p->section)
        fprintf(p->f, "[%s]\n", s->section);
    setting_describe(s, kind, sizeof kind);
    fprintf(p->f, "# %s (%s)\n", s->help, kind);
    fprintf(p->f, "%s =%s%s\n", s->key, s->def[0] ? " " : "", s->def);
    return 0;
}

void config_print_help(FILE *f)
{
    struct sections l = { .n = 0 };

    config_each_key(NULL, collect_section, &l);
    fprintf(f, "# chatd.conf: every key with its kind, range and default.\n");
    for (size_t i = 0; i < l.n; i++) {
        struct print_ctx p = { f, l.names[i], &l };
        fprintf(f, "\n[%s]\n", l.names[i]);
        config_each_key(NULL, print_key, &p);
    }
    struct print_ctx rest = { f, NULL, &l };
    config_each_key(NULL, print_key, &rest);
}
