/* bus_metrics.c: the bus's counters and gauges: events by topic, retries, dead
 * letters, and the depth of what waits. */
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/metrics.h"
#include "chatd/ring.h"
#include "bus_internal.h"

/* A counter of the registry, or one of b->scratch when there is none (tests). */
uint64_t *bus_counter(struct bus *b, const char *name, const char *labels,
                      const char *help, int scratch)
{
    if (!b->app->metrics)
        return &b->scratch[scratch];
    return metrics_counter(b->app->metrics, name, labels, help);
}

uint64_t bus_depth(const struct bus *b)
{
    return ring_size(b->ring) + b->q.len + b->retries.len;
}

static double depth_gauge(void *ctx)
{
    return (double)bus_depth(ctx);
}

static double dead_letters_gauge(void *ctx)
{
    return ((struct bus *)ctx)->dead_letter_rows;
}

static double dead_letter_bytes_gauge(void *ctx)
{
    return ((struct bus *)ctx)->dead_letter_bytes;
}

void bus_register_metrics(struct bus *b)
{
    struct metrics *m = b->app->metrics;

    b->events_other = bus_counter(b, "chatd_bus_events_total", "topic=\"other\"",
                                  "Events dispatched by the bus, by topic.", 0);
    b->retries_total = bus_counter(b, "chatd_bus_retries_total", NULL,
                                   "Failed deliveries scheduled for another attempt.", 1);
    b->dead_letters_total = bus_counter(b, "chatd_dead_letters_total", NULL,
                                        "Events written to the dead-letter table.", 2);
    b->dead_letters_evicted = bus_counter(b, "chatd_dead_letters_evicted_total", NULL,
                                          "Dead letters removed, oldest first, to keep the"
                                          " table within [bus] deadletter_max_rows and"
                                          " deadletter_max_bytes.", 3);
    if (!m)
        return;
    metrics_gauge_fn(m, "chatd_bus_queue_depth", NULL,
                     "Events waiting in the bus: ring, dispatch queue and retries.",
                     depth_gauge, b);
    metrics_gauge_fn(m, "chatd_dead_letters", NULL, "Rows in the dead-letter table.",
                     dead_letters_gauge, b);
    metrics_gauge_fn(m, "chatd_dead_letter_bytes", NULL,
                     "Bytes of topic, payload, consumer and error in the dead-letter table.",
                     dead_letter_bytes_gauge, b);
}
