/* The presence seen store's ops (presence_seen_store.h) called directly on a fresh
 * database, checked only through the ops, so that another engine can be held to the
 * same tests: add it to engines[]. */
#include <string.h>
#include "bus_fixture.h"
#include "test.h"
#include "../../src/modules/presence/presence_seen_store.h"

struct engine {
    const char *name;
    int (*open)(struct presence_seen_store *out);
};

static const struct engine engines[] = {
    { "sqlite", presence_seen_store_sqlite_new },
};
#define N_ENGINES (sizeof(engines) / sizeof(engines[0]))

struct sfx {
    struct fx f;
    struct presence_seen_store s;
    struct db_conn *c;
};

static int sfx_open(struct sfx *x, const struct engine *e)
{
    memset(x, 0, sizeof(*x));
    if (fx_init(&x->f) < 0 || db_open(&x->f.app.db, &x->f.app, x->f.db_path) < 0 ||
        e->open(&x->s) < 0 || presence_seen_migrate(&x->s, x->f.app.db) < 0)
        return -1;
    x->c = db_conn_for_cli(x->f.app.db);
    return 0;
}

static void sfx_close(struct sfx *x)
{
    presence_seen_store_free(&x->s);
    fx_stop(&x->f);
}

static void record_and_read(struct sfx *x)
{
    const struct pres_seen rows[] = { { 2, 5000 }, { 3, 6000 } };
    int64_t ids[] = { 3, 99, 2 }, out[3] = { -1, -1, -1 };
    ASSERT_EQ(presence_seen_record(&x->s, x->c, rows, 2), 0);
    ASSERT_EQ(presence_seen_read(&x->s, x->c, ids, 3, out), 0);
    ASSERT_EQ(out[0], 6000);
    ASSERT_EQ(out[1], 0);                        /* never seen */
    ASSERT_EQ(out[2], 5000);
    ASSERT_EQ(presence_seen_read(&x->s, x->c, ids, 0, out), 0);
    ASSERT_EQ(presence_seen_record(&x->s, x->c, rows, 0), 0);
}

/* A later batch (or a retry) may carry an older time: it never moves a user back. */
static void never_backwards(struct sfx *x)
{
    const struct pres_seen newer[] = { { 2, 9000 } };
    const struct pres_seen older[] = { { 2, 4000 }, { 2, 8000 } };
    const struct pres_seen newest[] = { { 2, 9500 } };
    int64_t id = 2, out = 0;
    ASSERT_EQ(presence_seen_record(&x->s, x->c, newer, 1), 0);
    ASSERT_EQ(presence_seen_record(&x->s, x->c, older, 2), 0);
    ASSERT_EQ(presence_seen_read(&x->s, x->c, &id, 1, &out), 0);
    ASSERT_EQ(out, 9000);
    ASSERT_EQ(presence_seen_record(&x->s, x->c, newest, 1), 0);
    ASSERT_EQ(presence_seen_read(&x->s, x->c, &id, 1, &out), 0);
    ASSERT_EQ(out, 9500);
}

static void run_all(const char *name, void (*fn)(struct sfx *))
{
    for (size_t i = 0; i < N_ENGINES; i++) {
        struct sfx x;
        if (sfx_open(&x, &engines[i]) < 0) {
            test_fail(__FILE__, __LINE__, "%s: cannot open the %s store", name,
                      engines[i].name);
            return;
        }
        fn(&x);
        sfx_close(&x);
        if (test_failed()) {
            fprintf(stderr, "  (%s, engine %s)\n", name, engines[i].name);
            return;
        }
    }
}

TEST(presence_seen_store_record_and_read) { run_all("record_and_read", record_and_read); }
TEST(presence_seen_store_never_backwards) { run_all("never_backwards", never_backwards); }
