/* message_store_pg.h: what the PostgreSQL files of the message store share: row
 * decoding, collecting results into arrays and running a statement of int64
 * parameters. Statements are prepared by the engine once per connection (db_pg.h),
 * so the store keeps no state of its own. */
#ifndef CHATD_MESSAGE_STORE_PG_H
#define CHATD_MESSAGE_STORE_PG_H

#include "chatd/db_pg.h"
#include "message_store.h"

/* Columns: id, room_id, seq, sender_id, sender, body, client_msg_id, created_at. */
#define MPG_MSG_COLUMNS "id, room_id, seq, sender_id, sender, body, client_msg_id, created_at"
/* Columns: id, name, kind, owner_id, created_at, last_seq. */
#define MPG_ROOM_COLUMNS "r.id, r.name, r.kind, r.owner_id, r.created_at, r.last_seq"

/* message_store_pg_rows.c */
/* Runs st with up to three int64 parameters (nparams of them are used). */
int  mpg_run64(struct db_conn *c, const struct db_pg_stmt *st, int64_t a, int64_t b,
               int64_t d, PGresult **res);
/* As mpg_run64 for a statement that returns nothing. 0 or negative. */
int  mpg_exec64(struct db_conn *c, const struct db_pg_stmt *st, int64_t a, int64_t b);
void mpg_msg_row(const PGresult *r, int row, int col0, struct msg_row *m);
void mpg_room_row(const PGresult *r, int row, int col0, struct room_row *out);
/* Column 0 of every row (int64) into a malloc'ed array. 0 or -ENOMEM. */
int  mpg_collect_ids(const PGresult *r, int64_t **ids, int *n);
/* (id, username) rows into a malloc'ed array. 0 or -ENOMEM. */
int  mpg_collect_refs(const PGresult *r, struct member_ref **refs, int *n);
/* A bigint[] in text form ("{1,2,3}") into a malloc'ed array. 0, -EINVAL when it is
 * not one, -ENOMEM. */
int  mpg_parse_ids(const char *text, int64_t **ids, int *n);
/* The strings of m copied into one malloc'ed block *copy, m pointing into it. 0 or
 * -ENOMEM. */
int  mpg_copy_strings(struct msg_row *m, char **copy);

/* The op groups (message_store_pg_messages.c, _rooms.c, _reads.c, _batch.c). */
int mpg_batch_room(void *impl, struct db_conn *c, int64_t room_id, int64_t **ids, int *n,
                   int64_t *last_seq);
int mpg_message_insert(void *impl, struct db_conn *c, const struct msg_new *m,
                       struct msg_row *out, char **copy);
int mpg_room_set_last_seq(void *impl, struct db_conn *c, int64_t room_id, int64_t seq);
int mpg_marker_raise(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id,
                     int64_t seq);
int mpg_post_batch(void *impl, struct db_conn *c, struct msg_post *p, int n,
                   struct msg_post_room *rooms, int *nrooms);
int mpg_messages(void *impl, struct db_conn *c, const struct msg_range *r, msg_row_fn fn,
                 void *ctx);
int mpg_room_get(void *impl, struct db_conn *c, int64_t room_id, struct room_row *out);
int mpg_room_lock(void *impl, struct db_conn *c, int64_t room_id, struct room_row *out);
int mpg_room_by_dm_key(void *impl, struct db_conn *c, const char *key, struct room_row *out);
int mpg_room_insert(void *impl, struct db_conn *c, const struct room_new *r, int64_t *id);
int mpg_room_set_owner(void *impl, struct db_conn *c, int64_t room_id, int64_t owner_id);
int mpg_member_insert(void *impl, struct db_conn *c, int64_t room_id,
                      const struct member_ref *m, int64_t joined_at);
int mpg_member_delete(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id);
int mpg_member_read_seq(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id,
                        int64_t *read_seq);
int mpg_member_count(void *impl, struct db_conn *c, int64_t room_id);
int mpg_member_first(void *impl, struct db_conn *c, int64_t room_id, int64_t *user_id);
int mpg_member_ids(void *impl, struct db_conn *c, int64_t room_id, int64_t **ids, int *n);
int mpg_member_refs(void *impl, struct db_conn *c, int64_t room_id,
                    struct member_ref **refs, int *n);
int mpg_room_access(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id,
                    struct room_row *room, int64_t *read_seq);
int mpg_rooms_of_user(void *impl, struct db_conn *c, int64_t user_id, room_row_fn fn,
                      void *ctx);
int mpg_peers(void *impl, struct db_conn *c, int64_t user_id, int64_t **ids, int *n);

#endif
