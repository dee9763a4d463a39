/* metrics.c: a fixed registry of series rendered in the Prometheus text format.
 * Values are updated with relaxed atomics from any thread; the registry itself only
 * grows, on the loop thread, so rendering needs no lock. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/metrics.h"
#include "chatd/util.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metrics_hist {
    double bounds[METRICS_HIST_MAX_BUCKETS];
    int nbounds;
    uint64_t buckets[METRICS_HIST_MAX_BUCKETS + 1];   /* last: +Inf; not cumulative */
    uint64_t count;
    uint64_t sum_bits;                                /* a double, updated by CAS */
};

struct metric {
    char *name, *labels, *help;     /* owned; labels may be NULL */
    enum metric_type type;
    uint64_t value;                 /* counter */
    double (*fn)(void *ctx);        /* gauge */
    void *ctx;
    struct metrics_hist *hist;      /* owned */
};

struct metrics {
    struct metric series[METRICS_MAX];
    int n;
    uint64_t scratch;               /* handed out when the registry is full */
    struct metrics_hist scratch_hist;
};

int metrics_new(struct metrics **out)
{
    struct metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    *out = m;
    return 0;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++) {
        free(m->series[i].name);
        free(m->series[i].labels);
        free(m->series[i].help);
        free(m->series[i].hist);
    }
    free(m);
}

static int same_labels(const char *a, const char *b)
{
    if (!a || !*a)
        return !b || !*b;
    return b && strcmp(a, b) == 0;
}

static struct metric *find(struct metrics *m, const char *name, const char *labels)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->series[i].name, name) == 0 && same_labels(m->series[i].labels, labels))
            return &m->series[i];
    return NULL;
}

static struct metric *add(struct metrics *m, const char *name, const char *labels,
                          const char *help, enum metric_type type)
{
    if (m->n == METRICS_MAX)
        return NULL;
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->series[i].name, name) == 0 && m->series[i].type != type)
            return NULL;   /* one name, one TYPE line */
    struct metric *s = &m->series[m->n];
    memset(s, 0, sizeof(*s));
    s->name = strdup(name);
    s->labels = labels && *labels ? strdup(labels) : NULL;
    s->help = strdup(help ? help : "");
    s->type = type;
    if (!s->name || !s->help || (labels && *labels && !s->labels)) {
        free(s->name);
        free(s->labels);
        free(s->help);
        return NULL;
    }
    m->n++;
    return s;
}

uint64_t *metrics_counter(struct metrics *m, const char *name, const char *labels,
                          const char *help)
{
    struct metric *s = find(m, name, labels);
    if (!s)
        s = add(m, name, labels, help, METRIC_COUNTER);
    if (!s || s->type != METRIC_COUNTER)
        return &m->scratch;
    return &s->value;
}

void metrics_gauge_fn(struct metrics *m, const char *name, const char *labels,
                      const char *help, double (*fn)(void *ctx), void *ctx)
{
    struct metric *s = find(m, name, labels);
    if (!s)
        s = add(m, name, labels, help, METRIC_GAUGE);
    if (!s || s->type != METRIC_GAUGE)
        return;
    s->fn = fn;
    s->ctx = ctx;
}

struct metrics_hist *metrics_histogram(struct metrics *m, const char *name, const char *labels,
                                       const char *help, const double *bounds, int nbounds)
{
    struct metric *s = find(m, name, labels);

    if (s)
        return s->type == METRIC_HISTOGRAM ? s->hist : &m->scratch_hist;
    if (nbounds < 0 || nbounds > METRICS_HIST_MAX_BUCKETS)
        return &m->scratch_hist;
    for (int i = 1; i < nbounds; i++)
        if (!(bounds[i] > bounds[i - 1]))
            return &m->scratch_hist;
    struct metrics_hist *h = calloc(1, sizeof(*h));
    if (!h)
        return &m->scratch_hist;
    s = add(m, name, labels, help, METRIC_HISTOGRAM);
    if (!s) {
        free(h);
        return &m->scratch_hist;
    }
    memcpy(h->bounds, bounds, sizeof(double) * (size_t)nbounds);
    h->nbounds = nbounds;
    s->hist = h;
    return h;
}

void metrics_observe(struct metrics_hist *h, double value)
{
    int i = 0;
    while (i < h->nbounds && value > h->bounds[i])
        i++;
    __atomic_fetch_add(&h->buckets[i], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);

    uint64_t old = __atomic_load_n(&h->sum_bits, __ATOMIC_RELAXED), upd;
    do {
        double sum;
        memcpy(&sum, &old, sizeof(sum));
        sum += value;
        memcpy(&upd, &sum, sizeof(upd));
    } while (!__atomic_compare_exchange_n(&h->sum_bits, &old, upd, 1, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
}

/* Prometheus wants "+Inf", "-Inf", "NaN" and otherwise any float syntax. */
static void fmt_double(char *out, size_t n, double v)
{
    if (isnan(v))
        snprintf(out, n, "NaN");
    else if (isinf(v))
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    else {
        /* The shortest form that reads back as the same double. */
        snprintf(out, n, "%.15g", v);
        if (strtod(out, NULL) != v)
            snprintf(out, n, "%.17g", v);
    }
}

/* HELP text escapes backslash and newline. */
static int put_help(struct strbuf *out, const struct metric *s)
{
    static const char *const types[] = { "counter", "gauge", "histogram" };
    int rc = strbuf_printf(out, "# HELP %s ", s->name);
    for (const char *p = s->help; rc == 0 && *p; p++) {
        if (*p == '\\')
            rc = strbuf_append(out, "\\\\", 2);
        else if (*p == '\n')
            rc = strbuf_append(out, "\\n", 2);
        else
            rc = strbuf_append(out, p, 1);
    }
    if (rc == 0)
        rc = strbuf_printf(out, "\n# TYPE %s %s\n", s->name, types[s->type]);
    return rc;
}

static int put_hist(struct strbuf *out, const struct metric *s)
{
    const struct metrics_hist *h = s->hist;
    const char *sep = s->labels ? "," : "";
    const char *lab = s->labels ? s->labels : "";
    char le[40], sum[40];
    uint64_t cum = 0;
    int rc = 0;

    for (int i = 0; i <= h->nbounds && rc == 0; i++) {
        cum += __atomic_load_n(&h->buckets[i], __ATOMIC_RELAXED);
        if (i < h->nbounds)
            fmt_double(le, sizeof(le), h->bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        rc = strbuf_printf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", s->name, lab, sep, le,
                           (unsigned long long)cum);
    }
    uint64_t bits = __atomic_load_n(&h->sum_bits, __ATOMIC_RELAXED);
    double dsum;
    memcpy(&dsum, &bits, sizeof(dsum));
    fmt_double(sum, sizeof(sum), dsum);
    /* _count is the +Inf bucket, so a scrape never shows them disagreeing. */
    if (rc == 0)
        rc = strbuf_printf(out, "%s_sum%s%s%s %s\n%s_count%s%s%s %llu\n", s->name,
                           s->labels ? "{" : "", lab, s->labels ? "}" : "", sum, s->name,
                           s->labels ? "{" : "", lab, s->labels ? "}" : "",
                           (unsigned long long)cum);
    return rc;
}

static int put_series(struct strbuf *out, const struct metric *s)
{
    char val[40];
    const char *open = s->labels ? "{" : "", *close = s->labels ? "}" : "";
    const char *lab = s->labels ? s->labels : "";

    switch (s->type) {
    case METRIC_COUNTER:
        return strbuf_printf(out, "%s%s%s%s %llu\n", s->name, open, lab, close,
                             (unsigned long long)__atomic_load_n(&s->value,
                                                                 __ATOMIC_RELAXED));
    case METRIC_GAUGE:
        fmt_double(val, sizeof(val), s->fn ? s->fn(s->ctx) : 0);
        return strbuf_printf(out, "%s%s%s%s %s\n", s->name, open, lab, close, val);
    case METRIC_HISTOGRAM:
        return put_hist(out, s);
    }
    return 0;
}

int metrics_render(struct metrics *m, struct strbuf *out)
{
    int rc = 0;
    /* Series of one name must be together, under one HELP/TYPE, in registration order
     * of the name's first series. */
    for (int i = 0; i < m->n && rc == 0; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(m->series[j].name, m->series[i].name) == 0;
        if (seen)
            continue;
        rc = put_help(out, &m->series[i]);
        for (int j = i; j < m->n && rc == 0; j++)
            if (strcmp(m->series[j].name, m->series[i].name) == 0)
                rc = put_series(out, &m->series[j]);
    }
    return rc;
}
