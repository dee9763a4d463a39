/* dlq_bound.c: the dead-letter table's bounds on SQLite, [bus] deadletter_max_rows
 * and deadletter_max_bytes (dlq_store_pg.c does the same in PL/pgSQL). Dead letters
 * come from failures anyone can cause (a user's push endpoints that never answer),
 * so the table must not grow with them: after each new row the oldest rows go until
 * both bounds hold again. The newest row always stays, so one row larger than
 * deadletter_max_bytes is kept alone.
 *
 * A row's size (topic, payload, consumer and error bytes) is stored with it, and
 * triggers keep the totals in dead_letter_totals, so checking the bounds costs one
 * read, and `chatd dlq purge` on a running server keeps the totals right too. A
 * trigger also recomputes the size when any of those columns changes (a failed
 * replay's new error, an operator's edit of a payload by hand). */
#include <stdint.h>
#include "chatd/db_sqlite.h"
#include "dlq_store_sqlite.h"

const char dlq_bound_migration[] =
    "ALTER TABLE dead_letters ADD COLUMN size INTEGER NOT NULL DEFAULT 0;"
    "UPDATE dead_letters SET size = length(CAST(topic AS BLOB)) +"
    " length(CAST(payload AS BLOB)) + length(CAST(consumer AS BLOB)) +"
    " length(CAST(error AS BLOB));"
    "CREATE TABLE dead_letter_totals (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " rows INTEGER NOT NULL, bytes INTEGER NOT NULL);"
    "INSERT INTO dead_letter_totals SELECT 1, count(*), coalesce(sum(size), 0)"
    " FROM dead_letters;"
    "CREATE TRIGGER dead_letters_added AFTER INSERT ON dead_letters BEGIN"
    " UPDATE dead_letter_totals SET rows = rows + 1, bytes = bytes + NEW.size; END;"
    "CREATE TRIGGER dead_letters_removed AFTER DELETE ON dead_letters BEGIN"
    " UPDATE dead_letter_totals SET rows = rows - 1, bytes = bytes - OLD.size; END;"
    "CREATE TRIGGER dead_letters_resized AFTER UPDATE OF size ON dead_letters BEGIN"
    " UPDATE dead_letter_totals SET bytes = bytes - OLD.size + NEW.size; END;";

const char dlq_resize_migration[] =
    "CREATE TRIGGER dead_letters_edited AFTER UPDATE OF topic, payload, consumer, error"
    " ON dead_letters BEGIN UPDATE dead_letters SET size ="
    " length(CAST(NEW.topic AS BLOB)) + length(CAST(NEW.payload AS BLOB)) +"
    " length(CAST(NEW.consumer AS BLOB)) + length(CAST(NEW.error AS BLOB))"
    " WHERE id = NEW.id; END;"
    /* Rows edited before the trigger existed. */
    "UPDATE dead_letters SET size = length(CAST(topic AS BLOB)) +"
    " length(CAST(payload AS BLOB)) + length(CAST(consumer AS BLOB)) +"
    " length(CAST(error AS BLOB));";

int dlq_sqlite_totals(sqlite3 *conn, int64_t *rows, int64_t *bytes)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(conn, "SELECT rows, bytes FROM dead_letter_totals", -1, &st,
                                NULL);
    *rows = *bytes = 0;
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *rows = sqlite3_column_int64(st, 0);
        *bytes = sqlite3_column_int64(st, 1);
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

/* The id up to which the oldest rows must go so that removing *count rows of *freed
 * bytes brings the table within the bounds; 0 when nothing has to go. */
static int64_t cut_point(sqlite3 *conn, int64_t newest, int64_t over_rows, int64_t over_bytes,
                         int64_t *count, int64_t *freed, int *err)
{
    sqlite3_stmt *st = NULL;
    int64_t cut = 0;
    int rc = sqlite3_prepare_v2(conn, "SELECT id, size FROM dead_letters WHERE id < ?"
                                " ORDER BY id", -1, &st, NULL);
    if (rc == SQLITE_OK)
        sqlite3_bind_int64(st, 1, newest);
    while (rc == SQLITE_OK && (*count < over_rows || *freed < over_bytes) &&
           (rc = sqlite3_step(st)) == SQLITE_ROW) {
        cut = sqlite3_column_int64(st, 0);
        *freed += sqlite3_column_int64(st, 1);
        (*count)++;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    *err = rc == SQLITE_OK || rc == SQLITE_DONE ? 0 : db_errno(rc);
    return cut;
}

int dlq_sqlite_evict(sqlite3 *conn, int64_t newest, int64_t max_rows, int64_t max_bytes,
              int64_t *evicted)
{
    int64_t rows, bytes, count = 0, freed = 0;
    int rc = dlq_sqlite_totals(conn, &rows, &bytes);
    *evicted = 0;
    if (rc < 0 || (rows <= max_rows && bytes <= max_bytes))
        return rc;
    int64_t cut = cut_point(conn, newest, rows - max_rows, bytes - max_bytes, &count, &freed,
                            &rc);
    if (rc < 0 || cut == 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(conn, "DELETE FROM dead_letters WHERE id <= ?", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, cut);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_errno(rc);
    *evicted = sqlite3_changes(conn);   /* what went, if another writer took some */
    return 0;
}
