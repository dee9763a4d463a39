/* db_sqlite.h: the SQLite engine under db.h, for the store implementations that
 * speak SQLite (the *_store_sqlite.c files, the dead-letter table, backup) and for
 * core's db layer itself. A db_conn of this engine is a sqlite3 connection. */
#ifndef CHATD_DB_SQLITE_H
#define CHATD_DB_SQLITE_H

#include <sqlite3.h>
#include "chatd/db.h"

static inline sqlite3 *db_sqlite(struct db_conn *conn)
{
    return (sqlite3 *)conn;
}

static inline struct db_conn *db_conn_of_sqlite(sqlite3 *conn)
{
    return (struct db_conn *)conn;
}

/* SQLite result code -> negative errno-like value (-EIO, -ENOSPC, -EROFS, -EBUSY,
 * -ECONSTRAINT, -ENOMEM). */
int  db_errno(int sqlite_rc);

#endif
