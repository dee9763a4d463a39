/* Tests for metrics.c: Prometheus text format. */
#include <stdlib.h>
#include <string.h>
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "test.h"

static double seven(void *ctx)
{
    return *(double *)ctx;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

TEST(metrics_render_format)
{
    struct metrics *m;
    struct strbuf b;
    double g = 7.5;
    static const double bounds[] = { 0.1, 1 };

    ASSERT_EQ(metrics_new(&m), 0);
    uint64_t *c200 = metrics_counter(m, "http_requests_total", "code=\"200\"", "Requests.");
    uint64_t *c404 = metrics_counter(m, "http_requests_total", "code=\"404\"", "Requests.");
    ASSERT(c200 != c404);
    ASSERT(metrics_counter(m, "http_requests_total", "code=\"200\"", "Requests.") == c200);
    METRIC_INC(c200);
    METRIC_ADD(c200, 2);
    METRIC_INC(c404);
    metrics_gauge_fn(m, "temp", NULL, "A gauge.", seven, &g);
    struct metrics_hist *h = metrics_histogram(m, "lat_seconds", "op=\"x\"", "Latency.",
                                               bounds, 2);
    metrics_observe(h, 0.05);
    metrics_observe(h, 0.5);
    metrics_observe(h, 0.5);
    metrics_observe(h, 5);
    uint64_t *plain = metrics_counter(m, "plain_total", NULL, "No labels.");
    METRIC_INC(plain);

    strbuf_init(&b, 1 << 20);
    ASSERT_EQ(metrics_render(m, &b), 0);
    const char *t = b.data;
    ASSERT(strstr(t, "# HELP http_requests_total Requests.\n"
                     "# TYPE http_requests_total counter\n"
                     "http_requests_total{code=\"200\"} 3\n"
                     "http_requests_total{code=\"404\"} 1\n") != NULL);
    ASSERT_EQ(count_of(t, "# TYPE http_requests_total"), 1);
    ASSERT(strstr(t, "# TYPE temp gauge\ntemp 7.5\n") != NULL);
    ASSERT(strstr(t, "# TYPE lat_seconds histogram\n"
                     "lat_seconds_bucket{op=\"x\",le=\"0.1\"} 1\n") != NULL);
    ASSERT(strstr(t, "lat_seconds_bucket{op=\"x\",le=\"1\"} 3\n") != NULL);
    ASSERT(strstr(t, "lat_seconds_bucket{op=\"x\",le=\"+Inf\"} 4\n") != NULL);
    ASSERT(strstr(t, "lat_seconds_sum{op=\"x\"} 6.05\n") != NULL);
    ASSERT(strstr(t, "lat_seconds_count{op=\"x\"} 4\n") != NULL);
    ASSERT(strstr(t, "plain_total 1\n") != NULL);
    strbuf_free(&b);
    metrics_free(m);
}

TEST(metrics_full_registry)
{
    struct metrics *m;
    char labels[32];
    ASSERT_EQ(metrics_new(&m), 0);
    for (int i = 0; i < METRICS_MAX; i++) {
        snprintf(labels, sizeof(labels), "i=\"%d\"", i);
        ASSERT(metrics_counter(m, "c_total", labels, "C.") != NULL);
    }
    uint64_t *extra = metrics_counter(m, "extra_total", NULL, "Past the cap.");
    ASSERT(extra != NULL);
    METRIC_INC(extra);   /* writable, just not shown */
    static const double bounds[] = { 1 };
    struct metrics_hist *h = metrics_histogram(m, "h", NULL, "H.", bounds, 1);
    ASSERT(h != NULL);
    metrics_observe(h, 2);
    struct strbuf b;
    strbuf_init(&b, 1 << 22);
    ASSERT_EQ(metrics_render(m, &b), 0);
    ASSERT(strstr(b.data, "extra_total") == NULL);
    ASSERT(strstr(b.data, "# TYPE h ") == NULL);
    ASSERT_EQ(count_of(b.data, "# HELP c_total"), 1);
    strbuf_free(&b);
    metrics_free(m);
}

TEST(metrics_type_clash)
{
    struct metrics *m;
    ASSERT_EQ(metrics_new(&m), 0);
    uint64_t *c = metrics_counter(m, "x", "a=\"1\"", "X.");
    double v = 1;
    metrics_gauge_fn(m, "x", "a=\"2\"", "X.", seven, &v);   /* refused: x is a counter */
    METRIC_INC(c);
    struct strbuf b;
    strbuf_init(&b, 1 << 16);
    ASSERT_EQ(metrics_render(m, &b), 0);
    ASSERT(strstr(b.data, "x{a=\"2\"}") == NULL);
    ASSERT(strstr(b.data, "x{a=\"1\"} 1\n") != NULL);
    strbuf_free(&b);
    metrics_free(m);
}
