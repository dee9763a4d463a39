/* message_store_fixture.h: a message store of each engine on a fresh database of its
 * own, used through the CLI's connection (autocommit). The store tests run once per
 * engine listed here; the PostgreSQL line skips (passes, prints nothing) without a
 * server (pg_fixture.h). */
#ifndef CHATD_TEST_MESSAGE_STORE_FIXTURE_H
#define CHATD_TEST_MESSAGE_STORE_FIXTURE_H

#include <stdio.h>
#include <string.h>
#include "bus_fixture.h"
#include "pg_fixture.h"
#include "test.h"
#include "../../src/modules/message/message_store.h"

struct msf_engine {
    const char *name;
    int pg;
    int (*open)(struct msg_store *out);
};

static const struct msf_engine msf_engines[] = {
    { "sqlite", 0, msg_store_sqlite_new },
    { "postgresql", 1, msg_store_pg_new },
};
#define MSF_ENGINES ((int)(sizeof msf_engines / sizeof msf_engines[0]))

struct sfx {
    struct fx f;
    struct msg_store s;
    struct db_conn *c;
    char url[PG_TEST_URL_MAX], name[64];   /* PostgreSQL: the test's database */
};

#define MSF_OP(t, op, ...) ((t)->s.ops->op((t)->s.impl, __VA_ARGS__))

/* 1 opened and migrated, 0 skip (no PostgreSQL server), -1 failed. */
static inline int store_open(struct sfx *t, const struct msf_engine *e)
{
    memset(t, 0, sizeof(*t));
    if (e->pg && !pg_test_server())
        return 0;
    if (fx_init(&t->f) < 0)
        return -1;
    if (e->pg ? pg_test_db_new(t->url, t->name) < 0 ||
                db_open_url(&t->f.app.db, &t->f.app, t->url) < 0
              : db_open(&t->f.app.db, &t->f.app, t->f.db_path) < 0)
        return -1;
    if (e->open(&t->s) < 0 || t->s.ops->migrate(t->s.impl, t->f.app.db) < 0)
        return -1;
    t->c = db_conn_for_cli(t->f.app.db);
    return t->c ? 1 : -1;
}

static inline void store_close(struct sfx *t)
{
    if (t->s.ops) {
        t->s.ops->writer_release(t->s.impl);
        msg_store_free(&t->s);
    }
    fx_stop(&t->f);
    if (t->name[0])
        pg_test_db_drop(t->name);
}

/* In a case's body: open t on engine e, or return (skip) when e has no server. */
#define MSF_OPEN(t, e) do {                                                    \
        int rc_ = store_open(t, e);                                            \
        ASSERT(rc_ >= 0);                                                      \
        if (rc_ == 0)                                                          \
            return;                                                            \
    } while (0)

/* Runs fn(engine) for each engine; a failure names the engine it failed on. */
#define MSF_EACH_ENGINE(fn) do {                                               \
        for (int e_ = 0; e_ < MSF_ENGINES; e_++) {                             \
            fn(&msf_engines[e_]);                                              \
            if (test_failed()) {                                               \
                fprintf(stderr, "  (on %s)\n", msf_engines[e_].name);          \
                return;                                                        \
            }                                                                  \
        }                                                                      \
    } while (0)

#endif
