/* The dead-letter table's bounds: [bus] deadletter_max_rows and deadletter_max_bytes
 * hold after every new row, the oldest rows going first; the totals the bounds are
 * checked against stay right through purges; a consumer's dead_letter hook decides
 * what a row keeps of the payload. */
#include <errno.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include "test.h"
#include "bus_fixture.h"

static struct bus_event *numbered(int n)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "n", n);
    cJSON_AddStringToObject(p, "copy", "a large copy of something stored elsewhere");
    return bus_event_new("t.dl", p);
}

static int always_fails(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    (void)ev;
    (*(int *)ctx)++;
    bus_delivery_set_error(d, "boom");
    return -EIO;
}

static long long q(struct fx *f, const char *sql)
{
    return fx_query_int(f->db_path, sql);
}

/* Publishes n failing events (one attempt each) and waits until all are written. */
static int flood(struct fx *f, const struct bus_sub_opts *o, int n, int *calls)
{
    if (bus_subscribe(f->app.bus, "t.dl", o, always_fails, calls) < 0)
        return -1;
    for (int i = 1; i <= n; i++)
        if (bus_publish(f->app.bus, numbered(i)) < 0)
            return -1;
    return FX_RUN_UNTIL(f, q(f, "SELECT seq FROM sqlite_sequence WHERE name = 'dead_letters'")
                        == n, 5000) ? 0 : -1;
}

static int totals_match(struct fx *f)
{
    return q(f, "SELECT rows FROM dead_letter_totals") == q(f, "SELECT count(*) FROM dead_letters")
        && q(f, "SELECT bytes FROM dead_letter_totals") ==
           q(f, "SELECT coalesce(sum(length(topic) + length(payload) + length(consumer) +"
                " length(error)), 0) FROM dead_letters");
}

TEST(bus_dead_letters_bounded_by_rows)
{
    struct fx f;
    struct bus_sub_opts o = { "test.dl", 1, 1, NULL };
    int calls = 0;
    ASSERT_EQ(fx_init(&f), 0);
    f.cfg.bus.deadletter_max_rows = 3;
    ASSERT_EQ(fx_start(&f, 1), 0);
    ASSERT_EQ(flood(&f, &o, 10, &calls), 0);
    ASSERT_EQ(calls, 10);
    ASSERT_EQ(q(&f, "SELECT count(*) FROM dead_letters"), 3);
    ASSERT_EQ(q(&f, "SELECT min(payload ->> 'n') FROM dead_letters"), 8);   /* the newest */
    ASSERT(totals_match(&f));
    fx_stop(&f);
}

TEST(bus_dead_letters_bounded_by_bytes)
{
    struct fx f;
    struct bus_sub_opts o = { "test.dl", 1, 1, NULL };
    int calls = 0;
    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 1), 0);
    ASSERT_EQ(flood(&f, &o, 1, &calls), 0);
    long long one = q(&f, "SELECT size FROM dead_letters");
    ASSERT(one > 50);
    fx_stop(&f);

    ASSERT_EQ(fx_init(&f), 0);
    f.cfg.bus.deadletter_max_bytes = (int)(4 * one + one / 2);     /* room for 4 rows */
    ASSERT_EQ(fx_start(&f, 1), 0);
    calls = 0;
    ASSERT_EQ(flood(&f, &o, 12, &calls), 0);
    ASSERT_EQ(q(&f, "SELECT count(*) FROM dead_letters"), 4);
    ASSERT(q(&f, "SELECT bytes FROM dead_letter_totals") <= f.cfg.bus.deadletter_max_bytes);
    ASSERT_EQ(q(&f, "SELECT min(payload ->> 'n') FROM dead_letters"), 9);
    ASSERT(totals_match(&f));
    fx_stop(&f);
}

/* A row larger than the byte bound on its own is kept (the newest always stays). */
TEST(bus_dead_letters_newest_stays)
{
    struct fx f;
    struct bus_sub_opts o = { "test.dl", 1, 1, NULL };
    int calls = 0;
    ASSERT_EQ(fx_init(&f), 0);
    f.cfg.bus.deadletter_max_bytes = 10;
    ASSERT_EQ(fx_start(&f, 1), 0);
    ASSERT_EQ(flood(&f, &o, 3, &calls), 0);
    ASSERT_EQ(q(&f, "SELECT count(*) FROM dead_letters"), 1);
    ASSERT_EQ(q(&f, "SELECT payload ->> 'n' FROM dead_letters"), 3);
    fx_stop(&f);
}

/* An operator may edit a row by hand (a payload fixed before its replay): the row's
 * size and the totals follow whatever column changed. */
TEST(bus_dead_letter_edits_keep_sizes_and_totals)
{
    struct fx f;
    struct bus_sub_opts o = { "test.dl", 1, 1, NULL };
    int calls = 0;
    sqlite3 *c = NULL;
    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 1), 0);
    ASSERT_EQ(flood(&f, &o, 3, &calls), 0);
    ASSERT_EQ(sqlite3_open(f.db_path, &c), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(c, "UPDATE dead_letters SET payload = '{\"n\":0}' WHERE id = 1;"
                           "UPDATE dead_letters SET error = error || ' and more' WHERE id = 2;"
                           "UPDATE dead_letters SET topic = 't.other', consumer = 'x'"
                           " WHERE id = 3", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(c);
    ASSERT(totals_match(&f));
    ASSERT_EQ(q(&f, "SELECT count(*) FROM dead_letters WHERE size != length(topic) +"
                " length(payload) + length(consumer) + length(error)"), 0);
    fx_stop(&f);
}

/* A database from before the bounds: its rows get their sizes (in bytes, UTF-8
 * included) and the totals start from them. */
TEST(bus_dead_letters_migrated_rows_are_counted)
{
    struct fx f;
    sqlite3 *c = NULL;
    ASSERT_EQ(fx_init(&f), 0);
    char dir[160];
    snprintf(dir, sizeof(dir), "%s/data", f.dir);
    ASSERT_EQ(mkdir(dir, 0700), 0);
    ASSERT_EQ(sqlite3_open(f.db_path, &c), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(c, "CREATE TABLE schema_versions (owner TEXT PRIMARY KEY,"
        " version INTEGER NOT NULL); INSERT INTO schema_versions VALUES ('bus', 1);"
        "CREATE TABLE dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " topic TEXT NOT NULL, payload TEXT NOT NULL, consumer TEXT NOT NULL,"
        " error TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0,"
        " first_failed_at INTEGER NOT NULL, last_failed_at INTEGER NOT NULL,"
        " replay_requested INTEGER NOT NULL DEFAULT 0);"
        "INSERT INTO dead_letters (topic, payload, consumer, error, first_failed_at,"
        " last_failed_at) VALUES ('t.dl', '{\"b\":\"\u00e9t\u00e9\"}', 'c', 'boom', 1, 1),"
        " ('t.dl', '{}', 'c', '', 1, 1)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(c);
    ASSERT_EQ(fx_start(&f, 1), 0);
    ASSERT_EQ(q(&f, "SELECT rows FROM dead_letter_totals"), 2);
    /* 4 + 13 + 1 + 4 bytes (each é is two) and 4 + 2 + 1 + 0 */
    ASSERT_EQ(q(&f, "SELECT size FROM dead_letters WHERE id = 1"), 22);
    ASSERT_EQ(q(&f, "SELECT bytes FROM dead_letter_totals"), 22 + 7);
    fx_stop(&f);
}

static cJSON *keep_reference(const struct bus_event *ev, void *ctx)
{
    (void)ctx;
    cJSON *ref = cJSON_CreateObject();
    cJSON_AddNumberToObject(ref, "ref", cJSON_GetObjectItem(ev->payload, "n")->valuedouble);
    return ref;
}

TEST(bus_dead_letter_hook_keeps_a_reference)
{
    struct fx f;
    struct bus_sub_opts o = { "test.dl", 1, 1, keep_reference };
    int calls = 0;
    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 1), 0);
    ASSERT_EQ(flood(&f, &o, 1, &calls), 0);
    ASSERT_EQ(q(&f, "SELECT payload = '{\"ref\":1}' FROM dead_letters"), 1);
    ASSERT(totals_match(&f));
    /* A purge outside the server (as `chatd dlq purge` does) keeps the totals right. */
    sqlite3 *c = NULL;
    ASSERT_EQ(sqlite3_open(f.db_path, &c), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(c, "DELETE FROM dead_letters", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(c);
    ASSERT_EQ(q(&f, "SELECT rows + bytes FROM dead_letter_totals"), 0);
    fx_stop(&f);
}
