/* message_store_sqlite_stmt.c: what every SQLite op file of the message store uses:
 * the writer's prepared statements, one-shot statements for reads, row decoding and
 * collecting a result into an array. Every message costs a handful of statements
 * inside the group transaction, so the writer's are prepared once per connection and
 * reused; reads on the pool prepare theirs per call (each pool connection is used
 * by one thread at a time, and a read is a handful of statements at most). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "message_store_sqlite.h"

static const char *const msq_sql[MSQ__COUNT] = {
    [MSQ_MEMBERS] = "SELECT user_id FROM room_members WHERE room_id = ?1",
    [MSQ_ROOM] = "SELECT " MSQ_ROOM_COLUMNS " FROM rooms r WHERE r.id = ?1",
    [MSQ_DEDUPE] = "SELECT " MSQ_MSG_COLUMNS " FROM messages"
                   " WHERE sender_id = ?1 AND client_msg_id = ?2",
    [MSQ_LAST_SEQ] = "SELECT last_seq FROM rooms WHERE id = ?1",
    [MSQ_SET_SEQ] = "UPDATE rooms SET last_seq = ?2 WHERE id = ?1",
    [MSQ_INSERT_MSG] = "INSERT INTO messages (room_id, seq, sender_id, sender, body,"
                       " client_msg_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [MSQ_MARKER] = "UPDATE room_members SET read_seq = ?3"
                   " WHERE room_id = ?1 AND user_id = ?2 AND read_seq < ?3",
    [MSQ_ROOM_BY_KEY] = "SELECT " MSQ_ROOM_COLUMNS " FROM rooms r WHERE r.dm_key = ?1",
    [MSQ_INSERT_ROOM] = "INSERT INTO rooms (name, kind, owner_id, dm_key, created_at)"
                        " VALUES (?1, ?2, ?3, ?4, ?5)",
    [MSQ_INSERT_MEMBER] = "INSERT OR IGNORE INTO room_members (room_id, user_id, username,"
                          " joined_at) VALUES (?1, ?2, ?3, ?4)",
    [MSQ_DELETE_MEMBER] = "DELETE FROM room_members WHERE room_id = ?1 AND user_id = ?2",
    [MSQ_IS_MEMBER] = "SELECT read_seq FROM room_members WHERE room_id = ?1 AND user_id = ?2",
    [MSQ_SET_OWNER] = "UPDATE rooms SET owner_id = ?2 WHERE id = ?1",
    [MSQ_FIRST_MEMBER] = "SELECT user_id FROM room_members WHERE room_id = ?1"
                         " ORDER BY joined_at, user_id LIMIT 1",
    [MSQ_COUNT_MEMBERS] = "SELECT count(*) FROM room_members WHERE room_id = ?1",
    [MSQ_MEMBER_REFS] = "SELECT user_id, username FROM room_members WHERE room_id = ?1"
                        " ORDER BY user_id",
};

void msq_release(struct msq *q)
{
    for (int i = 0; i < MSQ__COUNT; i++) {
        sqlite3_finalize(q->s[i]);
        q->s[i] = NULL;
    }
    q->wconn = NULL;
}

sqlite3_stmt *msq_stmt(struct msq *q, struct db_conn *c, enum msq_id id)
{
    sqlite3 *conn = db_sqlite(c);
    if (q->wconn != conn) {
        /* Another connection (a reopened database, or a test's own): start over. */
        msq_release(q);
        q->wconn = conn;
    }
    if (!q->s[id] && sqlite3_prepare_v3(conn, msq_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                        &q->s[id], NULL) != SQLITE_OK) {
        q->s[id] = NULL;
        return NULL;
    }
    return q->s[id];
}

void msq_done(sqlite3_stmt *s)
{
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

sqlite3_stmt *msq_prepare(struct db_conn *c, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db_sqlite(c), sql, -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

void msq_msg_row(sqlite3_stmt *s, int c, struct msg_row *m)
{
    m->id = sqlite3_column_int64(s, c + 0);
    m->room_id = sqlite3_column_int64(s, c + 1);
    m->seq = sqlite3_column_int64(s, c + 2);
    m->sender_id = sqlite3_column_int64(s, c + 3);
    m->sender = (const char *)sqlite3_column_text(s, c + 4);
    m->body = (const char *)sqlite3_column_text(s, c + 5);
    m->client_msg_id = (const char *)sqlite3_column_text(s, c + 6);
    m->created_at = sqlite3_column_int64(s, c + 7);
}

void msq_room_row(sqlite3_stmt *s, int c, struct room_row *r)
{
    const char *name = (const char *)sqlite3_column_text(s, c + 1);
    const char *kind = (const char *)sqlite3_column_text(s, c + 2);
    r->id = sqlite3_column_int64(s, c + 0);
    snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
    snprintf(r->kind, sizeof(r->kind), "%s", kind ? kind : "group");
    r->owner_id = sqlite3_column_int64(s, c + 3);
    r->created_at = sqlite3_column_int64(s, c + 4);
    r->last_seq = sqlite3_column_int64(s, c + 5);
}

/* Grows *a (of *cap elements of size sz) to hold one more than n. 0 or -ENOMEM. */
static int grow(void **a, int *cap, int n, size_t sz)
{
    if (n < *cap)
        return 0;
    int c = *cap ? *cap * 2 : 16;
    void *b = realloc(*a, (size_t)c * sz);
    if (!b)
        return -ENOMEM;
    *a = b;
    *cap = c;
    return 0;
}

int msq_collect_ids(sqlite3_stmt *s, int64_t **ids, int *n)
{
    int64_t *a = NULL;
    int cap = 0, cnt = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (grow((void **)&a, &cap, cnt, sizeof(*a)) < 0) {
            rc = SQLITE_NOMEM;
            break;
        }
        a[cnt++] = sqlite3_column_int64(s, 0);
    }
    if (rc != SQLITE_DONE) {
        free(a);
        return db_errno(rc);
    }
    *ids = a;
    *n = cnt;
    return 0;
}

int msq_collect_refs(sqlite3_stmt *s, struct member_ref **refs, int *n)
{
    struct member_ref *a = NULL;
    int cap = 0, cnt = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (grow((void **)&a, &cap, cnt, sizeof(*a)) < 0) {
            rc = SQLITE_NOMEM;
            break;
        }
        const char *u = (const char *)sqlite3_column_text(s, 1);
        a[cnt].id = sqlite3_column_int64(s, 0);
        snprintf(a[cnt].username, sizeof(a[cnt].username), "%s", u ? u : "");
        cnt++;
    }
    if (rc != SQLITE_DONE) {
        free(a);
        return db_errno(rc);
    }
    *refs = a;
    *n = cnt;
    return 0;
}
