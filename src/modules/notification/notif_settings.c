/* notif_settings.c: the notification module's keys, one row each, and the rules its
 * two URLs follow. */
#include <string.h>
#include "notif_settings.h"
#include "chatd/http_client.h"

#define N struct notif_settings

/* Push services refuse a VAPID subject that is not a mailto: or https: URI (RFC 8292,
 * 2.1), so a start with one would only fail later, at every push. */
static const char *check_vapid_subject(const char *v)
{
    if (*v == '\0')
        return "must not be empty";
    if (strncmp(v, "mailto:", 7) != 0 && strncmp(v, "https://", 8) != 0)
        return "expected a mailto: or https:// URI";
    return NULL;
}

/* Empty, or http:// or https:// and a host, without user:password@: the module refuses
 * anything else at start, so check-config refuses it too, naming the line. */
static const char *check_webhook_url(const char *v)
{
    static const char *const bad = "expected an http:// or https:// URL";
    const char *host;

    if (*v == '\0')
        return NULL;
    if (strncmp(v, "https://", 8) == 0)
        host = v + 8;
    else if (strncmp(v, "http://", 7) == 0)
        host = v + 7;
    else
        return bad;
    size_t n = strcspn(host, "/?#");
    return n > 0 && *host != ':' && !memchr(host, '@', n) ? NULL : bad;
}

static const struct setting rows[] = {
    SETTING_TEXT_ROW("notification", "vapid_subject", SETTING_STRING, N, vapid_subject,
                     check_vapid_subject, "mailto:admin@localhost",
                     "who the push services can contact: mailto: or https://"),
    SETTING_TEXT_ROW("notification", "webhook_url", SETTING_STRING, N, webhook_url,
                     check_webhook_url, "",
                     "empty: no webhook; else an http:// or https:// URL"),
    SETTING_TEXT_ROW("notification", "webhook_secret", SETTING_STRING, N, webhook_secret,
                     NULL, "", "the HMAC key for X-Chatd-Signature"),
    SETTING_FILE_ROW("notification", "ca_file", N, ca_file, http_client_check_ca_file, "",
                     "extra CA bundle (PEM) trusted for outbound HTTPS"),
    SETTING_INT_ROW("notification", "max_attempts", N, max_attempts, 1, 100, "5",
                    "attempts per delivery, the first included"),
    SETTING_INT_ROW("notification", "retry_base_ms", N, retry_base_ms, 1, 3600000, "1000",
                    "the first retry's delay; it doubles from here"),
    SETTING_BOOL_ROW("notification", "allow_private_endpoints", N, allow_private_endpoints,
                     "no", "yes: push endpoints may be loopback or private addresses"),
    SETTING_INT_ROW("notification", "subscription_max_failures", N, subscription_max_failures,
                    1, 1000000, "10",
                    "push failures in a row: no more retries or dead letters for it"),
    SETTING_INT_ROW("notification", "subscription_failing_ttl", N, subscription_failing_ttl,
                    1, 86400 * 3650, "259200",
                    "seconds failing, then the subscription is dropped"),
};

const struct setting_table notif_settings_table = SETTING_TABLE(rows, struct notif_settings);

const struct notif_settings *notif_settings(const struct chatd_config *cfg)
{
    return config_module_settings(cfg, &notif_settings_table);
}
