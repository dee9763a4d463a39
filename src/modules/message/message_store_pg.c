/* message_store_pg.c: the message store on PostgreSQL: its ops table. The schema is
 * message_store_pg_schema.c's; the ops are in message_store_pg_batch.c (a batch of
 * messages in one round trip), _messages.c, _rooms.c and _reads.c, what they share
 * in message_store_pg_rows.c.
 *
 * The engine prepares each statement once per connection (db_pg.h), so the store
 * holds nothing: no state, nothing for the writer to release. */
#include <errno.h>
#include "message_store_pg.h"

static char mpg_state;               /* the store's impl: it has no state */

static int mpg_migrate(void *impl, struct db *db)
{
    return db_migrate(db, "message", msg_pg_migrations, msg_pg_migrations_count);
}

/* A failed statement aborts the transaction: PostgreSQL refuses what follows (so
 * nothing is written outside it), and the batch must fail. */
static int mpg_txn_lost(void *impl, struct db_conn *c)
{
    return db_pg_txn_failed(c);
}

static const char *mpg_errmsg(void *impl, struct db_conn *c)
{
    return db_pg_errmsg(c);
}

static void mpg_writer_release(void *impl)
{
}

static void mpg_free(void *impl)
{
}

static const struct msg_store_ops mpg_ops = {
    .migrate = mpg_migrate,
    .batch_room = mpg_batch_room,
    .message_insert = mpg_message_insert,
    .room_set_last_seq = mpg_room_set_last_seq,
    .marker_raise = mpg_marker_raise,
    .post_batch = mpg_post_batch,
    .room_get = mpg_room_get,
    .room_lock = mpg_room_lock,
    .room_by_dm_key = mpg_room_by_dm_key,
    .room_insert = mpg_room_insert,
    .room_set_owner = mpg_room_set_owner,
    .member_insert = mpg_member_insert,
    .member_delete = mpg_member_delete,
    .member_read_seq = mpg_member_read_seq,
    .member_count = mpg_member_count,
    .member_first = mpg_member_first,
    .member_ids = mpg_member_ids,
    .member_refs = mpg_member_refs,
    .txn_lost = mpg_txn_lost,
    .errmsg = mpg_errmsg,
    .writer_release = mpg_writer_release,
    .room_access = mpg_room_access,
    .rooms_of_user = mpg_rooms_of_user,
    .messages = mpg_messages,
    .read_member_ids = mpg_member_ids,
    .read_member_refs = mpg_member_refs,
    .peers = mpg_peers,
    .free = mpg_free,
};

int msg_store_pg_new(struct msg_store *out)
{
    out->ops = &mpg_ops;
    out->impl = &mpg_state;
    return 0;
}
