/* The notification and presence descriptors' migrate (what `chatd migrate-db` runs
 * alone on a target): on either engine it makes the tables of that engine's store,
 * which the store then works on, and running it again changes nothing. */
#include <string.h>
#include "chatd/db_pg.h"
#include "chatd/module.h"
#include "engine_db_fixture.h"
#include "test.h"
#include "../../src/modules/notification/notification_store.h"
#include "../../src/modules/presence/presence_seen_store.h"

extern const struct chatd_module notification_module, presence_module;

static const char *const engine_names[] = { "sqlite", "pg" };

/* The type PostgreSQL gave a column ("" when there is no such column). */
static void pg_column_type(struct db_conn *c, const char *table, const char *column,
                           char out[32])
{
    static const struct db_pg_stmt st = { "test_column_type",
        "SELECT data_type FROM information_schema.columns"
        " WHERE table_name = $1::text AND column_name = $2::text", 2 };
    const char *v[] = { table, column };
    PGresult *res = NULL;
    out[0] = 0;
    if (db_pg_run(c, &st, v, &res) == 0 && PQntuples(res) == 1)
        snprintf(out, 32, "%s", db_pg_str(res, 0, 0));
    PQclear(res);
}

static void migrate_on(enum fx_engine e)
{
    struct fx f;
    struct fx_db d;
    struct notification_store ns = {0};
    struct presence_seen_store ps = {0};
    int64_t id = 0, seen = 0, user = 2;
    char type[2][32] = { "", "" };
    static const uint8_t key[NOTIF_P256DH_LEN] = { 4 }, auth[NOTIF_AUTH_LEN] = { 1 };
    struct notif_sub_new sub = { 2, "https://push.example/m", key, auth, 1 };
    struct pres_seen row = { 2, 1234 };

    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_db_open(&f, &d, e), 0);
    int rc[4] = { notification_module.migrate(&f.app), presence_module.migrate(&f.app),
                  notification_module.migrate(&f.app), presence_module.migrate(&f.app) };
    struct db_conn *c = db_conn_for_cli(f.app.db);
    if (e == FX_PG) {
        notification_store_pg_new(&ns);
        presence_seen_store_pg_new(&ps);
        pg_column_type(c, "push_subscriptions", "p256dh", type[0]);
        pg_column_type(c, "presence", "last_seen_at", type[1]);
    } else {
        notification_store_sqlite_new(&ns);
        presence_seen_store_sqlite_new(&ps);
    }
    int put = notif_store_sub_put(&ns, c, &sub, &id);
    int rec = presence_seen_record(&ps, c, &row, 1);
    int rd = presence_seen_read(&ps, c, &user, 1, &seen);
    notification_store_free(&ns);
    presence_seen_store_free(&ps);
    fx_stop(&f);
    fx_db_drop(&d);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(rc[i], 0);
    ASSERT_EQ(put, 0);
    ASSERT(id > 0);
    ASSERT_EQ(rec, 0);
    ASSERT_EQ(rd, 0);
    ASSERT_EQ(seen, 1234);
    /* PostgreSQL's own schema (bytea keys, bigint times), not SQLite's SQL run there
     * (presence's would pass, as integer). */
    if (e == FX_PG) {
        ASSERT_STR_EQ(type[0], "bytea");
        ASSERT_STR_EQ(type[1], "bigint");
    }
}

TEST(notif_presence_migrate_alone)
{
    for (int e = FX_SQLITE; e <= FX_PG; e++) {
        if (!fx_engine_here((enum fx_engine)e))
            continue;
        migrate_on((enum fx_engine)e);
        if (test_failed()) {
            fprintf(stderr, "  (engine %s)\n", engine_names[e]);
            return;
        }
    }
}

/* What migrate-db carries over for the notification module: the VAPID key. */
TEST(notif_kept_keys)
{
    ASSERT(notification_module.kept_keys != NULL);
    ASSERT_STR_EQ(notification_module.kept_keys[0], "vapid.pem");
    ASSERT(notification_module.kept_keys[1] == NULL);
    ASSERT(presence_module.kept_keys == NULL);
}
