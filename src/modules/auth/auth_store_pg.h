/* auth_store_pg.h: what the PostgreSQL files of the auth store share. Only the
 * auth_store_pg*.c files include it. */
#ifndef CHATD_AUTH_STORE_PG_H
#define CHATD_AUTH_STORE_PG_H

#include "chatd/db_pg.h"
#include "auth_store.h"

/* auth_store_pg_stmt.c. Runs st whose first parameter is a token hash (bytea, sent binary), the others
 * text: 0 with *res, or the db_pg_run error. */
int auth_pg_run_hash(struct db_conn *c, const struct db_pg_stmt *st,
                     const uint8_t hash[AUTH_STORE_TOKEN_HASH], const char *const *values,
                     PGresult **res);

/* auth_store_pg_refresh.c: the refresh-token ops. */
int auth_pg_family_create(void *impl, struct db_conn *c, int64_t user_id, int64_t now_ms,
                          int64_t *family_id);
int auth_pg_token_insert(void *impl, struct db_conn *c,
                         const uint8_t hash[AUTH_STORE_TOKEN_HASH], int64_t family_id,
                         int64_t user_id, int64_t now_ms, int64_t expires_at);
int auth_pg_token_find(void *impl, struct db_conn *c, const uint8_t hash[AUTH_STORE_TOKEN_HASH],
                       struct auth_token_row *out);
int auth_pg_token_spend(void *impl, struct db_conn *c,
                        const uint8_t hash[AUTH_STORE_TOKEN_HASH], int64_t now_ms);
int auth_pg_family_revoke(void *impl, struct db_conn *c, int64_t family_id, int64_t now_ms);
int auth_pg_gc(void *impl, struct db_conn *c, int64_t now_ms);

#endif
