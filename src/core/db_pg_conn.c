/* db_pg_conn.c: one PostgreSQL connection: opening it, running a store's statements
 * (prepared once per connection, by name) and turning the server's errors into the
 * negative errno values stores return. The value helpers are in db_pg_values.c. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db_pg_conn.h"

static void drop_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;                   /* "relation ... already exists, skipping" and such */
}

/* libpq's messages span lines ("...failed: Connection refused\n\tIs the server
 * running...\n"): one line of them, its parts joined by "; ", tabs made spaces and
 * double quotes single ones, so that it sits inside a log field error="...". */
static void one_line(char *dst, size_t cap, const char *src)
{
    size_t n = 0;

    for (src = src ? src : ""; *src && n + 3 < cap; src++) {
        if (*src == '\n' || *src == '\r') {
            while (src[1] == '\n' || src[1] == '\r' || src[1] == '\t' || src[1] == ' ')
                src++;
            if (src[1] && n > 0) {
                dst[n++] = ';';
                dst[n++] = ' ';
            }
            continue;
        }
        dst[n++] = *src == '\t' ? ' ' : *src == '"' ? '\'' : *src;
    }
    while (n > 0 && dst[n - 1] == ' ')
        n--;
    if (cap > 0)
        dst[n] = '\0';
}

int db_pg_conn_open(const char *url, struct db_pg_conn **out, char *err, size_t errlen)
{
    /* Defaults first: with expand_dbname the URL's own settings come after them and win. */
    /* tcp_user_timeout: a request the server's host stops acknowledging (the network
     * gone) ends the connection in 30 s, where TCP alone would retry for many minutes
     * and keepalives, being for idle connections, would not help. */
    static const char *const keys[] = { "application_name", "connect_timeout", "keepalives",
                                        "keepalives_idle", "keepalives_interval",
                                        "keepalives_count", "tcp_user_timeout", "dbname",
                                        NULL };
    const char *values[] = { "chatd", "5", "1", "10", "5", "3", "30000", url, NULL };
    struct db_pg_conn *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (!c) {
        one_line(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->pg = PQconnectdbParams(keys, values, 1);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        int rc = c->pg ? -ENOTCONN : -ENOMEM;
        one_line(err, errlen, c->pg ? PQerrorMessage(c->pg) : "out of memory");
        db_pg_conn_close(c);
        return rc;
    }
    PQsetNoticeProcessor(c->pg, drop_notice, NULL);
    /* An ack means COMMIT reached the disk, whatever the role's or database's default. */
    int rc = db_pg_exec(db_conn_of_pg(c), "SET synchronous_commit = on");
    if (rc < 0) {
        one_line(err, errlen, c->err);
        db_pg_conn_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void db_pg_conn_close(struct db_pg_conn *c)
{
    if (!c)
        return;
    if (c->pg)
        PQfinish(c->pg);
    free(c);
}

void db_pg_conn_reset_prepared(struct db_pg_conn *c)
{
    memset(c->prepared, 0, sizeof(c->prepared));
    c->nprepared = 0;
}

int db_pg_conn_retryable(const struct db_pg_conn *c)
{
    return strcmp(c->sqlstate, "40P01") == 0 || strcmp(c->sqlstate, "40001") == 0;
}

int db_pg_conn_lost(const struct db_pg_conn *c)
{
    return !c->pg || PQstatus(c->pg) != CONNECTION_OK;
}

PGconn *db_pg(struct db_conn *c)
{
    return db_pg_conn_of(c)->pg;
}

const char *db_pg_errmsg(struct db_conn *c)
{
    return db_pg_conn_of(c)->err;
}

int db_pg_txn_failed(struct db_conn *c)
{
    return PQtransactionStatus(db_pg(c)) == PQTRANS_INERROR;
}

/* ---------- errors ---------- */
static int errno_of_sqlstate(const char *s)
{
    if (strncmp(s, "23", 2) == 0)
        return -ECONSTRAINT;
    if (strcmp(s, "40P01") == 0)
        return -EDEADLK;
    if (strcmp(s, "40001") == 0)
        return -EAGAIN;
    if (strcmp(s, "53100") == 0)
        return -ENOSPC;
    if (strcmp(s, "53200") == 0)
        return -ENOMEM;
    if (strcmp(s, "25006") == 0)
        return -EROFS;
    /* 57P01..57P03: the server shuts down or is not yet up; 08: connection exceptions. */
    if (strncmp(s, "57P", 3) == 0 || strncmp(s, "08", 2) == 0)
        return -ENOTCONN;
    return -EIO;
}

/* res (consumed) -> 0 with *out, or the error kept in c and returned. */
static int settle(struct db_pg_conn *c, PGresult *res, PGresult **out)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        c->err[0] = c->sqlstate[0] = '\0';
        if (out)
            *out = res;
        else
            PQclear(res);
        return 0;
    }
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state ? state : "");
    one_line(c->err, sizeof(c->err), res && PQresultErrorMessage(res)[0]
                                         ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
    PQclear(res);
    if (out)
        *out = NULL;
    if (db_pg_conn_lost(c))
        return -ENOTCONN;
    return state ? errno_of_sqlstate(c->sqlstate) : -EIO;   /* state went with res */
}

int db_pg_exec(struct db_conn *conn, const char *sql)
{
    struct db_pg_conn *c = db_pg_conn_of(conn);
    return settle(c, PQexec(c->pg, sql), NULL);
}

/* ---------- prepared statements ---------- */
static size_t stmt_slot(const struct db_pg_stmt *st)
{
    uintptr_t h = (uintptr_t)st;
    return (size_t)((h >> 4) * 0x9E3779B97F4A7C15ull >> 56) & (DB_PG_PREPARED_MAX - 1);
}

/* 1 when st is prepared on c, 0 when it is not (and *slot is where it would go). */
static int is_prepared(const struct db_pg_conn *c, const struct db_pg_stmt *st, size_t *slot)
{
    size_t i = stmt_slot(st);
    while (c->prepared[i] && c->prepared[i] != st)
        i = (i + 1) & (DB_PG_PREPARED_MAX - 1);
    *slot = i;
    return c->prepared[i] == st;
}

/* The name to execute st under: its own once prepared here, "" (unnamed, parsed on
 * each run) when the set is full. 0 or the error of the prepare. */
static int prepare(struct db_pg_conn *c, const struct db_pg_stmt *st, const char **name)
{
    size_t slot;
    *name = st->name;
    if (is_prepared(c, st, &slot))
        return 0;
    if (c->nprepared >= DB_PG_PREPARED_MAX / 2)
        *name = "";
    PGresult *res = PQprepare(c->pg, *name, st->sql, st->nparams, NULL);
    if (res && PQresultStatus(res) == PGRES_FATAL_ERROR) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "42P05") == 0) {   /* prepared before a reset */
            PQclear(res);
            res = PQexec(c->pg, "SELECT 1");
        }
    }
    int rc = settle(c, res, NULL);
    if (rc == 0 && **name) {
        c->prepared[slot] = st;
        c->nprepared++;
    }
    return rc;
}

int db_pg_run_bin(struct db_conn *conn, const struct db_pg_stmt *st, const char *const *values,
                  const int *lengths, const int *formats, PGresult **res)
{
    struct db_pg_conn *c = db_pg_conn_of(conn);
    const char *name;
    int rc = prepare(c, st, &name);
    if (rc < 0) {
        if (res)
            *res = NULL;
        return rc;
    }
    return settle(c, PQexecPrepared(c->pg, name, st->nparams, values, lengths, formats, 0),
                  res);
}

int db_pg_run_i64(struct db_conn *conn, const struct db_pg_stmt *st, const char *const *values,
                  int64_t *out)
{
    PGresult *res;
    int rc = db_pg_run(conn, st, values, &res);
    if (rc < 0)
        return rc;
    int found = PQntuples(res) > 0;
    if (found)
        *out = db_pg_i64(res, 0, 0);
    PQclear(res);
    return found;
}

int db_pg_run(struct db_conn *conn, const struct db_pg_stmt *st, const char *const *values,
              PGresult **res)
{
    return db_pg_run_bin(conn, st, values, NULL, NULL, res);
}
