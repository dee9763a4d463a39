/* lifecycle_internal.h: the server's state while it runs, shared by lifecycle.c (start,
 * teardown, the run), lifecycle_stop.c (signals, the modules' drain, closing http and
 * the bus) and process_metrics.c (the process's own gauges and the loop-lag probe).
 * lifecycle.c calls the other two; they call neither it nor each other. */
#ifndef CHATD_CORE_LIFECYCLE_INTERNAL_H
#define CHATD_CORE_LIFECYCLE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/metrics.h"

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

/* lifecycle_stop.c. set_running: the server that signals and the modules' done()
 * callbacks act on (NULL once it stopped). */
void lifecycle_set_running(struct lifecycle *lc);
void lifecycle_on_stop_signal(uv_signal_t *s, int signum);
void lifecycle_on_hup(uv_signal_t *s, int signum);
int  lifecycle_on_draining(struct bus_delivery *d, struct bus_event *ev, void *ctx);
void lifecycle_drain_after_failed_start(struct lifecycle *lc);
void lifecycle_close_own_handles(struct lifecycle *lc);
void lifecycle_close_http_and_bus(struct lifecycle *lc);
/* process_metrics.c */
void lifecycle_metrics_register(struct lifecycle *lc);
void lifecycle_lag_probe(uv_timer_t *t);

#endif
