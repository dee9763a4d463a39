/* Log-bucket latency histogram: 8 sub-buckets per power of two of microseconds,
 * so every quantile is within 12.5% of the truth at any scale. */
#include <stdio.h>
#include <time.h>
#include "lg.h"

uint64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int bucket_of(uint64_t ns)
{
    uint64_t us = ns / 1000;
    int exp = 0, idx;

    if (us < HIST_SUB)
        return (int)us;
    while ((us >> exp) >= 2 * HIST_SUB)
        exp++;
    idx = (exp + 1) * HIST_SUB + (int)((us >> exp) - HIST_SUB);
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

static uint64_t bucket_upper_ns(int idx)
{
    int exp;
    uint64_t base;

    if (idx < HIST_SUB)
        return (uint64_t)(idx + 1) * 1000;
    exp = idx / HIST_SUB - 1;
    base = (uint64_t)(HIST_SUB + idx % HIST_SUB + 1) << exp;
    return base * 1000;
}

void hist_add(struct hist *h, uint64_t ns)
{
    h->b[bucket_of(ns)]++;
    h->count++;
    h->sum_ns += ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    uint64_t want, seen = 0;
    int i;

    if (h->count == 0)
        return 0;
    want = (uint64_t)(q * (double)h->count);
    if (want >= h->count)
        want = h->count - 1;
    for (i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > want) {
            uint64_t up = bucket_upper_ns(i);
            return up < h->max_ns ? up : h->max_ns;
        }
    }
    return h->max_ns;
}

void hist_print(const struct hist *h, const char *name)
{
    printf("%s_count=%llu\n", name, (unsigned long long)h->count);
    printf("%s_p50_ms=%.3f\n", name, hist_quantile(h, 0.50) / 1e6);
    printf("%s_p90_ms=%.3f\n", name, hist_quantile(h, 0.90) / 1e6);
    printf("%s_p99_ms=%.3f\n", name, hist_quantile(h, 0.99) / 1e6);
    printf("%s_p999_ms=%.3f\n", name, hist_quantile(h, 0.999) / 1e6);
    printf("%s_max_ms=%.3f\n", name, h->max_ns / 1e6);
}
