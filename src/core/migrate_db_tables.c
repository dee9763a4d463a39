/* migrate_db_tables.c: what migrate-db reads from the target's catalogue: whether the
 * database is empty, the order its foreign keys ask for, its identity counters. Only
 * the current schema (search_path's first, `public` by default) is looked at: that is
 * where chatd's migrations made the tables. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/db_pg.h"
#include "migrate_db.h"

#define MDB_FKEYS_MAX 1024

int mdb_pg_query(struct db_conn *pg, const char *sql, PGresult **res, char *err,
                 size_t errlen)
{
    PGresult *r = PQexec(db_pg(pg), sql);
    ExecStatusType s = PQresultStatus(r);

    if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
        *res = r;
        return 0;
    }
    snprintf(err, errlen, "%s", PQerrorMessage(db_pg(pg)));
    err[strcspn(err, "\n")] = '\0';
    PQclear(r);
    *res = NULL;
    return PQstatus(db_pg(pg)) == CONNECTION_OK ? -EIO : -ENOTCONN;
}

static const struct db_pg_stmt tables_stmt = { "mdb_tables",
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1", 0 };

static int run(struct db_conn *pg, const struct db_pg_stmt *st, const char *const *v,
               PGresult **res, char *err, size_t errlen)
{
    int rc = db_pg_run(pg, st, v, res);
    if (rc < 0)
        snprintf(err, errlen, "reading the PostgreSQL catalogue: %s", db_pg_errmsg(pg));
    return rc;
}

/* 1 when table holds a row, 0 when not, negative on error. */
static int has_rows(struct db_conn *pg, const char *table, char *err, size_t errlen)
{
    char *q = PQescapeIdentifier(db_pg(pg), table, strlen(table)), sql[MDB_NAME_MAX * 2 + 64];
    PGresult *r;
    int rc;

    if (!q)
        return -ENOMEM;
    snprintf(sql, sizeof sql, "SELECT 1 FROM %s LIMIT 1", q);
    PQfreemem(q);
    if ((rc = mdb_pg_query(pg, sql, &r, err, errlen)) < 0)
        return rc;
    rc = PQntuples(r) > 0;
    PQclear(r);
    return rc;
}

/* 1 when name is one of the NULL-ended list. */
static int listed(const char *name, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(name, *list) == 0)
            return 1;
    return 0;
}

/* What may already be there: core's own two tables, which opening the database made
 * (empty), and, once a migration was recorded (an earlier run that failed after the
 * migrations), chatd's empty tables, the derived ones (skip) with whatever rows a
 * migration seeded them with. */
static int table_allowed(struct db_conn *pg, const char *t, int ours,
                         const char *const *skip, char *err, size_t errlen)
{
    int rows;

    if (strcmp(t, "schema_versions") == 0 || (ours && listed(t, skip)))
        return 0;
    if (!ours && strcmp(t, "chatd_keys") != 0) {
        snprintf(err, errlen, "the target database is not empty (it has a table %s):"
                 " migrate-db copies into an empty database only", t);
        return -ENOTEMPTY;
    }
    if ((rows = has_rows(pg, t, err, errlen)) <= 0)
        return rows;
    snprintf(err, errlen, "the target database is not empty (its table %s has rows):"
             " migrate-db copies into an empty database only", t);
    return -ENOTEMPTY;
}

int mdb_target_empty(struct db_conn *pg, const char *const *skip, char *err, size_t errlen)
{
    PGresult *r;
    int rc = run(pg, &tables_stmt, NULL, &r, err, errlen), ours = 0;

    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        if (strcmp(PQgetvalue(r, i, 0), "schema_versions") == 0 &&
            (rc = has_rows(pg, "schema_versions", err, errlen)) >= 0) {
            ours = rc;
            rc = 0;
        }
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        rc = table_allowed(pg, PQgetvalue(r, i, 0), ours, skip, err, errlen);
    PQclear(r);
    return rc;
}

int mdb_target_has(struct db_conn *pg, const char *table)
{
    static const struct db_pg_stmt has = { "mdb_has",
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
        " AND c.relname = $1", 1 };
    const char *v[] = { table };
    PGresult *r;
    int rc = db_pg_run(pg, &has, v, &r);

    if (rc < 0)
        return rc;
    rc = PQntuples(r) > 0;
    PQclear(r);
    return rc;
}

static int index_of(char (*names)[MDB_NAME_MAX], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

struct fkey { int child, parent; };

/* Kahn's order over the edges among names; ties keep the given (name) order. */
static int order_by(char (*names)[MDB_NAME_MAX], int n, const struct fkey *e, int ne,
                    char *err, size_t errlen)
{
    char (*out)[MDB_NAME_MAX] = malloc((size_t)(n ? n : 1) * MDB_NAME_MAX);
    char placed[MDB_TABLES_MAX] = { 0 };
    int nout = 0, progress = 1;

    if (!out)
        return -ENOMEM;
    while (nout < n && progress) {
        progress = 0;
        for (int i = 0; i < n; i++) {
            int ready = !placed[i];
            for (int k = 0; k < ne && ready; k++)
                ready = e[k].child != i || placed[e[k].parent];
            if (ready) {
                memcpy(out[nout++], names[i], MDB_NAME_MAX);
                placed[i] = progress = 1;
            }
        }
    }
    if (nout == n)
        memcpy(names, out, (size_t)n * MDB_NAME_MAX);
    else
        snprintf(err, errlen, "the foreign keys among the target's tables form a cycle");
    free(out);
    return nout == n ? 0 : -ELOOP;
}

int mdb_target_order(struct db_conn *pg, char (*names)[MDB_NAME_MAX], int n, char *err,
                     size_t errlen)
{
    static const struct db_pg_stmt fkeys = { "mdb_fkeys",
        "SELECT ch.relname, pa.relname FROM pg_constraint k"
        " JOIN pg_class ch ON ch.oid = k.conrelid JOIN pg_class pa ON pa.oid = k.confrelid"
        " JOIN pg_namespace n ON n.oid = ch.relnamespace"
        " WHERE k.contype = 'f' AND n.nspname = current_schema()"
        " AND k.conrelid <> k.confrelid ORDER BY 1, 2", 0 };
    struct fkey *e = malloc(MDB_FKEYS_MAX * sizeof(*e));
    PGresult *r = NULL;
    int ne = 0, rc = e ? run(pg, &fkeys, NULL, &r, err, errlen) : -ENOMEM;

    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        int c = index_of(names, n, PQgetvalue(r, i, 0));
        int p = index_of(names, n, PQgetvalue(r, i, 1));
        if (c < 0 || p < 0)
            continue;        /* a table not copied: its rows come from the migrations */
        if (ne == MDB_FKEYS_MAX) {
            snprintf(err, errlen, "more than %d foreign keys", MDB_FKEYS_MAX);
            rc = -E2BIG;
            break;
        }
        e[ne++] = (struct fkey){ c, p };
    }
    PQclear(r);
    if (rc == 0)
        rc = order_by(names, n, e, ne, err, errlen);
    free(e);
    return rc;
}

static int reset_one(struct db_conn *pg, const char *table, const char *col,
                     const char *seq, int64_t floor, char *err, size_t errlen)
{
    char *t = PQescapeIdentifier(db_pg(pg), table, strlen(table));
    char *c = PQescapeIdentifier(db_pg(pg), col, strlen(col));
    char *s = PQescapeLiteral(db_pg(pg), seq, strlen(seq));
    char sql[MDB_NAME_MAX * 6 + 256];
    PGresult *r = NULL;
    int rc = -ENOMEM;

    /* max() of an empty table is NULL and GREATEST skips it: a fresh counter stays. */
    if (t && c && s) {
        snprintf(sql, sizeof sql, "SELECT setval(%s, m) FROM (SELECT GREATEST(max(%s),"
                 " %" PRId64 ") AS m FROM %s) x WHERE m >= 1", s, c, floor, t);
        rc = mdb_pg_query(pg, sql, &r, err, errlen);
    }
    PQclear(r);
    PQfreemem(t);
    PQfreemem(c);
    PQfreemem(s);
    return rc;
}

int mdb_target_reset_ids(struct db_conn *pg, const char *table, int64_t floor, char *err,
                         size_t errlen)
{
    static const struct db_pg_stmt seqs = { "mdb_sequences",
        "SELECT a.attname, s.seq FROM pg_attribute a"
        " JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace,"
        " LATERAL (SELECT pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname),"
        "          a.attname) AS seq) s"
        " WHERE n.nspname = current_schema() AND c.relname = $1 AND a.attnum > 0"
        " AND NOT a.attisdropped AND s.seq IS NOT NULL ORDER BY a.attnum", 1 };
    const char *v[] = { table };
    PGresult *r;
    int rc = run(pg, &seqs, v, &r, err, errlen);

    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        rc = reset_one(pg, table, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), floor, err,
                       errlen);
    PQclear(r);
    if (rc < 0 && !strstr(err, table)) {
        char why[MDB_ERR_MAX];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "resetting the ids of %s: %s", table, why);
    }
    return rc;
}
