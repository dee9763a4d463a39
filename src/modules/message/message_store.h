/* message_store.h: where the message module keeps rooms, memberships, messages and
 * read markers. The module only talks to this interface: its jobs, batching, caches
 * and answers stay in the module, the store runs the queries and nothing else. An op
 * runs where it is called, on the connection it is given: on the writer thread inside
 * a job's apply (inside the group transaction), or on a read-pool thread inside a
 * db_read fn. Ops return 0 (or the count or flag they name) or a negative errno;
 * -ECONSTRAINT for a broken uniqueness or foreign key.
 *
 * Each engine (SQLite, PostgreSQL) implements every op below with the same
 * results; in short:
 * - migrate: its own schema for rooms, room_members (with read_seq), messages;
 * - per-room seq kept in the room row (last_seq), read and written by the writer's
 *   ops inside the transaction, so seq stays gapless and in commit order: batch_room
 *   must lock the room row until COMMIT where several writers could run;
 * - message_insert with de-duplication on (sender_id, client_msg_id): a repeat
 *   answers the first message (1), writes nothing, and leaves the transaction usable;
 * - ids made by the engine come back from the op that made them (message_insert,
 *   room_insert), never from a "last insert id" of the connection;
 * - one direct room per dm_key (unique);
 * - room_lock reads a room and locks its row until COMMIT (as batch_room);
 * - marker_raise moves a read marker up only;
 * - txn_lost: whether the engine ended the transaction by itself after a failure;
 * - writer_release finalizes what it caches for the writer's connection (called on
 *   the writer before the database closes); free the rest at free;
 * - post_batch (optional) does a whole batch of messages in one call, where a round
 *   trip per op would cost more than the op (a database over the network).
 * tests/unit/test_message_store.c drives the ops directly: an engine passes it. */
#ifndef CHATD_MESSAGE_STORE_H
#define CHATD_MESSAGE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "chatd/db.h"

#define MSG_ROOM_NAME_MAX 100        /* bytes */

struct msg_row {
    int64_t id, room_id, seq, sender_id, created_at;
    const char *sender, *body, *client_msg_id;   /* client_msg_id may be NULL */
};

struct room_row {
    int64_t id, owner_id, created_at, last_seq;
    char name[MSG_ROOM_NAME_MAX + 1];
    char kind[8];                    /* "group" | "direct" */
};

struct member_ref { int64_t id; char username[40]; };

/* A message to store (its seq given by the batch). */
struct msg_new {
    int64_t room_id, seq, sender_id, created_at;
    const char *sender, *body, *client_msg_id;   /* client_msg_id may be NULL */
};

struct room_new {
    const char *name, *kind;         /* kind: "group" | "direct" */
    const char *dm_key;              /* "lo:hi" user ids of a direct room, else NULL */
    int64_t owner_id, created_at;
};

/* One message of a batch given to post_batch, and what became of it. */
struct msg_post {
    int64_t room_id, sender_id, created_at;
    const char *sender, *body, *client_msg_id;   /* client_msg_id may be NULL */
    /* Results. status: 201 stored; 200 a repeat of (sender_id, client_msg_id) in the
     * same room, 409 in another room (row: the first message, its strings in copy);
     * 403 not a member, 404 no such room, 500 refused by the database (another
     * uniqueness: nothing written). */
    int status;
    struct msg_row row;              /* 201: the stored row, strings the post's */
    char *copy;                      /* malloc'ed: the caller frees (200, 409) */
    int room;                        /* index into the rooms, -1 for a 404 */
};

/* A room of a batch as its COMMIT will leave it: its members by id (malloc'ed, the
 * caller frees), for the fan-out. */
struct msg_post_room {
    int64_t room_id;
    int64_t *ids;
    int n;
};

/* Messages of one room with lo < seq < hi, the newest first when desc, at most limit. */
struct msg_range {
    int64_t room_id, lo, hi;
    int desc, limit;
};

/* Called per row; the row's strings live until it returns. 0 goes on, 1 stops,
 * negative stops with that error. */
typedef int (*msg_row_fn)(void *ctx, const struct msg_row *m);
typedef int (*room_row_fn)(void *ctx, const struct room_row *r, int64_t read_seq);

struct msg_store_ops {
    /* Start-up: creates or updates the tables (db_migrate for SQLite). */
    int (*migrate)(void *impl, struct db *db);

    /* ----- writer ops: inside a job's apply; statements cached for the writer ----- */
    /* A batch's view of a room: members (malloc'ed, the caller frees) and last_seq.
     * 1 when the room exists, 0 when not (*ids NULL, *n 0), or negative. */
    int (*batch_room)(void *impl, struct db_conn *c, int64_t room_id, int64_t **ids,
                      int *n, int64_t *last_seq);
    /* 0: stored, *out the row with its id (strings m's). 1: (sender_id,
     * client_msg_id) was stored before: *out the first message, its strings in
     * *copy (one malloc'ed block, the caller frees), nothing written. -ECONSTRAINT
     * (another uniqueness, e.g. (room_id, seq) taken: nothing written), or negative. */
    int (*message_insert)(void *impl, struct db_conn *c, const struct msg_new *m,
                          struct msg_row *out, char **copy);
    int (*room_set_last_seq)(void *impl, struct db_conn *c, int64_t room_id, int64_t seq);
    /* Moves the user's read marker up to seq, never back: 1 moved, 0 not, negative. */
    int (*marker_raise)(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id,
                        int64_t seq);
    /* Optional (NULL: the module calls the ops above per message). The batch p[0..n)
     * in one call, with the same results as those ops in that order: per room seq
     * gapless in p's order from last_seq (locked until COMMIT: several writers may
     * run), only stored messages take one; last_seq and the senders' read markers
     * raised. rooms (room for n entries) gets each room of the batch that exists,
     * *nrooms of them. 0, or negative (the transaction is lost then: -EDEADLK and
     * -EAGAIN ask the writer to retry the group), with nothing to free. */
    int (*post_batch)(void *impl, struct db_conn *c, struct msg_post *p, int n,
                      struct msg_post_room *rooms, int *nrooms);
    /* 1 (*out set), 0 no such room, negative. */
    int (*room_get)(void *impl, struct db_conn *c, int64_t room_id, struct room_row *out);
    /* As room_get, and the room row stays locked until COMMIT where several writers
     * could run (a check of its members or owner then holds until the change it
     * guards is committed); a single writer serializes by itself. */
    int (*room_lock)(void *impl, struct db_conn *c, int64_t room_id, struct room_row *out);
    int (*room_by_dm_key)(void *impl, struct db_conn *c, const char *key,
                          struct room_row *out);
    /* 0 and *id the new room's id, or negative. */
    int (*room_insert)(void *impl, struct db_conn *c, const struct room_new *r, int64_t *id);
    int (*room_set_owner)(void *impl, struct db_conn *c, int64_t room_id, int64_t owner_id);
    /* 1 added, 0 already a member, negative. */
    int (*member_insert)(void *impl, struct db_conn *c, int64_t room_id,
                         const struct member_ref *m, int64_t joined_at);
    int (*member_delete)(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id);
    /* 1 member (*read_seq set; may be NULL), 0 not, negative. */
    int (*member_read_seq)(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id,
                           int64_t *read_seq);
    /* Members in the room, or negative. */
    int (*member_count)(void *impl, struct db_conn *c, int64_t room_id);
    /* The longest-standing member (joined first, then lowest id): 1 and *user_id, 0
     * for an empty room, negative. */
    int (*member_first)(void *impl, struct db_conn *c, int64_t room_id, int64_t *user_id);
    /* Members by id, malloc'ed (the caller frees). */
    int (*member_ids)(void *impl, struct db_conn *c, int64_t room_id, int64_t **ids, int *n);
    int (*member_refs)(void *impl, struct db_conn *c, int64_t room_id,
                       struct member_ref **refs, int *n);
    /* 1 when the engine rolled the transaction back by itself after a failure (what
     * follows would be written outside it), else 0. */
    int (*txn_lost)(void *impl, struct db_conn *c);
    /* The engine's text of the connection's last error, for a log line. */
    const char *(*errmsg)(void *impl, struct db_conn *c);
    /* Finalizes what is cached for the writer's connection: on the writer thread. */
    void (*writer_release)(void *impl);

    /* ----- read ops: any connection (a db_read fn, the CLI); nothing cached ----- */
    /* The room and the user's marker: 0 member, -ENOENT no such room, -EPERM not a
     * member (*room set), or negative. */
    int (*room_access)(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id,
                       struct room_row *room, int64_t *read_seq);
    /* fn for each room of the user, by room id. 0, or fn's error, or negative. */
    int (*rooms_of_user)(void *impl, struct db_conn *c, int64_t user_id, room_row_fn fn,
                         void *ctx);
    /* fn for each message of the range, in the range's order: 0 when the rows ran
     * out, 1 when fn stopped, or negative. */
    int (*messages)(void *impl, struct db_conn *c, const struct msg_range *r,
                    msg_row_fn fn, void *ctx);
    /* As the writer's of the same name, on a read connection. */
    int (*read_member_ids)(void *impl, struct db_conn *c, int64_t room_id, int64_t **ids,
                           int *n);
    int (*read_member_refs)(void *impl, struct db_conn *c, int64_t room_id,
                            struct member_ref **refs, int *n);
    /* Users sharing at least one room with user_id (not itself), by id, malloc'ed. */
    int (*peers)(void *impl, struct db_conn *c, int64_t user_id, int64_t **ids, int *n);

    void (*free)(void *impl);
};

struct msg_store {
    const struct msg_store_ops *ops;
    void *impl;                      /* owned by the implementation */
};

/* The default engine: SQLite (message_store_sqlite*.c). */
int msg_store_sqlite_new(struct msg_store *out);
/* Its schema, for tests that build a database by hand. */
extern const struct db_migration msg_sqlite_migrations[];
extern const int msg_sqlite_migrations_count;
/* PostgreSQL ([database] url; message_store_pg*.c), and its schema. */
int msg_store_pg_new(struct msg_store *out);
extern const struct db_migration msg_pg_migrations[];
extern const int msg_pg_migrations_count;

static inline void msg_store_free(struct msg_store *s)
{
    if (s->ops)
        s->ops->free(s->impl);
    s->ops = NULL;
    s->impl = NULL;
}

#endif
