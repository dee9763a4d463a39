/* Failing push subscriptions (sub_health.c) on a real database: failures in a row are
 * counted, in memory at once and in the table through the writer; the
 * subscription_max_failures-th makes it failing; a success clears it; a
 * subscription failing longer than subscription_failing_ttl is deleted. */
#include <stdlib.h>
#include <string.h>
#include "bus_fixture.h"
#include "test.h"
#include "../../src/modules/notification/notification_internal.h"

static void sql(const char *path, const char *q)
{
    sqlite3 *c = NULL;
    sqlite3_open(path, &c);
    sqlite3_busy_timeout(c, 2000);
    sqlite3_exec(c, q, NULL, NULL, NULL);
    sqlite3_close(c);
}

static int setup(struct fx *f, struct notif *n, int max_failures, int ttl_s)
{
    if (fx_init(f) < 0)
        return -1;
    struct notif_settings *ns = config_module_settings(&f->cfg, &notif_settings_table);
    ns->subscription_max_failures = max_failures;
    ns->subscription_failing_ttl = ttl_s;
    if (fx_start(f, 1) < 0)
        return -1;
    memset(n, 0, sizeof(*n));
    n->app = &f->app;
    if (idset_init(&n->failures, 16, 1024) < 0 || subs_store_open(n) < 0)
        return -1;
    sql(f->db_path, "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth,"
        " created_at) VALUES (7, 2, 'https://p.example/7', x'04', x'00', 1)");
    return 0;
}

static long long col(struct fx *f, const char *c)
{
    char q[128];
    snprintf(q, sizeof(q), "SELECT coalesce(%s, -1) FROM push_subscriptions WHERE id = 7", c);
    return fx_query_int(f->db_path, q);
}

TEST(notif_health_failing_after_max_then_cleared)
{
    struct fx f;
    struct notif n;
    struct subs_target t = { .user_id = 2 };     /* as read before the attempts */
    ASSERT_EQ(setup(&f, &n, 3, 3600), 0);
    /* Three attempts running together all read failures = 0 from the table. */
    ASSERT_EQ(subs_record_outcome(&n, 7, &t, "connect: connection refused"), 0);
    ASSERT_EQ(subs_record_outcome(&n, 7, &t, "connect: connection refused"), 0);
    ASSERT(!subs_is_failing(&n, 7));
    ASSERT_EQ(subs_record_outcome(&n, 7, &t, "push service answered 500"), 1);
    ASSERT(subs_is_failing(&n, 7));
    ASSERT(FX_RUN_UNTIL(&f, col(&f, "failures") == 3, 5000));
    ASSERT(col(&f, "failing_since") >= now_ms() - 60000);
    char *err = NULL;
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    sqlite3_open(f.db_path, &c);
    sqlite3_prepare_v2(c, "SELECT last_error FROM push_subscriptions WHERE id = 7", -1, &st, NULL);
    if (sqlite3_step(st) == SQLITE_ROW)
        err = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(c);
    ASSERT(err && strcmp(err, "push service answered 500") == 0);
    free(err);

    /* A success, read with the failing row, clears both. */
    struct subs_target failing = { .user_id = 2, .failures = 3, .failing_since = 1 };
    ASSERT_EQ(subs_record_outcome(&n, 7, &failing, NULL), 0);
    ASSERT(!subs_is_failing(&n, 7));
    ASSERT(FX_RUN_UNTIL(&f, col(&f, "failures") == 0 && col(&f, "failing_since") == -1, 5000));
    ASSERT_EQ(col(&f, "last_error"), -1);
    fx_stop(&f);
    idset_free(&n.failures);
}

/* The table's count counts too: after a restart the memory is empty. */
TEST(notif_health_table_count_survives_restart)
{
    struct fx f;
    struct notif n;
    struct subs_target t = { .user_id = 2, .failures = 9 };
    ASSERT_EQ(setup(&f, &n, 10, 3600), 0);
    ASSERT_EQ(subs_record_outcome(&n, 7, &t, "timeout connecting"), 1);
    fx_stop(&f);
    idset_free(&n.failures);
}

/* Subscriptions that failed once and then went away (dropped, deleted, replaced)
 * leave their counts behind; once those fill the set, a new burst must still be
 * counted in memory, not only in the table a commit behind. */
TEST(notif_health_stale_counts_do_not_block_new_ones)
{
    struct fx f;
    struct notif n;
    struct subs_target t = { .user_id = 2 };
    ASSERT_EQ(setup(&f, &n, 3, 3600), 0);
    for (int64_t id = 1000; id < 1000 + 1024; id++)
        subs_record_outcome(&n, id, &t, "connect: connection refused");
    ASSERT_EQ(subs_record_outcome(&n, 7, &t, "connect: connection refused"), 0);
    ASSERT_EQ(subs_record_outcome(&n, 7, &t, "connect: connection refused"), 0);
    ASSERT_EQ(subs_record_outcome(&n, 7, &t, "connect: connection refused"), 1);
    ASSERT(subs_is_failing(&n, 7));
    ASSERT(i64map_count(&n.failures.map) <= n.failures.map.max);
    fx_stop(&f);
    idset_free(&n.failures);
}

TEST(notif_health_sweep_drops_long_failing)
{
    struct fx f;
    struct notif n;
    ASSERT_EQ(setup(&f, &n, 1, 1), 0);
    sql(f.db_path, "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth,"
        " created_at, failures, failing_since) VALUES"
        " (8, 2, 'https://p.example/8', x'04', x'00', 1, 5, 1),"
        " (9, 2, 'https://p.example/9', x'04', x'00', 1, 5, 9000000000000)");
    ASSERT_EQ(subs_health_start(&n), 0);
    /* 8 failed long ago: gone at the first sweep (every 250 ms here); 9 just started
     * failing (a time far ahead) and 7 is healthy: both stay. */
    ASSERT(FX_RUN_UNTIL(&f, fx_query_int(f.db_path, "SELECT count(*) FROM push_subscriptions"
                                         " WHERE id = 8") == 0, 5000));
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT count(*) FROM push_subscriptions"), 2);
    subs_health_stop(&n);
    fx_stop(&f);
    idset_free(&n.failures);
}

/* A 404/410 removal whose job ends after the bus closed (a push answered while the
 * server stops) still deletes the row and frees its job: LeakSanitizer would see it. */
TEST(notif_gone_removal_after_bus_close_frees_its_job)
{
    struct fx f;
    struct notif n;
    ASSERT_EQ(setup(&f, &n, 3, 3600), 0);
    bus_close(f.app.bus);
    subs_delete_gone(&n, 7);
    db_close(f.app.db);              /* runs the job: its done cannot reach the loop */
    f.app.db = NULL;
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT count(*) FROM push_subscriptions"), 0);
    fx_stop(&f);
    idset_free(&n.failures);
}
