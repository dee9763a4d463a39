/* Tests for migrate-db's parts (src/core/migrate_db_*.c): the SQLite side's lock and
 * table list, and, on a real PostgreSQL server (CHATD_TEST_PG_URL; without it those
 * cases pass without running), the emptiness check, the foreign-key order, the copy of
 * every kind of value, the identity counters and the kept keys. The whole verb, on the
 * modules' real tables, is tests/integration/migrate-db.test.mjs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "chatd/db_pg.h"
#include "chatd/db_sqlite.h"
#include "test.h"
#include "pg_fixture.h"
#include "../../src/core/db_pg_conn.h"
#include "../../src/core/migrate_db.h"

struct mcase {
    char dir[64], path[96];
    sqlite3 *src;                    /* the source, opened by mdb_source_open */
    char url[PG_TEST_URL_MAX], name[64];
    struct db_pg_conn *pc;
    struct db_conn *pg;
    char err[MDB_ERR_MAX];
};

static int sql(sqlite3 *c, const char *s)
{
    return sqlite3_exec(c, s, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* A WAL database made with schema, as chatd leaves it. */
static int make_source(struct mcase *k, const char *schema)
{
    static int serial;
    sqlite3 *c = NULL;
    snprintf(k->dir, sizeof k->dir, "/tmp/chatd-mdb-%d-%d", (int)getpid(), ++serial);
    snprintf(k->path, sizeof k->path, "%s/chatd.db", k->dir);
    mkdir(k->dir, 0700);
    int rc = sqlite3_open(k->path, &c) == SQLITE_OK && sql(c, "PRAGMA journal_mode=WAL") == 0 &&
             sql(c, schema) == 0 ? 0 : -1;
    if (rc < 0)
        fprintf(stderr, "make_source: %s\n", sqlite3_errmsg(c));
    sqlite3_close(c);
    return rc;
}

/* 1 with a source and a fresh target, 0 without a server (skip), -1 failed. */
static int mcase_try(struct mcase *k, const char *schema, const char *target)
{
    char err[256];
    memset(k, 0, sizeof(*k));
    if (!pg_test_server())
        return 0;
    if (make_source(k, schema) < 0 || pg_test_db_new(k->url, k->name) < 0 ||
        db_pg_conn_open(k->url, &k->pc, err, sizeof err) < 0)
        return -1;
    k->pg = db_conn_of_pg(k->pc);
    if (target && db_pg_exec(k->pg, target) < 0) {
        fprintf(stderr, "target schema: %s\n", db_pg_errmsg(k->pg));
        return -1;
    }
    return mdb_source_open(k->path, &k->src, k->err, sizeof k->err) == 0 ? 1 : -1;
}

#define mcase_open(k, s, t) ({ int rc_ = mcase_try(k, s, t); ASSERT(rc_ >= 0); rc_; })

static void mcase_close(struct mcase *k)
{
    char cmd[160];
    sqlite3_close(k->src);
    db_pg_conn_close(k->pc);
    if (k->name[0])
        pg_test_db_drop(k->name);
    snprintf(cmd, sizeof cmd, "rm -rf %s", k->dir);
    if (k->dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", k->dir);
}

/* The text of (row 0, col 0) of a query on the target, "" when no row. */
static const char *pg_value(struct mcase *k, const char *q, char *out, size_t cap)
{
    PGresult *r = PQexec(db_pg(k->pg), q);
    snprintf(out, cap, "%s", PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                                 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return out;
}

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

/* ---------- the copy ---------- */

#define VALUES_SCHEMA                                                              \
    "CREATE TABLE v (id INTEGER PRIMARY KEY, body TEXT, raw BLOB, n INTEGER, f REAL," \
    " only_here TEXT);"                                                              \
    "INSERT INTO v VALUES (3, 'tab\tnl\ncr\rbs\\ end', x'005c0a09ff', -9007199254740993,"\
    " 0.1, 'x');"                                                                    \
    "INSERT INTO v VALUES (7, 'ünïcødé ✓', NULL, NULL, NULL, NULL);"                 \
    "INSERT INTO v VALUES (9, '\\N', 'text in a blob column', 0, -1.5e300, NULL);"

TEST(migrate_db_copies_every_kind_of_value)
{
    struct mcase k;
    char out[256];
    int64_t rows = -1;
    if (!mcase_open(&k, VALUES_SCHEMA,
                    "CREATE TABLE v (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
                    " body text, raw bytea, n bigint, f double precision)"))
        return;
    FILE *warn = tmpfile();
    int rc = mdb_copy_table(k.src, k.pg, "v", warn, &rows, k.err, sizeof k.err);
    char warned[256] = "";
    rewind(warn);
    if (!fgets(warned, sizeof warned, warn))
        warned[0] = '\0';
    fclose(warn);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(rows, 3);
    ASSERT(strstr(warned, "v.only_here") != NULL);
    ASSERT_STR_EQ(pg_value(&k, "SELECT body FROM v WHERE id = 3", out, sizeof out),
                  "tab\tnl\ncr\rbs\\ end");
    ASSERT_STR_EQ(pg_value(&k, "SELECT encode(raw, 'hex') FROM v WHERE id = 3", out,
                           sizeof out), "005c0a09ff");
    ASSERT_STR_EQ(pg_value(&k, "SELECT n FROM v WHERE id = 3", out, sizeof out),
                  "-9007199254740993");
    ASSERT_STR_EQ(pg_value(&k, "SELECT f = 0.1 FROM v WHERE id = 3", out, sizeof out), "t");
    ASSERT_STR_EQ(pg_value(&k, "SELECT body FROM v WHERE id = 7", out, sizeof out),
                  "ünïcødé ✓");
    ASSERT_STR_EQ(pg_value(&k, "SELECT count(*) FROM v WHERE id = 7 AND raw IS NULL"
                           " AND n IS NULL AND f IS NULL", out, sizeof out), "1");
    /* A text that reads like COPY's NULL marker stays text. */
    ASSERT_STR_EQ(pg_value(&k, "SELECT body FROM v WHERE id = 9", out, sizeof out), "\\N");
    ASSERT_STR_EQ(pg_value(&k, "SELECT convert_from(raw, 'UTF8') FROM v WHERE id = 9", out,
                           sizeof out), "text in a blob column");
    ASSERT_STR_EQ(pg_value(&k, "SELECT f = -1.5e300 FROM v WHERE id = 9", out, sizeof out),
                  "t");
    mcase_close(&k);
}

TEST(migrate_db_copy_of_many_rows_in_chunks)
{
    struct mcase k;
    char out[64];
    int64_t rows = 0;
    /* About 3 MB of rows: several chunks. */
    if (!mcase_open(&k, "CREATE TABLE m (id INTEGER PRIMARY KEY, body TEXT);"
                        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s"
                        " WHERE i < 20000) INSERT INTO m SELECT i, printf('%0150d', i)"
                        " FROM s;",
                    "CREATE TABLE m (id bigint primary key, body text not null)"))
        return;
    int rc = mdb_copy_table(k.src, k.pg, "m", NULL, &rows, k.err, sizeof k.err);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(rows, 20000);
    ASSERT_STR_EQ(pg_value(&k, "SELECT count(*) FROM m WHERE length(body) = 150", out,
                           sizeof out), "20000");
    ASSERT_STR_EQ(pg_value(&k, "SELECT body::bigint FROM m WHERE id = 12345", out,
                           sizeof out), "12345");
    mcase_close(&k);
}

TEST(migrate_db_copy_refuses_what_postgresql_cannot_hold)
{
    struct mcase k;
    char out[64];
    int64_t rows = -1;
    if (!mcase_open(&k, "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT);"
                        "INSERT INTO t VALUES (1, 'fine');"
                        "INSERT INTO t VALUES (2, CAST(x'61006200' AS TEXT));",
                    "CREATE TABLE t (id bigint primary key, body text)"))
        return;
    ASSERT_EQ(db_pg_exec(k.pg, "BEGIN"), 0);
    int rc = mdb_copy_table(k.src, k.pg, "t", NULL, &rows, k.err, sizeof k.err);
    db_pg_exec(k.pg, "ROLLBACK");
    ASSERT_EQ(rc, -EILSEQ);
    ASSERT(strstr(k.err, "NUL") != NULL && strstr(k.err, "t: row 2") != NULL);
    ASSERT_EQ(rows, -1);
    ASSERT_STR_EQ(pg_value(&k, "SELECT count(*) FROM t", out, sizeof out), "0");
    mcase_close(&k);
}

TEST(migrate_db_copy_reports_the_servers_refusal)
{
    struct mcase k;
    int64_t rows = -1;
    /* Not UTF-8, and a value the target's type does not take. */
    if (!mcase_open(&k, "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT, n INTEGER);"
                        "INSERT INTO t VALUES (1, CAST(x'c328' AS TEXT), 1);",
                    "CREATE TABLE t (id bigint primary key, body text, n bigint)"))
        return;
    int rc = mdb_copy_table(k.src, k.pg, "t", NULL, &rows, k.err, sizeof k.err);
    int utf8 = rc == -EIO && strstr(k.err, "t: ") && strstr(k.err, "UTF8");
    char err1[MDB_ERR_MAX];
    snprintf(err1, sizeof err1, "%s", k.err);
    sqlite3_close(k.src);
    k.src = NULL;
    sqlite3 *w = NULL;
    sqlite3_open(k.path, &w);
    sql(w, "UPDATE t SET body = 'ok', n = 'not a number'");
    sqlite3_close(w);
    mdb_source_open(k.path, &k.src, k.err, sizeof k.err);
    int rc2 = mdb_copy_table(k.src, k.pg, "t", NULL, &rows, k.err, sizeof k.err);
    int typed = rc2 == -EIO && strstr(k.err, "bigint") != NULL;
    if (!utf8 || !typed)
        fprintf(stderr, "errors: %s | %s\n", err1, k.err);
    mcase_close(&k);
    ASSERT(utf8);
    ASSERT(typed);
}

TEST(migrate_db_identity_counters_pass_the_copied_ids)
{
    struct mcase k;
    char out[64];
    int64_t rows;
    if (!mcase_open(&k, "CREATE TABLE u (id INTEGER PRIMARY KEY, name TEXT);"
                        "INSERT INTO u VALUES (1, 'a'), (5, 'b'), (9, 'c');"
                        "CREATE TABLE e (id INTEGER PRIMARY KEY);",
                    "CREATE TABLE u (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
                    " name text);"
                    "CREATE TABLE e (id bigserial primary key)"))
        return;
    ASSERT_EQ(mdb_copy_table(k.src, k.pg, "u", NULL, &rows, k.err, sizeof k.err), 0);
    ASSERT_EQ(mdb_target_reset_ids(k.pg, "u", 0, k.err, sizeof k.err), 0);
    ASSERT_STR_EQ(pg_value(&k, "INSERT INTO u (name) VALUES ('d') RETURNING id", out,
                           sizeof out), "10");
    /* SQLite's own high-water mark above max(id) (rows deleted) wins. */
    ASSERT_EQ(mdb_target_reset_ids(k.pg, "u", 20, k.err, sizeof k.err), 0);
    ASSERT_STR_EQ(pg_value(&k, "INSERT INTO u (name) VALUES ('e') RETURNING id", out,
                           sizeof out), "21");
    /* An empty table keeps a fresh counter; serial columns count too. */
    ASSERT_EQ(mdb_copy_table(k.src, k.pg, "e", NULL, &rows, k.err, sizeof k.err), 0);
    ASSERT_EQ(mdb_target_reset_ids(k.pg, "e", 0, k.err, sizeof k.err), 0);
    ASSERT_STR_EQ(pg_value(&k, "INSERT INTO e DEFAULT VALUES RETURNING id", out,
                           sizeof out), "1");
    mcase_close(&k);
}

/* ---------- keys ---------- */

TEST(migrate_db_keys_go_into_chatd_keys)
{
    struct mcase k;
    char path[160], out[128];
    int copied = 0;
    static const char *const names[] = { "jwt.pem", "vapid.pem", NULL };
    if (!mcase_open(&k, "CREATE TABLE t (x INT)",
                    "CREATE TABLE chatd_keys (name text primary key, value text not null,"
                    " created_at bigint not null)"))
        return;
    snprintf(path, sizeof path, "%s/jwt.pem", k.dir);
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    int rc = mdb_copy_keys(k.pg, k.dir, names, &copied, k.err, sizeof k.err);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(copied, 1);            /* vapid.pem never made: nothing to copy */
    ASSERT_STR_EQ(pg_value(&k, "SELECT value FROM chatd_keys WHERE name = 'jwt.pem'", out,
                           sizeof out),
                  "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    ASSERT_STR_EQ(pg_value(&k, "SELECT count(*) FROM chatd_keys WHERE created_at > 0", out,
                           sizeof out), "1");
    /* A file that is no key (binary) is refused, naming it. */
    snprintf(path, sizeof path, "%s/vapid.pem", k.dir);
    f = fopen(path, "wb");
    ASSERT(f != NULL);
    fwrite("a\0b", 1, 3, f);
    fclose(f);
    copied = 0;
    db_pg_exec(k.pg, "DELETE FROM chatd_keys");
    rc = mdb_copy_keys(k.pg, k.dir, names, &copied, k.err, sizeof k.err);
    int named = strstr(k.err, "vapid.pem") != NULL;
    mcase_close(&k);
    ASSERT(rc < 0);
    ASSERT(named);
}
