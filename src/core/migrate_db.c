/* migrate_db.c: `chatd migrate-db --to URL`. The node must be stopped: its SQLite
 * database is held under an exclusive lock for the whole run. The target must be
 * empty. Then every module's tables (and the bus's) are made on the target by the
 * same migrations a start runs, and everything is copied in ONE transaction: on any
 * failure it rolls back and nothing is half-copied (the empty tables stay, and a new
 * run on them is allowed). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/db_pg.h"
#include "chatd/log.h"
#include "chatd/module.h"
#include "migrate_db.h"

#define MDB_KEYS_MAX 16

/* Tables that triggers keep from others (the dead letters' totals): the target's own
 * triggers rebuild them as the rows they derive from arrive. */
static const char *const derived_tables[] = { "dead_letter_totals", NULL };

struct mdb_run {
    struct chatd *app;
    sqlite3 *src;
    struct db_conn *pg;
    char (*tables)[MDB_NAME_MAX];
    int64_t rows[MDB_TABLES_MAX];
    int ntables, nkeys;
    char err[MDB_ERR_MAX];
};

static int usage(void)
{
    fprintf(stderr, "usage: chatd migrate-db --to postgres://USER@HOST:PORT/DB"
                    " [-c FILE] [--data-dir DIR]\n");
    return -EINVAL;
}

int migrate_db_args(int argc, char **argv, const char **url)
{
    *url = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--to") == 0 && i + 1 < argc && !*url)
            *url = argv[++i];
        else if (strncmp(argv[i], "--to=", 5) == 0 && !*url)
            *url = argv[i] + 5;
        else
            return usage();
    }
    if (!*url || (strncmp(*url, "postgres://", 11) != 0 &&
                  strncmp(*url, "postgresql://", 13) != 0)) {
        fprintf(stderr, "chatd: migrate-db: --to needs a postgres:// or postgresql:// URL\n");
        return usage();
    }
    return 0;
}

static int fail(struct mdb_run *m, const char *step)
{
    fprintf(stderr, "chatd: migrate-db: %s: %s\n", step, m->err[0] ? m->err : "failed");
    LOG_ERROR(m->app, "core", "migrate-db failed step=\"%s\" error=\"%s\"", step, m->err);
    return 1;
}

/* The same migrations as a start: every module's, then the bus's. */
static int make_tables(struct mdb_run *m)
{
    int rc;

    for (size_t i = 0; i < chatd_module_count; i++) {
        const struct chatd_module *mod = chatd_modules[i];
        if (mod->migrate && (rc = mod->migrate(m->app)) < 0) {
            snprintf(m->err, sizeof m->err, "module %s: %s (the log says more)", mod->name,
                     strerror(-rc < 1000 && rc < 0 ? -rc : EIO));
            return rc;
        }
    }
    if ((rc = bus_migrate(m->app->db)) < 0)
        snprintf(m->err, sizeof m->err, "the bus's tables: %s (the log says more)",
                 strerror(-rc < 1000 && rc < 0 ? -rc : EIO));
    return rc;
}

/* Every table to copy, in an order the target's foreign keys accept. */
static int plan_tables(struct mdb_run *m)
{
    int rc = mdb_source_tables(m->src, derived_tables, m->tables, &m->ntables, m->err,
                               sizeof m->err);

    for (int i = 0; rc == 0 && i < m->ntables; i++) {
        if ((rc = mdb_target_has(m->pg, m->tables[i])) == 1) {
            rc = 0;
        } else if (rc == 0) {
            snprintf(m->err, sizeof m->err, "the SQLite table %s has no table of that name"
                     " on PostgreSQL (is this chatd older than the database?)",
                     m->tables[i]);
            rc = -ENOENT;
        } else {
            snprintf(m->err, sizeof m->err, "%s", db_pg_errmsg(m->pg));
        }
    }
    return rc < 0 ? rc : mdb_target_order(m->pg, m->tables, m->ntables, m->err,
                                          sizeof m->err);
}

/* Every module's kept_keys, each name once. */
static int kept_keys(const char **names)
{
    int n = 0;
    for (size_t i = 0; i < chatd_module_count; i++) {
        for (const char *const *k = chatd_modules[i]->kept_keys; k && *k; k++) {
            int seen = 0;
            for (int j = 0; j < n; j++)
                seen |= strcmp(names[j], *k) == 0;
            if (!seen && n < MDB_KEYS_MAX)
                names[n++] = *k;
        }
    }
    names[n] = NULL;
    return n;
}

static int copy_all(struct mdb_run *m)
{
    const char *keys[MDB_KEYS_MAX + 1];
    int rc = 0;

    for (int i = 0; rc == 0 && i < m->ntables; i++) {
        rc = mdb_copy_table(m->src, m->pg, m->tables[i], stderr, &m->rows[i], m->err,
                            sizeof m->err);
        if (rc == 0)
            rc = mdb_target_reset_ids(m->pg, m->tables[i],
                                      mdb_source_sequence(m->src, m->tables[i]), m->err,
                                      sizeof m->err);
    }
    kept_keys(keys);
    if (rc == 0)
        rc = mdb_copy_keys(m->pg, m->app->cfg->server.data_dir, keys, &m->nkeys, m->err,
                           sizeof m->err);
    return rc;
}

static int copy_in_one_transaction(struct mdb_run *m)
{
    int rc = db_pg_exec(m->pg, "BEGIN");

    if (rc == 0 && (rc = copy_all(m)) == 0 && (rc = db_pg_exec(m->pg, "COMMIT")) < 0)
        snprintf(m->err, sizeof m->err, "COMMIT: %s", db_pg_errmsg(m->pg));
    if (rc < 0) {
        if (!m->err[0])
            snprintf(m->err, sizeof m->err, "%s", db_pg_errmsg(m->pg));
        db_pg_exec(m->pg, "ROLLBACK");
    }
    return rc;
}

static void print_counts(const struct mdb_run *m, const char *path)
{
    int64_t total = 0;

    for (int i = 0; i < m->ntables; i++) {
        printf("%-24s %lld %s\n", m->tables[i], (long long)m->rows[i],
               m->rows[i] == 1 ? "row" : "rows");
        total += m->rows[i];
    }
    printf("migrated %lld rows in %d tables and %d keys from %s; set [database] url"
           " to the same URL and start chatd\n", (long long)total, m->ntables, m->nkeys, path);
    LOG_INFO(m->app, "core", "migrate-db done rows=%lld tables=%d keys=%d",
             (long long)total, m->ntables, m->nkeys);
}

static int run_steps(struct mdb_run *m, const char *path)
{
    if (mdb_source_open(path, &m->src, m->err, sizeof m->err) < 0)
        return fail(m, "the SQLite database");
    if (mdb_target_empty(m->pg, derived_tables, m->err, sizeof m->err) < 0)
        return fail(m, "the target");
    if (make_tables(m) < 0)
        return fail(m, "creating the tables");
    if (plan_tables(m) < 0)
        return fail(m, "the tables");
    if (copy_in_one_transaction(m) < 0)
        return fail(m, "copying (nothing was copied)");
    print_counts(m, path);
    return 0;
}

int migrate_db_run(struct chatd *app, int argc, char **argv)
{
    char path[CFG_PATH_MAX + 16];
    struct mdb_run *m = calloc(1, sizeof(*m));
    int status;

    (void)argc;
    (void)argv;
    if (!m || !(m->tables = calloc(MDB_TABLES_MAX, MDB_NAME_MAX))) {
        fprintf(stderr, "chatd: migrate-db: out of memory\n");
        free(m);
        return 1;
    }
    m->app = app;
    if (db_engine(app->db) != DB_ENGINE_PG || !(m->pg = db_conn_for_cli(app->db))) {
        fprintf(stderr, "chatd: migrate-db: the target is not a PostgreSQL database\n");
        status = 1;
    } else {
        snprintf(path, sizeof path, "%s/chatd.db", app->cfg->server.data_dir);
        status = run_steps(m, path);
    }
    sqlite3_close(m->src);
    free(m->tables);
    free(m);
    return status;
}
