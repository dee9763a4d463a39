/* Tests for config.c: defaults, every key, every error path. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "chatd/config.h"
#include "chatd/module.h"
#include "chatd/settings.h"
#include "../../src/modules/auth/auth_settings.h"
#include "../../src/modules/message/message_settings.h"
#include "../../src/modules/notification/notif_settings.h"
#include "../../src/modules/websocket/ws_settings.h"
#include "test.h"

/* Each module's values inside a config. */
#define AUTH(c)  auth_settings(&(c))
#define MSG(c)   msg_settings(&(c))
#define NOTIF(c) notif_settings(&(c))
#define WS(c)    ws_settings(&(c))

static int parse(struct chatd_config *cfg, const char *text, char *err, size_t errlen)
{
    config_defaults(cfg);
    err[0] = '\0';
    return config_parse(cfg, "t.conf", text, strlen(text), err, errlen);
}

/* Asserts text fails with exactly msg. */
#define ASSERT_CFG_ERR(text, msg) do {                                    \
        struct chatd_config c_;                                           \
        char e_[512];                                                     \
        ASSERT_EQ(parse(&c_, text, e_, sizeof(e_)), -EINVAL);             \
        ASSERT_STR_EQ(e_, msg);                                           \
    } while (0)

TEST(config_defaults)
{
    struct chatd_config c;
    config_defaults(&c);
    ASSERT_STR_EQ(c.server.listen_host, "127.0.0.1");
    ASSERT_EQ(c.server.listen_port, 8080);
    ASSERT_STR_EQ(c.server.data_dir, "./data");
    ASSERT_EQ(c.server.max_connections, 10000);
    ASSERT_EQ(c.server.max_body_bytes, 65536);
    ASSERT_EQ(c.server.max_header_bytes, 16384);
    ASSERT_EQ(c.server.header_timeout_ms, 10000);
    ASSERT_EQ(c.server.idle_timeout_ms, 60000);
    ASSERT_STR_EQ(c.server.web_dir, "");
    ASSERT_STR_EQ(c.auth.issuer, "chatd");
    ASSERT_EQ(AUTH(c)->access_ttl, 900);
    ASSERT_EQ(AUTH(c)->refresh_ttl, 2592000);
    ASSERT_EQ(AUTH(c)->registration_open, 1);
    ASSERT_STR_EQ(AUTH(c)->key_file, "");
    ASSERT_EQ(c.database.durability, CHATD_DURABILITY_FULL);
    ASSERT_EQ(WS(c)->max_message_bytes, 65536);
    ASSERT_EQ(WS(c)->heartbeat_ms, 30000);
    ASSERT_EQ(WS(c)->send_queue_bytes, 1048576);
    ASSERT_EQ(WS(c)->sync_stall_ms, 30000);
    ASSERT_EQ(MSG(c)->max_body_bytes, 4096);
    ASSERT_STR_EQ(NOTIF(c)->vapid_subject, "mailto:admin@localhost");
    ASSERT_STR_EQ(NOTIF(c)->webhook_url, "");
    ASSERT_EQ(NOTIF(c)->max_attempts, 5);
    ASSERT_EQ(NOTIF(c)->retry_base_ms, 1000);
    ASSERT_EQ(NOTIF(c)->allow_private_endpoints, 0);
    ASSERT_EQ(NOTIF(c)->subscription_max_failures, 10);
    ASSERT_EQ(NOTIF(c)->subscription_failing_ttl, 259200);
    ASSERT_EQ(c.bus.deadletter_max_rows, 100000);
    ASSERT_EQ(c.bus.deadletter_max_bytes, 64 << 20);
    ASSERT(MSG(c)->messages_per_s == 20);
    ASSERT_EQ(MSG(c)->messages_burst, 100);
    ASSERT(WS(c)->typing_per_s == 2);
    ASSERT(WS(c)->connects_per_s == 50);
    ASSERT_EQ(WS(c)->connects_burst, 200);
    ASSERT_EQ(AUTH(c)->registrations_per_min, 10);
    ASSERT_EQ(AUTH(c)->login_failures_per_min, 10);
    ASSERT_EQ(WS(c)->connections_per_user, 100);
    ASSERT_EQ(WS(c)->connections_per_address, 1000);
    ASSERT_EQ(c.log.level, CHATD_LOG_INFO);
    ASSERT_EQ(c.log.json, 0);
    ASSERT_STR_EQ(c.log.file, "");
}

TEST(config_good_file)
{
    struct chatd_config c;
    char err[512];
    const char *text =
        "# a comment\n"
        "\n"
        "[server]\n"
        "  listen = 0.0.0.0:9000   # trailing comment\n"
        "data_dir=/var/lib/chatd\r\n"
        "max_connections = 5\n"
        "web_dir = /srv/web\n"
        "[auth]\n"
        "issuer = example\n"
        "registration = closed\n"
        "key_file =   # empty\n"
        "[notification]\n"
        "webhook_url = https://example.org/hook#frag\n"
        "webhook_secret = a#b\n"
        "allow_private_endpoints = yes\n"
        "[bus]\n"
        "deadletter_max_rows = 50\n"
        "[limits]   # comment after a section\n"
        "messages_per_s = 2.5\n"
        "connections_per_user = 3\n"
        "connections_per_address = 40\n"
        "[log]\n"
        "level = debug\n"
        "format = json\n"
        "file = /tmp/chatd.log\n"
        "level = warn\n";   /* duplicate: last wins */
    ASSERT_EQ(parse(&c, text, err, sizeof(err)), 0);
    ASSERT_STR_EQ(c.server.listen_host, "0.0.0.0");
    ASSERT_EQ(c.server.listen_port, 9000);
    ASSERT_STR_EQ(c.server.data_dir, "/var/lib/chatd");
    ASSERT_EQ(c.server.max_connections, 5);
    ASSERT_STR_EQ(c.server.web_dir, "/srv/web");
    ASSERT_STR_EQ(c.auth.issuer, "example");
    ASSERT_EQ(AUTH(c)->registration_open, 0);
    ASSERT_STR_EQ(AUTH(c)->key_file, "");
    ASSERT_STR_EQ(NOTIF(c)->webhook_url, "https://example.org/hook#frag");
    ASSERT_STR_EQ(NOTIF(c)->webhook_secret, "a#b");
    ASSERT_EQ(NOTIF(c)->allow_private_endpoints, 1);
    ASSERT_EQ(c.bus.deadletter_max_rows, 50);
    ASSERT(MSG(c)->messages_per_s == 2.5);
    ASSERT_EQ(WS(c)->connections_per_user, 3);
    ASSERT_EQ(WS(c)->connections_per_address, 40);
    ASSERT_EQ(c.log.level, CHATD_LOG_WARN);
    ASSERT_EQ(c.log.json, 1);
    ASSERT_STR_EQ(c.log.file, "/tmp/chatd.log");
    /* untouched keys keep their defaults */
    ASSERT_EQ(AUTH(c)->access_ttl, 900);
}

TEST(config_no_trailing_newline)
{
    struct chatd_config c;
    char err[512];
    ASSERT_EQ(parse(&c, "[server]\nmax_connections = 7", err, sizeof(err)), 0);
    ASSERT_EQ(c.server.max_connections, 7);
}

/* The cheaper durability is asked for by name; anything else names the two choices. */
TEST(config_durability)
{
    struct chatd_config c;
    char err[512];
    ASSERT_EQ(parse(&c, "[database]\ndurability = process\n", err, sizeof(err)), 0);
    ASSERT_EQ(c.database.durability, CHATD_DURABILITY_PROCESS);
    ASSERT_EQ(parse(&c, "[database]\ndurability = full\n", err, sizeof(err)), 0);
    ASSERT_EQ(c.database.durability, CHATD_DURABILITY_FULL);
    ASSERT_CFG_ERR("[database]\ndurability = normal\n",
                   "t.conf:2: durability: expected full or process");
    ASSERT_CFG_ERR("[database]\ndurability =\n",
                   "t.conf:2: durability: expected full or process");
    ASSERT_CFG_ERR("[database]\nsynchronous = full\n",
                   "t.conf:2: synchronous: unknown key in [database]");
}

/* A webhook_url the notification module would refuse at start is refused here, so
 * check-config names its line. */
TEST(config_webhook_url)
{
    struct chatd_config c;
    char err[512];
    static const char *const good[] = {
        "", "http://127.0.0.1:9000/hook", "https://example.org", "https://[::1]:8443/h?x=1",
    };
    static const char *const bad[] = {
        "ftp://example.org/hook", "example.org/hook", "https://", "http:///path",
        "https://user:pw@example.org/", "https://:443/", "HTTPS://example.org",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "[notification]\nwebhook_url = %s\n", good[i]);
        ASSERT_EQ(parse(&c, text, err, sizeof(err)), 0);
        ASSERT_STR_EQ(NOTIF(c)->webhook_url, good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "[notification]\nwebhook_url = %s\n", bad[i]);
        ASSERT_CFG_ERR(text, "t.conf:2: webhook_url: expected an http:// or https:// URL");
    }
}

TEST(config_errors)
{
    ASSERT_CFG_ERR("[bogus]\n", "t.conf:1: [bogus]: unknown section");
    ASSERT_CFG_ERR("[server]\nnope = 1\n", "t.conf:2: nope: unknown key in [server]");
    ASSERT_CFG_ERR("[auth]\naccess_ttl = abc\n", "t.conf:2: access_ttl: expected an integer");
    ASSERT_CFG_ERR("[auth]\naccess_ttl = 12x\n", "t.conf:2: access_ttl: expected an integer");
    ASSERT_CFG_ERR("[auth]\naccess_ttl =\n", "t.conf:2: access_ttl: expected an integer");
    ASSERT_CFG_ERR("[server]\nmax_connections = 0\n",
                   "t.conf:2: max_connections: out of range (1 to 1000000)");
    ASSERT_CFG_ERR("[server]\nmax_connections = 99999999999999999999\n",
                   "t.conf:2: max_connections: out of range (1 to 1000000)");
    ASSERT_CFG_ERR("[limits]\nmessages_per_s = -1\n",
                   "t.conf:2: messages_per_s: out of range (0.001 to 1e+06)");
    ASSERT_CFG_ERR("[limits]\nmessages_per_s = fast\n",
                   "t.conf:2: messages_per_s: expected a number");
    ASSERT_CFG_ERR("[auth]\nregistration = maybe\n",
                   "t.conf:2: registration: expected open or closed");
    ASSERT_CFG_ERR("[log]\nlevel = loud\n", "t.conf:2: level: expected debug, info, warn or error");
    ASSERT_CFG_ERR("[log]\nformat = xml\n", "t.conf:2: format: expected text or json");
    ASSERT_CFG_ERR("[server]\nlisten = localhost\n",
                   "t.conf:2: listen: expected host:port or [v6]:port");
    ASSERT_CFG_ERR("[server]\nlisten = 1.2.3.4:70000\n",
                   "t.conf:2: listen: expected host:port or [v6]:port");
    ASSERT_CFG_ERR("[server]\nlisten = ::1:80\n",
                   "t.conf:2: listen: expected host:port or [v6]:port");
    ASSERT_CFG_ERR("[server]\nlisten\n", "t.conf:2: listen: expected key = value");
    ASSERT_CFG_ERR("[server\nlisten = a:1\n", "t.conf:1: [server: unterminated section");
    ASSERT_CFG_ERR("listen = a:1\n", "t.conf:1: listen: key outside a section");
    ASSERT_CFG_ERR("[server]\n = 1\n", "t.conf:2: =: missing key");
    ASSERT_CFG_ERR("[server]\ndata_dir =\n", "t.conf:2: data_dir: must not be empty");
    ASSERT_CFG_ERR("[auth]\nissuer =\n", "t.conf:2: issuer: must not be empty");
    ASSERT_CFG_ERR("[notification]\nvapid_subject =\n",
                   "t.conf:2: vapid_subject: must not be empty");
    ASSERT_CFG_ERR("[notification]\nvapid_subject = admin@example.org\n",
                   "t.conf:2: vapid_subject: expected a mailto: or https:// URI");
    ASSERT_CFG_ERR("[server] x\n", "t.conf:1: [server] x: text after section");
}

TEST(config_overlong_line)
{
    struct chatd_config c;
    char err[512];
    static char text[6000];
    memset(text, 'a', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    ASSERT_EQ(parse(&c, text, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "t.conf:1: line: longer than 4096 bytes");

    /* a value longer than its field */
    static char text2[2000];
    strcpy(text2, "[auth]\nissuer = ");
    memset(text2 + strlen(text2), 'x', 300);
    ASSERT_EQ(parse(&c, text2, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "t.conf:2: issuer: too long");
}

TEST(config_listen_forms)
{
    struct chatd_config c;
    config_defaults(&c);
    ASSERT_EQ(config_set_listen(&c, "[::1]:0"), 0);
    ASSERT_STR_EQ(c.server.listen_host, "::1");
    ASSERT_EQ(c.server.listen_port, 0);
    ASSERT_EQ(config_set_listen(&c, "example.org:443"), 0);
    ASSERT_STR_EQ(c.server.listen_host, "example.org");
    ASSERT_EQ(c.server.listen_port, 443);
    ASSERT_EQ(config_set_listen(&c, "[::1]"), -EINVAL);
    ASSERT_EQ(config_set_listen(&c, "[::1]80"), -EINVAL);
    ASSERT_EQ(config_set_listen(&c, "[]:80"), -EINVAL);
    ASSERT_EQ(config_set_listen(&c, "[1.2.3.4]:80"), -EINVAL);
    ASSERT_EQ(config_set_listen(&c, ":80"), -EINVAL);
    ASSERT_EQ(config_set_listen(&c, "host:"), -EINVAL);
    ASSERT_EQ(config_set_listen(&c, "host:-1"), -EINVAL);
    ASSERT_EQ(config_set_listen(&c, "host:65536"), -EINVAL);
    ASSERT_EQ(config_set_listen(&c, "host:000080"), -EINVAL);
    /* a failed parse leaves the old value */
    ASSERT_STR_EQ(c.server.listen_host, "example.org");
}

TEST(config_load_missing_file)
{
    struct chatd_config c;
    char err[512];
    config_defaults(&c);
    ASSERT_EQ(config_load(&c, "/nonexistent/chatd.conf", err, sizeof(err)), -ENOENT);
    ASSERT(strstr(err, "/nonexistent/chatd.conf") != NULL);
}

/* The chatd.conf shipped at the repository root holds exactly the defaults. */
TEST(config_shipped_file_is_defaults)
{
    struct chatd_config a, b;
    char err[512];
    const char *path = access("chatd.conf", R_OK) == 0 ? "chatd.conf" : "../chatd.conf";
    if (access(path, R_OK) != 0)
        return;   /* run from elsewhere: nothing to compare */
    config_defaults(&a);
    config_defaults(&b);
    ASSERT_EQ(config_load(&b, path, err, sizeof(err)), 0);
    ASSERT(memcmp(&a, &b, sizeof(a)) == 0);
}

TEST(config_bom_and_crlf)
{
    struct chatd_config c;
    char err[512];
    ASSERT_EQ(parse(&c, "\xef\xbb\xbf[log]\r\nlevel = error\r\n", err, sizeof(err)), 0);
    ASSERT_EQ(c.log.level, CHATD_LOG_ERROR);
}

/* ---- the tables: core's and each module's ---- */

struct row_seen {
    const struct setting *rows[256];
    size_t n;
    int bad;
};

static int collect_row(const struct setting *s, void *values, void *arg)
{
    struct row_seen *r = arg;
    if (r->n < sizeof(r->rows) / sizeof(r->rows[0]))
        r->rows[r->n++] = s;
    else
        r->bad = 1;
    return 0;
}

/* Two owners declaring one key would hide one of them: every (section, key) once. */
TEST(config_keys_unique_across_owners)
{
    struct row_seen r = { .n = 0 };
    ASSERT_EQ(config_each_key(NULL, collect_row, &r), 0);
    ASSERT_EQ(r.bad, 0);
    ASSERT_EQ(r.n, 45);   /* the keys chatd.conf lists */
    for (size_t i = 0; i < r.n; i++)
        for (size_t j = i + 1; j < r.n; j++)
            ASSERT(strcmp(r.rows[i]->section, r.rows[j]->section) != 0 ||
                   strcmp(r.rows[i]->key, r.rows[j]->key) != 0);
}

/* Every row is whole: a default its own kind accepts, help, a field of the kind's size. */
static int check_row(const struct setting *s, void *values, void *arg)
{
    char buf[96];
    static unsigned char scratch[CONFIG_MODULE_AREA + sizeof(struct chatd_config)];
    int *bad = arg;

    if (!s->def || !s->help || !s->help[0] || s->offset + s->size > sizeof(scratch) ||
        setting_apply(s, scratch, s->def, buf, sizeof buf) != NULL)
        (*bad)++;
    if ((s->kind == SETTING_INT || s->kind == SETTING_BOOL || s->kind == SETTING_ENUM) &&
        s->size != sizeof(int))
        (*bad)++;
    if (s->kind == SETTING_DOUBLE && s->size != sizeof(double))
        (*bad)++;
    if ((s->kind == SETTING_INT || s->kind == SETTING_DOUBLE) && !(s->min <= s->max))
        (*bad)++;
    if (s->kind == SETTING_ENUM && (!s->names || !s->names[0].name))
        (*bad)++;
    return 0;
}

TEST(config_every_row_is_whole)
{
    int bad = 0;
    config_each_key(NULL, check_row, &bad);
    ASSERT_EQ(bad, 0);
}

/* Each module with keys gets its own struct inside the config, apart from the others;
 * a module without keys gets none; NULL gives the defaults. */
TEST(config_module_settings_apart)
{
    struct chatd_config c;
    config_defaults(&c);
    const unsigned char *lo = c.module_area, *hi = c.module_area + sizeof(c.module_area);
    const void *blocks[] = { AUTH(c), MSG(c), NOTIF(c), WS(c) };
    const size_t sizes[] = { sizeof(struct auth_settings), sizeof(struct msg_settings),
                             sizeof(struct notif_settings), sizeof(struct ws_settings) };
    for (size_t i = 0; i < 4; i++) {
        const unsigned char *b = blocks[i];
        ASSERT(b >= lo && b + sizes[i] <= hi);
        ASSERT_EQ((uintptr_t)b % _Alignof(max_align_t), 0);
        for (size_t j = 0; j < 4; j++) {
            const unsigned char *o = blocks[j];
            ASSERT(i == j || b + sizes[i] <= o || o + sizes[j] <= b);
        }
    }
    extern const struct chatd_module presence_module;
    ASSERT(presence_module.settings == NULL);
    ASSERT(config_module_settings(&c, presence_module.settings) == NULL);
    static const struct setting_table stranger = { NULL, 0, 8 };
    ASSERT(config_module_settings(&c, &stranger) == NULL);
    ASSERT_EQ(ws_settings(NULL)->heartbeat_ms, 30000);
    ASSERT_STR_EQ(notif_settings(NULL)->vapid_subject, "mailto:admin@localhost");
    ASSERT_EQ(auth_settings(NULL)->password_cost, 14);
    ASSERT(msg_settings(NULL)->messages_per_s == 20);
}

/* A shared section ([limits]) takes keys of several owners; each lands in its owner's
 * struct and nowhere else. */
TEST(config_shared_section_reaches_each_owner)
{
    struct chatd_config c;
    char err[512];
    ASSERT_EQ(parse(&c, "[limits]\nmessages_burst = 7\nconnects_burst = 8\n"
                        "registrations_per_min = 9\n", err, sizeof(err)), 0);
    ASSERT_EQ(MSG(c)->messages_burst, 7);
    ASSERT_EQ(WS(c)->connects_burst, 8);
    ASSERT_EQ(AUTH(c)->registrations_per_min, 9);
    ASSERT_EQ(AUTH(c)->login_failures_per_min, 10);
    ASSERT_CFG_ERR("[limits]\nmax_body_bytes = 5\n",
                   "t.conf:2: max_body_bytes: unknown key in [limits]");
}

/* A section may come back; a later key overrides an earlier one, across sections too. */
TEST(config_duplicates_last_wins)
{
    struct chatd_config c;
    char err[512];
    ASSERT_EQ(parse(&c, "[websocket]\nheartbeat_ms = 100\n[server]\nmax_connections = 3\n"
                        "[websocket]\nheartbeat_ms = 200\n[ websocket ]\nsync_stall_ms = 500\n",
                    err, sizeof(err)), 0);
    ASSERT_EQ(WS(c)->heartbeat_ms, 200);
    ASSERT_EQ(WS(c)->sync_stall_ms, 500);
    ASSERT_EQ(c.server.max_connections, 3);
    /* the first bad value stops the file, the line named */
    ASSERT_CFG_ERR("[websocket]\nheartbeat_ms = 100\nheartbeat_ms = 5\n",
                   "t.conf:3: heartbeat_ms: out of range (10 to 3600000)");
}

/* Each module's ranges hold at both ends, as core's do. */
TEST(config_module_ranges_both_ends)
{
    struct chatd_config c;
    char err[512];
    ASSERT_EQ(parse(&c, "[websocket]\nmax_message_bytes = 64\n[auth]\npassword_cost = 20\n"
                        "[notification]\nmax_attempts = 100\n[message]\nmax_body_bytes = 1\n"
                        "[limits]\ntyping_per_s = 0.001\n", err, sizeof(err)), 0);
    ASSERT_EQ(WS(c)->max_message_bytes, 64);
    ASSERT_EQ(AUTH(c)->password_cost, 20);
    ASSERT_EQ(NOTIF(c)->max_attempts, 100);
    ASSERT_EQ(MSG(c)->max_body_bytes, 1);
    ASSERT(WS(c)->typing_per_s == 0.001);
    ASSERT_CFG_ERR("[websocket]\nmax_message_bytes = 63\n",
                   "t.conf:2: max_message_bytes: out of range (64 to 16777216)");
    ASSERT_CFG_ERR("[auth]\npassword_cost = 9\n",
                   "t.conf:2: password_cost: out of range (10 to 20)");
    ASSERT_CFG_ERR("[auth]\npassword_cost = 21\n",
                   "t.conf:2: password_cost: out of range (10 to 20)");
    ASSERT_CFG_ERR("[notification]\nmax_attempts = 101\n",
                   "t.conf:2: max_attempts: out of range (1 to 100)");
    ASSERT_CFG_ERR("[notification]\nallow_private_endpoints = maybe\n",
                   "t.conf:2: allow_private_endpoints: expected yes or no");
    ASSERT_CFG_ERR("[limits]\nconnects_per_s = 1e7\n",
                   "t.conf:2: connects_per_s: out of range (0.001 to 1e+06)");
    ASSERT_CFG_ERR("[bus]\ndeadletter_max_bytes = 2147483648\n",
                   "t.conf:2: deadletter_max_bytes: out of range (4096 to 2147483647)");
}

/* Hostile files: a NUL inside, a line at and past the bound, huge numbers, a section
 * name longer than any, a key that is only blanks. */
TEST(config_hostile_input)
{
    struct chatd_config c;
    char err[512];
    config_defaults(&c);
    ASSERT_EQ(config_parse(&c, "t.conf", "[log]\nlevel = in\0fo\n", 18, err, sizeof(err)),
              -EINVAL);
    ASSERT_STR_EQ(err, "t.conf:2: line: contains a NUL byte");

    static char line[4200];
    memset(line, ' ', 4096);          /* exactly the bound: blanks, so an empty line */
    line[4096] = '\0';
    ASSERT_EQ(parse(&c, line, err, sizeof(err)), 0);
    memset(line, ' ', 4097);
    line[4097] = '\0';
    ASSERT_CFG_ERR(line, "t.conf:1: line: longer than 4096 bytes");

    ASSERT_CFG_ERR("[limits]\nmessages_per_s = 1e999999\n",
                   "t.conf:2: messages_per_s: expected a number");
    ASSERT_CFG_ERR("[auth]\naccess_ttl = -99999999999999999999999999\n",
                   "t.conf:2: access_ttl: out of range (1 to 604800)");
    char sec[300] = "[";
    memset(sec + 1, 's', 200);
    strcpy(sec + 201, "]\n");
    ASSERT_EQ(parse(&c, sec, err, sizeof(err)), -EINVAL);
    ASSERT(strstr(err, ": unknown section") != NULL);
    ASSERT_CFG_ERR("[server]\n \t = 1\n", "t.conf:2: =: missing key");
    /* a long value in a short field: refused, the field untouched and terminated */
    char val[1200] = "[notification]\nwebhook_secret = ";
    memset(val + strlen(val), 'k', 1000);
    ASSERT_EQ(parse(&c, val, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "t.conf:2: webhook_secret: too long");
    ASSERT_STR_EQ(NOTIF(c)->webhook_secret, "");
}

/* --help-config prints every key once, under its section, at its default: read back,
 * its text is the defaults. */
TEST(config_help_is_a_config_of_the_defaults)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ASSERT(f != NULL);
    config_print_help(f);
    fclose(f);
    struct chatd_config a, b;
    char err[512];
    config_defaults(&a);
    config_defaults(&b);
    int rc = config_parse(&b, "help", text, len, err, sizeof(err));
    int keys = 0;
    for (const char *p = text; (p = strstr(p, "\n")) != NULL; p++)
        if (p[1] && p[1] != '#' && p[1] != '[' && p[1] != '\n')
            keys++;
    int has_range = strstr(text, "# seconds an access token is valid (integer, 1 to 604800)\n"
                                 "access_ttl = 900\n") != NULL;
    free(text);
    ASSERT_EQ(rc, 0);
    ASSERT(memcmp(&a, &b, sizeof(a)) == 0);
    ASSERT_EQ(keys, 45);
    ASSERT(has_range);
}
