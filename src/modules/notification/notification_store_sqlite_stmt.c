/* notification_store_sqlite_stmt.c: the statement helpers both files of the SQLite
 * notification store use (the writes in notification_store_sqlite.c, the reads in
 * notification_store_sqlite_reads.c), below both so neither calls the other back. */
#include <errno.h>
#include "chatd/db_sqlite.h"
#include "notification_store_sqlite.h"

int nss_prepare(struct db_conn *c, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(db_sqlite(c), sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : db_errno(rc);
}

int nss_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}
