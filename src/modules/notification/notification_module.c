/* notification_module.c: the notification module's descriptor and lifecycle.
 *
 * init:    the VAPID key (<data_dir>/vapid.pem, or kept in the database on PostgreSQL;
 *          made on first start), core's HTTP client (CA bundle + ca_file, kept-alive
 *          connections), the store (notification_store.h) and its tables.
 * start:   routes; presence.changed (online set); message.stored (fan-out, a consumer
 *          with retries); notification.requested (two consumers: push and webhook,
 *          each retried with backoff and dead-lettered under its own name).
 * drain:   drain.c: lets deliveries in flight finish for a while, then cancels the
 *          rest (the bus retries or dead-letters them as with any failure).
 * See fanout.c, push.c and webhook.c for the flow of one notification. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "chatd/config.h"
#include "chatd/db.h"
#include "chatd/events.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/module.h"
#include "chatd/util.h"
#include "notification_internal.h"

#define NOTIF_SUBSCRIBERS_MAX (1u << 20)

static void metrics_init(struct notif *n)
{
    struct metrics *m = n->app->metrics;
    static const char *name = "chatd_notifications_total";
    static const char *help = "Notification deliveries by channel and result";
    n->m.push_ok = metrics_counter(m, name, "channel=\"push\",result=\"ok\"", help);
    n->m.push_gone = metrics_counter(m, name, "channel=\"push\",result=\"gone\"", help);
    n->m.push_failed = metrics_counter(m, name, "channel=\"push\",result=\"failed\"", help);
    n->m.push_skipped = metrics_counter(m, name, "channel=\"push\",result=\"skipped\"", help);
    n->m.webhook_ok = metrics_counter(m, name, "channel=\"webhook\",result=\"ok\"", help);
    n->m.webhook_failed = metrics_counter(m, name, "channel=\"webhook\",result=\"failed\"",
                                          help);
}

static double pending_gauge(void *ctx)
{
    struct notif *n = ctx;
    return n->out ? (double)http_client_pending(n->out) : 0;
}

static int load_vapid_file(struct notif *n, char *err, size_t errlen)
{
    char path[CFG_PATH_MAX + 16];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", n->app->cfg->server.data_dir, VAPID_KEY_NAME);
    int rc = vapid_load_or_create(path, &n->vapid, err, errlen);
    /* Whoever reads it can push to every subscribed browser in this server's name.
     * Made 0600; one found looser was copied in or chmodded by hand: said, not changed,
     * as for the signing key. */
    if (rc == 0 && stat(path, &st) == 0 && (st.st_mode & 077))
        LOG_WARN(n->app, NOTIF_MOD, "VAPID key is readable by others path=%s mode=%03o",
                 path, (unsigned)(st.st_mode & 0777));
    return rc;
}

static int load_vapid(struct notif *n)
{
    char err[512];
    uint8_t pub[ECE_KEY_LEN];
    int rc = db_engine(n->app->db) == DB_ENGINE_PG
                 ? vapid_keep_in_db(n->app->db, &n->vapid, err, sizeof(err))
                 : load_vapid_file(n, err, sizeof(err));
    if (rc < 0) {
        LOG_ERROR(n->app, NOTIF_MOD, "VAPID key: %s", err);
        return rc;
    }
    if ((rc = vapid_public_raw(n->vapid, pub)) < 0)
        return rc;
    base64url_encode(pub, sizeof(pub), n->vapid_pub_b64);
    return 0;
}

static int check_config(struct notif *n)
{
    const struct notif_settings *ns = notif_settings(n->app->cfg);
    char origin[1100];
    if (ns->webhook_url[0] &&
        vapid_origin(ns->webhook_url, origin, sizeof(origin)) < 0) {
        LOG_ERROR(n->app, NOTIF_MOD, "webhook_url must be an http:// or https:// URL url=%s",
                  ns->webhook_url);
        return -EINVAL;
    }
    const char *sub = ns->vapid_subject;
    if (strncmp(sub, "mailto:", 7) != 0 && strncmp(sub, "https://", 8) != 0)
        LOG_WARN(n->app, NOTIF_MOD, "vapid_subject should be a mailto: or https: URI "
                 "(RFC 8292) subject=%s", sub);
    if (ns->webhook_url[0] && !ns->webhook_secret[0])
        LOG_WARN(n->app, NOTIF_MOD, "webhook_url without webhook_secret: signatures use "
                 "an empty key");
    return 0;
}

static int notification_init(struct chatd *app, void **state)
{
    const struct chatd_config *cfg = app->cfg;
    const struct notif_settings *ns = notif_settings(cfg);
    char err[512];
    struct notif *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->app = app;
    size_t online_max = 2 * (size_t)(cfg->server.max_connections > 512
                                     ? cfg->server.max_connections : 512);
    struct http_client_opts opts = {
        .ca_file = ns->ca_file, .max_inflight = NOTIF_MAX_INFLIGHT,
        .max_queued = NOTIF_MAX_QUEUED, .max_conns_per_origin = NOTIF_CONNS_PER_ORIGIN,
        .connect_timeout_ms = NOTIF_CONNECT_TIMEOUT_MS,
        .response_timeout_ms = NOTIF_RESPONSE_TIMEOUT_MS,
        .max_idle_per_origin = NOTIF_IDLE_PER_ORIGIN, .max_idle = NOTIF_IDLE_MAX,
        .idle_timeout_ms = NOTIF_IDLE_TIMEOUT_MS, .max_body_bytes = NOTIF_MAX_ANSWER_BODY,
    };
    int rc;
    if ((rc = check_config(n)) < 0 || (rc = load_vapid(n)) < 0)
        goto fail;
    if ((rc = http_client_new(&n->out, app, &opts, err, sizeof(err))) < 0) {
        LOG_ERROR(app, NOTIF_MOD, "%s", err);
        goto fail;
    }
    if ((rc = idset_init(&n->online, 1024, online_max)) < 0 ||
        (rc = idset_init(&n->subscribers, 1024, NOTIF_SUBSCRIBERS_MAX)) < 0 ||
        (rc = idset_init(&n->failures, 64, NOTIF_FAILURES_MAX)) < 0 ||
        (rc = subs_store_open(n)) < 0)
        goto fail;
    metrics_init(n);
    metrics_gauge_fn(app->metrics, "chatd_notification_requests_pending", NULL,
                     "Outbound push and webhook requests in flight or waiting",
                     pending_gauge, n);
    *state = n;
    return 0;
fail:
    notification_store_free(&n->store);
    http_client_free(n->out);
    EVP_PKEY_free(n->vapid);
    idset_free(&n->online);
    idset_free(&n->subscribers);
    idset_free(&n->failures);
    free(n);
    return rc;
}

static int notification_start(void *state)
{
    struct notif *n = state;
    const struct notif_settings *ns = notif_settings(n->app->cfg);
    struct bus *b = n->app->bus;
    struct bus_sub_opts presence = { .consumer = "notification.presence" };
    struct bus_sub_opts fanout = { .consumer = "notification.fanout",
                                   .max_attempts = ns->max_attempts,
                                   .retry_base_ms = ns->retry_base_ms };
    struct bus_sub_opts push = fanout, webhook = fanout;
    push.consumer = "notification.push";
    push.dead_letter = push_dead_letter;
    webhook.consumer = "notification.webhook";
    int rc;
    if ((rc = notif_routes_add(n)) < 0 ||
        (rc = bus_subscribe(b, TOPIC_PRESENCE_CHANGED, &presence, notif_on_presence, n)) < 0 ||
        (rc = bus_subscribe(b, TOPIC_MESSAGE_STORED, &fanout, notif_on_message_stored, n)) < 0 ||
        (rc = bus_subscribe(b, TOPIC_NOTIFICATION_REQUESTED, &push, push_on_request, n)) < 0 ||
        (rc = bus_subscribe(b, TOPIC_NOTIFICATION_REQUESTED, &webhook, webhook_on_request,
                            n)) < 0)
        return rc;
    if ((rc = subs_health_start(n)) < 0)
        return rc;
    if ((rc = subs_load_subscribers(n)) < 0)
        LOG_WARN(n->app, NOTIF_MOD, "cannot load subscribers err=%d", rc);
    LOG_INFO(n->app, NOTIF_MOD, "ready webhook=%s", ns->webhook_url[0]
                                                     ? ns->webhook_url : "off");
    return 0;
}

static void notification_drain(void *state, void (*done)(void *))
{
    struct notif *n = state;
    subs_health_stop(n);
    notif_drain_start(n, done);
}

static void notification_destroy(void *state)
{
    struct notif *n = state;
    if (!n)
        return;
    http_client_free(n->out);
    EVP_PKEY_free(n->vapid);
    idset_free(&n->online);
    idset_free(&n->subscribers);
    idset_free(&n->failures);
    notification_store_free(&n->store);
    free(n);
}

/* vapid.pem: a file in data_dir on SQLite, kept in the database on PostgreSQL. */
static const char *const kept_keys[] = { VAPID_KEY_NAME, NULL };

const struct chatd_module notification_module = {
    .settings = &notif_settings_table,
    .name = "notification", .init = notification_init, .start = notification_start,
    .drain = notification_drain, .destroy = notification_destroy,
    .kept_keys = kept_keys, .migrate = subs_store_migrate,
};
