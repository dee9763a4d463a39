/* process_metrics.c: the metrics of the process itself: uptime, start time, resident
 * memory, whether it drains, and how late a 100 ms loop timer fires. */
#include <stdint.h>
#include <uv.h>
#include "chatd/chatd.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "lifecycle_internal.h"

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
void lifecycle_lag_probe(uv_timer_t *t)
{
    struct lifecycle *lc = t->data;
    uint64_t now = uv_hrtime();
    int64_t late = (int64_t)(now - lc->lag_last_ns) - (int64_t)LAG_PROBE_MS * 1000000;

    lc->lag_last_ns = now;
    metrics_observe(lc->lag_hist, late > 0 ? (double)late / 1e9 : 0.0);
}

void lifecycle_metrics_register(struct lifecycle *lc)
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
