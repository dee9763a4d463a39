/* notification_store_pg.h: what the files of the PostgreSQL notification store share
 * (notification_store_pg.c: the migration, the writes, the ops table;
 * notification_store_pg_reads.c: the reads). */
#ifndef CHATD_NOTIFICATION_STORE_PG_H
#define CHATD_NOTIFICATION_STORE_PG_H

#include "notification_store.h"

int nsp_sub_get(void *impl, struct db_conn *c, int64_t id, struct subs_target *t);
int nsp_subs_of_users(void *impl, struct db_conn *c, const int64_t *user_ids, size_t n,
                      int (*each)(void *arg, const struct subs_row *r), void *arg);
int nsp_subs_of_user(void *impl, struct db_conn *c, int64_t user_id,
                     int (*each)(void *arg, const struct notif_sub_info *s), void *arg);
int nsp_subscribers(void *impl, struct db_conn *c,
                    int (*each)(void *arg, int64_t user_id), void *arg);

#endif
