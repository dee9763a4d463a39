/* presence_seen_store_pg.c: last_seen_at on PostgreSQL, the presence table (the
 * SQLite table's name and columns, bigint for INTEGER, so that `chatd migrate-db`
 * copies it as it is). A batch is one statement either way: the rows go as two
 * arrays. The impl holds nothing; db_pg_run prepares each statement once per
 * connection. */
#include <errno.h>
#include <stdlib.h>
#include "chatd/db_pg.h"
#include "presence_seen_store.h"

static const struct db_migration migrations[] = {
    { 1, "CREATE TABLE presence ("
         "  user_id bigint PRIMARY KEY,"
         "  last_seen_at bigint NOT NULL"
         ")" },
};

static int pg_migrate(void *impl, struct db *db)
{
    (void)impl;
    return db_migrate(db, "presence", migrations,
                      (int)(sizeof(migrations) / sizeof(migrations[0])));
}

/* One row per user (ON CONFLICT DO UPDATE may touch a row only once per statement:
 * a batch naming a user twice brings its larger time), in user order so that two
 * writers upserting the same users lock them in the same order. GREATEST reads the
 * row as it is once locked (a concurrent upsert's newer time is not overwritten). */
static int pg_record(void *impl, struct db_conn *c, const struct pres_seen *rows, size_t n)
{
    static const struct db_pg_stmt st = { "presence_seen_record",
        "INSERT INTO presence (user_id, last_seen_at)"
        " SELECT u, max(a) FROM unnest($1::bigint[], $2::bigint[]) AS t(u, a)"
        " GROUP BY u ORDER BY u"
        " ON CONFLICT (user_id) DO UPDATE SET"
        " last_seen_at = GREATEST(presence.last_seen_at, excluded.last_seen_at)", 2 };
    int64_t *ids, *ats;
    char *users = NULL, *times = NULL;
    PGresult *res = NULL;
    int rc = -ENOMEM;
    (void)impl;
    if (!n)
        return 0;
    if (!(ids = malloc(2 * n * sizeof(*ids))))
        return -ENOMEM;
    ats = ids + n;
    for (size_t i = 0; i < n; i++) {
        ids[i] = rows[i].user_id;
        ats[i] = rows[i].at;
    }
    if ((users = db_pg_array64(ids, n)) && (times = db_pg_array64(ats, n))) {
        const char *v[] = { users, times };
        rc = db_pg_run(c, &st, v, &res);
        PQclear(res);
    }
    free(users);
    free(times);
    free(ids);
    return rc;
}

/* The position of each found user in ids (1-based, from the array's ordinality). */
static int pg_read(void *impl, struct db_conn *c, const int64_t *ids, size_t n,
                   int64_t *out)
{
    static const struct db_pg_stmt st = { "presence_seen_read",
        "SELECT t.i, p.last_seen_at FROM unnest($1::bigint[]) WITH ORDINALITY AS t(u, i)"
        " JOIN presence p ON p.user_id = t.u", 1 };
    PGresult *res = NULL;
    (void)impl;
    if (!n)
        return 0;
    char *arr = db_pg_array64(ids, n);
    if (!arr)
        return -ENOMEM;
    const char *v[] = { arr };
    int rc = db_pg_run(c, &st, v, &res);
    free(arr);
    for (size_t i = 0; rc == 0 && i < n; i++)
        out[i] = 0;                  /* never seen */
    for (int r = 0; rc == 0 && r < PQntuples(res); r++) {
        int64_t pos = db_pg_i64(res, r, 0);
        if (pos < 1 || (uint64_t)pos > n)
            rc = -EIO;
        else
            out[pos - 1] = db_pg_i64(res, r, 1);
    }
    PQclear(res);
    return rc;
}

static void pg_free(void *impl)
{
    (void)impl;
}

static const struct presence_seen_store_ops pg_ops = {
    .migrate = pg_migrate, .record = pg_record, .read = pg_read, .free = pg_free,
};

int presence_seen_store_pg_new(struct presence_seen_store *out)
{
    out->ops = &pg_ops;
    out->impl = NULL;
    return 0;
}
