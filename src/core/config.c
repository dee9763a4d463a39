/* config.c: chatd.conf, an INI file read once into struct chatd_config.
 * Every key is described by one row of a table (section, key, type, range, offset),
 * so adding a key is one line and every key gets the same checks. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "chatd/config.h"

#define CFG_LINE_MAX 4096

enum cfg_type { CFG_INT, CFG_DOUBLE, CFG_STR, CFG_LISTEN, CFG_REGISTRATION, CFG_LEVEL,
                CFG_FORMAT, CFG_BOOL, CFG_URL, CFG_DURABILITY };

struct cfg_key {
    const char *section, *key;
    enum cfg_type type;
    double min, max;      /* CFG_INT, CFG_DOUBLE: inclusive range */
    size_t off, size;     /* where the value lives in struct chatd_config */
};

#define F(field) offsetof(struct chatd_config, field), sizeof(((struct chatd_config *)0)->field)
#define I(sec, key, lo, hi, field) { sec, key, CFG_INT, lo, hi, F(field) }
#define D(sec, key, lo, hi, field) { sec, key, CFG_DOUBLE, lo, hi, F(field) }
#define S(sec, key, field)         { sec, key, CFG_STR, 0, 0, F(field) }
#define E(sec, key, type, field)   { sec, key, type, 0, 0, F(field) }

/* Lower bounds are low enough for tests (a 1 s token, a 50 ms heartbeat); upper bounds
 * keep values far from int overflow in the code that multiplies them. */
static const struct cfg_key cfg_keys[] = {
    { "server", "listen", CFG_LISTEN, 0, 0, 0, 0 },
    S("server", "data_dir", server.data_dir),
    I("server", "max_connections", 1, 1000000, server.max_connections),
    I("server", "max_body_bytes", 256, 64 << 20, server.max_body_bytes),
    I("server", "max_header_bytes", 256, 1 << 20, server.max_header_bytes),
    I("server", "header_timeout_ms", 10, 3600000, server.header_timeout_ms),
    I("server", "idle_timeout_ms", 10, 86400000, server.idle_timeout_ms),
    S("server", "web_dir", server.web_dir),
    E("server", "trust_proxy", CFG_BOOL, server.trust_proxy),
    S("auth", "issuer", auth.issuer),
    I("auth", "access_ttl", 1, 86400 * 7, auth.access_ttl),
    I("auth", "refresh_ttl", 1, 86400 * 3650, auth.refresh_ttl),
    E("auth", "registration", CFG_REGISTRATION, auth.registration_open),
    I("auth", "password_cost", 10, 20, auth.password_cost),
    S("auth", "key_file", auth.key_file),
    E("database", "durability", CFG_DURABILITY, database.durability),
    I("websocket", "max_message_bytes", 64, 16 << 20, websocket.max_message_bytes),
    I("websocket", "heartbeat_ms", 10, 3600000, websocket.heartbeat_ms),
    I("websocket", "send_queue_bytes", 1024, 1 << 30, websocket.send_queue_bytes),
    I("websocket", "sync_stall_ms", 100, 3600000, websocket.sync_stall_ms),
    I("message", "max_body_bytes", 1, 1 << 20, message.max_body_bytes),
    S("notification", "vapid_subject", notification.vapid_subject),
    E("notification", "webhook_url", CFG_URL, notification.webhook_url),
    S("notification", "webhook_secret", notification.webhook_secret),
    S("notification", "ca_file", notification.ca_file),
    I("notification", "max_attempts", 1, 100, notification.max_attempts),
    I("notification", "retry_base_ms", 1, 3600000, notification.retry_base_ms),
    E("notification", "allow_private_endpoints", CFG_BOOL, notification.allow_private_endpoints),
    I("notification", "subscription_max_failures", 1, 1000000,
      notification.subscription_max_failures),
    I("notification", "subscription_failing_ttl", 1, 86400 * 3650,
      notification.subscription_failing_ttl),
    I("bus", "deadletter_max_rows", 1, 100000000, bus.deadletter_max_rows),
    I("bus", "deadletter_max_bytes", 4096, INT_MAX, bus.deadletter_max_bytes),
    D("limits", "messages_per_s", 0.001, 1e6, limits.messages_per_s),
    I("limits", "messages_burst", 1, 1000000, limits.messages_burst),
    D("limits", "typing_per_s", 0.001, 1e6, limits.typing_per_s),
    D("limits", "connects_per_s", 0.001, 1e6, limits.connects_per_s),
    I("limits", "connects_burst", 1, 1000000, limits.connects_burst),
    I("limits", "registrations_per_min", 1, 1000000, limits.registrations_per_min),
    I("limits", "login_failures_per_min", 1, 1000000, limits.login_failures_per_min),
    I("limits", "connections_per_user", 1, 1000000, limits.connections_per_user),
    I("limits", "connections_per_address", 1, 1000000, limits.connections_per_address),
    E("log", "level", CFG_LEVEL, log.level),
    E("log", "format", CFG_FORMAT, log.json),
    S("log", "file", log.file),
};

static const char *const cfg_sections[] = {
    "server", "auth", "database", "websocket", "message", "notification", "bus", "limits",
    "log",
};

void config_defaults(struct chatd_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->server.listen_host, "127.0.0.1");
    cfg->server.listen_port = 8080;
    strcpy(cfg->server.data_dir, "./data");
    cfg->server.max_connections = 10000;
    cfg->server.max_body_bytes = 65536;
    cfg->server.max_header_bytes = 16384;
    cfg->server.header_timeout_ms = 10000;
    cfg->server.idle_timeout_ms = 60000;
    strcpy(cfg->auth.issuer, "chatd");
    cfg->auth.access_ttl = 900;
    cfg->auth.refresh_ttl = 2592000;
    cfg->auth.password_cost = 14;
    cfg->auth.registration_open = 1;
    cfg->database.durability = CHATD_DURABILITY_FULL;
    cfg->websocket.max_message_bytes = 65536;
    cfg->websocket.heartbeat_ms = 30000;
    cfg->websocket.send_queue_bytes = 1048576;
    cfg->websocket.sync_stall_ms = 30000;
    cfg->message.max_body_bytes = 4096;
    strcpy(cfg->notification.vapid_subject, "mailto:admin@localhost");
    cfg->notification.max_attempts = 5;
    cfg->notification.retry_base_ms = 1000;
    cfg->notification.subscription_max_failures = 10;
    cfg->notification.subscription_failing_ttl = 3 * 86400;
    cfg->bus.deadletter_max_rows = 100000;
    cfg->bus.deadletter_max_bytes = 64 << 20;
    cfg->limits.messages_per_s = 20;
    cfg->limits.messages_burst = 100;
    cfg->limits.typing_per_s = 2;
    cfg->limits.connects_per_s = 50;
    cfg->limits.connects_burst = 200;
    cfg->limits.registrations_per_min = 10;
    cfg->limits.login_failures_per_min = 10;
    cfg->limits.connections_per_user = 100;
    cfg->limits.connections_per_address = 1000;
    cfg->log.level = CHATD_LOG_INFO;
    cfg->log.json = 0;
}

int config_set_listen(struct chatd_config *cfg, const char *hostport)
{
    const char *host = hostport, *colon;
    size_t hostlen;

    if (hostport[0] == '[') {
        const char *close = strchr(hostport, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        host = hostport + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
        if (hostlen == 0 || memchr(host, ':', hostlen) == NULL)
            return -EINVAL;   /* brackets are for IPv6 addresses only */
    } else {
        colon = strrchr(hostport, ':');
        if (!colon)
            return -EINVAL;
        hostlen = (size_t)(colon - hostport);
        if (hostlen == 0 || memchr(hostport, ':', hostlen) != NULL)
            return -EINVAL;   /* an IPv6 address needs brackets */
    }
    if (hostlen >= sizeof(cfg->server.listen_host))
        return -EINVAL;
    for (size_t i = 0; i < hostlen; i++)
        if (host[i] == ' ' || host[i] == '\t' || host[i] == '[' || host[i] == ']')
            return -EINVAL;

    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5)
        return -EINVAL;
    long port = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        port = port * 10 + (*p - '0');
    }
    if (port > 65535)
        return -EINVAL;
    memcpy(cfg->server.listen_host, host, hostlen);
    cfg->server.listen_host[hostlen] = '\0';
    cfg->server.listen_port = (int)port;
    return 0;
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

/* Empty, or http:// or https:// and a host: the notification module refuses anything
 * else at start, so check-config must refuse it too, naming the line. */
/* Strings that something outside reads: an empty issuer would sign tokens no verifier
 * can pin, and push services refuse a VAPID subject that is not a mailto: or https: URI
 * (RFC 8292, 2.1). */
static const char *string_reason(const struct cfg_key *k, const char *v)
{
    size_t off = k->off;

    if (*v == '\0' && (off == offsetof(struct chatd_config, server.data_dir) ||
                       off == offsetof(struct chatd_config, auth.issuer) ||
                       off == offsetof(struct chatd_config, notification.vapid_subject)))
        return "must not be empty";
    if (off == offsetof(struct chatd_config, notification.vapid_subject) &&
        strncmp(v, "mailto:", 7) != 0 && strncmp(v, "https://", 8) != 0)
        return "expected a mailto: or https:// URI";
    return NULL;
}

static int url_ok(const char *v)
{
    const char *host;

    if (*v == '\0')
        return 1;
    if (strncmp(v, "https://", 8) == 0)
        host = v + 8;
    else if (strncmp(v, "http://", 7) == 0)
        host = v + 7;
    else
        return 0;
    size_t n = strcspn(host, "/?#");
    return n > 0 && *host != ':' && !memchr(host, '@', n);   /* no user:password@ */
}

/* "out of range (1 to 1000000)": the reader should not have to look the bounds up. */
static const char *range_reason(const struct cfg_key *k, char *buf, size_t len)
{
    if (k->type == CFG_INT)
        snprintf(buf, len, "out of range (%lld to %lld)", (long long)k->min, (long long)k->max);
    else
        snprintf(buf, len, "out of range (%g to %g)", k->min, k->max);
    return buf;
}

/* Sets one value; on error returns a reason (static, or written to buf). */
static const char *cfg_set(struct chatd_config *cfg, const struct cfg_key *k, const char *v,
                           char *buf, size_t buflen)
{
    char *field = (char *)cfg + k->off;
    char *end;

    switch (k->type) {
    case CFG_INT: {
        if (*v == '\0')
            return "expected an integer";
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (*end != '\0')
            return "expected an integer";
        if (errno == ERANGE || n < (long long)k->min || n > (long long)k->max)
            return range_reason(k, buf, buflen);
        *(int *)field = (int)n;
        return NULL;
    }
    case CFG_DOUBLE: {
        if (*v == '\0')
            return "expected a number";
        errno = 0;
        double d = strtod(v, &end);
        if (*end != '\0' || !isfinite(d))
            return "expected a number";
        if (d < k->min || d > k->max)
            return range_reason(k, buf, buflen);
        *(double *)field = d;
        return NULL;
    }
    case CFG_STR: {
        const char *why = string_reason(k, v);
        if (why)
            return why;
        if (strlen(v) >= k->size)
            return "too long";
        strcpy(field, v);
        return NULL;
    }
    case CFG_LISTEN:
        return config_set_listen(cfg, v) ? "expected host:port or [v6]:port" : NULL;
    case CFG_REGISTRATION:
        if (strcmp(v, "open") == 0 || strcmp(v, "closed") == 0) {
            *(int *)field = v[0] == 'o';
            return NULL;
        }
        return "expected open or closed";
    case CFG_LEVEL: {
        static const char *const names[] = { "debug", "info", "warn", "error" };
        for (int i = 0; i < 4; i++)
            if (strcmp(v, names[i]) == 0) {
                *(int *)field = i;
                return NULL;
            }
        return "expected debug, info, warn or error";
    }
    case CFG_FORMAT:
        if (strcmp(v, "text") == 0 || strcmp(v, "json") == 0) {
            *(int *)field = v[0] == 'j';
            return NULL;
        }
        return "expected text or json";
    case CFG_DURABILITY:
        if (strcmp(v, "full") == 0 || strcmp(v, "process") == 0) {
            *(int *)field = v[0] == 'p' ? CHATD_DURABILITY_PROCESS : CHATD_DURABILITY_FULL;
            return NULL;
        }
        return "expected full or process";
    case CFG_BOOL:
        if (strcmp(v, "yes") == 0 || strcmp(v, "no") == 0) {
            *(int *)field = v[0] == 'y';
            return NULL;
        }
        return "expected yes or no";
    case CFG_URL:
        if (!url_ok(v))
            return "expected an http:// or https:// URL";
        if (strlen(v) >= k->size)
            return "too long";
        strcpy(field, v);
        return NULL;
    }
    return "bad key type";
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

static int known_section(const char *name)
{
    for (size_t i = 0; i < sizeof(cfg_sections) / sizeof(cfg_sections[0]); i++)
        if (strcmp(cfg_sections[i], name) == 0)
            return 1;
    return 0;
}

static const struct cfg_key *find_key(const char *section, const char *key)
{
    for (size_t i = 0; i < sizeof(cfg_keys) / sizeof(cfg_keys[0]); i++)
        if (strcmp(cfg_keys[i].section, section) == 0 && strcmp(cfg_keys[i].key, key) == 0)
            return &cfg_keys[i];
    return NULL;
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
        if (!known_section(sec))
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
    const struct cfg_key *k = find_key(section, key);
    if (!k)
        return set_err(err, errlen, "%s:%d: %s: unknown key in [%s]", name, lineno, key,
                       section);
    char buf[96];
    const char *reason = cfg_set(cfg, k, value, buf, sizeof(buf));
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
