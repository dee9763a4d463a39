/* lifecycle.c: start-up, drain and shutdown of the server.
 *
 * Start: config -> log -> metrics -> bus -> db -> http -> modules' init -> db writer ->
 * bus -> modules' start -> listen. Stop (SIGTERM/SIGINT): /readyz turns 503, the
 * listener closes, the bus carries server.draining; once it is dispatched, modules
 * drain one after the other in reverse table order, then http, bus and db close and
 * modules are destroyed. A drain that takes longer than DRAIN_DEADLINE_MS ends the
 * process with status 1. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include "chatd/chatd.h"
#include "chatd/bus.h"
#include "chatd/db.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/http.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/module.h"
#include "chatd/sdnotify.h"
#include "chatd/token.h"
#include "chatd/util.h"
#include "lifecycle.h"

#define DRAIN_DEADLINE_MS 30000
#define LAG_PROBE_MS 100

struct lifecycle {
    struct chatd app;
    uv_loop_t loop;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t lag_timer, drain_timer, watchdog_timer;
    uv_timer_t drain_start;    /* starts the modules' drains outside the bus's dispatch */
    struct metrics_hist *lag_hist;
    uint64_t lag_last_ns;
    size_t ninit;              /* modules whose init succeeded (destroy those) */
    size_t drain_next;         /* modules [0, drain_next) still to drain */
    int drain_waiting;         /* a module's drain has not called done yet */
    int drain_begun;           /* the modules' drains have started */
    int drain_in_call;         /* inside a module's drain(): done must not recurse */
    int http_closed, bus_closed;
    size_t nstarted;           /* modules whose start succeeded */
    int start_failed;          /* drain after a failed start: no http close at the end */
    int drained;
};

/* A module's done() callback gets only its own state, so the server being drained has
 * to be found without it. Signals are per process, and so is the one server that
 * answers them: this is the only file-level state, set while the loop runs. */
static struct lifecycle *running;

static void drain_step(struct lifecycle *lc);
static void drain_deadline(uv_timer_t *t);

/* --- metrics of the process itself ---------------------------------------------- */

static double uptime_seconds(void *ctx)
{
    struct lifecycle *lc = ctx;
    return (double)(now_ms() - lc->app.started_at) / 1000.0;
}

static double start_time_seconds(void *ctx)
{
    struct lifecycle *lc = ctx;
    return (double)lc->app.started_at / 1000.0;
}

static double resident_bytes(void *ctx)
{
    size_t rss = 0;
    return uv_resident_set_memory(&rss) == 0 ? (double)rss : 0.0;
}

static double draining_gauge(void *ctx)
{
    struct lifecycle *lc = ctx;
    return lc->app.draining;
}

/* How late the 100 ms timer fires is how long the loop was busy elsewhere: the one
 * number that says whether something blocks the loop. */
static void lag_probe(uv_timer_t *t)
{
    struct lifecycle *lc = t->data;
    uint64_t now = uv_hrtime();
    int64_t late = (int64_t)(now - lc->lag_last_ns) - (int64_t)LAG_PROBE_MS * 1000000;

    lc->lag_last_ns = now;
    metrics_observe(lc->lag_hist, late > 0 ? (double)late / 1e9 : 0.0);
}

static void metrics_register(struct lifecycle *lc)
{
    /* 2 ms is a bound so that "lag p99 <= 2 ms" can be read off the histogram. */
    static const double lag_bounds[] = { 0.0005, 0.001, 0.002, 0.0025, 0.005, 0.01, 0.025,
                                         0.05, 0.1, 0.25, 0.5, 1, 2.5 };
    struct metrics *m = lc->app.metrics;

    metrics_gauge_fn(m, "chatd_uptime_seconds", NULL, "Seconds since the process started.",
                     uptime_seconds, lc);
    metrics_gauge_fn(m, "chatd_start_time_seconds", NULL,
                     "Start time of the process since the epoch, in seconds.",
                     start_time_seconds, lc);
    metrics_gauge_fn(m, "chatd_resident_memory_bytes", NULL, "Resident set size.",
                     resident_bytes, lc);
    metrics_gauge_fn(m, "chatd_draining", NULL, "1 while the server drains for shutdown.",
                     draining_gauge, lc);
    lc->lag_hist = metrics_histogram(m, "chatd_loop_lag_seconds", NULL,
                                     "How late a 100 ms loop timer fired.", lag_bounds,
                                     (int)(sizeof(lag_bounds) / sizeof(lag_bounds[0])));
}

/* --- stop ------------------------------------------------------------------------- */

static void close_own_handles(struct lifecycle *lc)
{
    uv_handle_t *h[] = { (uv_handle_t *)&lc->sig_term, (uv_handle_t *)&lc->sig_int,
                         (uv_handle_t *)&lc->sig_hup, (uv_handle_t *)&lc->lag_timer,
                         (uv_handle_t *)&lc->drain_timer,
                         (uv_handle_t *)&lc->watchdog_timer,
                         (uv_handle_t *)&lc->drain_start };
    for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++)
        if (h[i]->loop && !uv_is_closing(h[i]))
            uv_close(h[i], NULL);
}

static void http_closed(void *arg)
{
    struct lifecycle *lc = arg;

    lc->http_closed = 1;
    lc->bus_closed = 1;
    bus_close(lc->app.bus);
    close_own_handles(lc);
    uv_stop(&lc->loop);
}

/* After a failed start the loop never ran: close http and the bus here, in the same
 * order as a drain would. */
static void http_closed_at_teardown(void *arg)
{
    struct lifecycle *lc = arg;
    lc->http_closed = 1;
}

/* Modules get drain() before destroy() even when the start failed half-way, so none is
 * destroyed with its handles still running. The deadline timer bounds the wait. */
static void drain_after_failed_start(struct lifecycle *lc)
{
    if (lc->app.draining || lc->nstarted == 0 || !lc->drain_timer.loop)
        return;
    lc->app.draining = 1;
    lc->start_failed = 1;
    uv_timer_start(&lc->drain_timer, drain_deadline, DRAIN_DEADLINE_MS, 0);
    lc->drain_begun = 1;
    lc->drain_next = lc->nstarted;
    drain_step(lc);
    while (!lc->drained)
        uv_run(&lc->loop, UV_RUN_ONCE);
    uv_timer_stop(&lc->drain_timer);
}

static void close_http_and_bus(struct lifecycle *lc)
{
    struct chatd *app = &lc->app;

    if (app->http && !lc->http_closed) {
        http_server_close(app->http, http_closed_at_teardown, lc);
        for (int i = 0; i < 100 && !lc->http_closed; i++)
            uv_run(&lc->loop, UV_RUN_ONCE);
    }
    if (app->bus && !lc->bus_closed) {
        lc->bus_closed = 1;
        bus_close(app->bus);
    }
}

static void drain_done(void *state)
{
    struct lifecycle *lc = running;

    if (!lc || !lc->drain_waiting)
        return;   /* a module calling done twice: ignore the second */
    lc->drain_waiting = 0;
    LOG_DEBUG(&lc->app, "core", "drained module=%s",
              chatd_modules[lc->drain_next]->name);
    if (!lc->drain_in_call)
        drain_step(lc);
}

static void drain_step(struct lifecycle *lc)
{
    while (lc->drain_next > 0) {
        size_t i = --lc->drain_next;
        const struct chatd_module *mod = chatd_modules[i];
        if (!mod->drain)
            continue;
        lc->drain_waiting = 1;
        lc->drain_in_call = 1;
        mod->drain(lc->app.module_states[i], drain_done);
        lc->drain_in_call = 0;
        if (lc->drain_waiting)
            return;   /* drain_done continues later */
    }
    LOG_INFO(&lc->app, "core", "modules drained");
    lc->drained = 1;
    if (!lc->start_failed)
        http_server_close(lc->app.http, http_closed, lc);
}

static void drain_deadline(uv_timer_t *t)
{
    struct lifecycle *lc = t->data;
    const char *mod = lc->drain_waiting ? chatd_modules[lc->drain_next]->name : "http";

    LOG_ERROR(&lc->app, "core", "drain deadline passed waiting=%s deadline_ms=%d", mod,
              DRAIN_DEADLINE_MS);
    fflush(stdout);
    _exit(1);
}

/* The modules drain once server.draining is dispatched: everything published before
 * the stop (a message read in the same turn as the signal) has reached its
 * subscribers by then, and is finished rather than refused. The drains start from a
 * timer, not inside the bus's handler: a drain that ends at once ends in bus_close,
 * which belongs outside the dispatch. */
static void drain_modules(struct lifecycle *lc)
{
    if (lc->drain_begun)
        return;
    lc->drain_begun = 1;
    lc->drain_next = chatd_module_count;
    drain_step(lc);
}

static void on_drain_start(uv_timer_t *t)
{
    drain_modules(t->data);
}

static int on_draining(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct lifecycle *lc = ctx;

    if (lc->app.draining && !lc->drain_begun)
        uv_timer_start(&lc->drain_start, on_drain_start, 0, 0);
    return 0;
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
    struct lifecycle *lc = s->data;

    if (lc->app.draining) {
        LOG_WARN(&lc->app, "core", "already draining signal=%d", signum);
        return;
    }
    LOG_INFO(&lc->app, "core", "draining signal=%d", signum);
    lc->app.draining = 1;
    sd_notify_send("STOPPING=1");
    /* Referenced: the loop stays up until the drain finishes or the deadline passes. */
    uv_timer_start(&lc->drain_timer, drain_deadline, DRAIN_DEADLINE_MS, 0);
    http_server_stop_accepting(lc->app.http);
    uv_timer_stop(&lc->lag_timer);
    if (bus_publish_ev(lc->app.bus, &EV_SERVER_DRAINING, &(struct ev_server_draining){ 0 }) < 0) {
        LOG_WARN(&lc->app, "core", "could not publish topic=%s", TOPIC_SERVER_DRAINING);
        drain_modules(lc);
    }
}

static void on_hup(uv_signal_t *s, int signum)
{
    struct lifecycle *lc = s->data;
    int rc = log_reopen(lc->app.log);

    if (rc < 0)
        LOG_ERROR(&lc->app, "core", "log reopen failed error=%s", strerror(-rc));
    else
        LOG_INFO(&lc->app, "core", "log reopened");
}

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
        rc = uv_signal_start(sig[i], num[i] == SIGHUP ? on_hup : on_stop_signal, num[i]);
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

static int start_core(struct lifecycle *lc)
{
    struct chatd *app = &lc->app;
    char path[CFG_PATH_MAX + 16];
    int rc;

    if ((rc = metrics_new(&app->metrics)) < 0)
        return start_fail(lc, "metrics", rc);
    metrics_register(lc);
    if ((rc = bus_new(&app->bus, app)) < 0)
        return start_fail(lc, "bus", rc);
    if ((rc = bus_subscribe(app->bus, TOPIC_SERVER_DRAINING, NULL, on_draining, lc)) < 0)
        return start_fail(lc, "bus", rc);
    snprintf(path, sizeof(path), "%s/chatd.db", app->cfg->server.data_dir);
    if ((rc = db_open(&app->db, app, path)) < 0)
        return start_fail(lc, "database open", rc);
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

    drain_after_failed_start(lc);
    close_own_handles(lc);
    close_http_and_bus(lc);
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
    running = lc;
    if (start_core(lc) < 0 || start_timers(lc) < 0 || start_signals(lc) < 0 ||
        start_modules(lc) < 0 || start_listening(lc) < 0)
        goto out;
    /* The probe starts with the loop: start-up may block for seconds (key generation,
     * migrations) and that is not loop lag. */
    uv_update_time(&lc->loop);
    lc->lag_last_ns = uv_hrtime();
    uv_timer_start(&lc->lag_timer, lag_probe, LAG_PROBE_MS, LAG_PROBE_MS);
    uv_run(&lc->loop, UV_RUN_DEFAULT);
    if (!lc->app.draining) {
        LOG_ERROR(&lc->app, "core", "event loop stopped unexpectedly");
        goto out;
    }
    LOG_INFO(&lc->app, "core", "stopped");
    status = 0;
out:
    teardown(lc);
    running = NULL;
    free(lc);
    return status;
}

int lifecycle_run_command(struct chatd_config *cfg,
                          int (*run)(struct chatd *app, int argc, char **argv),
                          int argc, char **argv)
{
    struct lifecycle *lc = malloc(sizeof(*lc));
    char path[CFG_PATH_MAX + 16];
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
    snprintf(path, sizeof(path), "%s/chatd.db", cfg->server.data_dir);
    if ((rc = db_open(&lc->app.db, &lc->app, path)) < 0) {
        start_fail(lc, "database open", rc);
        goto out;
    }
    status = run(&lc->app, argc, argv);
out:
    teardown(lc);
    free(lc);
    return status;
}
