/* dlq_store_sqlite.h: the parts of the SQLite dead-letter store in dlq_bound.c (the
 * table's bounds), for dlq_store_sqlite.c. */
#ifndef CHATD_DLQ_STORE_SQLITE_H
#define CHATD_DLQ_STORE_SQLITE_H

#include <stdint.h>
#include <sqlite3.h>

/* The migrations adding sizes and totals, and the trigger keeping sizes right. */
extern const char dlq_bound_migration[];
extern const char dlq_resize_migration[];
/* The totals (dead_letter_totals). */
int dlq_sqlite_totals(sqlite3 *conn, int64_t *rows, int64_t *bytes);
/* After the row newest was added: the oldest rows go until at most max_rows and
 * max_bytes remain (*evicted: how many went). Writer thread. */
int dlq_sqlite_evict(sqlite3 *conn, int64_t newest, int64_t max_rows, int64_t max_bytes,
                     int64_t *evicted);

#endif
