/* config.h: chatd.conf read once into typed structs with defaults and validation.
 * Format: INI, "[section]", "key = value", '#' starts a comment (also after a value).
 * An unknown section or key or a bad value is an error "file:line: key: reason".
 * The keys are declared in tables (settings.h): core's own below, each module's in its
 * descriptor, filled into the module's own struct (config_module_settings). */
#ifndef CHATD_CONFIG_H
#define CHATD_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

#define CFG_PATH_MAX 1024
#define CONFIG_MODULE_AREA 8192   /* room for every module's settings struct */

enum chatd_log_level { CHATD_LOG_DEBUG = 0, CHATD_LOG_INFO, CHATD_LOG_WARN, CHATD_LOG_ERROR };

/* What an acknowledged write survives. full: a power cut or kernel crash too (the WAL is
 * fsynced before each group's COMMIT returns). process: a crash of chatd only (the
 * commit waits in the OS cache until the next checkpoint). */
enum chatd_durability { CHATD_DURABILITY_FULL = 0, CHATD_DURABILITY_PROCESS };

struct chatd_config {
    struct {
        char listen_host[256];      /* default 127.0.0.1 */
        int  listen_port;           /* default 8080; 0 = any free port */
        char data_dir[CFG_PATH_MAX];/* default ./data */
        int  max_connections;       /* default 10000 */
        int  max_body_bytes;        /* default 65536 (HTTP request body) */
        int  max_header_bytes;      /* default 16384 (request line + headers) */
        int  header_timeout_ms;     /* default 10000: whole head must arrive in this time */
        int  idle_timeout_ms;       /* default 60000: keep-alive connection with no request */
        char web_dir[CFG_PATH_MAX]; /* default "": serve the web client embedded in the binary */
        int  trust_proxy;           /* default no: yes = a loopback peer's X-Forwarded-For
                                     * (last entry) is the client address */
    } server;
    struct {
        char issuer[256];           /* default chatd; core's token gateway checks it, the
                                     * auth module signs with it */
    } auth;
    struct {
        int durability;             /* enum chatd_durability, default full (SQLite only) */
        char url[CFG_PATH_MAX];     /* default "": SQLite in data_dir; else PostgreSQL */
    } database;
    struct {
        int deadletter_max_rows;    /* default 100000; past it the oldest go */
        int deadletter_max_bytes;   /* default 64 MiB (topic, payload, consumer, error) */
    } bus;
    struct {
        int  level;                 /* enum chatd_log_level, default info */
        int  json;                  /* format: text = 0 (default), json = 1 */
        char file[CFG_PATH_MAX];    /* default "": stderr. SIGHUP reopens it. */
    } log;
    /* Each module's own settings struct, in chatd_modules[] order, each at a multiple
     * of max_align_t; reach one with config_module_settings(). Inline, so that a config
     * is one plain value (copied, freed, compared with memcmp). */
    _Alignas(max_align_t) unsigned char module_area[CONFIG_MODULE_AREA];
};

struct setting;
struct setting_table;

/* Every key of every owner at its default. */
void config_defaults(struct chatd_config *cfg);
/* Parse text (named `name` in errors) over the values already in cfg.
 * Returns 0, or -EINVAL with "name:line: key: reason" in err. */
int  config_parse(struct chatd_config *cfg, const char *name, const char *text, size_t len,
                  char *err, size_t errlen);
/* Read and parse a file. Returns 0, -EINVAL (bad content) or -errno (cannot read),
 * with the message in err. */
int  config_load(struct chatd_config *cfg, const char *path, char *err, size_t errlen);
/* Parse "host:port" or "[v6]:port" into cfg->server. Returns 0 or -EINVAL. */
int  config_set_listen(struct chatd_config *cfg, const char *hostport);

/* The struct a module's table fills, inside cfg (like strchr, it hands back a pointer
 * into what it was given; the caller decides whether to write). table is the one the
 * module's descriptor points at. cfg NULL: a copy holding the defaults. NULL when no
 * module in chatd_modules[] has that table. */
void *config_module_settings(const struct chatd_config *cfg,
                             const struct setting_table *table);
/* Calls fn for every key: core's, then each module's in chatd_modules[] order, with the
 * struct in cfg its value lives in (NULL when cfg is NULL; a pointer into cfg, as in
 * config_module_settings). Returns the first non-zero fn returns, else 0. */
int  config_each_key(const struct chatd_config *cfg,
                     int (*fn)(const struct setting *s, void *values, void *arg), void *arg);
/* Prints every key from the same tables, as a chatd.conf holding the defaults: each key
 * under its section, after a comment with its kind, range and help. */
void config_print_help(FILE *f);
/* What check-config reads beyond the keys (config_files.c): every file a key names
 * (opened, and read as the start will where its row says how), every directory a key
 * names, the log file's directory. 0, or a negative errno with
 * "conf: key: path: reason" in err. */
int  config_check_files(const struct chatd_config *cfg, const char *conf, char *err,
                        size_t errlen);
/* The start's part of it: every directory a key names exists. "key: path: reason". */
int  config_check_dirs(const struct chatd_config *cfg, char *err, size_t errlen);

#endif
