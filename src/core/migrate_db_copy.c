/* migrate_db_copy.c: one SQLite table into the PostgreSQL table of the same name, with
 * COPY in text format: the columns both have, each value as PostgreSQL's input text
 * (a bytea column gets hex, whatever SQLite holds in it). Rows go out in chunks, so
 * memory stays at about one chunk and the largest row whatever the table's size. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "chatd/db_pg.h"
#include "chatd/db_sqlite.h"
#include "migrate_db.h"

#define MDB_CHUNK (256 * 1024)       /* bytes of COPY data sent at a time */

struct mdb_cols {
    int n;
    char src[MDB_COLS_MAX][MDB_NAME_MAX];     /* the SQLite column names */
    char dst[MDB_COLS_MAX][MDB_NAME_MAX];     /* the same columns on PostgreSQL */
    char bytea[MDB_COLS_MAX];
};

struct mdb_buf {
    char *p;
    size_t len, cap;
};

static int buf_room(struct mdb_buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_add(struct mdb_buf *b, const char *s, size_t n)
{
    if (buf_room(b, n) < 0)
        return -ENOMEM;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static const struct db_pg_stmt target_cols_stmt = { "mdb_columns",
    "SELECT a.attname, t.typname FROM pg_attribute a"
    " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " JOIN pg_type t ON t.oid = a.atttypid WHERE n.nspname = current_schema()"
    " AND c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''"
    " ORDER BY a.attnum", 1 };

/* The target column matching a SQLite one (SQLite's names ignore case), or -1. */
static int find_target(const PGresult *r, const char *name)
{
    for (int i = 0; i < PQntuples(r); i++)
        if (strcasecmp(PQgetvalue(r, i, 0), name) == 0)
            return i;
    return -1;
}

static int add_col(struct mdb_cols *c, const char *src, const PGresult *r, int t)
{
    if (c->n == MDB_COLS_MAX || strlen(src) >= MDB_NAME_MAX)
        return -E2BIG;
    snprintf(c->src[c->n], MDB_NAME_MAX, "%s", src);
    snprintf(c->dst[c->n], MDB_NAME_MAX, "%s", PQgetvalue(r, t, 0));
    c->bytea[c->n++] = strcmp(PQgetvalue(r, t, 1), "bytea") == 0;
    return 0;
}

static int common_cols(sqlite3 *src, struct db_conn *pg, const char *table,
                       struct mdb_cols *c, FILE *warn, char *err, size_t errlen)
{
    const char *v[] = { table };
    PGresult *r = NULL;
    sqlite3_stmt *st = NULL;
    int rc = db_pg_run(pg, &target_cols_stmt, v, &r);

    if (rc < 0) {
        snprintf(err, errlen, "%s: reading its columns: %s", table, db_pg_errmsg(pg));
        return rc;
    }
    c->n = 0;
    rc = sqlite3_prepare_v2(src, "SELECT name FROM pragma_table_info(?1) ORDER BY cid", -1,
                            &st, NULL);
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int t = name ? find_target(r, name) : -1;
        rc = SQLITE_OK;
        if (t < 0 && name && warn)
            fprintf(warn, "chatd: migrate-db: %s.%s is not on PostgreSQL: not copied\n",
                    table, name);
        if (t >= 0 && add_col(c, name, r, t) < 0) {
            rc = SQLITE_TOOBIG;
            break;
        }
    }
    sqlite3_finalize(st);
    PQclear(r);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "%s: reading its columns: %s", table, sqlite3_errstr(rc));
        return rc == SQLITE_TOOBIG ? -E2BIG : db_errno(rc);
    }
    if (c->n == 0) {
        snprintf(err, errlen, "%s: no column in common with the PostgreSQL table", table);
        return -EINVAL;
    }
    return 0;
}

/* In COPY's text format a backslash escapes, a tab ends the field, a newline the row. */
static int add_text(struct mdb_buf *b, const unsigned char *s, size_t n)
{
    if (buf_room(b, 2 * n) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *esc = s[i] == '\\' ? "\\\\" : s[i] == '\t' ? "\\t"
                        : s[i] == '\n' ? "\\n" : s[i] == '\r' ? "\\r" : NULL;
        if (s[i] == '\0')
            return -EILSEQ;          /* PostgreSQL's text cannot hold a NUL */
        if (esc) {
            memcpy(b->p + b->len, esc, 2);
            b->len += 2;
        } else {
            b->p[b->len++] = (char)s[i];
        }
    }
    return 0;
}

/* bytea's hex input "\x0a1b", its backslash escaped for COPY. */
static int add_hex(struct mdb_buf *b, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (buf_room(b, 3 + 2 * n) < 0)
        return -ENOMEM;
    memcpy(b->p + b->len, "\\\\x", 3);
    b->len += 3;
    for (size_t i = 0; i < n; i++) {
        b->p[b->len++] = hex[s[i] >> 4];
        b->p[b->len++] = hex[s[i] & 15];
    }
    return 0;
}

static int add_value(struct mdb_buf *b, sqlite3_stmt *st, int i, int bytea)
{
    char num[40];

    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        return buf_add(b, "\\N", 2);
    case SQLITE_FLOAT:
        if (!bytea) {        /* all of a double's digits, not SQLite's 15 */
            int n = snprintf(num, sizeof num, "%.17g", sqlite3_column_double(st, i));
            return buf_add(b, num, (size_t)n);
        }
        /* fall through */
    default:
        if (bytea) {
            const unsigned char *p = sqlite3_column_blob(st, i);
            return add_hex(b, p, (size_t)sqlite3_column_bytes(st, i));
        }
        const unsigned char *t = sqlite3_column_text(st, i);
        return add_text(b, t, (size_t)sqlite3_column_bytes(st, i));
    }
}

static int add_row(struct mdb_buf *b, sqlite3_stmt *st, const struct mdb_cols *c)
{
    int rc = 0;
    for (int i = 0; i < c->n && rc == 0; i++) {
        if (i > 0)
            rc = buf_add(b, "\t", 1);
        if (rc == 0)
            rc = add_value(b, st, i, c->bytea[i]);
    }
    return rc < 0 ? rc : buf_add(b, "\n", 1);
}

/* "SELECT "a", "b" FROM "t"" on SQLite, "COPY "t" ("a", "b") FROM STDIN" on PG. */
static int build_sql(struct db_conn *pg, const char *table, const struct mdb_cols *c,
                     struct mdb_buf *sel, struct mdb_buf *copy)
{
    char *q = sqlite3_mprintf("\"%w\"", table);
    char *pq = PQescapeIdentifier(db_pg(pg), table, strlen(table));
    int rc = q && pq ? 0 : -ENOMEM;

    if (rc == 0)
        rc = buf_add(sel, "SELECT ", 7);
    if (rc == 0 && (rc = buf_add(copy, "COPY ", 5)) == 0 &&
        (rc = buf_add(copy, pq, strlen(pq))) == 0)
        rc = buf_add(copy, " (", 2);
    for (int i = 0; i < c->n && rc == 0; i++) {
        char *s = sqlite3_mprintf("%s\"%w\"", i ? ", " : "", c->src[i]);
        char *d = PQescapeIdentifier(db_pg(pg), c->dst[i], strlen(c->dst[i]));
        rc = s && d ? 0 : -ENOMEM;
        if (rc == 0 && (rc = buf_add(sel, s, strlen(s))) == 0 && i)
            rc = buf_add(copy, ", ", 2);
        if (rc == 0)
            rc = buf_add(copy, d, strlen(d));
        sqlite3_free(s);
        PQfreemem(d);
    }
    if (rc == 0 && (rc = buf_add(sel, " FROM ", 6)) == 0 &&
        (rc = buf_add(sel, q, strlen(q) + 1)) == 0)
        rc = buf_add(copy, ") FROM STDIN", 13);
    sqlite3_free(q);
    PQfreemem(pq);
    return rc;
}

static int send_chunk(PGconn *c, struct mdb_buf *b)
{
    int ok = b->len == 0 || PQputCopyData(c, b->p, (int)b->len) == 1;
    b->len = 0;
    return ok ? 0 : -EPIPE;
}

/* Streams the rows; on a failure of ours the COPY is ended with the reason, so the
 * server fails it (and with it the transaction). */
static int stream_rows(sqlite3_stmt *st, PGconn *c, const struct mdb_cols *cols,
                       struct mdb_buf *b, int64_t *sent, const char **why)
{
    int rc = 0, s = SQLITE_DONE;

    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        rc = add_row(b, st, cols);
        if (rc == 0 && b->len >= MDB_CHUNK)
            rc = send_chunk(c, b);
        (*sent)++;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = db_errno(s);
    if (rc == 0)
        rc = send_chunk(c, b);
    /* A send that failed: the server's answer (copy_end) says why. */
    *why = rc == -EILSEQ ? "a text value holds a NUL byte, which PostgreSQL cannot store"
         : rc == -ENOMEM ? "out of memory" : rc == -EPIPE ? NULL
         : rc < 0 ? sqlite3_errmsg(sqlite3_db_handle(st)) : NULL;
    return rc == -EPIPE ? 0 : rc;
}

static int copy_end(PGconn *c, const char *table, int rc, const char *why, int64_t sent,
                    int64_t *rows, char *err, size_t errlen)
{
    PGresult *r;
    int ended = PQputCopyEnd(c, rc < 0 ? why : NULL) == 1;

    while ((r = PQgetResult(c)) != NULL) {
        if (rc == 0 && PQresultStatus(r) == PGRES_COMMAND_OK &&
            strtoll(PQcmdTuples(r), NULL, 10) != sent) {
            snprintf(err, errlen, "%s: %lld rows sent, %s stored", table, (long long)sent,
                     PQcmdTuples(r));
            rc = -EIO;
        } else if (rc == 0 && PQresultStatus(r) != PGRES_COMMAND_OK) {
            const char *ctx = PQresultErrorField(r, PG_DIAG_CONTEXT);
            const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
            snprintf(err, errlen, "%s: %s%s%s", table, msg ? msg : PQerrorMessage(c),
                     ctx ? " at " : "", ctx ? ctx : "");
            rc = -EIO;
        }
        PQclear(r);
    }
    if (rc == 0 && !ended) {
        snprintf(err, errlen, "%s: %s", table, PQerrorMessage(c));
        rc = -EIO;
    }
    if (rc < 0 && why)
        snprintf(err, errlen, "%s: row %lld: %s", table, (long long)sent, why);
    if (rc == 0)
        *rows = sent;
    err[strcspn(err, "\n")] = '\0';
    return rc < 0 && PQstatus(c) != CONNECTION_OK ? -ENOTCONN : rc;
}

int mdb_copy_table(sqlite3 *src, struct db_conn *pg, const char *table, FILE *warn,
                   int64_t *rows, char *err, size_t errlen)
{
    struct mdb_cols *cols = calloc(1, sizeof(*cols));
    struct mdb_buf sel = { 0 }, copy = { 0 }, data = { 0 };
    sqlite3_stmt *st = NULL;
    PGresult *r = NULL;
    const char *why = NULL;
    int64_t sent = 0;
    int rc = cols ? common_cols(src, pg, table, cols, warn, err, errlen) : -ENOMEM;

    if (rc == 0 && (rc = build_sql(pg, table, cols, &sel, &copy)) == 0 &&
        (rc = buf_add(&copy, "", 1)) == 0 &&
        sqlite3_prepare_v2(src, sel.p, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", table, sqlite3_errmsg(src));
        rc = -EIO;
    }
    if (rc == 0 && PQresultStatus(r = PQexec(db_pg(pg), copy.p)) != PGRES_COPY_IN) {
        snprintf(err, errlen, "%s: %s", table, PQerrorMessage(db_pg(pg)));
        err[strcspn(err, "\n")] = '\0';
        rc = PQstatus(db_pg(pg)) == CONNECTION_OK ? -EIO : -ENOTCONN;
    }
    PQclear(r);
    if (rc == 0) {
        rc = stream_rows(st, db_pg(pg), cols, &data, &sent, &why);
        rc = copy_end(db_pg(pg), table, rc, why, sent, rows, err, errlen);
    }
    sqlite3_finalize(st);
    free(sel.p);
    free(copy.p);
    free(data.p);
    free(cols);
    return rc;
}
