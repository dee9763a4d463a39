/* The notification store's ops (notification_store.h), called directly on a fresh
 * database, one op at a time. Everything is checked through the ops themselves, never
 * with SQL, so that every engine's implementation is held to the same tests: each case
 * runs once per line of engines[] (the PostgreSQL line skips without CHATD_TEST_PG_URL). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "engine_db_fixture.h"
#include "test.h"
#include "../../src/modules/notification/notification_store.h"

struct engine {
    const char *name;
    enum fx_engine db;
    int (*open)(struct notification_store *out);
};

static const struct engine engines[] = {
    { "sqlite", FX_SQLITE, notification_store_sqlite_new },
    { "pg", FX_PG, notification_store_pg_new },
};
#define N_ENGINES (sizeof(engines) / sizeof(engines[0]))

struct sfx {
    struct fx f;
    struct notification_store s;
    struct db_conn *c;
    struct fx_db d;
};

static int sfx_open(struct sfx *x, const struct engine *e)
{
    memset(x, 0, sizeof(*x));
    if (fx_init(&x->f) < 0 || fx_db_open(&x->f, &x->d, e->db) < 0 ||
        e->open(&x->s) < 0 || notif_store_migrate(&x->s, x->f.app.db) < 0)
        return -1;
    x->c = db_conn_for_cli(x->f.app.db);
    return 0;
}

static void sfx_close(struct sfx *x)
{
    notification_store_free(&x->s);
    fx_stop(&x->f);
    fx_db_drop(&x->d);
}

static const uint8_t key_a[NOTIF_P256DH_LEN] = { 0x04, 1, 2, 3 };
static const uint8_t key_b[NOTIF_P256DH_LEN] = { 0x04, 9, 9, 9 };
static const uint8_t auth_a[NOTIF_AUTH_LEN] = { 0xaa };
static const uint8_t auth_b[NOTIF_AUTH_LEN] = { 0xbb };

static int put(struct sfx *x, int64_t user, const char *ep, int64_t at, int64_t *id)
{
    struct notif_sub_new s = { .user_id = user, .endpoint = ep, .p256dh = key_a,
                               .auth = auth_a, .created_at = at };
    return notif_store_sub_put(&x->s, x->c, &s, id);
}

/* ---- collecting the rows of the reads ---- */

struct rows { int n; struct subs_row r[32]; };

static int take_row(void *arg, const struct subs_row *r)
{
    struct rows *rs = arg;
    if (rs->n == 32)
        return -E2BIG;
    rs->r[rs->n++] = *r;
    return 0;
}

struct infos {
    int n;
    struct { int64_t id, created_at, failing_since; int failures;
             char endpoint[64], last_error[64]; int has_error; } s[32];
};

static int take_info(void *arg, const struct notif_sub_info *s)
{
    struct infos *is = arg;
    if (is->n == 32)
        return -E2BIG;
    is->s[is->n].id = s->id;
    is->s[is->n].created_at = s->created_at;
    is->s[is->n].failing_since = s->failing_since;
    is->s[is->n].failures = s->failures;
    snprintf(is->s[is->n].endpoint, 64, "%s", s->endpoint);
    is->s[is->n].has_error = s->last_error != NULL;
    snprintf(is->s[is->n].last_error, 64, "%s", s->last_error ? s->last_error : "");
    is->n++;
    return 0;
}

struct ids { int n; int64_t v[32]; };

static int take_id(void *arg, int64_t id)
{
    struct ids *is = arg;
    if (is->n == 32)
        return -E2BIG;
    is->v[is->n++] = id;
    return 0;
}

static int stop_at_first(void *arg, const struct subs_row *r)
{
    (void)r;
    ++*(int *)arg;
    return -ECANCELED;
}

/* ---- the tests, each run for every engine ---- */

static void add_and_get(struct sfx *x)
{
    int64_t a = 0, b = 0;
    struct subs_target t;
    ASSERT_EQ(put(x, 2, "https://push.example/a", 1000, &a), 0);
    ASSERT_EQ(put(x, 2, "https://push.example/b", 1001, &b), 0);
    ASSERT(a > 0 && b > 0 && a != b);
    ASSERT_EQ(notif_store_sub_get(&x->s, x->c, a, &t), 0);
    ASSERT_EQ(t.user_id, 2);
    ASSERT_STR_EQ(t.endpoint, "https://push.example/a");
    ASSERT(memcmp(t.p256dh, key_a, sizeof(key_a)) == 0);
    ASSERT(memcmp(t.auth, auth_a, sizeof(auth_a)) == 0);
    ASSERT_EQ(t.failures, 0);
    ASSERT_EQ(t.failing_since, 0);
    ASSERT_EQ(notif_store_sub_get(&x->s, x->c, b + a + 100, &t), -ENOENT);
}

/* A known endpoint keeps its id and moves to whoever subscribed it last, with the new
 * keys and a clean health. */
static void duplicate_endpoint(struct sfx *x)
{
    int64_t a = 0, again = 0;
    struct subs_target t;
    struct infos is = {0};
    ASSERT_EQ(put(x, 2, "https://push.example/a", 1000, &a), 0);
    ASSERT_EQ(notif_store_sub_failed(&x->s, x->c, a, "push service answered 500", 1, 5000), 0);
    struct notif_sub_new s = { .user_id = 3, .endpoint = "https://push.example/a",
                               .p256dh = key_b, .auth = auth_b, .created_at = 2000 };
    ASSERT_EQ(notif_store_sub_put(&x->s, x->c, &s, &again), 0);
    ASSERT_EQ(again, a);
    ASSERT_EQ(notif_store_sub_get(&x->s, x->c, a, &t), 0);
    ASSERT_EQ(t.user_id, 3);
    ASSERT(memcmp(t.p256dh, key_b, sizeof(key_b)) == 0);
    ASSERT(memcmp(t.auth, auth_b, sizeof(auth_b)) == 0);
    ASSERT_EQ(t.failures, 0);
    ASSERT_EQ(t.failing_since, 0);
    ASSERT_EQ(notif_store_subs_of_user(&x->s, x->c, 2, take_info, &is), 0);
    ASSERT_EQ(is.n, 0);
    ASSERT_EQ(notif_store_subs_of_user(&x->s, x->c, 3, take_info, &is), 0);
    ASSERT_EQ(is.n, 1);
    ASSERT_EQ(is.s[0].created_at, 2000);
    ASSERT(!is.s[0].has_error);
}

static void lists(struct sfx *x)
{
    int64_t id[4];
    struct rows rs = {0};
    struct ids us = {0};
    struct infos is = {0};
    ASSERT_EQ(put(x, 5, "https://push.example/5a", 1000, &id[0]), 0);
    ASSERT_EQ(put(x, 2, "https://push.example/2a", 1001, &id[1]), 0);
    ASSERT_EQ(put(x, 5, "https://push.example/5b", 1002, &id[2]), 0);
    ASSERT_EQ(put(x, 7, "https://push.example/7a", 1003, &id[3]), 0);
    int64_t users[] = { 5, 2, 99 };
    ASSERT_EQ(notif_store_subs_of_users(&x->s, x->c, users, 3, take_row, &rs), 0);
    ASSERT_EQ(rs.n, 3);                          /* by user, then id; 7 not asked */
    ASSERT_EQ(rs.r[0].user_id, 2);
    ASSERT_EQ(rs.r[0].id, id[1]);
    ASSERT_EQ(rs.r[1].user_id, 5);
    ASSERT_EQ(rs.r[2].user_id, 5);
    ASSERT(rs.r[1].id < rs.r[2].id);
    ASSERT_EQ(notif_store_subscribers(&x->s, x->c, take_id, &us), 0);
    ASSERT_EQ(us.n, 3);                          /* 5 once */
    int seen2 = 0, seen5 = 0, seen7 = 0;
    for (int i = 0; i < us.n; i++) {
        seen2 += us.v[i] == 2;
        seen5 += us.v[i] == 5;
        seen7 += us.v[i] == 7;
    }
    ASSERT(seen2 == 1 && seen5 == 1 && seen7 == 1);
    ASSERT_EQ(notif_store_subs_of_user(&x->s, x->c, 5, take_info, &is), 0);
    ASSERT_EQ(is.n, 2);
    ASSERT(is.s[0].id < is.s[1].id);
    ASSERT_STR_EQ(is.s[0].endpoint, "https://push.example/5a");
    ASSERT_EQ(is.s[0].created_at, 1000);
    /* A callback's error ends the read and is what the op returns. */
    int calls = 0;
    ASSERT_EQ(notif_store_subs_of_users(&x->s, x->c, users, 3, stop_at_first, &calls),
              -ECANCELED);
    ASSERT_EQ(calls, 1);
    rs.n = 0;
    ASSERT_EQ(notif_store_subs_of_users(&x->s, x->c, users, 0, take_row, &rs), 0);
    ASSERT_EQ(rs.n, 0);
}

static void failing_and_healthy(struct sfx *x)
{
    int64_t a = 0;
    struct subs_target t;
    struct infos is = {0};
    ASSERT_EQ(put(x, 2, "https://push.example/a", 1000, &a), 0);
    ASSERT_EQ(notif_store_sub_failed(&x->s, x->c, a, "timeout", 3, 5000), 0);
    ASSERT_EQ(notif_store_sub_failed(&x->s, x->c, a, "timeout", 3, 6000), 0);
    ASSERT_EQ(notif_store_sub_get(&x->s, x->c, a, &t), 0);
    ASSERT_EQ(t.failures, 2);
    ASSERT_EQ(t.failing_since, 0);               /* under the mark */
    ASSERT_EQ(notif_store_sub_failed(&x->s, x->c, a, "push service answered 503", 3, 7000), 0);
    ASSERT_EQ(notif_store_sub_failed(&x->s, x->c, a, "connect: refused", 3, 8000), 0);
    ASSERT_EQ(notif_store_sub_get(&x->s, x->c, a, &t), 0);
    ASSERT_EQ(t.failures, 4);
    ASSERT_EQ(t.failing_since, 7000);            /* from the third on, not moved */
    ASSERT_EQ(notif_store_subs_of_user(&x->s, x->c, 2, take_info, &is), 0);
    ASSERT_EQ(is.n, 1);
    ASSERT_EQ(is.s[0].failures, 4);
    ASSERT_EQ(is.s[0].failing_since, 7000);
    ASSERT_STR_EQ(is.s[0].last_error, "connect: refused");
    ASSERT_EQ(notif_store_sub_succeeded(&x->s, x->c, a), 0);
    ASSERT_EQ(notif_store_sub_get(&x->s, x->c, a, &t), 0);
    ASSERT_EQ(t.failures, 0);
    ASSERT_EQ(t.failing_since, 0);
    is.n = 0;
    ASSERT_EQ(notif_store_subs_of_user(&x->s, x->c, 2, take_info, &is), 0);
    ASSERT(!is.s[0].has_error);
    /* An unknown id is no error: the row went meanwhile. */
    ASSERT_EQ(notif_store_sub_failed(&x->s, x->c, a + 100, "timeout", 3, 9000), 0);
    ASSERT_EQ(notif_store_sub_succeeded(&x->s, x->c, a + 100), 0);
}

static void drop_failing(struct sfx *x)
{
    int64_t old = 0, young = 0, healthy = 0;
    int dropped = -1;
    struct subs_target t;
    ASSERT_EQ(put(x, 2, "https://push.example/old", 1000, &old), 0);
    ASSERT_EQ(put(x, 2, "https://push.example/young", 1000, &young), 0);
    ASSERT_EQ(put(x, 2, "https://push.example/ok", 1000, &healthy), 0);
    ASSERT_EQ(notif_store_sub_failed(&x->s, x->c, old, "timeout", 1, 5000), 0);
    ASSERT_EQ(notif_store_sub_failed(&x->s, x->c, young, "timeout", 1, 9000), 0);
    ASSERT_EQ(notif_store_drop_failing(&x->s, x->c, 5000, &dropped), 0);
    ASSERT_EQ(dropped, 1);                       /* at or before the time */
    ASSERT_EQ(notif_store_sub_get(&x->s, x->c, old, &t), -ENOENT);
    ASSERT_EQ(notif_store_sub_get(&x->s, x->c, young, &t), 0);
    ASSERT_EQ(notif_store_sub_get(&x->s, x->c, healthy, &t), 0);
    ASSERT_EQ(notif_store_drop_failing(&x->s, x->c, 5000, &dropped), 0);
    ASSERT_EQ(dropped, 0);
}

static void delete_and_trim(struct sfx *x)
{
    int64_t id[5];
    int removed = -1;
    struct subs_target t;
    struct infos is = {0};
    for (int i = 0; i < 5; i++) {
        char ep[64];
        snprintf(ep, sizeof(ep), "https://push.example/%d", i);
        ASSERT_EQ(put(x, 2, ep, 1000 + (i == 4 ? -500 : i), &id[i]), 0);
    }
    /* Somebody else's: not removed. Its owner's: removed once. */
    ASSERT_EQ(notif_store_sub_delete(&x->s, x->c, id[0], 3, &removed), 0);
    ASSERT_EQ(removed, 0);
    ASSERT_EQ(notif_store_sub_delete(&x->s, x->c, id[0], 2, &removed), 0);
    ASSERT_EQ(removed, 1);
    ASSERT_EQ(notif_store_sub_delete(&x->s, x->c, id[0], 2, &removed), 0);
    ASSERT_EQ(removed, 0);
    ASSERT_EQ(notif_store_sub_get(&x->s, x->c, id[0], &t), -ENOENT);
    /* user_id 0: whoever's it is (a push service said it is gone). */
    ASSERT_EQ(notif_store_sub_delete(&x->s, x->c, id[1], 0, &removed), 0);
    ASSERT_EQ(removed, 1);
    /* Left: 2 (1002), 3 (1003), 4 (500). Keeping 2 keeps the newest by created_at. */
    ASSERT_EQ(notif_store_subs_trim(&x->s, x->c, 2, 2), 0);
    ASSERT_EQ(notif_store_subs_of_user(&x->s, x->c, 2, take_info, &is), 0);
    ASSERT_EQ(is.n, 2);
    ASSERT_EQ(is.s[0].id, id[2]);
    ASSERT_EQ(is.s[1].id, id[3]);
}

/* Endpoints and errors are data, whatever they hold. */
static void hostile_text(struct sfx *x)
{
    static const char ep[] = "https://push.example/a'b\"c\\d;--%s\xc3\xa9{1,2}";
    static const char err[] = "it's \"bad\" \\ ); DROP TABLE push_subscriptions; --";
    int64_t a = 0;
    struct subs_target t;
    struct infos is = {0};
    ASSERT_EQ(put(x, 2, ep, 1000, &a), 0);
    ASSERT_EQ(notif_store_sub_failed(&x->s, x->c, a, err, 1, 5000), 0);
    ASSERT_EQ(notif_store_sub_get(&x->s, x->c, a, &t), 0);
    ASSERT_STR_EQ(t.endpoint, ep);
    ASSERT_EQ(notif_store_subs_of_user(&x->s, x->c, 2, take_info, &is), 0);
    ASSERT_EQ(is.n, 1);
    ASSERT_STR_EQ(is.s[0].endpoint, ep);
    ASSERT_STR_EQ(is.s[0].last_error, err);
}

/* Two processes, as it were, subscribing the same endpoints at once (a browser's
 * subscription handed to two nodes): one row per endpoint, one id both see. */
#define RACE_ENDPOINTS 30              /* the rows fit in struct rows */

struct racer {
    struct sfx *x;
    struct db_conn *c;
    int64_t user, ids[RACE_ENDPOINTS];
    int rc;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    for (int i = 0; i < RACE_ENDPOINTS && r->rc == 0; i++) {
        char ep[64];
        snprintf(ep, sizeof(ep), "https://push.example/race/%d", i);
        struct notif_sub_new s = { .user_id = r->user, .endpoint = ep, .p256dh = key_a,
                                   .auth = auth_a, .created_at = 1000 + i };
        r->rc = notif_store_sub_put(&r->x->s, r->c, &s, &r->ids[i]);
    }
    return NULL;
}

static void concurrent_puts(struct sfx *x)
{
    struct db *other = NULL;
    pthread_t ta, tb;
    struct rows rs = {0};
    int64_t users[] = { 2, 3 };
    ASSERT_EQ(fx_db_open_again(&x->f, &x->d, &other), 0);
    struct racer *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    ASSERT(a && b);
    *a = (struct racer){ .x = x, .c = x->c, .user = 2 };
    *b = (struct racer){ .x = x, .c = db_conn_for_cli(other), .user = 3 };
    ASSERT_EQ(pthread_create(&ta, NULL, race, a), 0);
    ASSERT_EQ(pthread_create(&tb, NULL, race, b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    db_close(other);
    int rca = a->rc, rcb = b->rc, same = 1;
    for (int i = 0; i < RACE_ENDPOINTS; i++)
        same &= a->ids[i] == b->ids[i] && a->ids[i] > 0;
    free(a);
    free(b);
    ASSERT_EQ(rca, 0);
    ASSERT_EQ(rcb, 0);
    ASSERT(same);
    ASSERT_EQ(notif_store_subs_of_users(&x->s, x->c, users, 2, take_row, &rs), 0);
    ASSERT_EQ(rs.n, RACE_ENDPOINTS);
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

TEST(notif_store_add_and_get) { run_all("add_and_get", add_and_get); }
TEST(notif_store_duplicate_endpoint) { run_all("duplicate_endpoint", duplicate_endpoint); }
TEST(notif_store_lists) { run_all("lists", lists); }
TEST(notif_store_failing_and_healthy) { run_all("failing_and_healthy", failing_and_healthy); }
TEST(notif_store_drop_failing) { run_all("drop_failing", drop_failing); }
TEST(notif_store_delete_and_trim) { run_all("delete_and_trim", delete_and_trim); }
TEST(notif_store_hostile_text) { run_all("hostile_text", hostile_text); }
TEST(notif_store_concurrent_puts) { run_all("concurrent_puts", concurrent_puts); }
