/* Tests for migrate-db's two sides (src/core/migrate_db_source.c, migrate_db_tables.c):
 * the SQLite source's lock and table list, and, on a real PostgreSQL server
 * (CHATD_TEST_PG_URL; without it those cases pass without running), the target's
 * emptiness check and foreign-key order. The copy is test_migrate_db_copy.c; the whole
 * verb, on the modules' real tables, tests/integration/migrate-db.test.mjs. */
#include "migrate_db_fixture.h"

/* ---------- the SQLite side ---------- */

TEST(migrate_db_source_refuses_a_database_in_use)
{
    struct mcase k;
    sqlite3 *server = NULL, *src = NULL;
    memset(&k, 0, sizeof k);
    ASSERT_EQ(make_source(&k, "CREATE TABLE t (id INTEGER PRIMARY KEY)"), 0);
    /* A server holds its WAL database open, idle, between transactions. */
    ASSERT_EQ(sqlite3_open(k.path, &server), SQLITE_OK);
    ASSERT_EQ(sql(server, "SELECT count(*) FROM t"), 0);
    int rc = mdb_source_open(k.path, &src, k.err, sizeof k.err);
    sqlite3_close(server);
    ASSERT_EQ(rc, -EBUSY);
    ASSERT(strstr(k.err, "in use") != NULL);
    /* Stopped: it opens, and a server starting meanwhile cannot use it. */
    ASSERT_EQ(mdb_source_open(k.path, &src, k.err, sizeof k.err), 0);
    ASSERT_EQ(sqlite3_open(k.path, &server), SQLITE_OK);
    sqlite3_busy_timeout(server, 10);
    int blocked = sql(server, "SELECT count(*) FROM t") < 0;
    sqlite3_close(server);
    /* Nothing is written through it. */
    int refused = sql(src, "INSERT INTO t VALUES (1)") < 0;
    k.src = src;
    mcase_close(&k);
    ASSERT(blocked);
    ASSERT(refused);
}

TEST(migrate_db_source_missing_file)
{
    sqlite3 *src = NULL;
    char err[MDB_ERR_MAX];
    ASSERT(mdb_source_open("/nonexistent/chatd.db", &src, err, sizeof err) < 0);
    ASSERT(strstr(err, "/nonexistent/chatd.db") != NULL);
}

TEST(migrate_db_source_tables_leave_out_sqlite_and_derived)
{
    struct mcase k;
    char names[8][MDB_NAME_MAX];
    int n = 0;
    static const char *const skip[] = { "totals", NULL };
    memset(&k, 0, sizeof k);
    ASSERT_EQ(make_source(&k, "CREATE TABLE schema_versions (owner TEXT PRIMARY KEY, v INT);"
                              "CREATE TABLE b (id INTEGER PRIMARY KEY AUTOINCREMENT);"
                              "CREATE TABLE a (x INT); CREATE TABLE totals (n INT);"
                              "INSERT INTO b VALUES (41); DELETE FROM b;"), 0);
    ASSERT_EQ(mdb_source_open(k.path, &k.src, k.err, sizeof k.err), 0);
    int rc = mdb_source_tables(k.src, skip, names, &n, k.err, sizeof k.err);
    int64_t seq_b = mdb_source_sequence(k.src, "b"), seq_a = mdb_source_sequence(k.src, "a");
    mcase_close(&k);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(n, 2);                 /* sqlite_sequence, schema_versions, totals left out */
    ASSERT_STR_EQ(names[0], "a");
    ASSERT_STR_EQ(names[1], "b");
    ASSERT_EQ(seq_b, 41);            /* AUTOINCREMENT's high-water mark, its row gone */
    ASSERT_EQ(seq_a, 0);
}

/* ---------- the target ---------- */

TEST(migrate_db_target_empty_or_not)
{
    struct mcase k;
    static const char *const skip[] = { "seeded", NULL };
    if (!mcase_open(&k, "CREATE TABLE t (x INT)", NULL))
        return;
    int fresh = mdb_target_empty(k.pg, skip, k.err, sizeof k.err);
    /* What opening the database makes: core's tables, empty. */
    db_pg_exec(k.pg, "CREATE TABLE schema_versions (owner text primary key, version bigint);"
                     "CREATE TABLE chatd_keys (name text primary key, value text)");
    int opened = mdb_target_empty(k.pg, skip, k.err, sizeof k.err);
    /* Someone else's table, even empty; and a derived table's name is no excuse. */
    db_pg_exec(k.pg, "CREATE TABLE seeded (n bigint); CREATE TABLE theirs (x bigint)");
    int foreign = mdb_target_empty(k.pg, skip, k.err, sizeof k.err);
    int names_it = strstr(k.err, "seeded") || strstr(k.err, "theirs");
    /* A version recorded (an earlier run failed after the migrations): chatd's tables,
     * empty, are allowed, and a derived one seeded. */
    db_pg_exec(k.pg, "INSERT INTO schema_versions VALUES ('x', 1);"
                     "INSERT INTO seeded VALUES (0)");
    int ours_empty = mdb_target_empty(k.pg, skip, k.err, sizeof k.err);
    db_pg_exec(k.pg, "INSERT INTO theirs VALUES (1)");
    int with_rows = mdb_target_empty(k.pg, skip, k.err, sizeof k.err);
    int names_rows = strstr(k.err, "rows") && strstr(k.err, "theirs");
    /* A key kept means a node ran on it. */
    db_pg_exec(k.pg, "DELETE FROM theirs; DELETE FROM schema_versions;"
                     "DROP TABLE theirs; DROP TABLE seeded;"
                     "INSERT INTO chatd_keys VALUES ('jwt.pem', 'k')");
    int keyed = mdb_target_empty(k.pg, skip, k.err, sizeof k.err);
    int names_keys = strstr(k.err, "chatd_keys") != NULL;
    mcase_close(&k);
    ASSERT_EQ(fresh, 0);
    ASSERT_EQ(opened, 0);
    ASSERT_EQ(foreign, -ENOTEMPTY);
    ASSERT(names_it);
    ASSERT_EQ(ours_empty, 0);
    ASSERT_EQ(with_rows, -ENOTEMPTY);
    ASSERT(names_rows);
    ASSERT_EQ(keyed, -ENOTEMPTY);
    ASSERT(names_keys);
}

TEST(migrate_db_target_order_follows_foreign_keys)
{
    struct mcase k;
    char names[4][MDB_NAME_MAX] = { "a_child", "b_mid", "c_root", "d_alone" };
    if (!mcase_open(&k, "CREATE TABLE t (x INT)",
                    "CREATE TABLE c_root (id bigint primary key);"
                    "CREATE TABLE b_mid (id bigint primary key, r bigint references c_root(id),"
                    " up bigint references b_mid(id));"
                    "CREATE TABLE a_child (m bigint references b_mid(id),"
                    " r bigint references c_root(id));"
                    "CREATE TABLE d_alone (x bigint)"))
        return;
    int rc = mdb_target_order(k.pg, names, 4, k.err, sizeof k.err);
    /* A cycle cannot be ordered. */
    db_pg_exec(k.pg, "ALTER TABLE c_root ADD COLUMN a bigint;"
                     "CREATE UNIQUE INDEX ON a_child (m);"
                     "ALTER TABLE c_root ADD FOREIGN KEY (a) REFERENCES a_child (m)");
    char again[4][MDB_NAME_MAX] = { "a_child", "b_mid", "c_root", "d_alone" };
    int cycle = mdb_target_order(k.pg, again, 4, k.err, sizeof k.err);
    mcase_close(&k);
    ASSERT_EQ(rc, 0);
    ASSERT_STR_EQ(names[0], "c_root");
    ASSERT_STR_EQ(names[1], "d_alone");
    ASSERT_STR_EQ(names[2], "b_mid");
    ASSERT_STR_EQ(names[3], "a_child");
    ASSERT_EQ(cycle, -ELOOP);
}
