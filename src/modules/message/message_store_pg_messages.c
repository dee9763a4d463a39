/* message_store_pg_messages.c: messages and seq on PostgreSQL, op by op (the module
 * uses post_batch for its batches, message_store_pg_batch.c; these serve the tests
 * of the op contract and any caller that stores one message at a time). On the
 * writer: a room read under its row lock, one message's INSERT with its
 * de-duplication, last_seq and read markers. On the pool: a range of a room's
 * messages (history and sync).
 *
 * A failed statement aborts the whole PostgreSQL transaction, so the expected
 * refusals are written as statements that cannot fail: the INSERT skips a row that
 * breaks a uniqueness (ON CONFLICT DO NOTHING) and the op then tells which one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "message_store_pg.h"

static const struct db_pg_stmt lock_room = {
    "msg_room_lock", "SELECT last_seq FROM rooms WHERE id = $1::bigint FOR NO KEY UPDATE", 1
};
static const struct db_pg_stmt members = {
    "msg_members", "SELECT user_id FROM room_members WHERE room_id = $1::bigint"
    " ORDER BY user_id", 1
};
static const struct db_pg_stmt insert_msg = {
    "msg_insert", "INSERT INTO messages (room_id, seq, sender_id, sender, body,"
    " client_msg_id, created_at) VALUES ($1::bigint, $2::bigint, $3::bigint, $4, $5, $6,"
    " $7::bigint) ON CONFLICT DO NOTHING RETURNING id", 7
};
static const struct db_pg_stmt first_msg = {
    "msg_first", "SELECT " MPG_MSG_COLUMNS " FROM messages WHERE sender_id = $1::bigint"
    " AND client_msg_id = $2", 2
};
static const struct db_pg_stmt set_seq = {
    "msg_set_seq", "UPDATE rooms SET last_seq = $2::bigint WHERE id = $1::bigint", 2
};
static const struct db_pg_stmt marker = {
    "msg_marker", "UPDATE room_members SET read_seq = $3::bigint WHERE room_id = $1::bigint"
    " AND user_id = $2::bigint AND read_seq < $3::bigint", 3
};
static const struct db_pg_stmt range_desc = {
    "msg_range_desc", "SELECT " MPG_MSG_COLUMNS " FROM messages WHERE room_id = $1::bigint"
    " AND seq > $2::bigint AND seq < $3::bigint ORDER BY seq DESC LIMIT $4::bigint", 4
};
static const struct db_pg_stmt range_asc = {
    "msg_range_asc", "SELECT " MPG_MSG_COLUMNS " FROM messages WHERE room_id = $1::bigint"
    " AND seq > $2::bigint AND seq < $3::bigint ORDER BY seq ASC LIMIT $4::bigint", 4
};

int mpg_member_ids(void *impl, struct db_conn *c, int64_t room_id, int64_t **ids, int *n)
{
    PGresult *r;
    int rc = mpg_run64(c, &members, room_id, 0, 0, &r);
    if (rc < 0)
        return rc;
    rc = mpg_collect_ids(r, ids, n);
    PQclear(r);
    return rc;
}

/* The room row stays locked until COMMIT, so a second writer (another node) reads
 * last_seq only after this transaction's messages are in: seq stays gapless. The
 * members are read after the lock, as the commit will leave them. */
int mpg_batch_room(void *impl, struct db_conn *c, int64_t room_id, int64_t **ids, int *n,
                   int64_t *seq)
{
    PGresult *r;
    *ids = NULL;
    *n = 0;
    *seq = 0;
    int rc = mpg_run64(c, &lock_room, room_id, 0, 0, &r);
    if (rc < 0)
        return rc;
    int found = PQntuples(r) > 0;
    if (found)
        *seq = db_pg_i64(r, 0, 0);
    PQclear(r);
    if (!found)
        return 0;
    return (rc = mpg_member_ids(impl, c, room_id, ids, n)) < 0 ? rc : 1;
}

/* The first message of (sender_id, client_msg_id), its strings copied: 1 found, 0
 * not, negative. */
static int find_first(struct db_conn *c, const struct msg_new *m, struct msg_row *out,
                      char **copy)
{
    char sid[DB_PG_I64_LEN];
    const char *v[2] = { db_pg_p64(sid, m->sender_id), m->client_msg_id };
    PGresult *r;
    int rc = db_pg_run(c, &first_msg, v, &r);
    if (rc < 0)
        return rc;
    int found = PQntuples(r) > 0;
    if (found) {
        mpg_msg_row(r, 0, 0, out);
        rc = mpg_copy_strings(out, copy);
    }
    PQclear(r);
    return rc < 0 ? rc : found;
}

int mpg_message_insert(void *impl, struct db_conn *c, const struct msg_new *m,
                       struct msg_row *out, char **copy)
{
    char b[4][DB_PG_I64_LEN];
    const char *v[7] = { db_pg_p64(b[0], m->room_id), db_pg_p64(b[1], m->seq),
                         db_pg_p64(b[2], m->sender_id), m->sender, m->body,
                         m->client_msg_id, db_pg_p64(b[3], m->created_at) };
    PGresult *r;
    *copy = NULL;
    int rc = db_pg_run(c, &insert_msg, v, &r);
    if (rc < 0)
        return rc;
    int stored = PQntuples(r) > 0;
    int64_t id = stored ? db_pg_i64(r, 0, 0) : 0;
    PQclear(r);
    if (stored) {
        *out = (struct msg_row){
            .id = id, .room_id = m->room_id, .seq = m->seq, .sender_id = m->sender_id,
            .created_at = m->created_at, .sender = m->sender, .body = m->body,
            .client_msg_id = m->client_msg_id,
        };
        return 0;
    }
    if (m->client_msg_id && (rc = find_first(c, m, out, copy)) != 0)
        return rc;
    return -ECONSTRAINT;             /* (room_id, seq) was taken */
}

int mpg_room_set_last_seq(void *impl, struct db_conn *c, int64_t room_id, int64_t seq)
{
    return mpg_exec64(c, &set_seq, room_id, seq);
}

int mpg_marker_raise(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id,
                     int64_t seq)
{
    PGresult *r;
    int rc = mpg_run64(c, &marker, room_id, user_id, seq, &r);
    if (rc < 0)
        return rc;
    int moved = atoi(PQcmdTuples(r)) > 0;
    PQclear(r);
    return moved;
}

int mpg_messages(void *impl, struct db_conn *c, const struct msg_range *rg, msg_row_fn fn,
                 void *ctx)
{
    char b[4][DB_PG_I64_LEN];
    const char *v[4] = { db_pg_p64(b[0], rg->room_id), db_pg_p64(b[1], rg->lo),
                         db_pg_p64(b[2], rg->hi), db_pg_p64(b[3], rg->limit) };
    PGresult *r;
    int rc = db_pg_run(c, rg->desc ? &range_desc : &range_asc, v, &r);
    if (rc < 0)
        return rc;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && rc == 0; i++) {
        struct msg_row m;
        mpg_msg_row(r, i, 0, &m);
        rc = fn(ctx, &m);
    }
    PQclear(r);
    return rc;
}
