/* message_store_sqlite.c: the message store on SQLite: its schema, the writer's
 * prepared statements and row decoding. Every message costs a handful of statements
 * inside the group transaction, so the writer's are prepared once per connection and
 * reused; reads on the pool prepare theirs per call (each pool connection is used
 * by one thread at a time, and a read is a handful of statements at most). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "message_store_sqlite.h"

const struct db_migration msg_sqlite_migrations[] = {
    { 1,
      "CREATE TABLE rooms ("
      "  id INTEGER PRIMARY KEY,"
      "  name TEXT NOT NULL,"
      "  kind TEXT NOT NULL CHECK (kind IN ('group', 'direct')),"
      "  owner_id INTEGER NOT NULL,"
      "  dm_key TEXT UNIQUE,"                 /* 'lo:hi' user ids of a direct room */
      "  last_seq INTEGER NOT NULL DEFAULT 0,"
      "  created_at INTEGER NOT NULL);"
      "CREATE TABLE room_members ("
      "  room_id INTEGER NOT NULL REFERENCES rooms(id),"
      "  user_id INTEGER NOT NULL,"
      "  username TEXT NOT NULL,"
      "  read_seq INTEGER NOT NULL DEFAULT 0,"
      "  joined_at INTEGER NOT NULL,"
      "  PRIMARY KEY (room_id, user_id)) WITHOUT ROWID;"
      "CREATE INDEX room_members_by_user ON room_members (user_id, room_id);"
      "CREATE TABLE messages ("
      "  id INTEGER PRIMARY KEY,"
      "  room_id INTEGER NOT NULL REFERENCES rooms(id),"
      "  seq INTEGER NOT NULL,"
      "  sender_id INTEGER NOT NULL,"
      "  sender TEXT NOT NULL,"
      "  body TEXT NOT NULL,"
      "  client_msg_id TEXT,"
      "  created_at INTEGER NOT NULL,"
      "  UNIQUE (room_id, seq));"
      "CREATE UNIQUE INDEX messages_client_id ON messages (sender_id, client_msg_id)"
      "  WHERE client_msg_id IS NOT NULL;" },
};
const int msg_sqlite_migrations_count =
    (int)(sizeof(msg_sqlite_migrations) / sizeof(msg_sqlite_migrations[0]));

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

/* ---------- the ops ---------- */
static int msq_migrate(void *impl, struct db *db)
{
    return db_migrate(db, "message", msg_sqlite_migrations, msg_sqlite_migrations_count);
}

/* With no savepoint around a batch, a failed read (I/O, a full disk, no memory) can
 * make SQLite roll the whole transaction back by itself. */
static int msq_txn_lost(void *impl, struct db_conn *c)
{
    return sqlite3_get_autocommit(db_sqlite(c)) != 0;
}

static const char *msq_errmsg(void *impl, struct db_conn *c)
{
    return sqlite3_errmsg(db_sqlite(c));
}

static void msq_writer_release(void *impl)
{
    msq_release(impl);
}

static void msq_free(void *impl)
{
    free(impl);                      /* statements were finalized on the writer */
}

static const struct msg_store_ops msq_ops = {
    .migrate = msq_migrate,
    .batch_room = msq_batch_room,
    .message_insert = msq_message_insert,
    .room_set_last_seq = msq_room_set_last_seq,
    .marker_raise = msq_marker_raise,
    .room_get = msq_room_get,
    .room_by_dm_key = msq_room_by_dm_key,
    .room_insert = msq_room_insert,
    .room_set_owner = msq_room_set_owner,
    .member_insert = msq_member_insert,
    .member_delete = msq_member_delete,
    .member_read_seq = msq_member_read_seq,
    .member_count = msq_member_count,
    .member_first = msq_member_first,
    .member_ids = msq_member_ids,
    .member_refs = msq_member_refs,
    .txn_lost = msq_txn_lost,
    .errmsg = msq_errmsg,
    .writer_release = msq_writer_release,
    .room_access = msq_room_access,
    .rooms_of_user = msq_rooms_of_user,
    .messages = msq_messages,
    .read_member_ids = msq_read_member_ids,
    .read_member_refs = msq_read_member_refs,
    .peers = msq_peers,
    .free = msq_free,
};

int msg_store_sqlite_new(struct msg_store *out)
{
    struct msq *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    out->ops = &msq_ops;
    out->impl = q;
    return 0;
}
