/* config.h: chatd.conf read once into typed structs with defaults and validation.
 * Format: INI, "[section]", "key = value", '#' starts a comment (also after a value).
 * An unknown section or key or a bad value is an error "file:line: key: reason". */
#ifndef CHATD_CONFIG_H
#define CHATD_CONFIG_H

#include <stddef.h>
#include <limits.h>

#define CFG_PATH_MAX 1024

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
        char issuer[256];           /* default chatd */
        int  access_ttl;            /* seconds, default 900 */
        int  refresh_ttl;           /* seconds, default 2592000 */
        int  registration_open;     /* "open" = 1 (default), "closed" = 0 */
        char key_file[CFG_PATH_MAX];/* default "": <data_dir>/jwt.pem */
        int  password_cost;         /* scrypt log2(N), default 14; 10..20 */
    } auth;
    struct {
        int durability;             /* enum chatd_durability, default full */
    } database;
    struct {
        int max_message_bytes;      /* default 65536 */
        int heartbeat_ms;           /* default 30000 */
        int send_queue_bytes;       /* default 1048576 */
        int sync_stall_ms;          /* default 30000 */
    } websocket;
    struct {
        int max_body_bytes;         /* default 4096 */
    } message;
    struct {
        char vapid_subject[256];    /* default mailto:admin@localhost */
        char webhook_url[1024];     /* default "" (no webhook) */
        char webhook_secret[256];   /* default "" */
        char ca_file[CFG_PATH_MAX]; /* default "" */
        int  max_attempts;          /* default 5 */
        int  retry_base_ms;         /* default 1000 */
        int  allow_private_endpoints; /* default no: push endpoints must be public */
        int  subscription_max_failures; /* default 10 failed attempts in a row: failing */
        int  subscription_failing_ttl;  /* seconds, default 259200: failing -> dropped */
    } notification;
    struct {
        int deadletter_max_rows;    /* default 100000; past it the oldest go */
        int deadletter_max_bytes;   /* default 64 MiB (topic, payload, consumer, error) */
    } bus;
    struct {
        double messages_per_s;      /* default 20 */
        int    messages_burst;      /* default 100 */
        double typing_per_s;        /* default 2 */
        double connects_per_s;      /* default 50 */
        int    connects_burst;      /* default 200 */
        int    registrations_per_min; /* default 10 */
        int    login_failures_per_min;/* default 10 */
        int    connections_per_user;  /* default 100: open WebSocket connections at once */
        int    connections_per_address; /* default 1000: the same per client address */
    } limits;
    struct {
        int  level;                 /* enum chatd_log_level, default info */
        int  json;                  /* format: text = 0 (default), json = 1 */
        char file[CFG_PATH_MAX];    /* default "": stderr. SIGHUP reopens it. */
    } log;
};

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

#endif
