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
    { "postgresql", 1 },
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
    if (!e->pg)
        return db_open(out, app, s->f.db_path);
    if (!s->pg_name[0] && pg_test_db_new(s->pg_url, s->pg_name) < 0)
        return -1;
    return db_open_url(out, app, s->pg_url);
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

/* SQL by hand on a connection of its own (an operator's psql or sqlite3): 0 or -1. */
static inline int dlq_fx_exec(struct dlq_fx *s, const struct dlq_engine *e, const char *sql)
{
    int ok;
    if (!e->pg) {
        sqlite3 *c = NULL;
        ok = sqlite3_open(s->f.db_path, &c) == SQLITE_OK &&
             sqlite3_exec(c, sql, NULL, NULL, NULL) == SQLITE_OK;
        sqlite3_close(c);
        return ok ? 0 : -1;
    }
    PGconn *c = PQconnectdb(s->pg_url);
    PGresult *r = PQexec(c, sql);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

/* One integer from a query by hand (-1 on failure). */
static inline long long dlq_fx_int(struct dlq_fx *s, const struct dlq_engine *e,
                                   const char *sql)
{
    if (!e->pg)
        return fx_query_int(s->f.db_path, sql);
    PGconn *c = PQconnectdb(s->pg_url);
    PGresult *r = PQexec(c, sql);
    long long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
                  !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    PQfinish(c);
    return v;
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
