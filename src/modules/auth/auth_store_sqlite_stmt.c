/* auth_store_sqlite_stmt.c: the two statement helpers every SQLite file of the auth
 * store uses: preparing, and running one that returns no row. Statements are
 * prepared per call (auth_store_sqlite.c says why). */
#include "auth_store_sqlite.h"

int auth_sqlite_prepare(sqlite3 *conn, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(conn, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : db_errno(rc);
}

int auth_sqlite_run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}
