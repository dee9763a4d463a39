/* metrics.h: a fixed-capacity registry rendered in Prometheus text format at
 * GET /metrics. Counters and histograms are updated with relaxed atomics, so worker
 * threads (the SQLite writer) may update them too; registration happens on the loop
 * thread (usually in a module's init/start) and is bounded by METRICS_MAX. */
#ifndef CHATD_METRICS_H
#define CHATD_METRICS_H

#include <stdint.h>
#include <stddef.h>

#define METRICS_MAX 512            /* series; past it registration returns a dummy */
#define METRICS_HIST_MAX_BUCKETS 16

struct metrics;
struct strbuf;

int  metrics_new(struct metrics **out);
void metrics_free(struct metrics *m);

/* Returns the counter for name{labels}, creating it (value 0) the first time.
 * labels is the inside of the braces, e.g. "route=\"/v1/me\",code=\"200\"", or NULL.
 * Never NULL: when full, a shared scratch counter is returned and nothing is shown. */
uint64_t *metrics_counter(struct metrics *m, const char *name, const char *labels,
                          const char *help);
/* A gauge whose value is read when /metrics is rendered (on the loop thread). */
void metrics_gauge_fn(struct metrics *m, const char *name, const char *labels,
                      const char *help, double (*fn)(void *ctx), void *ctx);
struct metrics_hist;
/* bounds: ascending upper bounds (le), at most METRICS_HIST_MAX_BUCKETS; +Inf is implied. */
struct metrics_hist *metrics_histogram(struct metrics *m, const char *name, const char *labels,
                                       const char *help, const double *bounds, int nbounds);
void metrics_observe(struct metrics_hist *h, double value);
/* Appends the whole registry in Prometheus text exposition format 0.0.4. */
int  metrics_render(struct metrics *m, struct strbuf *out);

#define METRIC_INC(p)    __atomic_fetch_add((p), 1, __ATOMIC_RELAXED)
#define METRIC_ADD(p, n) __atomic_fetch_add((p), (n), __ATOMIC_RELAXED)

#endif
