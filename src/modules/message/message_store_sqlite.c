/* message_store_sqlite.c: the message store on SQLite: its schema and its ops table.
 * The ops are in message_store_sqlite_messages.c and message_store_sqlite_rooms.c,
 * the statements and row decoding they share in message_store_sqlite_stmt.c. */
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
    .room_lock = msq_room_get,       /* one writer: its transaction is the lock */
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
