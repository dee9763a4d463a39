/* message_store_sqlite_messages.c: messages and seq on SQLite. On the writer: a
 * batch's read of a room (members and last_seq), the INSERT of one message with its
 * de-duplication by the unique index on (sender_id, client_msg_id), last_seq and
 * read markers. On the pool: a range of a room's messages (history and sync). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "message_store_sqlite.h"

int msq_member_ids(void *impl, struct db_conn *c, int64_t room_id, int64_t **ids, int *n)
{
    sqlite3_stmt *s = msq_stmt(impl, c, MSQ_MEMBERS);
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, room_id);
    int rc = msq_collect_ids(s, ids, n);
    msq_done(s);
    return rc;
}

/* last_seq of a room: 1 and *seq when the room exists, 0 when not, or negative. */
static int last_seq(struct msq *q, struct db_conn *c, int64_t room_id, int64_t *seq)
{
    sqlite3_stmt *s = msq_stmt(q, c, MSQ_LAST_SEQ);
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, room_id);
    int rc = sqlite3_step(s);
    *seq = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    msq_done(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int msq_batch_room(void *impl, struct db_conn *c, int64_t room_id, int64_t **ids, int *n,
                   int64_t *seq)
{
    *ids = NULL;
    *n = 0;
    int rc = msq_member_ids(impl, c, room_id, ids, n);
    if (rc < 0)
        return rc;
    if ((rc = last_seq(impl, c, room_id, seq)) < 0) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

static size_t len_or_0(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* The first message of (sender_id, client_msg_id), its strings copied into one block:
 * 1 found, 0 not, negative. */
static int find_first(struct msq *q, struct db_conn *c, const struct msg_new *m,
                      struct msg_row *out, char **copy)
{
    sqlite3_stmt *s = msq_stmt(q, c, MSQ_DEDUPE);
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, m->sender_id);
    sqlite3_bind_text(s, 2, m->client_msg_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s), found = rc == SQLITE_ROW;
    if (found) {
        struct msg_row r;
        msq_msg_row(s, 0, &r);
        size_t ls = len_or_0(r.sender), lb = len_or_0(r.body), lc = len_or_0(r.client_msg_id);
        char *p = malloc(ls + lb + lc + 1);
        if (!p) {
            msq_done(s);
            return -ENOMEM;
        }
        *out = r;
        out->sender = ls ? memcpy(p, r.sender, ls) : NULL;
        out->body = lb ? memcpy(p + ls, r.body, lb) : NULL;
        out->client_msg_id = lc ? memcpy(p + ls + lb, r.client_msg_id, lc) : NULL;
        *copy = p;
    }
    msq_done(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_errno(rc);
    return found;
}

/* The insert comes first: a repeated client_msg_id is rare, and the unique index
 * finds it anyway. A single-row INSERT that breaks a constraint writes nothing. */
int msq_message_insert(void *impl, struct db_conn *c, const struct msg_new *m,
                       struct msg_row *out, char **copy)
{
    sqlite3 *conn = db_sqlite(c);
    sqlite3_stmt *s = msq_stmt(impl, c, MSQ_INSERT_MSG);
    *copy = NULL;
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, m->room_id);
    sqlite3_bind_int64(s, 2, m->seq);
    sqlite3_bind_int64(s, 3, m->sender_id);
    sqlite3_bind_text(s, 4, m->sender, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, m->body, -1, SQLITE_STATIC);
    if (m->client_msg_id)
        sqlite3_bind_text(s, 6, m->client_msg_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 6);
    sqlite3_bind_int64(s, 7, m->created_at);
    int rc = sqlite3_step(s);
    int unique = rc != SQLITE_DONE && sqlite3_extended_errcode(conn) == SQLITE_CONSTRAINT_UNIQUE;
    msq_done(s);
    if (rc == SQLITE_DONE) {
        *out = (struct msg_row){
            .id = sqlite3_last_insert_rowid(conn), .room_id = m->room_id, .seq = m->seq,
            .sender_id = m->sender_id, .created_at = m->created_at, .sender = m->sender,
            .body = m->body, .client_msg_id = m->client_msg_id,
        };
        return 0;
    }
    if (!unique)
        return db_errno(rc);
    if (m->client_msg_id && (rc = find_first(impl, c, m, out, copy)) != 0)
        return rc;
    return -ECONSTRAINT;             /* (room_id, seq) was taken */
}

int msq_room_set_last_seq(void *impl, struct db_conn *c, int64_t room_id, int64_t seq)
{
    sqlite3_stmt *s = msq_stmt(impl, c, MSQ_SET_SEQ);
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, room_id);
    sqlite3_bind_int64(s, 2, seq);
    int rc = sqlite3_step(s);
    msq_done(s);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int msq_marker_raise(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id,
                     int64_t seq)
{
    sqlite3_stmt *s = msq_stmt(impl, c, MSQ_MARKER);
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, room_id);
    sqlite3_bind_int64(s, 2, user_id);
    sqlite3_bind_int64(s, 3, seq);
    int rc = sqlite3_step(s);
    int moved = rc == SQLITE_DONE && sqlite3_changes(db_sqlite(c)) > 0;
    msq_done(s);
    return rc == SQLITE_DONE ? moved : db_errno(rc);
}

int msq_messages(void *impl, struct db_conn *c, const struct msg_range *r, msg_row_fn fn,
                 void *ctx)
{
    const char *sql = r->desc
        ? "SELECT " MSQ_MSG_COLUMNS " FROM messages WHERE room_id = ?1 AND seq > ?2"
          " AND seq < ?3 ORDER BY seq DESC LIMIT ?4"
        : "SELECT " MSQ_MSG_COLUMNS " FROM messages WHERE room_id = ?1 AND seq > ?2"
          " AND seq < ?3 ORDER BY seq ASC LIMIT ?4";
    sqlite3_stmt *s = msq_prepare(c, sql);
    int rc, ret = 0;
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, r->room_id);
    sqlite3_bind_int64(s, 2, r->lo);
    sqlite3_bind_int64(s, 3, r->hi);
    sqlite3_bind_int(s, 4, r->limit);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct msg_row m;
        msq_msg_row(s, 0, &m);
        if ((ret = fn(ctx, &m)) != 0)
            break;
    }
    sqlite3_finalize(s);
    if (ret != 0)
        return ret;
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}
