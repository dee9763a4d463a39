/* notification_store.h: the notification module's tables as the module sees them:
 * push subscriptions and their delivery health. The module keeps its jobs, its
 * in-memory sets and the policy (how many subscriptions a user keeps, when one is
 * failing, how long a failing one lives); a store only reads and writes rows.
 *
 * Each engine (SQLite, PostgreSQL) implements every op below, with these meanings:
 *   - migrate:        create (or bring up to date) its tables, at start-up, blocking;
 *   - sub_put:        insert a subscription, or when its endpoint is known update that
 *                     row in place (new owner, keys, created_at; failure state cleared),
 *                     and return the row's id, the same id for a known endpoint;
 *   - subs_trim:      delete a user's subscriptions beyond its `keep` newest
 *                     (created_at, then id, descending);
 *   - sub_delete:     delete one row (only the user's when user_id > 0), say whether
 *                     a row went;
 *   - sub_get:        one row with keys and health, -ENOENT when there is none;
 *   - subs_of_users:  (id, user_id) of every subscription of a set of users, ordered
 *                     by user_id, then id;
 *   - subs_of_user:   one user's rows with their health, in id order;
 *   - subscribers:    every user id with at least one subscription, each once;
 *   - sub_succeeded / sub_failed: the health columns after an attempt (below);
 *   - drop_failing:   delete the rows failing since a time or earlier, say how many.
 * Ops run where they are called: a write op inside a db_write job's apply (on the
 * writer thread, in the group transaction), a read op inside a db_read fn (on a pool
 * thread), either on the CLI's connection. They take the engine connection db.h hands
 * out and return 0 or a negative errno (-ENOENT, -EINVAL for a row that cannot be
 * what we stored, -ECONSTRAINT, -EIO, -ENOMEM ...), never an engine's own codes. The
 * per-row callbacks (`each`) return 0 to go on or a negative error, which the op
 * returns at once. Times are milliseconds since the epoch. The impl is shared by the
 * writer and the pool threads at once: what it keeps (prepared statements) is kept
 * per connection or under its own lock. */
#ifndef CHATD_NOTIFICATION_STORE_H
#define CHATD_NOTIFICATION_STORE_H

#include <stddef.h>
#include <stdint.h>

struct db;
struct db_conn;

#define NOTIF_ENDPOINT_MAX 2048
#define NOTIF_P256DH_LEN 65              /* the browser's key, an uncompressed P-256 point */
#define NOTIF_AUTH_LEN 16                /* the browser's auth secret */

/* A subscription as a browser hands it over. */
struct notif_sub_new {
    int64_t user_id;
    const char *endpoint;                /* at most NOTIF_ENDPOINT_MAX bytes */
    const uint8_t *p256dh, *auth;        /* NOTIF_P256DH_LEN, NOTIF_AUTH_LEN bytes */
    int64_t created_at;
};

/* Where a push for one subscription goes, and its health before the attempt. */
struct subs_target {
    int64_t user_id;
    char endpoint[NOTIF_ENDPOINT_MAX + 1];
    uint8_t p256dh[NOTIF_P256DH_LEN], auth[NOTIF_AUTH_LEN];
    int failures;                        /* failed attempts in a row */
    int64_t failing_since;               /* 0 while it is not failing */
};

/* A row of subs_of_users. */
struct subs_row { int64_t id, user_id; };

/* A row of subs_of_user: what its owner is shown. Pointers live for the callback. */
struct notif_sub_info {
    int64_t id, created_at;
    const char *endpoint;
    int failures;
    int64_t failing_since;               /* 0: not failing */
    const char *last_error;              /* NULL: none since the last success */
};

struct notification_store_ops {
    int (*migrate)(void *impl, struct db *db);
    /* Writes: inside a job's apply. */
    int (*sub_put)(void *impl, struct db_conn *c, const struct notif_sub_new *s,
                   int64_t *id);
    int (*subs_trim)(void *impl, struct db_conn *c, int64_t user_id, int keep);
    int (*sub_delete)(void *impl, struct db_conn *c, int64_t id, int64_t user_id,
                      int *removed);
    /* failures = 0, failing_since and last_error cleared. */
    int (*sub_succeeded)(void *impl, struct db_conn *c, int64_t id);
    /* failures + 1 and last_error = error; when the new count reaches max_failures
     * and the row is not failing yet, failing_since = now (an earlier one stays). */
    int (*sub_failed)(void *impl, struct db_conn *c, int64_t id, const char *error,
                      int max_failures, int64_t now);
    int (*drop_failing)(void *impl, struct db_conn *c, int64_t failing_at_or_before,
                        int *dropped);
    /* Reads: inside a db_read fn (or the writer's job). */
    int (*sub_get)(void *impl, struct db_conn *c, int64_t id, struct subs_target *t);
    int (*subs_of_users)(void *impl, struct db_conn *c, const int64_t *user_ids, size_t n,
                         int (*each)(void *arg, const struct subs_row *r), void *arg);
    int (*subs_of_user)(void *impl, struct db_conn *c, int64_t user_id,
                        int (*each)(void *arg, const struct notif_sub_info *s), void *arg);
    int (*subscribers)(void *impl, struct db_conn *c,
                       int (*each)(void *arg, int64_t user_id), void *arg);
    void (*free)(void *impl);
};

struct notification_store {
    const struct notification_store_ops *ops;
    void *impl;                          /* owned by the implementation */
};

/* The engines: SQLite (notification_store_sqlite*.c), PostgreSQL
 * (notification_store_pg*.c). */
int notification_store_sqlite_new(struct notification_store *out);
int notification_store_pg_new(struct notification_store *out);

static inline void notification_store_free(struct notification_store *s)
{
    if (s->ops)
        s->ops->free(s->impl);
    s->ops = NULL;
    s->impl = NULL;
}

/* The calls, as the module makes them. */
static inline int notif_store_migrate(const struct notification_store *s, struct db *db)
{
    return s->ops->migrate(s->impl, db);
}
static inline int notif_store_sub_put(const struct notification_store *s, struct db_conn *c,
                                      const struct notif_sub_new *sub, int64_t *id)
{
    return s->ops->sub_put(s->impl, c, sub, id);
}
static inline int notif_store_subs_trim(const struct notification_store *s,
                                        struct db_conn *c, int64_t user_id, int keep)
{
    return s->ops->subs_trim(s->impl, c, user_id, keep);
}
static inline int notif_store_sub_delete(const struct notification_store *s,
                                         struct db_conn *c, int64_t id, int64_t user_id,
                                         int *removed)
{
    return s->ops->sub_delete(s->impl, c, id, user_id, removed);
}
static inline int notif_store_sub_succeeded(const struct notification_store *s,
                                            struct db_conn *c, int64_t id)
{
    return s->ops->sub_succeeded(s->impl, c, id);
}
static inline int notif_store_sub_failed(const struct notification_store *s,
                                         struct db_conn *c, int64_t id, const char *error,
                                         int max_failures, int64_t now)
{
    return s->ops->sub_failed(s->impl, c, id, error, max_failures, now);
}
static inline int notif_store_drop_failing(const struct notification_store *s,
                                           struct db_conn *c, int64_t before, int *dropped)
{
    return s->ops->drop_failing(s->impl, c, before, dropped);
}
static inline int notif_store_sub_get(const struct notification_store *s, struct db_conn *c,
                                      int64_t id, struct subs_target *t)
{
    return s->ops->sub_get(s->impl, c, id, t);
}
static inline int notif_store_subs_of_users(const struct notification_store *s,
                                            struct db_conn *c, const int64_t *user_ids,
                                            size_t n,
                                            int (*each)(void *, const struct subs_row *),
                                            void *arg)
{
    return s->ops->subs_of_users(s->impl, c, user_ids, n, each, arg);
}
static inline int notif_store_subs_of_user(const struct notification_store *s,
                                           struct db_conn *c, int64_t user_id,
                                           int (*each)(void *,
                                                       const struct notif_sub_info *),
                                           void *arg)
{
    return s->ops->subs_of_user(s->impl, c, user_id, each, arg);
}
static inline int notif_store_subscribers(const struct notification_store *s,
                                          struct db_conn *c,
                                          int (*each)(void *, int64_t), void *arg)
{
    return s->ops->subscribers(s->impl, c, each, arg);
}

#endif
