/* Tests for cli.c: options anywhere, verbs, flags over the file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../../src/core/cli.h"
#include "../../src/modules/auth/auth_internal.h"
#include "test.h"

TEST(cli_options_and_verb)
{
    char *argv[] = { "chatd", "backup", "/tmp/x.db", "-c", "/etc/chatd.conf",
                     "--data-dir=/var/lib/chatd", "--", "-literal", NULL };
    struct cli_opts o;
    ASSERT_EQ(cli_parse(8, argv, &o), CLI_OK);
    int ok = o.vargc == 3 && strcmp(o.vargv[0], "backup") == 0 &&
             strcmp(o.vargv[1], "/tmp/x.db") == 0 && strcmp(o.vargv[2], "-literal") == 0 &&
             o.vargv[3] == NULL && o.config && strcmp(o.config, "/etc/chatd.conf") == 0 &&
             o.data_dir && strcmp(o.data_dir, "/var/lib/chatd") == 0 && !o.listen;
    free(o.vargv);
    ASSERT(ok);
}

TEST(cli_server_flags)
{
    char *argv[] = { "chatd", "--listen", "[::1]:0", NULL };
    struct cli_opts o;
    ASSERT_EQ(cli_parse(3, argv, &o), CLI_OK);
    ASSERT_EQ(o.vargc, 0);
    ASSERT_STR_EQ(o.listen, "[::1]:0");
    free(o.vargv);
}

TEST(cli_errors)
{
    struct cli_opts o;
    char *a1[] = { "chatd", "--nope", NULL };
    char *a2[] = { "chatd", "--listen", NULL };
    /* usage goes to stderr; silence it for the test output */
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w");
    int r1 = cli_parse(2, a1, &o);
    int r2 = cli_parse(2, a2, &o);
    fclose(stderr);
    stderr = saved;
    ASSERT_EQ(r1, CLI_USAGE);
    ASSERT_EQ(r2, CLI_USAGE);
}

TEST(cli_flags_override_file)
{
    char path[128], err[512];
    struct chatd_config c, c2;
    snprintf(path, sizeof(path), "/tmp/chatd-test-cli-%d.conf", (int)getpid());
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs("[server]\nlisten = 10.0.0.1:1234\ndata_dir = /from/file\nmax_connections = 3\n", f);
    fclose(f);
    struct cli_opts o = { .config = path, .listen = "127.0.0.1:0" };
    int rc = cli_load_config(&o, &c, err, sizeof(err));
    struct cli_opts bad = { .config = path, .listen = "nonsense" };
    int rc_bad = cli_load_config(&bad, &c2, err, sizeof(err));
    unlink(path);
    ASSERT_EQ(rc, 0);
    ASSERT_STR_EQ(c.server.listen_host, "127.0.0.1");
    ASSERT_EQ(c.server.listen_port, 0);
    ASSERT_STR_EQ(c.server.data_dir, "/from/file");
    ASSERT_EQ(c.server.max_connections, 3);
    ASSERT_EQ(rc_bad, -EINVAL);
    struct cli_opts missing = { .config = "/nonexistent/chatd.conf" };
    ASSERT_EQ(cli_load_config(&missing, &c2, err, sizeof(err)), -ENOENT);
}

TEST(cli_verb_keeps_its_own_options)
{
    struct cli_opts o;
    char *argv[] = { "chatd", "dlq", "replay", "--all", "--data-dir", "/tmp/d", NULL };
    ASSERT_EQ(cli_parse(6, argv, &o), CLI_OK);
    int ok = o.vargc == 3 && strcmp(o.vargv[2], "--all") == 0 && o.data_dir &&
             strcmp(o.data_dir, "/tmp/d") == 0;
    free(o.vargv);
    ASSERT(ok);
}

/* check-config looks at the files the configuration names, as a start would; other
 * verbs do not (keygen creates the configured key_file). */
TEST(cli_check_config_opens_named_files)
{
    static const struct { const char *text, *err; } cases[] = {
        { "[auth]\nkey_file = /nonexistent/jwt.pem\n",
          ": key_file: /nonexistent/jwt.pem: No such file or directory" },
        { "[notification]\nca_file = /nonexistent/ca.pem\n",
          ": ca_file: /nonexistent/ca.pem: No such file or directory" },
        { "[log]\nfile = /nonexistent/dir/chatd.log\n",
          ": file: /nonexistent/dir: No such file or directory" },
    };
    char path[128], err[512];
    char *check[] = { "check-config", NULL }, *keygen[] = { "keygen", NULL };
    struct chatd_config c;

    snprintf(path, sizeof(path), "/tmp/chatd-test-cli-files-%d.conf", (int)getpid());
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        FILE *f = fopen(path, "w");
        ASSERT(f != NULL);
        fputs(cases[i].text, f);
        fclose(f);
        struct cli_opts o = { .config = path, .vargc = 1, .vargv = check };
        struct cli_opts k = { .config = path, .vargc = 1, .vargv = keygen };
        err[0] = '\0';
        int rc = cli_load_config(&o, &c, err, sizeof(err));
        int rc_keygen = cli_load_config(&k, &c, err + 256, sizeof(err) - 256);
        unlink(path);
        ASSERT_EQ(rc, -ENOENT);
        ASSERT(strncmp(err, path, strlen(path)) == 0);
        ASSERT_STR_EQ(err + strlen(path), cases[i].err);
        ASSERT_EQ(rc_keygen, 0);
    }
    /* A key file that opens but holds no key fails as the start would; a real one
     * passes. */
    char key[128];
    snprintf(key, sizeof(key), "/tmp/chatd-test-cli-key-%d.pem", (int)getpid());
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fprintf(f, "[auth]\nkey_file = %s\n[log]\nfile = /tmp/chatd.log\n", path);
    fclose(f);
    struct cli_opts o = { .config = path, .vargc = 1, .vargv = check };
    int rc = cli_load_config(&o, &c, err, sizeof(err));
    ASSERT_EQ(rc, -EINVAL);
    ASSERT(strstr(err, ": key_file: ") && strstr(err, "not a PEM private key"));
    unlink(key);
    ASSERT_EQ(auth_key_generate(key, 2048, err, sizeof(err)), 0);
    f = fopen(path, "w");
    ASSERT(f != NULL);
    fprintf(f, "[auth]\nkey_file = %s\n[log]\nfile = /tmp/chatd.log\n", key);
    fclose(f);
    rc = cli_load_config(&o, &c, err, sizeof(err));
    unlink(path);
    unlink(key);
    ASSERT_EQ(rc, 0);
}
