/* config.c: chatd.conf, an INI file read once into struct chatd_config. The keys are
 * rows of tables (settings.h): core's (config_keys.c) and each module's, whose struct
 * sits in cfg->module_area. This file finds the row a line names and hands the value
 * to setting_apply; a key is never known anywhere else. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/config.h"
#include "chatd/module.h"
#include "chatd/settings.h"
#include "config_tables.h"

#define CFG_LINE_MAX 4096

static size_t area_slot(size_t size)
{
    size_t a = _Alignof(max_align_t);
    return (size + a - 1) / a * a;
}

typedef int (*key_fn)(const struct setting *s, void *values, void *arg);

/* Every row of one table, with the struct its values live in (NULL: none). */
static int each_row(const struct setting_table *t, void *values, key_fn fn, void *arg)
{
    for (size_t i = 0; i < t->count; i++) {
        int rc = fn(&t->rows[i], values, arg);
        if (rc)
            return rc;
    }
    return 0;
}

int config_each_key(const struct chatd_config *ccfg, key_fn fn, void *arg)
{
    struct chatd_config *cfg = (struct chatd_config *)ccfg;   /* see config.h */
    size_t at = 0;
    int rc = each_row(&config_core_keys, cfg, fn, arg);

    for (size_t i = 0; i < chatd_module_count && rc == 0; i++) {
        const struct setting_table *t = chatd_modules[i]->settings;
        if (!t)
            continue;
        rc = each_row(t, cfg ? cfg->module_area + at : NULL, fn, arg);
        at += area_slot(t->size);
    }
    return rc;
}

static size_t module_area_used(void)
{
    size_t at = 0;
    for (size_t i = 0; i < chatd_module_count; i++)
        if (chatd_modules[i]->settings)
            at += area_slot(chatd_modules[i]->settings->size);
    return at;
}

static int apply_default(const struct setting *s, void *values, void *arg)
{
    char buf[96];
    const char *why = setting_apply(s, values, s->def, buf, sizeof buf);

    /* A default the table itself refuses is a bug in that table: stop at once, naming
     * it, rather than run on a zero. */
    if (why) {
        fprintf(stderr, "chatd: [%s] %s: default \"%s\": %s\n", s->section, s->key, s->def,
                why);
        abort();
    }
    return 0;
}

void config_defaults(struct chatd_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    if (module_area_used() > sizeof(cfg->module_area)) {
        fprintf(stderr, "chatd: the modules' settings need more than CONFIG_MODULE_AREA\n");
        abort();
    }
    config_each_key(cfg, apply_default, NULL);
}

static struct chatd_config default_config;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_config_init(void)
{
    config_defaults(&default_config);
}

void *config_module_settings(const struct chatd_config *cfg,
                             const struct setting_table *table)
{
    size_t at = 0;

    if (!cfg) {
        pthread_once(&default_once, default_config_init);
        cfg = &default_config;
    }
    for (size_t i = 0; i < chatd_module_count; i++) {
        const struct setting_table *t = chatd_modules[i]->settings;
        if (t && t == table)
            return (void *)(cfg->module_area + at);
        if (t)
            at += area_slot(t->size);
    }
    return NULL;
}

static int set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* '#' starts a comment at the start of a line or after a blank, so a value may hold a
 * '#' of its own (a URL fragment, a secret) as long as it is not preceded by a space. */
static void strip_comment(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            return;
        }
}

/* A section is known when some table has a key in it. */
static int section_matches(const struct setting *s, void *values, void *name)
{
    return strcmp(s->section, name) == 0;
}

static int known_section(const struct chatd_config *cfg, const char *name)
{
    return config_each_key(cfg, section_matches, (void *)name);
}

struct key_query {
    const char *section, *key;
    const struct setting *found;
    void *values;
};

static int key_matches(const struct setting *s, void *values, void *arg)
{
    struct key_query *q = arg;

    if (strcmp(s->section, q->section) != 0 || strcmp(s->key, q->key) != 0)
        return 0;
    q->found = s;
    q->values = values;
    return 1;
}

static int parse_line(struct chatd_config *cfg, char *section, size_t seclen, char *line,
                      const char *name, int lineno, char *err, size_t errlen)
{
    strip_comment(line);
    char *s = trim(line);
    if (*s == '\0')
        return 0;
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (!close)
            return set_err(err, errlen, "%s:%d: %s: unterminated section", name, lineno, s);
        if (*trim(close + 1) != '\0')
            return set_err(err, errlen, "%s:%d: %s: text after section", name, lineno, s);
        *close = '\0';
        char *sec = trim(s + 1);
        if (!known_section(cfg, sec))
            return set_err(err, errlen, "%s:%d: [%s]: unknown section", name, lineno, sec);
        snprintf(section, seclen, "%s", sec);
        return 0;
    }
    char *eq = strchr(s, '=');
    if (!eq)
        return set_err(err, errlen, "%s:%d: %s: expected key = value", name, lineno, s);
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    if (*key == '\0')
        return set_err(err, errlen, "%s:%d: =: missing key", name, lineno);
    if (section[0] == '\0')
        return set_err(err, errlen, "%s:%d: %s: key outside a section", name, lineno, key);
    struct key_query q = { section, key, NULL, NULL };
    if (!config_each_key(cfg, key_matches, &q))
        return set_err(err, errlen, "%s:%d: %s: unknown key in [%s]", name, lineno, key,
                       section);
    char buf[96];
    const char *reason = setting_apply(q.found, q.values, value, buf, sizeof(buf));
    if (reason)
        return set_err(err, errlen, "%s:%d: %s: %s", name, lineno, key, reason);
    return 0;
}

int config_parse(struct chatd_config *cfg, const char *name, const char *text, size_t len,
                 char *err, size_t errlen)
{
    char line[CFG_LINE_MAX + 1];
    char section[32] = "";
    size_t pos = 0;
    int lineno = 0;

    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        pos = 3;   /* a UTF-8 byte order mark some editors add */
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + (nl ? 1 : 0);
        lineno++;
        if (n > CFG_LINE_MAX)
            return set_err(err, errlen, "%s:%d: line: longer than %d bytes", name, lineno,
                           CFG_LINE_MAX);
        if (memchr(start, '\0', n))
            return set_err(err, errlen, "%s:%d: line: contains a NUL byte", name, lineno);
        memcpy(line, start, n);
        line[n] = '\0';
        int rc = parse_line(cfg, section, sizeof(section), line, name, lineno, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int config_load(struct chatd_config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc;

    if (!f) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= (16u << 20)) {
                rc = set_err(err, errlen, "%s: file too large", path);
                goto fail;
            }
            cap = cap ? cap * 2 : 8192;
            char *p = realloc(text, cap);
            if (!p) {
                rc = -ENOMEM;
                snprintf(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            text = p;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                rc = -EIO;
                snprintf(err, errlen, "%s: read error", path);
                goto fail;
            }
            break;
        }
    }
    rc = config_parse(cfg, path, text, len, err, errlen);
fail:
    free(text);
    fclose(f);
    return rc;
}
