/* The presence seen store's ops (presence_seen_store.h) called directly on a fresh
 * database, checked only through the ops, so that another engine can be held to the
 * same tests: each case runs once per line of engines[] (the PostgreSQL line skips
 * without CHATD_TEST_PG_URL). */
#include <pthread.h>
#include <string.h>
#include "engine_db_fixture.h"
#include "test.h"
#include "../../src/modules/presence/presence_seen_store.h"

struct engine {
    const char *name;
    enum fx_engine db;
    int (*open)(struct presence_seen_store *out);
};

static const struct engine engines[] = {
    { "sqlite", FX_SQLITE, presence_seen_store_sqlite_new },
    { "pg", FX_PG, presence_seen_store_pg_new },
};
#define N_ENGINES (sizeof(engines) / sizeof(engines[0]))

struct sfx {
    struct fx f;
    struct presence_seen_store s;
    struct db_conn *c;
    struct fx_db d;
};

static int sfx_open(struct sfx *x, const struct engine *e)
{
    memset(x, 0, sizeof(*x));
    if (fx_init(&x->f) < 0 || fx_db_open(&x->f, &x->d, e->db) < 0 ||
        e->open(&x->s) < 0 || presence_seen_migrate(&x->s, x->f.app.db) < 0)
        return -1;
    x->c = db_conn_for_cli(x->f.app.db);
    return 0;
}

static void sfx_close(struct sfx *x)
{
    presence_seen_store_free(&x->s);
    fx_stop(&x->f);
    fx_db_drop(&x->d);
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

/* Two processes, as it were, upserting the same users at once, each in its own
 * order and each with its times going the other way: what stays is the largest time
 * either wrote (a plain "last write wins", or a read then a write, loses it). */
#define RACE_ROUNDS 200

struct racer {
    const struct presence_seen_store *s;
    struct db_conn *c;
    int64_t first_user, first_from, second_from;   /* the times: from, then down */
    int rc;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    for (int i = 0; i < RACE_ROUNDS && r->rc == 0; i++) {
        const struct pres_seen rows[] = {
            { r->first_user, r->first_from - i },
            { 5 - r->first_user, r->second_from + i },
        };
        r->rc = presence_seen_record(r->s, r->c, rows, 2);
    }
    return NULL;
}

static void concurrent_upserts(struct sfx *x)
{
    struct db *other = NULL;
    pthread_t ta, tb;
    ASSERT_EQ(fx_db_open_again(&x->f, &x->d, &other), 0);
    /* a: user 2 from 9000 down, user 3 from 1000 up; b: user 3 from 7000 down, user 2
     * from 4000 up, its rows in the other order. */
    struct racer a = { &x->s, x->c, 2, 9000, 1000, 0 };
    struct racer b = { &x->s, db_conn_for_cli(other), 3, 7000, 4000, 0 };
    ASSERT_EQ(pthread_create(&ta, NULL, race, &a), 0);
    ASSERT_EQ(pthread_create(&tb, NULL, race, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    db_close(other);
    ASSERT_EQ(a.rc, 0);
    ASSERT_EQ(b.rc, 0);
    int64_t ids[] = { 2, 3 }, out[2] = { 0, 0 };
    ASSERT_EQ(presence_seen_read(&x->s, x->c, ids, 2, out), 0);
    ASSERT_EQ(out[0], 9000);
    ASSERT_EQ(out[1], 7000);
}

static void run_all(const char *name, void (*fn)(struct sfx *))
{
    for (size_t i = 0; i < N_ENGINES; i++) {
        struct sfx x;
        if (!fx_engine_here(engines[i].db))
            continue;
        if (sfx_open(&x, &engines[i]) < 0) {
            test_fail(__FILE__, __LINE__, "%s: cannot open the %s store", name,
                      engines[i].name);
            fx_db_drop(&x.d);
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
TEST(presence_seen_store_concurrent_upserts)
{
    run_all("concurrent_upserts", concurrent_upserts);
}
