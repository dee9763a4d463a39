/* pg_fixture.h: a fresh PostgreSQL database for a unit test, on the server named by
 * CHATD_TEST_PG_URL (a URL whose role may CREATE DATABASE; tests/run.sh starts a
 * throwaway server and sets it). Without it the PostgreSQL cases skip. */
#ifndef CHATD_TEST_PG_FIXTURE_H
#define CHATD_TEST_PG_FIXTURE_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PG_TEST_URL_MAX 512

/* The server's URL, or NULL when the PostgreSQL cases are to skip. */
static inline const char *pg_test_server(void)
{
    const char *u = getenv("CHATD_TEST_PG_URL");
    return u && *u ? u : NULL;
}

/* Runs one statement on the server's maintenance database. 0 or -1. */
static inline int pg_test_admin(const char *sql)
{
    const char *base = pg_test_server();
    if (!base)
        return -1;
    PGconn *c = PQconnectdb(base);
    int ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "pg_fixture: %s: %s", sql, PQerrorMessage(c));
        PQclear(r);
    } else {
        fprintf(stderr, "pg_fixture: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

/* Makes an empty database and writes its URL into url (the server's URL with the
 * database name replaced) and its name into name (64 bytes). 0 or -1. */
static inline int pg_test_db_new(char url[PG_TEST_URL_MAX], char name[64])
{
    static int serial;
    const char *base = pg_test_server();
    char sql[128];
    if (!base)
        return -1;
    /* The counter is one per test file (a static in a header): the clock tells two
     * files' first databases apart. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(name, 64, "chatd_unit_%d_%ld_%d", (int)getpid(),
             (long)(ts.tv_sec % 100000) * 1000000L + ts.tv_nsec / 1000, ++serial);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    if (pg_test_admin(sql) < 0)
        return -1;
    /* postgres://user@host:port/db?params -> the same with our database */
    const char *scheme = strstr(base, "://");
    const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
    const char *query = strchr(base, '?');
    size_t head = slash ? (size_t)(slash - base) : (query ? (size_t)(query - base)
                                                          : strlen(base));
    int n = snprintf(url, PG_TEST_URL_MAX, "%.*s/%s%s", (int)head, base, name,
                     query ? query : "");
    return n > 0 && n < PG_TEST_URL_MAX ? 0 : -1;
}

/* The one integer that sql answers on url's database (its own connection, so it sees
 * only what is committed), or -1 for no row, NULL, an error or no connection. */
static inline long long pg_test_int(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    long long v = -1;
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

/* Runs sql on url's database on a connection of its own: 0 when it succeeded (a
 * command or a query), -1 when not. */
static inline int pg_test_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

static inline void pg_test_db_drop(const char *name)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    pg_test_admin(sql);
}

#endif
