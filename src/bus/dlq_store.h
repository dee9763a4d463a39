/* dlq_store.h: where the bus keeps its dead letters. The bus reaches the table only
 * through these ops; one implementation per engine (dlq_store_sqlite.c with
 * dlq_bound.c, dlq_store_pg.c), picked by db_engine() (dlq_store()). The bus keeps the
 * rest: which delivery becomes a row, the replay and its outcome, the CLI's words.
 *
 * The table, the same on every engine (so `chatd migrate-db` can copy it): dead_letters
 * (id, topic, payload, consumer, error, attempts, first_failed_at, last_failed_at,
 * replay_requested, size, claimed_by, claimed_until) and dead_letter_totals (one row:
 * rows, bytes), which triggers derive from dead_letters, whoever changes it (the
 * server, `chatd dlq purge`, an operator's edit by hand). size is the bytes of topic,
 * payload, consumer and error, kept by the engine too.
 *
 * Replays are claimed: `chatd dlq replay` sets replay_requested; a server replaying a
 * row first claims it (claimed_by = its bus run id, claimed_until = the claim's end) in
 * one conditional statement, so that of two processes polling one database exactly
 * one gets each row. The claimer renews its claims while the replays run and clears
 * the claim with the outcome; a claim not renewed (its process died) ends at
 * claimed_until and the row is claimed again.
 *
 * Every op runs where it is called: on the writer thread inside a job's apply (the
 * writes, in the group's transaction: an op never begins or commits), on a read-pool
 * thread (poll) or on the CLI's connection. Errors are negative errno values (db.h).
 * Times are Unix ms. */
#ifndef CHATD_DLQ_STORE_H
#define CHATD_DLQ_STORE_H

#include <stdint.h>
#include <stdlib.h>
#include "chatd/db.h"

/* One row. The strings belong to the caller (insert) or to the store until the
 * callback returns (each). */
struct dlq_letter {
    int64_t id;
    const char *topic, *consumer, *error, *payload;
    int attempts;
    int64_t first_failed_at, last_failed_at;
    int replay_requested;
};

/* A row claimed for a replay; the strings are malloc'ed (dlq_claims_free). */
struct dlq_claim {
    int64_t id;
    char *topic, *consumer, *payload;
};

struct dlq_store_ops {
    const char *engine;
    /* Start-up (blocking): the tables, created or upgraded. */
    int (*migrate)(struct db *db);

    /* Writer. A new row, then the oldest rows go (never this one) until at most
     * max_rows rows and max_bytes bytes remain; *evicted: how many went. */
    int (*insert)(struct db_conn *c, const struct dlq_letter *l, int64_t max_rows,
                  int64_t max_bytes, int64_t *evicted);
    /* Writer. A replay by run failed again (or was refused): error replaced, attempts
     * added, last_failed_at set, the mark and the claim cleared; only while run still
     * holds the claim (otherwise nothing changes: 0 all the same). */
    int (*failed_again)(struct db_conn *c, int64_t id, int64_t run, const char *error,
                        int attempts, int64_t last_failed_at);
    /* Writer. A replay succeeded: the row goes. */
    int (*remove)(struct db_conn *c, int64_t id);
    /* Writer. run's claims on ids[0..n) last until `until` (rows claimed by another
     * since, or gone, are left alone). */
    int (*renew)(struct db_conn *c, int64_t run, const int64_t *ids, int n, int64_t until);
    /* Writer. Claims for run, until `until`, at most max marked rows whose claim ended
     * before now (or that have none), oldest first, each by one process only: their
     * number, with out[0..n) filled in id order. */
    int (*claim)(struct db_conn *c, int64_t run, int64_t now, int64_t until, int max,
                 struct dlq_claim *out);

    /* Read pool. The totals, and whether a marked row could be claimed at now. */
    int (*poll)(struct db_conn *c, int64_t now, int64_t *rows, int64_t *bytes,
                int *claimable);

    /* CLI. fn for the row id, or for every row (id 0) in id order: the number of
     * rows, or negative (fn's own negative return stops it and is returned). */
    int (*each)(struct db_conn *c, int64_t id,
                int (*fn)(void *arg, const struct dlq_letter *l), void *arg);
    /* CLI. Marks the row id (or every row, id 0) for replay / deletes it: the number
     * of rows, or negative. */
    int (*mark)(struct db_conn *c, int64_t id);
    int (*purge)(struct db_conn *c, int64_t id);
    /* The text of the connection's last error, for the CLI ("" when none). */
    const char *(*errmsg)(struct db_conn *c);
};

extern const struct dlq_store_ops dlq_store_sqlite;
extern const struct dlq_store_ops dlq_store_pg;

/* The implementation for db's engine. */
const struct dlq_store_ops *dlq_store(const struct db *db);

static inline void dlq_claims_free(struct dlq_claim *v, int n)
{
    for (int i = 0; i < n; i++) {
        free(v[i].topic);
        free(v[i].consumer);
        free(v[i].payload);
        v[i] = (struct dlq_claim){ 0 };
    }
}

static inline int dlq_claim_cmp(const void *a, const void *b)
{
    int64_t x = ((const struct dlq_claim *)a)->id, y = ((const struct dlq_claim *)b)->id;
    return (x > y) - (x < y);
}

/* The engines return claimed rows in no particular order: replays go oldest first. */
static inline void dlq_claims_sort(struct dlq_claim *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), dlq_claim_cmp);
}

#endif
