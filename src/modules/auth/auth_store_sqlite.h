/* auth_store_sqlite.h: what the SQLite files of the auth store share. Only the
 * auth_store_sqlite*.c files include it. */
#ifndef CHATD_AUTH_STORE_SQLITE_H
#define CHATD_AUTH_STORE_SQLITE_H

#include <sqlite3.h>

#include "chatd/db_sqlite.h"
#include "auth_store.h"

/* auth_store_sqlite_stmt.c. Prepares sql on conn: 0 or the db_errno of the failure. */
int auth_sqlite_prepare(sqlite3 *conn, const char *sql, sqlite3_stmt **st);
/* Steps a statement that returns no row, finalizes it: 0 or a db_errno. */
int auth_sqlite_run(sqlite3_stmt *st);

/* auth_store_sqlite_refresh.c: the refresh-token ops. */
int auth_sqlite_family_create(void *impl, struct db_conn *c, int64_t user_id, int64_t now_ms,
                              int64_t *family_id);
int auth_sqlite_token_insert(void *impl, struct db_conn *c,
                             const uint8_t hash[AUTH_STORE_TOKEN_HASH], int64_t family_id,
                             int64_t user_id, int64_t now_ms, int64_t expires_at);
int auth_sqlite_token_find(void *impl, struct db_conn *c,
                           const uint8_t hash[AUTH_STORE_TOKEN_HASH],
                           struct auth_token_row *out);
int auth_sqlite_token_spend(void *impl, struct db_conn *c,
                            const uint8_t hash[AUTH_STORE_TOKEN_HASH], int64_t now_ms);
int auth_sqlite_family_revoke(void *impl, struct db_conn *c, int64_t family_id,
                              int64_t now_ms);
int auth_sqlite_gc(void *impl, struct db_conn *c, int64_t now_ms);

#endif
