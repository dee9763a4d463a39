/* dlq_store_pg.c: the dead-letter store on PostgreSQL (dlq_store.h); the tables, the
 * triggers keeping sizes and totals and the insert-and-evict function are in
 * dlq_store_pg_schema.c. Claims lock the rows they take with FOR UPDATE SKIP LOCKED,
 * so two writers claiming at once take different rows instead of waiting on each
 * other's and then finding them claimed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/db_pg.h"
#include "dlq_store.h"
#include "dlq_store_pg.h"

static const struct db_pg_stmt st_insert = {
    "dlq_insert",
    "SELECT new_id, evicted FROM dead_letter_add($1, $2, $3, $4, $5::bigint, $6::bigint,"
    " $7::bigint, $8::bigint, $9::bigint)", 9 };
static const struct db_pg_stmt st_failed_again = {
    "dlq_failed_again",
    "UPDATE dead_letters SET error = $1, attempts = attempts + $2::bigint,"
    " last_failed_at = $3::bigint, replay_requested = 0, claimed_by = 0, claimed_until = 0"
    " WHERE id = $4::bigint AND claimed_by = $5::bigint", 5 };
static const struct db_pg_stmt st_remove = {
    "dlq_remove", "DELETE FROM dead_letters WHERE id = $1::bigint", 1 };
static const struct db_pg_stmt st_renew = {
    "dlq_renew",
    "UPDATE dead_letters SET claimed_until = $3::bigint"
    " WHERE id = ANY($2::bigint[]) AND claimed_by = $1::bigint", 3 };
static const struct db_pg_stmt st_claim = {
    "dlq_claim",
    "WITH c AS MATERIALIZED (SELECT id FROM dead_letters WHERE replay_requested = 1"
    " AND claimed_until < $3::bigint ORDER BY id LIMIT $4::bigint FOR UPDATE SKIP LOCKED)"
    " UPDATE dead_letters d SET claimed_by = $1::bigint, claimed_until = $2::bigint"
    " FROM c WHERE d.id = c.id RETURNING d.id, d.topic, d.consumer, d.payload", 4 };
static const struct db_pg_stmt st_poll = {
    "dlq_poll",
    "SELECT t.rows, t.bytes, EXISTS (SELECT 1 FROM dead_letters WHERE replay_requested = 1"
    " AND claimed_until < $1::bigint)::int FROM dead_letter_totals t WHERE t.id = 1", 1 };
#define LETTER_COLUMNS "id, topic, consumer, error, payload, attempts, first_failed_at," \
                       " last_failed_at, replay_requested"
static const struct db_pg_stmt st_each_one = {
    "dlq_each_one", "SELECT " LETTER_COLUMNS " FROM dead_letters WHERE id = $1::bigint", 1 };
static const struct db_pg_stmt st_each_all = {
    "dlq_each_all", "SELECT " LETTER_COLUMNS " FROM dead_letters ORDER BY id", 0 };
static const struct db_pg_stmt st_mark_one = {
    "dlq_mark_one", "UPDATE dead_letters SET replay_requested = 1 WHERE id = $1::bigint", 1 };
static const struct db_pg_stmt st_mark_all = {
    "dlq_mark_all", "UPDATE dead_letters SET replay_requested = 1", 0 };
static const struct db_pg_stmt st_purge_one = {
    "dlq_purge_one", "DELETE FROM dead_letters WHERE id = $1::bigint", 1 };
static const struct db_pg_stmt st_purge_all = {
    "dlq_purge_all", "DELETE FROM dead_letters", 0 };

static int pg_insert(struct db_conn *c, const struct dlq_letter *l, int64_t max_rows,
                     int64_t max_bytes, int64_t *evicted)
{
    char attempts[DB_PG_I64_LEN], first[DB_PG_I64_LEN], last[DB_PG_I64_LEN];
    char rows[DB_PG_I64_LEN], bytes[DB_PG_I64_LEN];
    const char *v[] = { l->topic, l->payload, l->consumer, l->error,
                        db_pg_p64(attempts, l->attempts), db_pg_p64(first, l->first_failed_at),
                        db_pg_p64(last, l->last_failed_at), db_pg_p64(rows, max_rows),
                        db_pg_p64(bytes, max_bytes) };
    PGresult *res = NULL;
    int rc = db_pg_run(c, &st_insert, v, &res);

    *evicted = 0;
    if (rc == 0 && PQntuples(res) == 1)
        *evicted = db_pg_i64(res, 0, 1);
    else if (rc == 0)
        rc = -EIO;
    PQclear(res);
    return rc;
}

static int pg_failed_again(struct db_conn *c, int64_t id, int64_t run_id, const char *error,
                           int attempts, int64_t last_failed_at)
{
    char a[DB_PG_I64_LEN], at[DB_PG_I64_LEN], i[DB_PG_I64_LEN], r[DB_PG_I64_LEN];
    const char *v[] = { error, db_pg_p64(a, attempts), db_pg_p64(at, last_failed_at),
                        db_pg_p64(i, id), db_pg_p64(r, run_id) };
    return db_pg_run(c, &st_failed_again, v, NULL);
}

static int pg_remove(struct db_conn *c, int64_t id)
{
    char i[DB_PG_I64_LEN];
    const char *v[] = { db_pg_p64(i, id) };
    return db_pg_run(c, &st_remove, v, NULL);
}

static int pg_renew(struct db_conn *c, int64_t run_id, const int64_t *ids, int n,
                    int64_t until)
{
    char r[DB_PG_I64_LEN], u[DB_PG_I64_LEN];
    char *array;
    int rc;

    if (n <= 0)
        return 0;
    if (!(array = db_pg_array64(ids, (size_t)n)))
        return -ENOMEM;
    const char *v[] = { db_pg_p64(r, run_id), array, db_pg_p64(u, until) };
    rc = db_pg_run(c, &st_renew, v, NULL);
    free(array);
    return rc;
}

static int pg_claim(struct db_conn *c, int64_t run_id, int64_t now, int64_t until, int max,
                    struct dlq_claim *out)
{
    char r[DB_PG_I64_LEN], u[DB_PG_I64_LEN], t[DB_PG_I64_LEN], m[DB_PG_I64_LEN];
    const char *v[] = { db_pg_p64(r, run_id), db_pg_p64(u, until), db_pg_p64(t, now),
                        db_pg_p64(m, max) };
    PGresult *res = NULL;
    int rc = db_pg_run(c, &st_claim, v, &res), n = 0;

    if (rc < 0)
        return rc;
    for (int i = 0; i < PQntuples(res) && n < max; i++) {
        struct dlq_claim *row = &out[n++];
        row->id = db_pg_i64(res, i, 0);
        row->topic = strdup(db_pg_str(res, i, 1));
        row->consumer = strdup(db_pg_str(res, i, 2));
        row->payload = strdup(db_pg_str(res, i, 3));
        if (!row->topic || !row->consumer || !row->payload) {
            rc = -ENOMEM;
            break;
        }
    }
    PQclear(res);
    if (rc < 0) {
        dlq_claims_free(out, n);
        return rc;
    }
    dlq_claims_sort(out, n);
    return n;
}

static int pg_poll(struct db_conn *c, int64_t now, int64_t *rows, int64_t *bytes,
                   int *claimable)
{
    char t[DB_PG_I64_LEN];
    const char *v[] = { db_pg_p64(t, now) };
    PGresult *res = NULL;
    int rc = db_pg_run(c, &st_poll, v, &res);

    *rows = *bytes = 0;
    *claimable = 0;
    if (rc == 0 && PQntuples(res) == 1) {
        *rows = db_pg_i64(res, 0, 0);
        *bytes = db_pg_i64(res, 0, 1);
        *claimable = (int)db_pg_i64(res, 0, 2);
    } else if (rc == 0) {
        rc = -EIO;                   /* the totals row is gone: not our table */
    }
    PQclear(res);
    return rc;
}

static int pg_each(struct db_conn *c, int64_t id,
                   int (*fn)(void *arg, const struct dlq_letter *l), void *arg)
{
    char i[DB_PG_I64_LEN];
    const char *v[] = { db_pg_p64(i, id) };
    PGresult *res = NULL;
    int rc = db_pg_run(c, id > 0 ? &st_each_one : &st_each_all, id > 0 ? v : NULL, &res);
    int n = 0;

    if (rc < 0)
        return rc;
    for (int r = 0; r < PQntuples(res) && rc == 0; r++, n++) {
        struct dlq_letter l = {
            .id = db_pg_i64(res, r, 0), .topic = db_pg_str(res, r, 1),
            .consumer = db_pg_str(res, r, 2), .error = db_pg_str(res, r, 3),
            .payload = db_pg_str(res, r, 4), .attempts = (int)db_pg_i64(res, r, 5),
            .first_failed_at = db_pg_i64(res, r, 6), .last_failed_at = db_pg_i64(res, r, 7),
            .replay_requested = db_pg_i64(res, r, 8) != 0,
        };
        if ((rc = fn(arg, &l)) > 0)
            rc = 0;
    }
    PQclear(res);
    return rc < 0 ? rc : n;
}

/* One UPDATE/DELETE of the row id or (id 0) of all: the rows it changed. */
static int change(struct db_conn *c, const struct db_pg_stmt *one,
                  const struct db_pg_stmt *all, int64_t id)
{
    char i[DB_PG_I64_LEN];
    const char *v[] = { db_pg_p64(i, id) };
    PGresult *res = NULL;
    int rc = db_pg_run(c, id > 0 ? one : all, id > 0 ? v : NULL, &res);

    if (rc == 0)
        rc = atoi(PQcmdTuples(res));
    PQclear(res);
    return rc;
}

static int pg_mark(struct db_conn *c, int64_t id)
{
    return change(c, &st_mark_one, &st_mark_all, id);
}

static int pg_purge(struct db_conn *c, int64_t id)
{
    return change(c, &st_purge_one, &st_purge_all, id);
}

const struct dlq_store_ops dlq_store_pg = {
    .engine = "postgresql",
    .migrate = dlq_pg_migrate,
    .insert = pg_insert,
    .failed_again = pg_failed_again,
    .remove = pg_remove,
    .renew = pg_renew,
    .claim = pg_claim,
    .poll = pg_poll,
    .each = pg_each,
    .mark = pg_mark,
    .purge = pg_purge,
    .errmsg = db_pg_errmsg,
};
