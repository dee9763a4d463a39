/* engine_db_fixture.h: the database of a store test on either engine: SQLite in the
 * fixture's data dir, or a fresh PostgreSQL database on CHATD_TEST_PG_URL's server
 * (pg_fixture.h), dropped again when the test ends. A PostgreSQL case is skipped
 * (nothing printed, no failure) when no server is named. */
#ifndef CHATD_TEST_ENGINE_DB_FIXTURE_H
#define CHATD_TEST_ENGINE_DB_FIXTURE_H

#include "bus_fixture.h"
#include "pg_fixture.h"

enum fx_engine { FX_SQLITE, FX_PG };

struct fx_db {
    char pg_name[64];                /* the PostgreSQL database, "" on SQLite */
    char pg_url[PG_TEST_URL_MAX];
};

/* 1 when the engine's cases run here. */
static inline int fx_engine_here(enum fx_engine e)
{
    return e == FX_SQLITE || pg_test_server() != NULL;
}

/* Opens f->app.db on the engine (without its writer). 0 or -1. */
static inline int fx_db_open(struct fx *f, struct fx_db *d, enum fx_engine e)
{
    memset(d, 0, sizeof(*d));
    if (e == FX_SQLITE)
        return db_open(&f->app.db, &f->app, f->db_path) < 0 ? -1 : 0;
    if (pg_test_db_new(d->pg_url, d->pg_name) < 0)
        return -1;
    return db_open_url(&f->app.db, &f->app, d->pg_url) < 0 ? -1 : 0;
}

/* A second struct db on the same database (another process, as it were). */
static inline int fx_db_open_again(struct fx *f, const struct fx_db *d, struct db **out)
{
    if (d->pg_name[0])
        return db_open_url(out, &f->app, d->pg_url) < 0 ? -1 : 0;
    return db_open(out, &f->app, f->db_path) < 0 ? -1 : 0;
}

/* After fx_stop (which closes f->app.db). */
static inline void fx_db_drop(struct fx_db *d)
{
    if (d->pg_name[0])
        pg_test_db_drop(d->pg_name);
    d->pg_name[0] = 0;
}

#endif
