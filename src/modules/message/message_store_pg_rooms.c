/* message_store_pg_rooms.c: rooms and memberships on PostgreSQL. The writer's ops
 * (room jobs, read markers) and the read ops (room lists, access checks, peers,
 * typing's member loads) share the statements: the engine prepares each once per
 * connection. The expected refusals (a direct room's pair already taken, a member
 * already in) are skipped rows, not errors, so the transaction stays usable. */
#include <errno.h>
#include <stdlib.h>
#include "message_store_pg.h"

static const struct db_pg_stmt room_by_id = {
    "msg_room_get", "SELECT " MPG_ROOM_COLUMNS " FROM rooms r WHERE r.id = $1::bigint", 1
};
/* NO KEY UPDATE: as a batch takes it (message_lock_rooms), so room jobs and batches
 * of one room wait for each other; inserts of members (a foreign key's KEY SHARE)
 * do not. */
static const struct db_pg_stmt room_locked = {
    "msg_room_lock", "SELECT " MPG_ROOM_COLUMNS " FROM rooms r WHERE r.id = $1::bigint"
    " FOR NO KEY UPDATE", 1
};
static const struct db_pg_stmt room_by_key = {
    "msg_room_by_key", "SELECT " MPG_ROOM_COLUMNS " FROM rooms r WHERE r.dm_key = $1", 1
};
static const struct db_pg_stmt insert_room = {
    "msg_room_insert", "INSERT INTO rooms (name, kind, owner_id, dm_key, created_at)"
    " VALUES ($1, $2, $3::bigint, $4, $5::bigint) ON CONFLICT (dm_key) DO NOTHING"
    " RETURNING id", 5
};
static const struct db_pg_stmt set_owner = {
    "msg_room_owner", "UPDATE rooms SET owner_id = $2::bigint WHERE id = $1::bigint", 2
};
static const struct db_pg_stmt insert_member = {
    "msg_member_insert", "INSERT INTO room_members (room_id, user_id, username, joined_at)"
    " VALUES ($1::bigint, $2::bigint, $3, $4::bigint) ON CONFLICT (room_id, user_id)"
    " DO NOTHING", 4
};
static const struct db_pg_stmt delete_member = {
    "msg_member_delete", "DELETE FROM room_members WHERE room_id = $1::bigint"
    " AND user_id = $2::bigint", 2
};
static const struct db_pg_stmt read_seq = {
    "msg_member_read_seq", "SELECT read_seq FROM room_members WHERE room_id = $1::bigint"
    " AND user_id = $2::bigint", 2
};
static const struct db_pg_stmt count_members = {
    "msg_member_count", "SELECT count(*) FROM room_members WHERE room_id = $1::bigint", 1
};
static const struct db_pg_stmt first_member = {
    "msg_member_first", "SELECT user_id FROM room_members WHERE room_id = $1::bigint"
    " ORDER BY joined_at, user_id LIMIT 1", 1
};
static const struct db_pg_stmt member_refs = {
    "msg_member_refs", "SELECT user_id, username FROM room_members"
    " WHERE room_id = $1::bigint ORDER BY user_id", 1
};

/* One room row: 1 found (*out set), 0 not, negative. */
static int room_of(PGresult *r, struct room_row *out)
{
    int found = PQntuples(r) > 0;
    if (found)
        mpg_room_row(r, 0, 0, out);
    PQclear(r);
    return found;
}

int mpg_room_get(void *impl, struct db_conn *c, int64_t room_id, struct room_row *out)
{
    PGresult *r;
    int rc = mpg_run64(c, &room_by_id, room_id, 0, 0, &r);
    return rc < 0 ? rc : room_of(r, out);
}

int mpg_room_lock(void *impl, struct db_conn *c, int64_t room_id, struct room_row *out)
{
    PGresult *r;
    int rc = mpg_run64(c, &room_locked, room_id, 0, 0, &r);
    return rc < 0 ? rc : room_of(r, out);
}

int mpg_room_by_dm_key(void *impl, struct db_conn *c, const char *key, struct room_row *out)
{
    PGresult *r;
    const char *v[1] = { key };
    int rc = db_pg_run(c, &room_by_key, v, &r);
    return rc < 0 ? rc : room_of(r, out);
}

/* A direct room whose pair is taken (by another writer) is skipped: -ECONSTRAINT
 * with the transaction still usable. */
int mpg_room_insert(void *impl, struct db_conn *c, const struct room_new *rn, int64_t *id)
{
    char b[2][DB_PG_I64_LEN];
    const char *v[5] = { rn->name, rn->kind, db_pg_p64(b[0], rn->owner_id), rn->dm_key,
                         db_pg_p64(b[1], rn->created_at) };
    int rc = db_pg_run_i64(c, &insert_room, v, id);
    return rc < 0 ? rc : rc ? 0 : -ECONSTRAINT;   /* no row: the dm_key was taken */
}

int mpg_room_set_owner(void *impl, struct db_conn *c, int64_t room_id, int64_t owner_id)
{
    return mpg_exec64(c, &set_owner, room_id, owner_id);
}

int mpg_member_insert(void *impl, struct db_conn *c, int64_t room_id,
                      const struct member_ref *m, int64_t joined_at)
{
    char b[3][DB_PG_I64_LEN];
    const char *v[4] = { db_pg_p64(b[0], room_id), db_pg_p64(b[1], m->id), m->username,
                         db_pg_p64(b[2], joined_at) };
    PGresult *r;
    int rc = db_pg_run(c, &insert_member, v, &r);
    if (rc < 0)
        return rc;
    int added = atoi(PQcmdTuples(r)) > 0;
    PQclear(r);
    return added;
}

int mpg_member_delete(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id)
{
    return mpg_exec64(c, &delete_member, room_id, user_id);
}

/* A statement answering one int64: 1 (*out set, when out), 0 no row, negative. */
static int scalar(struct db_conn *c, const struct db_pg_stmt *st, int64_t a, int64_t b,
                  int64_t *out)
{
    PGresult *r;
    int rc = mpg_run64(c, st, a, b, 0, &r);
    if (rc < 0)
        return rc;
    int found = PQntuples(r) > 0;
    if (found && out)
        *out = db_pg_i64(r, 0, 0);
    PQclear(r);
    return found;
}

int mpg_member_read_seq(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id,
                        int64_t *seq)
{
    return scalar(c, &read_seq, room_id, user_id, seq);
}

int mpg_member_count(void *impl, struct db_conn *c, int64_t room_id)
{
    int64_t n = 0;
    int rc = scalar(c, &count_members, room_id, 0, &n);
    return rc < 0 ? rc : (int)n;
}

int mpg_member_first(void *impl, struct db_conn *c, int64_t room_id, int64_t *user_id)
{
    return scalar(c, &first_member, room_id, 0, user_id);
}

int mpg_member_refs(void *impl, struct db_conn *c, int64_t room_id,
                    struct member_ref **refs, int *n)
{
    PGresult *r;
    int rc = mpg_run64(c, &member_refs, room_id, 0, 0, &r);
    if (rc < 0)
        return rc;
    rc = mpg_collect_refs(r, refs, n);
    PQclear(r);
    return rc;
}
