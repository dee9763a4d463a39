/* db_conn.c: what every connection of the db layer is made with: opening one with our
 * flags and busy timeout, running SQL on it, SQLite's codes as negative errno values,
 * and the synchronous= pragma. The writer (db.c, db_writer.c), the read pool
 * (db_read.c) and the checkpoint thread (db_checkpoint.c) all call it. */
#include <errno.h>
#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/db.h"
#include "db_internal.h"

int db_errno(int sqlite_rc)
{
    switch (sqlite_rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:       return 0;
    case SQLITE_FULL:       return -ENOSPC;
    case SQLITE_READONLY:   return -EROFS;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:     return -EBUSY;
    case SQLITE_CONSTRAINT: return -ECONSTRAINT;
    case SQLITE_NOMEM:      return -ENOMEM;
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_CANTOPEN:   return -EACCES;
    case SQLITE_TOOBIG:     return -E2BIG;
    case SQLITE_INTERRUPT:  return -EINTR;
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:      return -EINVAL;
    case SQLITE_NOTFOUND:   return -ENOENT;
    default:                return -EIO;
    }
}

int db_exec(sqlite3 *conn, const char *sql)
{
    int rc = sqlite3_exec(conn, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_errno(rc);
}

int db_open_conn(const char *path, int flags, sqlite3 **out)
{
    sqlite3 *conn = NULL;
    int rc = sqlite3_open_v2(path, &conn, flags | SQLITE_OPEN_NOMUTEX, NULL);

    if (rc != SQLITE_OK) {
        sqlite3_close(conn);
        return db_errno(rc);
    }
    sqlite3_extended_result_codes(conn, 1);
    sqlite3_busy_timeout(conn, DB_BUSY_TIMEOUT_MS);
    *out = conn;
    return 0;
}

/* In WAL mode FULL syncs the WAL at every COMMIT, so an acknowledged write is on the
 * disk; NORMAL syncs it only at checkpoints. A group commit pays one sync for all the
 * messages of its group. Connections without a config (unit tests) get FULL. */
const char *db_sync_pragma(const struct db *db)
{
    const struct chatd_config *cfg = db->app ? db->app->cfg : NULL;

    if (cfg && cfg->database.durability == CHATD_DURABILITY_PROCESS)
        return "PRAGMA synchronous=NORMAL";
    return "PRAGMA synchronous=FULL";
}
