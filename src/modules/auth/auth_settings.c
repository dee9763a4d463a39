/* auth_settings.c: the auth module's keys, one row each, and what they name. */
#include <errno.h>
#include <stdio.h>

#include "auth_internal.h"
#include "auth_settings.h"

#define A struct auth_settings

/* check-config reads the key as the start will: a file that is there but is no
 * usable RSA key fails it too. */
static int key_file_check(const char *path, char *err, size_t errlen)
{
    struct auth_key k;
    int rc = auth_key_load(&k, path, err, errlen);

    if (rc == 0)
        auth_key_free(&k);
    return rc;
}

static const struct setting_name registration_names[] = {
    { "open", 1 }, { "closed", 0 }, { NULL, 0 },
};

/* Lower bounds are low enough for tests (a 1 s token). */
static const struct setting rows[] = {
    SETTING_INT_ROW("auth", "access_ttl", A, access_ttl, 1, 86400 * 7, "900",
                    "seconds an access token is valid"),
    SETTING_INT_ROW("auth", "refresh_ttl", A, refresh_ttl, 1, 86400 * 3650, "2592000",
                    "seconds a refresh token is valid"),
    SETTING_ENUM_ROW("auth", "registration", A, registration_open, registration_names, "open",
                     "closed: only `chatd user add` makes accounts"),
    SETTING_INT_ROW("auth", "password_cost", A, password_cost, 10, 20, "14",
                    "scrypt cost, log2 of N: each step doubles a hash's time and memory"),
    SETTING_FILE_ROW("auth", "key_file", A, key_file, key_file_check, "",
                     "the RSA signing key; empty: <data_dir>/jwt.pem (on PostgreSQL: kept in the"
                     " database), made on first start"),
    SETTING_INT_ROW("limits", "registrations_per_min", A, registrations_per_min, 1, 1000000,
                    "10", "registrations per client address"),
    SETTING_INT_ROW("limits", "login_failures_per_min", A, login_failures_per_min, 1, 1000000,
                    "10", "failed logins per client address, username and both; then 429"),
};

const struct setting_table auth_settings_table = SETTING_TABLE(rows, struct auth_settings);

const struct auth_settings *auth_settings(const struct chatd_config *cfg)
{
    return config_module_settings(cfg, &auth_settings_table);
}

int auth_key_path(const struct chatd_config *cfg, char *out, size_t outlen)
{
    const char *key_file = auth_settings(cfg)->key_file;
    int n;
    if (key_file[0])
        n = snprintf(out, outlen, "%s", key_file);
    else
        n = snprintf(out, outlen, "%s/jwt.pem", cfg->server.data_dir);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}
