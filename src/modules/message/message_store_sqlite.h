/* message_store_sqlite.h: what the SQLite files of the message store share: the
 * implementation's state (the writer's cached statements) and row decoding. */
#ifndef CHATD_MESSAGE_STORE_SQLITE_H
#define CHATD_MESSAGE_STORE_SQLITE_H

#include <sqlite3.h>
#include "chatd/db_sqlite.h"
#include "message_store.h"

enum msq_id {
    MSQ_MEMBERS, MSQ_ROOM, MSQ_DEDUPE, MSQ_LAST_SEQ, MSQ_SET_SEQ, MSQ_INSERT_MSG,
    MSQ_MARKER, MSQ_ROOM_BY_KEY, MSQ_INSERT_ROOM, MSQ_INSERT_MEMBER, MSQ_DELETE_MEMBER,
    MSQ_IS_MEMBER, MSQ_SET_OWNER, MSQ_FIRST_MEMBER, MSQ_COUNT_MEMBERS, MSQ_MEMBER_REFS,
    MSQ__COUNT
};

/* The writer is a single thread: the cache needs no lock, only to be touched by the
 * writer ops alone. */
struct msq {
    sqlite3 *wconn;                  /* not owned: the writer's connection */
    sqlite3_stmt *s[MSQ__COUNT];     /* owned */
};

/* Columns: id, room_id, seq, sender_id, sender, body, client_msg_id, created_at. */
#define MSQ_MSG_COLUMNS "id, room_id, seq, sender_id, sender, body, client_msg_id, created_at"
/* Columns: id, name, kind, owner_id, created_at, last_seq. */
#define MSQ_ROOM_COLUMNS "r.id, r.name, r.kind, r.owner_id, r.created_at, r.last_seq"

/* message_store_sqlite_stmt.c. The cached statement (prepared on first use; hand it back with msq_done). NULL on a
 * prepare error. */
sqlite3_stmt *msq_stmt(struct msq *q, struct db_conn *c, enum msq_id id);
void msq_done(sqlite3_stmt *s);
void msq_release(struct msq *q);
void msq_msg_row(sqlite3_stmt *s, int col0, struct msg_row *m);
void msq_room_row(sqlite3_stmt *s, int col0, struct room_row *r);
/* Steps s to the end, collecting column 0 (int64) into a malloc'ed array. */
int  msq_collect_ids(sqlite3_stmt *s, int64_t **ids, int *n);
/* Steps s to the end, collecting (id, username) rows. */
int  msq_collect_refs(sqlite3_stmt *s, struct member_ref **refs, int *n);
/* One-shot statement on a read connection: prepared, or NULL. */
sqlite3_stmt *msq_prepare(struct db_conn *c, const char *sql);

/* The op groups (message_store_sqlite_messages.c, message_store_sqlite_rooms.c). */
int msq_batch_room(void *impl, struct db_conn *c, int64_t room_id, int64_t **ids, int *n,
                   int64_t *last_seq);
int msq_message_insert(void *impl, struct db_conn *c, const struct msg_new *m,
                       struct msg_row *out, char **copy);
int msq_room_set_last_seq(void *impl, struct db_conn *c, int64_t room_id, int64_t seq);
int msq_marker_raise(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id,
                     int64_t seq);
int msq_messages(void *impl, struct db_conn *c, const struct msg_range *r, msg_row_fn fn,
                 void *ctx);
int msq_room_get(void *impl, struct db_conn *c, int64_t room_id, struct room_row *out);
int msq_room_by_dm_key(void *impl, struct db_conn *c, const char *key, struct room_row *out);
int msq_room_insert(void *impl, struct db_conn *c, const struct room_new *r, int64_t *id);
int msq_room_set_owner(void *impl, struct db_conn *c, int64_t room_id, int64_t owner_id);
int msq_member_insert(void *impl, struct db_conn *c, int64_t room_id,
                      const struct member_ref *m, int64_t joined_at);
int msq_member_delete(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id);
int msq_member_read_seq(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id,
                        int64_t *read_seq);
int msq_member_count(void *impl, struct db_conn *c, int64_t room_id);
int msq_member_first(void *impl, struct db_conn *c, int64_t room_id, int64_t *user_id);
int msq_member_ids(void *impl, struct db_conn *c, int64_t room_id, int64_t **ids, int *n);
int msq_member_refs(void *impl, struct db_conn *c, int64_t room_id,
                    struct member_ref **refs, int *n);
int msq_room_access(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id,
                    struct room_row *room, int64_t *read_seq);
int msq_rooms_of_user(void *impl, struct db_conn *c, int64_t user_id, room_row_fn fn,
                      void *ctx);
int msq_read_member_ids(void *impl, struct db_conn *c, int64_t room_id, int64_t **ids,
                        int *n);
int msq_read_member_refs(void *impl, struct db_conn *c, int64_t room_id,
                         struct member_ref **refs, int *n);
int msq_peers(void *impl, struct db_conn *c, int64_t user_id, int64_t **ids, int *n);

#endif
