/* message_store_pg_reads.c: the reads of the message store on PostgreSQL that only
 * the pool runs (in autocommit): a room with the user's marker (the access check of
 * every room route), the rooms of a user, and the users sharing a room with one. */
#include <errno.h>
#include <stdlib.h>
#include "message_store_pg.h"

static const struct db_pg_stmt room_access = {
    "msg_room_access", "SELECT " MPG_ROOM_COLUMNS ", m.read_seq FROM rooms r"
    " LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2::bigint"
    " WHERE r.id = $1::bigint", 2
};
static const struct db_pg_stmt rooms_of_user = {
    "msg_rooms_of_user", "SELECT " MPG_ROOM_COLUMNS ", m.read_seq FROM room_members m"
    " JOIN rooms r ON r.id = m.room_id WHERE m.user_id = $1::bigint ORDER BY r.id", 1
};
static const struct db_pg_stmt peers = {
    "msg_peers", "SELECT DISTINCT m2.user_id FROM room_members m1 JOIN room_members m2"
    " ON m2.room_id = m1.room_id WHERE m1.user_id = $1::bigint AND m2.user_id <> $1::bigint"
    " ORDER BY 1", 1
};

int mpg_room_access(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id,
                    struct room_row *room, int64_t *read_seq)
{
    PGresult *r;
    int rc = mpg_run64(c, &room_access, room_id, user_id, 0, &r);
    if (rc < 0)
        return rc;
    if (PQntuples(r) == 0) {
        rc = -ENOENT;
    } else {
        mpg_room_row(r, 0, 0, room);
        rc = db_pg_null(r, 0, 6) ? -EPERM : 0;
        *read_seq = db_pg_i64(r, 0, 6);
    }
    PQclear(r);
    return rc;
}

int mpg_rooms_of_user(void *impl, struct db_conn *c, int64_t user_id, room_row_fn fn,
                      void *ctx)
{
    PGresult *r;
    int rc = mpg_run64(c, &rooms_of_user, user_id, 0, 0, &r);
    if (rc < 0)
        return rc;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && rc == 0; i++) {
        struct room_row room;
        mpg_room_row(r, i, 0, &room);
        rc = fn(ctx, &room, db_pg_i64(r, i, 6));
    }
    PQclear(r);
    return rc < 0 ? rc : 0;
}

int mpg_peers(void *impl, struct db_conn *c, int64_t user_id, int64_t **ids, int *n)
{
    PGresult *r;
    int rc = mpg_run64(c, &peers, user_id, 0, 0, &r);
    if (rc < 0)
        return rc;
    rc = mpg_collect_ids(r, ids, n);
    PQclear(r);
    return rc;
}
