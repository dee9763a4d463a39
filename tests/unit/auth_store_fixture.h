/* auth_store_fixture.h: an auth store of each engine on a fresh database in a
 * temporary data dir, used through the CLI's connection. The store tests run once per
 * engine listed here, so a second engine is held to the same tests by adding a line. */
#ifndef CHATD_TEST_AUTH_STORE_FIXTURE_H
#define CHATD_TEST_AUTH_STORE_FIXTURE_H

#include "bus_fixture.h"
#include "../../src/modules/auth/auth_store.h"

struct store_engine {
    const char *name;
    int (*open)(struct auth_store *out);
};

static const struct store_engine store_engines[] = {
    { "sqlite", auth_store_sqlite_new },
};
#define STORE_ENGINES ((int)(sizeof store_engines / sizeof store_engines[0]))

struct store_fx {
    struct fx f;
    struct auth_store store;
    struct db_conn *conn;
};

/* 0, or -1 with whatever was opened closed again. */
static inline int store_fx_open(struct store_fx *s, const struct store_engine *e)
{
    memset(s, 0, sizeof *s);
    if (fx_init(&s->f) < 0 || db_open(&s->f.app.db, &s->f.app, s->f.db_path) < 0)
        return -1;
    if (e->open(&s->store) < 0 || s->store.ops->migrate(s->store.impl, s->f.app.db) < 0 ||
        !(s->conn = db_conn_for_cli(s->f.app.db))) {
        auth_store_free(&s->store);
        fx_stop(&s->f);
        return -1;
    }
    return 0;
}

static inline void store_fx_close(struct store_fx *s)
{
    auth_store_free(&s->store);
    fx_stop(&s->f);
}

#endif
