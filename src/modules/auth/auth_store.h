/* auth_store.h: where the auth module keeps its users and refresh-token families. The
 * module reaches its tables only through these ops, implemented on SQLite
 * (auth_store_sqlite*.c) and on PostgreSQL (auth_store_pg*.c), chosen by db_engine.
 * The module keeps everything else: the rules of a rotation (refresh.c), the jobs and
 * reads that decide on which thread an op runs, the hashing.
 *
 * An engine implements:
 * - migrate: create or upgrade the three tables of the module (users; refresh
 *   families; refresh tokens keyed by the SHA-256 of the token), blocking, at start;
 * - user_insert: a new user, returning the id it got, -ECONSTRAINT for a taken name.
 *   Ids are never reused and each new one is above every id already given: the
 *   gateway refuses a token for an id above the highest (users_max_id), so a user
 *   must never get an id below it (gaps, as a sequence leaves, are harmless);
 * - user_find, users_find, user_set_hash, users_max_id: reads and the rehash;
 * - family_create (returns the family's id), token_insert, token_find, token_spend,
 *   family_revoke, gc: the refresh tokens. token_spend must spend a token at most
 *   once even under concurrent writers (a conditional update), and say which call
 *   did: a refresh that finds its token spent by another is a reuse;
 * - free.
 * and passes tests/unit/test_auth_store.c (a line in auth_store_fixture.h's engine
 * table). The ops of one job (a rotation: token_find, token_spend, token_insert) share
 * the job's transaction, which the engine's db layer gives it.
 * Every op runs where it is called: on the writer thread inside a job's apply (the
 * writes), on a read-pool thread inside a db_read (the reads), or on the CLI's
 * connection (db_conn_for_cli). It gets that struct db_conn; it must not keep it.
 * Errors are negative errno values (-EIO, -ENOSPC, -EBUSY, -ENOMEM ...), and
 * -ECONSTRAINT (chatd/db.h) for a broken uniqueness. Times are Unix ms. */
#ifndef CHATD_AUTH_STORE_H
#define CHATD_AUTH_STORE_H

#include <stdint.h>

#include "chatd/db.h"
#include "chatd/util.h"

#define AUTH_STORE_HASH_MAX 160        /* a stored password hash, with its NUL */
#define AUTH_STORE_TOKEN_HASH 32       /* SHA-256 of a refresh token */

/* A user as login reads it. */
struct auth_user_row {
    int64_t id;
    char password_hash[AUTH_STORE_HASH_MAX];
};

/* A user as users.lookup answers it. */
struct auth_user_name {
    int64_t id;
    char username[USERNAME_MAX + 1];
};

/* A refresh token with its family and owner. */
struct auth_token_row {
    int64_t family_id;
    int64_t user_id;
    int64_t expires_at;
    int spent;                         /* 1: presented once already */
    int revoked;                       /* 1: its family is revoked */
    int user_exists;                   /* 0: the owner's row is gone (username "") */
    char username[USERNAME_MAX + 1];
};

struct auth_store_ops {
    /* Start-up (blocking): the tables, created or upgraded. */
    int (*migrate)(void *impl, struct db *db);

    /* 0 with *id the new user's, -ECONSTRAINT when username is taken. */
    int (*user_insert)(void *impl, struct db_conn *c, const char *username,
                       const char *password_hash, int64_t now_ms, int64_t *id);
    /* 1 and *out when username exists, 0 when not. */
    int (*user_find)(void *impl, struct db_conn *c, const char *username,
                     struct auth_user_row *out);
    /* The users among names[0..n) (out has room for n): how many were found, in
     * the order of names; names not found are skipped. */
    int (*users_find)(void *impl, struct db_conn *c, const char (*names)[USERNAME_MAX + 1],
                      int n, struct auth_user_name *out);
    int (*user_set_hash)(void *impl, struct db_conn *c, int64_t user_id,
                         const char *password_hash);
    /* The highest user id (0 without users). */
    int (*users_max_id)(void *impl, struct db_conn *c, int64_t *max_id);

    /* A new family for user_id: 0 with *family_id. */
    int (*family_create)(void *impl, struct db_conn *c, int64_t user_id, int64_t now_ms,
                         int64_t *family_id);
    int (*token_insert)(void *impl, struct db_conn *c, const uint8_t hash[AUTH_STORE_TOKEN_HASH],
                        int64_t family_id, int64_t user_id, int64_t now_ms,
                        int64_t expires_at);
    /* 1 and *out when a token has this hash, 0 when none. */
    int (*token_find)(void *impl, struct db_conn *c, const uint8_t hash[AUTH_STORE_TOKEN_HASH],
                      struct auth_token_row *out);
    /* Marks the token spent: 1 when this call did, 0 when it was spent already or
     * does not exist. */
    int (*token_spend)(void *impl, struct db_conn *c, const uint8_t hash[AUTH_STORE_TOKEN_HASH],
                       int64_t now_ms);
    /* Revokes the family (a revoked one keeps its first revocation time). */
    int (*family_revoke)(void *impl, struct db_conn *c, int64_t family_id, int64_t now_ms);
    /* Deletes the tokens expired by now_ms and the families left with none. */
    int (*gc)(void *impl, struct db_conn *c, int64_t now_ms);

    void (*free)(void *impl);
};

struct auth_store {
    const struct auth_store_ops *ops;
    void *impl;                        /* owned by the implementation */
};

/* The engines: SQLite (auth_store_sqlite*.c) and PostgreSQL (auth_store_pg*.c). */
int auth_store_sqlite_new(struct auth_store *out);
int auth_store_pg_new(struct auth_store *out);

/* The calls, as the module makes them. */
static inline int auth_store_user_insert(const struct auth_store *s, struct db_conn *c,
                                         const char *name, const char *hash, int64_t now,
                                         int64_t *id)
{
    return s->ops->user_insert(s->impl, c, name, hash, now, id);
}
static inline int auth_store_user_find(const struct auth_store *s, struct db_conn *c,
                                       const char *name, struct auth_user_row *out)
{
    return s->ops->user_find(s->impl, c, name, out);
}
static inline int auth_store_users_find(const struct auth_store *s, struct db_conn *c,
                                        const char (*names)[USERNAME_MAX + 1], int n,
                                        struct auth_user_name *out)
{
    return s->ops->users_find(s->impl, c, names, n, out);
}
static inline int auth_store_user_set_hash(const struct auth_store *s, struct db_conn *c,
                                           int64_t id, const char *hash)
{
    return s->ops->user_set_hash(s->impl, c, id, hash);
}
static inline int auth_store_users_max_id(const struct auth_store *s, struct db_conn *c,
                                          int64_t *max_id)
{
    return s->ops->users_max_id(s->impl, c, max_id);
}
static inline int auth_store_family_create(const struct auth_store *s, struct db_conn *c,
                                           int64_t user_id, int64_t now, int64_t *family_id)
{
    return s->ops->family_create(s->impl, c, user_id, now, family_id);
}
static inline int auth_store_token_insert(const struct auth_store *s, struct db_conn *c,
                                          const uint8_t hash[AUTH_STORE_TOKEN_HASH],
                                          int64_t family_id, int64_t user_id, int64_t now,
                                          int64_t expires_at)
{
    return s->ops->token_insert(s->impl, c, hash, family_id, user_id, now, expires_at);
}
static inline int auth_store_token_find(const struct auth_store *s, struct db_conn *c,
                                        const uint8_t hash[AUTH_STORE_TOKEN_HASH],
                                        struct auth_token_row *out)
{
    return s->ops->token_find(s->impl, c, hash, out);
}
static inline int auth_store_token_spend(const struct auth_store *s, struct db_conn *c,
                                         const uint8_t hash[AUTH_STORE_TOKEN_HASH], int64_t now)
{
    return s->ops->token_spend(s->impl, c, hash, now);
}
static inline int auth_store_family_revoke(const struct auth_store *s, struct db_conn *c,
                                           int64_t family_id, int64_t now)
{
    return s->ops->family_revoke(s->impl, c, family_id, now);
}
static inline int auth_store_gc(const struct auth_store *s, struct db_conn *c, int64_t now)
{
    return s->ops->gc(s->impl, c, now);
}
static inline int auth_store_migrate(const struct auth_store *s, struct db *db)
{
    return s->ops->migrate(s->impl, db);
}
static inline void auth_store_free(struct auth_store *s)
{
    if (s->ops)
        s->ops->free(s->impl);
    s->ops = NULL;
    s->impl = NULL;
}

#endif
