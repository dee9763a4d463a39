/* bus_fixture.h: a hand-built struct chatd for the bus and database tests: a loop,
 * default config, a quiet log, a metrics registry, a bus and (optionally) a database
 * in a temporary data dir, started in the server's order. */
#ifndef CHATD_TEST_BUS_FIXTURE_H
#define CHATD_TEST_BUS_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/db_sqlite.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"

struct fx {
    uv_loop_t loop;
    struct chatd app;
    struct chatd_config cfg;
    char dir[64];
    char db_path[128];
};

static inline void fx_nap(void)
{
    struct timespec ts = { 0, 100 * 1000 };
    nanosleep(&ts, NULL);
}

/* Turns the loop until expr holds or ms pass; the value of expr. */
#define FX_RUN_UNTIL(f, expr, ms) __extension__ ({                              \
        uint64_t fx_deadline_ = mono_ms() + (ms);                               \
        while (!(expr) && mono_ms() < fx_deadline_) {                           \
            uv_run(&(f)->loop, UV_RUN_NOWAIT);                                  \
            fx_nap();                                                           \
        }                                                                       \
        (expr);                                                                 \
    })

/* Logs stay quiet unless TEST_VERBOSE is set: failures are expected here. */
static inline int fx_init(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    if (uv_loop_init(&f->loop) < 0)
        return -1;
    config_defaults(&f->cfg);
    snprintf(f->dir, sizeof(f->dir), "/tmp/chatd-test-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->cfg.server.data_dir, sizeof(f->cfg.server.data_dir), "%s/data", f->dir);
    snprintf(f->db_path, sizeof(f->db_path), "%s/data/chatd.db", f->dir);
    f->app.loop = &f->loop;
    f->app.cfg = &f->cfg;
    if (log_open(&f->app.log, getenv("TEST_VERBOSE") ? CHATD_LOG_DEBUG : CHATD_LOG_ERROR + 1,
                 0, NULL) < 0 || metrics_new(&f->app.metrics) < 0)
        return -1;
    return 0;
}

/* with_db: open the database and start its writer, as the server does. */
static inline int fx_start(struct fx *f, int with_db)
{
    if (bus_new(&f->app.bus, &f->app) < 0)
        return -1;
    if (with_db && (db_open(&f->app.db, &f->app, f->db_path) < 0 || db_start(f->app.db) < 0))
        return -1;
    return bus_start(f->app.bus) < 0 ? -1 : 0;
}

static inline void fx_stop(struct fx *f)
{
    char cmd[128];

    if (f->app.bus)
        bus_close(f->app.bus);
    if (f->app.db)
        db_close(f->app.db);
    if (f->app.bus)
        bus_free(f->app.bus);
    for (int i = 0; i < 8; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_loop_close(&f->loop);
    metrics_free(f->app.metrics);
    log_close(f->app.log);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
}

/* One integer from a query, on a connection of its own (as another process would). */
static inline long long fx_query_int(const char *path, const char *sql)
{
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;

    if (sqlite3_open_v2(path, &c, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

#endif
