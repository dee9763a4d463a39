/* auth_settings.c: the auth module's keys, one row each. */
#include "auth_settings.h"

#define A struct auth_settings

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
    SETTING_TEXT_ROW("auth", "key_file", SETTING_FILE, A, key_file, NULL, "",
                     "the RSA signing key; empty: <data_dir>/jwt.pem, made on first start"),
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
