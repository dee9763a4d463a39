/* auth_store_fixture.h: an auth store of each engine on a fresh database (SQLite in a
 * temporary data dir; PostgreSQL: a fresh database on the server pg_fixture.h names),
 * used through the CLI's connection. The store tests run once per engine listed here,
 * so a second engine is held to the same tests by adding a line. An engine that is not
 * available here (PostgreSQL without CHATD_TEST_PG_URL) is skipped. */
#ifndef CHATD_TEST_AUTH_STORE_FIXTURE_H
#define CHATD_TEST_AUTH_STORE_FIXTURE_H

#include <sqlite3.h>

#include "bus_fixture.h"
#include "pg_fixture.h"
#include "chatd/db_pg.h"
#include "chatd/db_sqlite.h"
#include "../../src/modules/auth/auth_store.h"

struct store_fx {
    struct fx f;
    struct auth_store store;
    struct db_conn *conn;
    char url[PG_TEST_URL_MAX];         /* PostgreSQL: the database's URL ("" on SQLite) */
    char pg_name[64];                  /* PostgreSQL: the database made for it */
};

struct store_engine {
    const char *name;
    int (*open)(struct auth_store *out);
    int (*here)(void);                 /* 0: not available here, the cases skip */
    /* Opens f's database, or another struct db on the same one (for a second writer,
     * as a second node would have) with app. */
    int (*db_open)(struct store_fx *s, struct chatd *app, struct db **out);
    /* Runs SQL on a connection: what the tests do beside the store (a copy's rows). */
    int (*exec)(struct db_conn *c, const char *sql);
    int concurrent_writers;            /* 1: two writers' transactions overlap */
};

static inline int store_sqlite_here(void)
{
    return 1;
}

static inline int store_sqlite_db_open(struct store_fx *s, struct chatd *app, struct db **out)
{
    return db_open(out, app, s->f.db_path);
}

static inline int store_sqlite_exec(struct db_conn *c, const char *sql)
{
    return sqlite3_exec(db_sqlite(c), sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

static inline int store_pg_here(void)
{
    return pg_test_server() != NULL;
}

static inline int store_pg_db_open(struct store_fx *s, struct chatd *app, struct db **out)
{
    if (!s->url[0] && pg_test_db_new(s->url, s->pg_name) < 0) {
        s->url[0] = '\0';
        return -1;
    }
    return db_open_url(out, app, s->url);
}

static inline int store_pg_exec(struct db_conn *c, const char *sql)
{
    return db_pg_exec(c, sql);
}

static const struct store_engine store_engines[] = {
    { "sqlite", auth_store_sqlite_new, store_sqlite_here, store_sqlite_db_open,
      store_sqlite_exec, 0 },
    { "pg", auth_store_pg_new, store_pg_here, store_pg_db_open, store_pg_exec, 1 },
};
#define STORE_ENGINES ((int)(sizeof store_engines / sizeof store_engines[0]))

static inline void store_fx_drop(struct store_fx *s)
{
    if (s->pg_name[0])
        pg_test_db_drop(s->pg_name);
    s->pg_name[0] = '\0';
}

/* 0, or -1 with whatever was opened closed again. */
static inline int store_fx_open(struct store_fx *s, const struct store_engine *e)
{
    memset(s, 0, sizeof *s);
    if (fx_init(&s->f) < 0 || e->db_open(s, &s->f.app, &s->f.app.db) < 0) {
        store_fx_drop(s);
        return -1;
    }
    if (e->open(&s->store) < 0 || s->store.ops->migrate(s->store.impl, s->f.app.db) < 0 ||
        !(s->conn = db_conn_for_cli(s->f.app.db))) {
        auth_store_free(&s->store);
        fx_stop(&s->f);
        store_fx_drop(s);
        return -1;
    }
    return 0;
}

static inline void store_fx_close(struct store_fx *s)
{
    auth_store_free(&s->store);
    fx_stop(&s->f);
    store_fx_drop(s);
}

/* In a test (test.h): runs check(s, engine) on a fresh store of each engine available
 * here; a failure names the engine. */
#define FOR_EACH_ENGINE(check) do {                                             \
        for (int e_ = 0; e_ < STORE_ENGINES; e_++) {                            \
            struct store_fx s_;                                                 \
            if (!store_engines[e_].here())                                      \
                continue;                                                       \
            ASSERT_EQ(store_fx_open(&s_, &store_engines[e_]), 0);               \
            check(&s_, &store_engines[e_]);                                     \
            store_fx_close(&s_);                                                \
            if (test_failed()) {                                                \
                fprintf(stderr, "  (engine %s)\n", store_engines[e_].name);     \
                return;                                                         \
            }                                                                   \
        }                                                                       \
    } while (0)

#endif
