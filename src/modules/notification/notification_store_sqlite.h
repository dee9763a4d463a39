/* notification_store_sqlite.h: what the files of the SQLite notification store
 * share (notification_store_sqlite.c: migrations, writes, the ops table;
 * notification_store_sqlite_reads.c: the reads; notification_store_sqlite_stmt.c:
 * the statement helpers both use). */
#ifndef CHATD_NOTIFICATION_STORE_SQLITE_H
#define CHATD_NOTIFICATION_STORE_SQLITE_H

#include <sqlite3.h>
#include "notification_store.h"

/* notification_store_sqlite_stmt.c */
/* Prepares sql on c's connection: 0 or a negative errno. */
int nss_prepare(struct db_conn *c, const char *sql, sqlite3_stmt **st);
/* Steps a statement that returns no rows, and finalizes it. */
int nss_step_done(sqlite3_stmt *st);

int nss_sub_get(void *impl, struct db_conn *c, int64_t id, struct subs_target *t);
int nss_subs_of_users(void *impl, struct db_conn *c, const int64_t *user_ids, size_t n,
                      int (*each)(void *arg, const struct subs_row *r), void *arg);
int nss_subs_of_user(void *impl, struct db_conn *c, int64_t user_id,
                     int (*each)(void *arg, const struct notif_sub_info *s), void *arg);
int nss_subscribers(void *impl, struct db_conn *c,
                    int (*each)(void *arg, int64_t user_id), void *arg);

#endif
