/* db_pg_conn.h: one PostgreSQL connection of core's db layer (db_pg_conn.c): what the
 * writer, the read pool and the CLI open, hand to stores as a struct db_conn, and
 * reconnect. Stores see only chatd/db_pg.h. */
#ifndef CHATD_DB_PG_CONN_H
#define CHATD_DB_PG_CONN_H

#include <stddef.h>
#include "chatd/db_pg.h"

#define DB_PG_PREPARED_MAX 256       /* statements remembered per connection (a power of 2) */
#define DB_PG_ERR_MAX 256

struct db_pg_conn {
    PGconn *pg;                      /* owned */
    /* The statements prepared on this connection, by address (open addressing). Past
     * DB_PG_PREPARED_MAX / 2 a statement runs unnamed: parsed each time, still right. */
    const struct db_pg_stmt *prepared[DB_PG_PREPARED_MAX];
    int nprepared;
    char err[DB_PG_ERR_MAX];         /* the last error's text ("" when none) */
    char sqlstate[6];                /* the last error's SQLSTATE ("" when none) */
};

/* Connects (blocking) with the URL's settings, application_name chatd, TCP keepalives
 * and a connect timeout unless the URL sets them; synchronous_commit on; notices
 * dropped. 0, or negative with a one-line reason in err. */
int  db_pg_conn_open(const char *url, struct db_pg_conn **out, char *err, size_t errlen);
void db_pg_conn_close(struct db_pg_conn *c);
/* After a reconnect on the same struct: a new session has nothing prepared. */
void db_pg_conn_reset_prepared(struct db_pg_conn *c);
/* 1 when the last error was a deadlock (40P01) or a serialization failure (40001):
 * the transaction may succeed when run again from the start. */
int  db_pg_conn_retryable(const struct db_pg_conn *c);
/* 1 when the connection is broken (the server is gone or the session was ended). */
int  db_pg_conn_lost(const struct db_pg_conn *c);

static inline struct db_conn *db_conn_of_pg(struct db_pg_conn *c)
{
    return (struct db_conn *)c;
}

static inline struct db_pg_conn *db_pg_conn_of(struct db_conn *c)
{
    return (struct db_pg_conn *)c;
}

#endif
