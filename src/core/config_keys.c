/* config_keys.c: the keys core itself reads ([server], [database], [bus], [log], and
 * [auth] issuer, which core's token gateway checks), one row each. The modules' keys
 * are in their own tables (each module's *_settings.c). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include "chatd/config.h"
#include "chatd/settings.h"
#include "config_tables.h"

#define C struct chatd_config

static const struct setting_name durability_names[] = {
    { "full", CHATD_DURABILITY_FULL }, { "process", CHATD_DURABILITY_PROCESS }, { NULL, 0 },
};
static const struct setting_name level_names[] = {
    { "debug", CHATD_LOG_DEBUG }, { "info", CHATD_LOG_INFO }, { "warn", CHATD_LOG_WARN },
    { "error", CHATD_LOG_ERROR }, { NULL, 0 },
};
static const struct setting_name format_names[] = {
    { "text", 0 }, { "json", 1 }, { NULL, 0 },
};

/* libpq reads the port only when it connects: "1", or "1,2" for several hosts. */
static int ports_valid(const char *v)
{
    for (;;) {
        char *end;
        long port = strtol(v, &end, 10);
        if (end == v || port < 1 || port > 65535)
            return 0;
        if (*end == '\0')
            return 1;
        if (*end != ',')
            return 0;
        v = end + 1;
    }
}

static size_t count_at(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += s[i] == '@';
    return c;
}

/* Empty, or a URL libpq reads. Only the URL form: a "host=... dbname=..." string
 * would parse as well, but the key is documented (and logged) as a URL. */
static const char *check_database_url(const char *v)
{
    char *err = NULL;

    if (*v == '\0')
        return NULL;
    if (strncmp(v, "postgres://", 11) != 0 && strncmp(v, "postgresql://", 13) != 0)
        return "expected a URL starting with postgres:// or postgresql://";
    /* libpq splits user:password from the host at the LAST '@': a password holding an
     * '@' would put the rest of it into the host name (and into every error message
     * naming the host). */
    const char *auth = strstr(v, "://") + 3;
    if (count_at(auth, strcspn(auth, "/?#")) > 1)
        return "more than one '@' before the host: percent-encode an '@' in the user or "
               "password as %40";
    PQconninfoOption *opts = PQconninfoParse(v, &err);
    if (!opts) {
        PQfreemem(err);
        return "not a PostgreSQL URL libpq can read (check the host, port, "
               "%-escapes and ?options)";
    }
    const char *why = NULL;
    for (PQconninfoOption *o = opts; o->keyword && !why; o++)
        if (strcmp(o->keyword, "port") == 0 && o->val && !ports_valid(o->val))
            why = "the port must be a number from 1 to 65535";
    PQconninfoFree(opts);
    return why;
}

/* Lower bounds are low enough for tests (a 50 ms timeout); upper bounds keep values far
 * from int overflow in the code that multiplies them. */
static const struct setting core_rows[] = {
    { .section = "server", .key = "listen", .kind = SETTING_LISTEN,
      SETTING_FIELD_(C, server.listen_host), .port_offset = offsetof(C, server.listen_port),
      .def = "127.0.0.1:8080", .help = "the address to listen on; port 0 picks a free port" },
    SETTING_TEXT_ROW("server", "data_dir", SETTING_PATH, C, server.data_dir,
                     setting_check_nonempty, "./data",
                     "where the database and the keys live"),
    SETTING_INT_ROW("server", "max_connections", C, server.max_connections, 1, 1000000,
                    "10000", "open client connections at once; more: 503 and closed"),
    SETTING_INT_ROW("server", "max_body_bytes", C, server.max_body_bytes, 256, 64 << 20,
                    "65536", "HTTP request body; more: 413"),
    SETTING_INT_ROW("server", "max_header_bytes", C, server.max_header_bytes, 256, 1 << 20,
                    "16384", "request line and headers; more: 431"),
    SETTING_INT_ROW("server", "header_timeout_ms", C, server.header_timeout_ms, 10, 3600000,
                    "10000", "the whole request head must arrive within this; else 408"),
    SETTING_INT_ROW("server", "idle_timeout_ms", C, server.idle_timeout_ms, 10, 86400000,
                    "60000", "a keep-alive connection with no request is closed"),
    SETTING_TEXT_ROW("server", "web_dir", SETTING_DIR, C, server.web_dir, NULL, "",
                     "empty: serve the web client built into the binary; else a directory"),
    SETTING_BOOL_ROW("server", "trust_proxy", C, server.trust_proxy, "no",
                     "yes: a loopback peer's last X-Forwarded-For entry is the client"
                     " address"),
    SETTING_TEXT_ROW("auth", "issuer", SETTING_STRING, C, auth.issuer,
                     setting_check_nonempty, "chatd",
                     "the iss of the tokens chatd signs and accepts"),
    SETTING_ENUM_ROW("database", "durability", C, database.durability, durability_names,
                     "full", "SQLite only: full: an acked write survives a power cut; "
                     "process: a crash"),
    SETTING_TEXT_ROW("database", "url", SETTING_STRING, C, database.url, check_database_url,
                     "", "empty: SQLite in data_dir; postgres://user:pass@host:port/db: "
                     "PostgreSQL"),
    SETTING_INT_ROW("bus", "deadletter_max_rows", C, bus.deadletter_max_rows, 1, 100000000,
                    "100000", "dead letters kept; past it the oldest go"),
    SETTING_INT_ROW("bus", "deadletter_max_bytes", C, bus.deadletter_max_bytes, 4096, INT_MAX,
                    "67108864",
                    "bytes of dead letters kept (topic, payload, consumer, error)"),
    SETTING_ENUM_ROW("log", "level", C, log.level, level_names, "info",
                     "the least severe line written"),
    SETTING_ENUM_ROW("log", "format", C, log.json, format_names, "text",
                     "text lines, or json: one object a line"),
    SETTING_TEXT_ROW("log", "file", SETTING_PATH, C, log.file, NULL, "",
                     "empty: stderr; SIGHUP reopens the file"),
};

const struct setting_table config_core_keys = SETTING_TABLE(core_rows, struct chatd_config);

int config_set_listen(struct chatd_config *cfg, const char *hostport)
{
    char buf[8];

    return setting_apply(&core_rows[0], cfg, hostport, buf, sizeof buf) ? -EINVAL : 0;
}
