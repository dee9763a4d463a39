/* What only the PostgreSQL notification store has: the subscribers read by pages, and
 * rows that cannot be what the store wrote (changed behind its back) refused. The
 * rows are made with SQL here, many at once or broken on purpose. Skipped without
 * CHATD_TEST_PG_URL. */
#include <errno.h>
#include <string.h>
#include "chatd/db_pg.h"
#include "engine_db_fixture.h"
#include "test.h"
#include "../../src/modules/notification/notification_store.h"

struct pfx {
    struct fx f;
    struct fx_db d;
    struct notification_store s;
    struct db_conn *c;
};

static int pfx_open(struct pfx *x)
{
    memset(x, 0, sizeof(*x));
    if (fx_init(&x->f) < 0 || fx_db_open(&x->f, &x->d, FX_PG) < 0 ||
        notification_store_pg_new(&x->s) < 0 || notif_store_migrate(&x->s, x->f.app.db) < 0)
        return -1;
    x->c = db_conn_for_cli(x->f.app.db);
    return 0;
}

static void pfx_close(struct pfx *x)
{
    notification_store_free(&x->s);
    fx_stop(&x->f);
    fx_db_drop(&x->d);
}

struct seen { int n, in_order, stop_at; int64_t last; };

static int take(void *arg, int64_t user_id)
{
    struct seen *s = arg;
    s->in_order &= user_id > s->last;
    s->last = user_id;
    return ++s->n == s->stop_at ? -ECANCELED : 0;
}

/* 9000 users (three pages and a bit), two subscriptions for some: each user once, in
 * order; a callback's error still ends the read at once, in the middle of a page. */
TEST(notif_store_pg_subscribers_by_pages)
{
    struct pfx x;
    struct seen s = { 0, 1, 0, 0 };
    if (!pg_test_server())
        return;
    ASSERT_EQ(pfx_open(&x), 0);
    ASSERT_EQ(db_pg_exec(x.c,
        "INSERT INTO push_subscriptions(user_id, endpoint, p256dh, auth, created_at)"
        " SELECT g % 9000 + 1, 'https://push.example/' || g, '\\x04', '\\xaa', g"
        " FROM generate_series(0, 9999) AS g"), 0);
    ASSERT_EQ(notif_store_subscribers(&x.s, x.c, take, &s), 0);
    ASSERT_EQ(s.n, 9000);
    ASSERT(s.in_order);
    ASSERT_EQ(s.last, 9000);
    s = (struct seen){ 0, 1, 5000, 0 };
    ASSERT_EQ(notif_store_subscribers(&x.s, x.c, take, &s), -ECANCELED);
    ASSERT_EQ(s.n, 5000);
    pfx_close(&x);
}

static const uint8_t key[NOTIF_P256DH_LEN] = { 0x04, 7 };
static const uint8_t auth[NOTIF_AUTH_LEN] = { 0xcc };

/* Keys of the wrong length or an endpoint longer than the store takes: -EINVAL, not a
 * short copy or an overflow. */
TEST(notif_store_pg_refuses_broken_rows)
{
    struct pfx x;
    struct subs_target t;
    int64_t id = 0;
    if (!pg_test_server())
        return;
    ASSERT_EQ(pfx_open(&x), 0);
    struct notif_sub_new s = { .user_id = 2, .endpoint = "https://push.example/x",
                               .p256dh = key, .auth = auth, .created_at = 1 };
    ASSERT_EQ(notif_store_sub_put(&x.s, x.c, &s, &id), 0);
    ASSERT_EQ(notif_store_sub_get(&x.s, x.c, id, &t), 0);
    ASSERT(memcmp(t.p256dh, key, sizeof(key)) == 0);
    ASSERT_EQ(db_pg_exec(x.c, "UPDATE push_subscriptions SET p256dh = p256dh || '\\x00'"), 0);
    ASSERT_EQ(notif_store_sub_get(&x.s, x.c, id, &t), -EINVAL);
    ASSERT_EQ(db_pg_exec(x.c, "UPDATE push_subscriptions SET p256dh = substr(p256dh, 1, 65),"
                              " auth = '\\x01'"), 0);
    ASSERT_EQ(notif_store_sub_get(&x.s, x.c, id, &t), -EINVAL);
    ASSERT_EQ(db_pg_exec(x.c, "UPDATE push_subscriptions SET auth = substr(p256dh, 1, 16),"
                              " endpoint = repeat('e', 2049)"), 0);
    ASSERT_EQ(notif_store_sub_get(&x.s, x.c, id, &t), -EINVAL);
    ASSERT_EQ(db_pg_exec(x.c, "UPDATE push_subscriptions SET endpoint = repeat('e', 2048)"), 0);
    ASSERT_EQ(notif_store_sub_get(&x.s, x.c, id, &t), 0);
    ASSERT_EQ(strlen(t.endpoint), NOTIF_ENDPOINT_MAX);
    pfx_close(&x);
}
