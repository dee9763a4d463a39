/* cli.c: `chatd keygen [FILE]` and `chatd user add NAME`. They run with the config,
 * the log and an open database (SQLite or PostgreSQL: the store of its engine) but no
 * loop, so they may block. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "chatd/config.h"
#include "chatd/db.h"
#include "chatd/module.h"
#include "chatd/util.h"
#include "auth_internal.h"

static int cmd_keygen(struct chatd *app, int argc, char **argv)
{
    char path[CFG_PATH_MAX + 16], err[512];
    struct auth_key k;

    if (argc > 2) {
        fprintf(stderr, "usage: chatd keygen [FILE]\n");
        return 2;
    }
    /* On PostgreSQL, without key_file, the server's key is the one in the database: a
     * <data_dir>/jwt.pem made here would never be read. */
    if (argc == 1 && !auth_settings(app->cfg)->key_file[0] && app->db &&
        db_engine(app->db) == DB_ENGINE_PG) {
        fprintf(stderr, "chatd: keygen: on PostgreSQL the signing key is kept in the database"
                " (made by the first start); to sign with a key file, give FILE and set"
                " [auth] key_file to it\n");
        return 1;
    }
    if (argc == 2)
        snprintf(path, sizeof path, "%s", argv[1]);
    else if (auth_key_path(app->cfg, path, sizeof path) < 0) {
        fprintf(stderr, "chatd: key path too long\n");
        return 1;
    }
    if (auth_key_generate(path, AUTH_KEY_BITS, err, sizeof err) < 0 ||
        auth_key_load(&k, path, err, sizeof err) < 0) {
        fprintf(stderr, "chatd: keygen: %s\n", err);
        return 1;
    }
    printf("wrote %s (RSA %d bits, mode 0600) kid=%s\n", path, k.bits, k.kid);
    auth_key_free(&k);
    return 0;
}

/* One line from stdin, without its line end. Returns the length, -1 for nothing
 * read, -2 for a line too long. On a terminal it asks, and does not echo. */
static long read_password(char *buf, size_t cap)
{
    struct termios old, quiet;
    int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    char *got;
    size_t n;

    if (tty) {
        fputs("password: ", stderr);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    got = fgets(buf, (int)cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (!got)
        return -1;
    n = strlen(buf);
    if (n == cap - 1 && buf[n - 1] != '\n')
        return -2;                       /* longer than any allowed password */
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return (long)n;
}

static int cmd_user_add(struct chatd *app, int argc, char **argv)
{
    char name[AUTH_USERNAME_MAX + 1], hash[AUTH_PWHASH_MAX];
    char pw[AUTH_PASSWORD_MAX + 3];
    const char *why;
    struct auth_store store = { 0 };
    struct db_conn *conn;
    int64_t id;
    long len;
    int rc = 1, err;

    if (argc != 3) {
        fprintf(stderr, "usage: chatd user add NAME  (the password is read from stdin)\n");
        return 2;
    }
    if (auth_username_normalize(argv[2], name, &why) < 0) {
        fprintf(stderr, "chatd: %s\n", why);
        return 1;
    }
    len = read_password(pw, sizeof pw);
    if (len == -1) {
        fprintf(stderr, "chatd: no password on stdin\n");
        return 1;
    }
    if (len < 0 || auth_password_check(pw, (size_t)len, &why) < 0) {
        fprintf(stderr, "chatd: %s\n", len < 0 ? "password must be 8 to 1024 bytes" : why);
        goto out;
    }
    if (auth_store_open(&store, app->db) < 0 || !(conn = db_conn_for_cli(app->db))) {
        fprintf(stderr, "chatd: cannot open the database\n");
        goto out;
    }
    if (auth_password_hash(pw, (size_t)len, auth_settings(app->cfg)->password_cost, hash,
                           sizeof hash) < 0) {
        fprintf(stderr, "chatd: cannot hash the password\n");
        goto out;
    }
    err = auth_store_user_insert(&store, conn, name, hash, now_ms(), &id);
    if (err == -ECONSTRAINT) {
        fprintf(stderr, "chatd: user %s already exists\n", name);
    } else if (err < 0) {
        fprintf(stderr, "chatd: cannot store the user: %s\n", strerror(-err));
    } else {
        printf("%lld\n", (long long)id);
        rc = 0;
    }
out:
    auth_store_free(&store);
    OPENSSL_cleanse(pw, sizeof pw);
    return rc;
}

const struct chatd_command auth_commands[] = {
    { "keygen", "keygen [FILE]           make an RSA key for signing access tokens",
      cmd_keygen },
    { "user add", "user add NAME           create a user; the password is read from stdin",
      cmd_user_add },
    { NULL, NULL, NULL },
};
