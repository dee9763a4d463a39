/* One PostgreSQL connection (src/core/db_pg_conn.c, db_pg_values.c): prepared
 * statements run again, errors mapped to errno values with the text kept, an aborted
 * transaction seen, array and bytea values through a real server, a bad URL. The
 * server comes from CHATD_TEST_PG_URL (pg_fixture.h); without it these cases pass
 * without running. */
#include <errno.h>
#include <string.h>
#include "test.h"
#include "pg_fixture.h"
#include "chatd/db_pg.h"
#include "../../src/core/db_pg_conn.h"

struct pg_case {
    char url[PG_TEST_URL_MAX], name[64];
    struct db_pg_conn *pc;
    struct db_conn *c;
};

/* 1 opened, 0 no server (skip), -1 failed. */
static int case_try(struct pg_case *k)
{
    char err[256];
    memset(k, 0, sizeof(*k));
    if (!pg_test_server())
        return 0;
    if (pg_test_db_new(k->url, k->name) < 0 ||
        db_pg_conn_open(k->url, &k->pc, err, sizeof err) < 0)
        return -1;
    k->c = db_conn_of_pg(k->pc);
    return 1;
}

#define case_open(k) ({ int rc_ = case_try(k); ASSERT(rc_ >= 0); rc_; })

static void case_close(struct pg_case *k)
{
    db_pg_conn_close(k->pc);
    pg_test_db_drop(k->name);
}

static const struct db_pg_stmt add_one = { "test_add_one", "SELECT $1::bigint + 1", 1 };

TEST(db_pg_conn_prepares_once_and_runs_again)
{
    struct pg_case k;
    if (!case_open(&k))
        return;
    char b[DB_PG_I64_LEN];
    for (int i = 0; i < 3; i++) {
        const char *v[] = { db_pg_p64(b, INT64_C(9007199254740993) + i) };
        PGresult *r = NULL;
        ASSERT_EQ(db_pg_run(k.c, &add_one, v, &r), 0);
        ASSERT_EQ(db_pg_i64(r, 0, 0), INT64_C(9007199254740994) + i);
        PQclear(r);
    }
    ASSERT_EQ(k.pc->nprepared, 1);
    /* A new session (after a reconnect) has nothing prepared: the set is emptied and
     * the statement prepared again; one prepared before the reset is taken as is. */
    db_pg_conn_reset_prepared(k.pc);
    const char *v[] = { "41" };
    PGresult *r = NULL;
    ASSERT_EQ(db_pg_run(k.c, &add_one, v, &r), 0);
    ASSERT_EQ(db_pg_i64(r, 0, 0), 42);
    PQclear(r);
    case_close(&k);
}

TEST(db_pg_conn_maps_errors_and_sees_an_aborted_transaction)
{
    struct pg_case k;
    if (!case_open(&k))
        return;
    static const struct db_pg_stmt ins = { "test_ins", "INSERT INTO t (k) VALUES ($1)", 1 };
    ASSERT_EQ(db_pg_exec(k.c, "CREATE TABLE t (k text PRIMARY KEY)"), 0);
    const char *v[] = { "a" };
    PGresult *r = NULL;
    ASSERT_EQ(db_pg_run(k.c, &ins, v, &r), 0);
    PQclear(r);
    ASSERT_EQ(db_pg_exec(k.c, "BEGIN"), 0);
    ASSERT_EQ(db_pg_txn_failed(k.c), 0);
    ASSERT_EQ(db_pg_run(k.c, &ins, v, &r), -ECONSTRAINT);
    ASSERT(r == NULL);
    ASSERT(strstr(db_pg_errmsg(k.c), "duplicate key") != NULL);
    ASSERT(strchr(db_pg_errmsg(k.c), '\n') == NULL);
    ASSERT_EQ(db_pg_txn_failed(k.c), 1);
    ASSERT_EQ(db_pg_exec(k.c, "ROLLBACK"), 0);
    ASSERT_EQ(db_pg_exec(k.c, "SELECT * FROM no_such_table"), -EIO);
    /* Without a place for the result: run and dropped, and a statement that cannot be
     * prepared fails the same way. */
    static const struct db_pg_stmt bad = { "test_bad", "SELECT * FROM no_such_table", 0 };
    const char *w[] = { "b" };
    ASSERT_EQ(db_pg_run(k.c, &ins, w, NULL), 0);
    ASSERT_EQ(db_pg_run(k.c, &ins, w, NULL), -ECONSTRAINT);
    ASSERT_EQ(db_pg_run(k.c, &bad, NULL, NULL), -EIO);
    ASSERT_EQ(db_pg_conn_retryable(k.pc), 0);
    ASSERT_EQ(db_pg_exec(k.c, "SELECT 1"), 0);
    ASSERT_STR_EQ(db_pg_errmsg(k.c), "");
    case_close(&k);
}

TEST(db_pg_conn_arrays_and_bytea_round_trip)
{
    struct pg_case k;
    if (!case_open(&k))
        return;
    int64_t ids[] = { -5, 0, INT64_MAX };
    char *a64 = db_pg_array64(ids, 3);
    ASSERT_STR_EQ(a64, "{-5,0,9223372036854775807}");
    const char *texts[] = { "plain", "quo\"te", "back\\slash", NULL, "", "{,}" };
    char *at = db_pg_array_text(texts, 6);
    static const struct db_pg_stmt arrs = {
        "test_arrs", "SELECT (SELECT sum(x)::text FROM unnest($1::bigint[]) x WHERE x < 1),"
                     " e, e IS NULL FROM unnest($2::text[]) WITH ORDINALITY AS u(e, i)"
                     " ORDER BY i", 2 };
    const char *v[] = { a64, at };
    PGresult *r = NULL;
    ASSERT_EQ(db_pg_run(k.c, &arrs, v, &r), 0);
    ASSERT_EQ(PQntuples(r), 6);
    ASSERT_EQ(db_pg_i64(r, 0, 0), -5);
    for (int i = 0; i < 6; i++) {
        ASSERT_EQ(db_pg_null(r, i, 1), texts[i] == NULL);
        if (texts[i])
            ASSERT_STR_EQ(db_pg_str(r, i, 1), texts[i]);
    }
    PQclear(r);
    free(a64);
    free(at);

    static const struct db_pg_stmt bin = { "test_bin", "SELECT $1::bytea", 1 };
    const uint8_t raw[] = { 0, 0xff, 0x5c, 0x78, 7 };
    const char *bv[] = { (const char *)raw };
    int len[] = { (int)sizeof raw }, fmt[] = { 1 };
    ASSERT_EQ(db_pg_run_bin(k.c, &bin, bv, len, fmt, &r), 0);
    uint8_t out[8];
    ASSERT_EQ(db_pg_bytea(r, 0, 0, out, sizeof out), (int)sizeof raw);
    ASSERT(memcmp(out, raw, sizeof raw) == 0);
    ASSERT_EQ(db_pg_bytea(r, 0, 0, out, 2), -EINVAL);   /* longer than the room */
    PQclear(r);
    case_close(&k);
}

TEST(db_pg_conn_bad_url_says_why)
{
    struct db_pg_conn *c = (struct db_pg_conn *)1;
    char err[256];
    /* Port 1 on loopback: refused at once, no server needed. */
    ASSERT_EQ(db_pg_conn_open("postgres://nobody@127.0.0.1:1/x", &c, err, sizeof err),
              -ENOTCONN);
    ASSERT(c == NULL);
    ASSERT(err[0] != '\0' && strchr(err, '\n') == NULL);
    ASSERT(db_pg_conn_open("postgres://[broken", &c, err, sizeof err) < 0);
    ASSERT(err[0] != '\0');
}

/* libpq's reason comes out on one line: its lines joined by "; ", no tab, no
 * newline, no double quote (it sits inside a log field error="..."). */
TEST(db_pg_conn_open_reason_on_one_line)
{
    char err[256];
    struct db_pg_conn *c = NULL;

    ASSERT_EQ(db_pg_conn_open("postgres://u@127.0.0.1:1/x?connect_timeout=2", &c, err,
                              sizeof err), -ENOTCONN);
    ASSERT(c == NULL);
    ASSERT(strstr(err, "Connection refused; Is the server running") != NULL);
    ASSERT(strpbrk(err, "\t\n\r\"") == NULL);
    ASSERT(strstr(err, "'127.0.0.1'") != NULL);
    char tiny[4];                                 /* cut short, still ended */
    ASSERT_EQ(db_pg_conn_open("postgres://u@127.0.0.1:1/x?connect_timeout=2", &c, tiny,
                              sizeof tiny), -ENOTCONN);
    ASSERT(strlen(tiny) < sizeof tiny);
}

static const char *conn_option(PQconninfoOption *opts, const char *key)
{
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, key) == 0)
            return o->val ? o->val : "";
    return "";
}

/* chatd's defaults for a connection, and the URL's own settings winning over them. */
TEST(db_pg_conn_defaults_and_the_urls_own)
{
    struct pg_case k;
    if (!case_open(&k))
        return;
    PQconninfoOption *opts = PQconninfo(k.pc->pg);
    ASSERT_STR_EQ(conn_option(opts, "tcp_user_timeout"), "30000");
    ASSERT_STR_EQ(conn_option(opts, "keepalives"), "1");
    ASSERT_STR_EQ(conn_option(opts, "application_name"), "chatd");
    PQconninfoFree(opts);
    char url[PG_TEST_URL_MAX + 32], err[256];
    struct db_pg_conn *c = NULL;
    snprintf(url, sizeof url, "%s?tcp_user_timeout=5000", k.url);
    ASSERT_EQ(db_pg_conn_open(url, &c, err, sizeof err), 0);
    opts = PQconninfo(c->pg);
    ASSERT_STR_EQ(conn_option(opts, "tcp_user_timeout"), "5000");
    PQconninfoFree(opts);
    db_pg_conn_close(c);
    case_close(&k);
}
