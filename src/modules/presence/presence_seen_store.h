/* presence_seen_store.h: the presence module's one table: when each user's last
 * connection closed (last_seen_at).
 *
 * A second interface beside presence_store.h rather than more ops in it: that one is
 * the live set of connections, loop-side and synchronous, in memory (or a shared
 * store like Redis later); this one is durable rows on the database's threads, called
 * from db_write jobs and db_read fns with db.h's connection. They change engines for
 * different reasons (several processes need a shared connection set; another
 * database needs another seen store), so neither drags the other along.
 *
 * Each engine (SQLite, PostgreSQL) implements:
 *   - migrate: create (or bring up to date) its table, at start-up, blocking;
 *   - record:  for each row, last_seen_at = the larger of the stored value and the
 *              row's (an upsert that never moves a user's time backwards: batches
 *              and retries may bring an older value after a newer one, and two
 *              processes on one database may write the same user at once);
 *   - read:    out[i] = last_seen_at of ids[i], 0 for a user never seen.
 * record runs inside a job's apply (writer thread, in the group transaction), read
 * inside a db_read fn (a pool thread); both return 0 or a negative errno (-EIO,
 * -ENOSPC, -ENOMEM, ...), never an engine's own codes. Times are ms since the
 * epoch. */
#ifndef CHATD_PRESENCE_SEEN_STORE_H
#define CHATD_PRESENCE_SEEN_STORE_H

#include <stddef.h>
#include <stdint.h>

struct db;
struct db_conn;

struct pres_seen { int64_t user_id, at; };

struct presence_seen_store_ops {
    int  (*migrate)(void *impl, struct db *db);
    int  (*record)(void *impl, struct db_conn *c, const struct pres_seen *rows, size_t n);
    int  (*read)(void *impl, struct db_conn *c, const int64_t *ids, size_t n, int64_t *out);
    void (*free)(void *impl);
};

struct presence_seen_store {
    const struct presence_seen_store_ops *ops;
    void *impl;                      /* owned by the implementation */
};

/* The engines: SQLite (presence_seen_store_sqlite.c), PostgreSQL
 * (presence_seen_store_pg.c). */
int presence_seen_store_sqlite_new(struct presence_seen_store *out);
int presence_seen_store_pg_new(struct presence_seen_store *out);

static inline int presence_seen_migrate(const struct presence_seen_store *s, struct db *db)
{
    return s->ops->migrate(s->impl, db);
}
static inline int presence_seen_record(const struct presence_seen_store *s,
                                       struct db_conn *c, const struct pres_seen *rows,
                                       size_t n)
{
    return s->ops->record(s->impl, c, rows, n);
}
static inline int presence_seen_read(const struct presence_seen_store *s, struct db_conn *c,
                                     const int64_t *ids, size_t n, int64_t *out)
{
    return s->ops->read(s->impl, c, ids, n, out);
}
static inline void presence_seen_store_free(struct presence_seen_store *s)
{
    if (s->ops)
        s->ops->free(s->impl);
    s->ops = NULL;
    s->impl = NULL;
}

#endif
