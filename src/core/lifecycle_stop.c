/* lifecycle_stop.c: the server's stop. SIGTERM/SIGINT: /readyz turns 503, the
 * listener closes, the bus carries server.draining; once it is dispatched, modules
 * drain one after the other in reverse table order, then http and the bus close. A
 * drain that takes longer than DRAIN_DEADLINE_MS ends the process with status 1.
 * SIGHUP reopens the log. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/http.h"
#include "chatd/log.h"
#include "chatd/module.h"
#include "chatd/sdnotify.h"
#include "lifecycle_internal.h"

/* A module's done() callback gets only its own state, so the server being drained has
 * to be found without it. Signals are per process, and so is the one server that
 * answers them: this is the only file-level state, set while the loop runs. */
static struct lifecycle *running;

static void drain_step(struct lifecycle *lc);
static void drain_deadline(uv_timer_t *t);

void lifecycle_set_running(struct lifecycle *lc)
{
    running = lc;
}

void lifecycle_close_own_handles(struct lifecycle *lc)
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
    lifecycle_close_own_handles(lc);
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
void lifecycle_drain_after_failed_start(struct lifecycle *lc)
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

void lifecycle_close_http_and_bus(struct lifecycle *lc)
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

int lifecycle_on_draining(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct lifecycle *lc = ctx;

    if (lc->app.draining && !lc->drain_begun)
        uv_timer_start(&lc->drain_start, on_drain_start, 0, 0);
    return 0;
}

void lifecycle_on_stop_signal(uv_signal_t *s, int signum)
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

void lifecycle_on_hup(uv_signal_t *s, int signum)
{
    struct lifecycle *lc = s->data;
    int rc = log_reopen(lc->app.log);

    if (rc < 0)
        LOG_ERROR(&lc->app, "core", "log reopen failed error=%s", strerror(-rc));
    else
        LOG_INFO(&lc->app, "core", "log reopened");
}
