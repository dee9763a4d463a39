/* db_metrics.c: the db layer's series in /metrics: the writer's group sizes and
 * commit times (observed in db_writer.c), the queue's depth, whether the database
 * takes work, and PostgreSQL reconnects (counted in db_pg_open.c and db_pg_read.c). */
#include "chatd/chatd.h"
#include "chatd/metrics.h"
#include "db_internal.h"

/* Read from the struct (db_write_depth and db_available say the same): this file
 * calls none of the others. */
static double queue_depth(void *ctx)
{
    struct db *db = ctx;
    return (double)atomic_load_explicit(&db->depth, memory_order_relaxed);
}

static double available(void *ctx)
{
    struct db *db = ctx;
    return atomic_load_explicit(&db->available, memory_order_acquire);
}

void db_writer_metrics(struct db *db)
{
    static const double sizes[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024 };
    static const double secs[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                   0.25, 0.5, 1, 2.5 };
    struct metrics *m = db->app ? db->app->metrics : NULL;

    if (!m)
        return;
    db->batch_hist = metrics_histogram(m, "chatd_db_commit_batch_size", NULL,
                                       "Write jobs committed per transaction.", sizes,
                                       (int)(sizeof(sizes) / sizeof(sizes[0])));
    db->commit_hist = metrics_histogram(m, "chatd_db_commit_seconds", NULL,
                                        "Time to run and commit one group of writes.", secs,
                                        (int)(sizeof(secs) / sizeof(secs[0])));
    metrics_gauge_fn(m, "chatd_db_write_queue_depth", NULL,
                     "Write jobs queued or being applied.", queue_depth, db);
    metrics_gauge_fn(m, "chatd_db_available", NULL,
                     "1 while the database takes work, 0 while PostgreSQL is unreachable.",
                     available, db);
    db->reconnects = metrics_counter(m, "chatd_db_reconnects_total", NULL,
                                     "New PostgreSQL connections after one was lost.");
}

