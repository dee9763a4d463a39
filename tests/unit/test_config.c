/* Tests for config.c: defaults, every key, every error path. */
#include <errno.h>
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
