/* dlq_store_fixture.h: the dead-letter store of each engine on a fresh database,
 * used through the CLI's connection (autocommit: each op its own transaction). The
 * store tests run once per engine listed here; the PostgreSQL line skips without
 * CHATD_TEST_PG_URL. */
#ifndef CHATD_TEST_DLQ_STORE_FIXTURE_H
#define CHATD_TEST_DLQ_STORE_FIXTURE_H

#include "test.h"
#include "bus_fixture.h"
#include "pg_fixture.h"
#include "../../src/bus/dlq_store.h"

struct dlq_engine {
    const char *name;
    int pg;                          /* 1: needs the PostgreSQL test server */
};

static const struct dlq_engine dlq_engines[] = {
    { "sqlite", 0 },
};
#define DLQ_ENGINES ((int)(sizeof dlq_engines / sizeof dlq_engines[0]))

struct dlq_fx {
    struct fx f;
    const struct dlq_store_ops *store;
    struct db_conn *conn;
    char pg_url[PG_TEST_URL_MAX];
    char pg_name[64];
};

/* 1 when the engine's line runs here (PostgreSQL needs its server). */
static inline int dlq_engine_runs(const struct dlq_engine *e)
{
    return !e->pg || pg_test_server();
}

/* Another struct db on the fixture's database (as another process would open it),
 * for app. */
static inline int dlq_fx_open_db(struct dlq_fx *s, const struct dlq_engine *e,
                                 struct chatd *app, struct db **out)
{
    (void)e;
    return db_open(out, app, s->f.db_path);
}

/* 0, or -1 with whatever was opened closed again. */
static inline int dlq_fx_open(struct dlq_fx *s, const struct dlq_engine *e)
{
    memset(s, 0, sizeof *s);
    if (fx_init(&s->f) < 0 || dlq_fx_open_db(s, e, &s->f.app, &s->f.app.db) < 0)
        return -1;
    s->store = dlq_store(s->f.app.db);
    if (s->store->migrate(s->f.app.db) < 0 || !(s->conn = db_conn_for_cli(s->f.app.db))) {
        fx_stop(&s->f);
        return -1;
    }
    return 0;
}

static inline void dlq_fx_close(struct dlq_fx *s)
{
    fx_stop(&s->f);
    if (s->pg_name[0])
        pg_test_db_drop(s->pg_name);
}

/* Runs one case on a fresh database of every engine that runs here. */
static inline void dlq_each_engine(void (*fn)(struct dlq_fx *s, const struct dlq_engine *e))
{
    struct dlq_fx s;
    for (int i = 0; i < DLQ_ENGINES; i++) {
        const struct dlq_engine *e = &dlq_engines[i];
        if (!dlq_engine_runs(e))
            continue;
        if (dlq_fx_open(&s, e) < 0) {
            test_fail(__FILE__, __LINE__, "%s: open", e->name);
            return;
        }
        fn(&s, e);
        dlq_fx_close(&s);
        if (test_failed()) {
            fprintf(stderr, "  (engine %s)\n", e->name);
            return;
        }
    }
}

#endif
