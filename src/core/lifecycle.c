/* lifecycle.c: start-up, run and teardown of the server, and the command-line verbs
 * run with an open database.
 *
 * Start: config -> log -> metrics -> bus -> db -> http -> modules' init -> db writer ->
 * bus -> modules' start -> listen. Stop (SIGTERM/SIGINT, lifecycle_stop.c): /readyz
 * turns 503, the listener closes, the bus carries server.draining; once it is
 * dispatched, modules drain one after the other in reverse table order, then http,
 * bus and db close and modules are destroyed. A drain that takes longer than
 * DRAIN_DEADLINE_MS ends the process with status 1. The process's own metrics are
 * process_metrics.c's. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "chatd/chatd.h"
#include "chatd/bus.h"
#include "chatd/db.h"
#include "chatd/events.h"
#include "chatd/http.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/module.h"
#include "chatd/sdnotify.h"
#include "chatd/token.h"
#include "chatd/util.h"
#include "lifecycle.h"
#include "lifecycle_internal.h"

/* --- start ------------------------------------------------------------------------ */

static int start_fail(struct lifecycle *lc, const char *what, int rc)
{
    /* libuv's errors are negative errno values on Unix, like ours. */
    const char *why = rc == -ECONSTRAINT ? "constraint failed"
                    : (rc < 0 && rc > -1000) ? strerror(-rc) : "unknown error";
    fprintf(stderr, "chatd: %s failed: %s\n", what, why);
    if (lc->app.log)
        LOG_ERROR(&lc->app, "core", "start failed step=\"%s\" error=\"%s\"", what, why);
    return rc < 0 ? rc : -EIO;
}

static int start_signals(struct lifecycle *lc)
{
    uv_signal_t *sig[] = { &lc->sig_term, &lc->sig_int, &lc->sig_hup };
    int num[] = { SIGTERM, SIGINT, SIGHUP };
    int rc;

    for (int i = 0; i < 3; i++) {
        if ((rc = uv_signal_init(&lc->loop, sig[i])) < 0)
            return start_fail(lc, "signals", rc);
        sig[i]->data = lc;
        rc = uv_signal_start(sig[i], num[i] == SIGHUP ? lifecycle_on_hup
                                                      : lifecycle_on_stop_signal, num[i]);
        if (rc < 0)
            return start_fail(lc, "signals", rc);
        /* Signals alone must not keep the loop alive once everything else closed. */
        uv_unref((uv_handle_t *)sig[i]);
    }
    return 0;
}

/* The watchdog ping runs on the loop, so a loop that hangs stops pinging and systemd
 * restarts the process. */
static void watchdog_ping(uv_timer_t *t)
{
    sd_notify_send("WATCHDOG=1");
}

static int start_timers(struct lifecycle *lc)
{
    uint64_t wd = sd_watchdog_interval_ms();
    int rc;

    if ((rc = uv_timer_init(&lc->loop, &lc->drain_timer)) < 0 ||
        (rc = uv_timer_init(&lc->loop, &lc->lag_timer)) < 0 ||
        (rc = uv_timer_init(&lc->loop, &lc->watchdog_timer)) < 0 ||
        (rc = uv_timer_init(&lc->loop, &lc->drain_start)) < 0)
        return start_fail(lc, "timers", rc);
    lc->drain_timer.data = lc->lag_timer.data = lc->watchdog_timer.data = lc;
    lc->drain_start.data = lc;
    uv_unref((uv_handle_t *)&lc->lag_timer);
    if (wd > 0) {
        uv_timer_start(&lc->watchdog_timer, watchdog_ping, wd / 2 ? wd / 2 : 1,
                       wd / 2 ? wd / 2 : 1);
        uv_unref((uv_handle_t *)&lc->watchdog_timer);
    }
    return 0;
}

/* [database] url set: PostgreSQL; else SQLite in data_dir. */
static int open_database(struct chatd *app)
{
    char path[CFG_PATH_MAX + 16];

    if (app->cfg->database.url[0])
        return db_open_url(&app->db, app, app->cfg->database.url);
    snprintf(path, sizeof(path), "%s/chatd.db", app->cfg->server.data_dir);
    return db_open(&app->db, app, path);
}

static int start_core(struct lifecycle *lc)
{
    struct chatd *app = &lc->app;
    char what[CFG_PATH_MAX + 128];
    int rc;

    if ((rc = config_check_dirs(app->cfg, what, sizeof(what))) < 0) {
        fprintf(stderr, "chatd: %s\n", what);   /* "web_dir: /x: No such file or ..." */
        LOG_ERROR(app, "core", "start failed error=\"%s\"", what);
        return rc;
    }
    if ((rc = metrics_new(&app->metrics)) < 0)
        return start_fail(lc, "metrics", rc);
    lifecycle_metrics_register(lc);
    if ((rc = bus_new(&app->bus, app)) < 0)
        return start_fail(lc, "bus", rc);
    if ((rc = bus_subscribe(app->bus, TOPIC_SERVER_DRAINING, NULL, lifecycle_on_draining,
                             lc)) < 0)
        return start_fail(lc, "bus", rc);
    /* db_open_url says why itself, in libpq's words (strerror would only say
     * "Transport endpoint is not connected"). */
    if ((rc = open_database(app)) < 0)
        return app->cfg->database.url[0] ? rc : start_fail(lc, "database open", rc);
    if ((rc = http_server_new(&app->http, app)) < 0)
        return start_fail(lc, "http server", rc);
    return 0;
}

static int start_modules(struct lifecycle *lc)
{
    struct chatd *app = &lc->app;
    char what[96];
    int rc;

    for (lc->ninit = 0; lc->ninit < chatd_module_count; lc->ninit++) {
        const struct chatd_module *mod = chatd_modules[lc->ninit];
        if (mod->init && (rc = mod->init(app, &app->module_states[lc->ninit])) < 0) {
            snprintf(what, sizeof(what), "module %s init", mod->name);
            return start_fail(lc, what, rc);
        }
    }
    if ((rc = db_start(app->db)) < 0)
        return start_fail(lc, "database writer", rc);
    if ((rc = bus_start(app->bus)) < 0)
        return start_fail(lc, "bus start", rc);
    if ((rc = gateway_tokens_subscribe(app)) < 0)
        return start_fail(lc, "token keys", rc);
    for (size_t i = 0; i < chatd_module_count; i++) {
        const struct chatd_module *mod = chatd_modules[i];
        if (mod->start && (rc = mod->start(app->module_states[i])) < 0) {
            snprintf(what, sizeof(what), "module %s start", mod->name);
            return start_fail(lc, what, rc);
        }
        lc->nstarted = i + 1;
    }
    return 0;
}

static int start_listening(struct lifecycle *lc)
{
    char bound[300];
    int rc = http_server_listen(lc->app.http, bound, sizeof(bound));

    if (rc < 0) {
        char what[300];
        snprintf(what, sizeof(what), "listen on %s:%d", lc->app.cfg->server.listen_host,
                 lc->app.cfg->server.listen_port);
        return start_fail(lc, what, rc);
    }
    printf("chatd listening on http://%s\n", bound);
    fflush(stdout);
    sd_notify_send("READY=1");
    LOG_INFO(&lc->app, "core", "listening addr=%s version=%s", bound, CHATD_VERSION);
    return 0;
}

/* --- teardown --------------------------------------------------------------------- */

static void run_pending_closes(uv_loop_t *loop)
{
    /* Close callbacks run on the next turn; a few NOWAIT turns let them finish without
     * blocking on handles someone forgot to close. */
    for (int i = 0; i < 8; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

static void teardown(struct lifecycle *lc)
{
    struct chatd *app = &lc->app;

    lifecycle_drain_after_failed_start(lc);
    lifecycle_close_own_handles(lc);
    lifecycle_close_http_and_bus(lc);
    if (app->db)
        db_close(app->db);
    for (size_t i = lc->ninit; i-- > 0;)
        if (chatd_modules[i]->destroy)
            chatd_modules[i]->destroy(app->module_states[i]);
    run_pending_closes(&lc->loop);
    if (app->http)
        http_server_free(app->http);
    if (app->bus)
        bus_free(app->bus);
    run_pending_closes(&lc->loop);
    if (uv_loop_close(&lc->loop) == UV_EBUSY && app->log)
        LOG_DEBUG(app, "core", "loop closed with handles still open");
    metrics_free(app->metrics);
    if (app->log)
        log_close(app->log);
    free(app->module_states);
    free(app->cfg);
}

static int app_init(struct lifecycle *lc, struct chatd_config *cfg)
{
    struct chatd *app = &lc->app;
    int rc;

    memset(lc, 0, sizeof(*lc));
    app->cfg = cfg;
    app->started_at = now_ms();
    app->loop = &lc->loop;
    if ((rc = uv_loop_init(&lc->loop)) < 0) {
        fprintf(stderr, "chatd: event loop: %s\n", uv_strerror(rc));
        free(cfg);
        return rc;
    }
    app->module_states = calloc(chatd_module_count ? chatd_module_count : 1, sizeof(void *));
    rc = log_open(&app->log, cfg->log.level, cfg->log.json, cfg->log.file);
    if (rc < 0 || !app->module_states) {
        fprintf(stderr, "chatd: log %s: %s\n", cfg->log.file[0] ? cfg->log.file : "stderr",
                strerror(rc < 0 ? -rc : ENOMEM));
        app->log = NULL;
        teardown(lc);
        return rc < 0 ? rc : -ENOMEM;
    }
    return 0;
}

int lifecycle_run_server(struct chatd_config *cfg)
{
    struct lifecycle *lc = malloc(sizeof(*lc));
    int status = 1;

    if (!lc) {
        fprintf(stderr, "chatd: out of memory\n");
        free(cfg);
        return 1;
    }
    if (app_init(lc, cfg) < 0) {
        free(lc);
        return 1;
    }
    lifecycle_set_running(lc);
    if (start_core(lc) < 0 || start_timers(lc) < 0 || start_signals(lc) < 0 ||
        start_modules(lc) < 0 || start_listening(lc) < 0)
        goto out;
    /* The probe starts with the loop: start-up may block for seconds (key generation,
     * migrations) and that is not loop lag. */
    uv_update_time(&lc->loop);
    lc->lag_last_ns = uv_hrtime();
    uv_timer_start(&lc->lag_timer, lifecycle_lag_probe, LAG_PROBE_MS, LAG_PROBE_MS);
    uv_run(&lc->loop, UV_RUN_DEFAULT);
    if (!lc->app.draining) {
        LOG_ERROR(&lc->app, "core", "event loop stopped unexpectedly");
        goto out;
    }
    LOG_INFO(&lc->app, "core", "stopped");
    status = 0;
out:
    teardown(lc);
    lifecycle_set_running(NULL);
    free(lc);
    return status;
}

int lifecycle_run_command(struct chatd_config *cfg,
                          int (*run)(struct chatd *app, int argc, char **argv),
                          int argc, char **argv)
{
    struct lifecycle *lc = malloc(sizeof(*lc));
    int rc, status = 1;

    if (!lc) {
        fprintf(stderr, "chatd: out of memory\n");
        free(cfg);
        return 1;
    }
    if (app_init(lc, cfg) < 0) {
        free(lc);
        return 1;
    }
    if ((rc = metrics_new(&lc->app.metrics)) < 0) {
        start_fail(lc, "metrics", rc);
        goto out;
    }
    if ((rc = open_database(&lc->app)) < 0) {
        if (!cfg->database.url[0])      /* else db_open_url said why */
            start_fail(lc, "database open", rc);
        goto out;
    }
    status = run(&lc->app, argc, argv);
out:
    teardown(lc);
    free(lc);
    return status;
}
