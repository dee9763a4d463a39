/* dlq_store_pg.h: the schema of the PostgreSQL dead-letter store
 * (dlq_store_pg_schema.c), for dlq_store_pg.c. */
#ifndef CHATD_DLQ_STORE_PG_H
#define CHATD_DLQ_STORE_PG_H

#include "chatd/db.h"

/* Start-up (blocking): the tables, triggers and functions, created or upgraded. */
int dlq_pg_migrate(struct db *db);

#endif
