/* db_pg_open.c: the PostgreSQL engine's connections: the writer's and the read
 * pool's, opened at start-up, and a connection renewed after it was lost (the same
 * settings, a new session: nothing prepared, synchronous_commit set again). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/chatd.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "db_pg_engine.h"

/* The reason goes to stderr too: an operator starting chatd by hand reads it there,
 * whatever [log] file says. The URL itself is not printed (it may hold a password). */
static int open_failed(struct db *db, const char *what, const char *err, int rc)
{
    fprintf(stderr, "chatd: [database] url: cannot open the PostgreSQL database (%s): %s\n",
            what, err);
    LOG_ERROR(db->app, "db", "cannot open the PostgreSQL database ([database] url) "
              "step=%s error=\"%s\"", what, err);
    return rc;
}

/* The pool only reads; a store that tried to write there would be a bug, refused. */
static int open_reader(struct db *db, int i)
{
    char err[DB_PG_ERR_MAX];
    int rc = db_pg_conn_open(db->pg->url, &db->pg->r[i], err, sizeof err);

    if (rc < 0)
        return open_failed(db, "read connection", err, rc);
    rc = db_pg_exec(db_conn_of_pg(db->pg->r[i]), "SET default_transaction_read_only = on");
    if (rc < 0)
        return open_failed(db, "read connection", db->pg->r[i]->err, rc);
    return 0;
}

int db_pg_engine_open(struct db *db, const char *url)
{
    char err[DB_PG_ERR_MAX];
    int rc;

    if (!(db->pg = calloc(1, sizeof(*db->pg))) || !(db->pg->url = strdup(url)))
        return open_failed(db, "memory", "out of memory", -ENOMEM);
    db->pg->backoff_ms = DB_PG_BACKOFF_MIN_MS;
    atomic_init(&db->pg->probe_wanted, 0);
    atomic_init(&db->pg->epoch, 0);
    if ((rc = db_pg_conn_open(url, &db->pg->w, err, sizeof err)) < 0)
        return open_failed(db, "connect", err, rc);
    if ((rc = db_pg_core_tables(db)) < 0)
        return open_failed(db, "core tables", db->pg->w->err, rc);
    for (int i = 0; i < DB_READERS; i++)
        if ((rc = open_reader(db, i)) < 0)
            return rc;
    return 0;
}

void db_pg_engine_close(struct db *db)
{
    if (!db->pg)
        return;
    db_pg_conn_close(db->pg->w);
    for (int i = 0; i < DB_READERS; i++)
        db_pg_conn_close(db->pg->r[i]);
    free(db->pg->url);
    free(db->pg);
    db->pg = NULL;
}

int db_pg_conn_renew(struct db_pg_conn *c, int read_only)
{
    if (!c->pg)
        return -ENOTCONN;
    PQreset(c->pg);
    db_pg_conn_reset_prepared(c);
    if (PQstatus(c->pg) != CONNECTION_OK)
        return -ENOTCONN;
    /* A new session starts from the URL's settings alone. */
    if (db_pg_exec(db_conn_of_pg(c), "SET synchronous_commit = on") < 0 ||
        (read_only && db_pg_exec(db_conn_of_pg(c),
                                 "SET default_transaction_read_only = on") < 0))
        return -ENOTCONN;
    return 0;
}

int db_pg_writer_reconnect(struct db *db)
{
    int rc = db_pg_conn_renew(db->pg->w, 0);

    if (rc == 0) {
        if (db->reconnects)
            METRIC_INC(db->reconnects);
        LOG_INFO(db->app, "db", "reconnected to PostgreSQL");
    }
    return rc;
}

int db_pg_writer_alive(struct db *db)
{
    return db_pg_exec(db_conn_of_pg(db->pg->w), "SELECT 1") != -ENOTCONN;
}
