/* message_store_sqlite_rooms.c: rooms and memberships on SQLite. The writer's ops
 * (room jobs, read markers) use the cached statements; the read ops (room lists,
 * access checks, peers, typing's member loads) prepare theirs on the pool's
 * connection. */
#include <errno.h>
#include <stdlib.h>
#include "message_store_sqlite.h"

/* One room row by an id or a key: 1 found, 0 not, negative. */
static int room_by(struct msq *q, struct db_conn *c, enum msq_id id, int64_t num,
                   const char *text, struct room_row *out)
{
    sqlite3_stmt *s = msq_stmt(q, c, id);
    if (!s)
        return -EIO;
    if (text)
        sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(s, 1, num);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        msq_room_row(s, 0, out);
    msq_done(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int msq_room_get(void *impl, struct db_conn *c, int64_t room_id, struct room_row *out)
{
    return room_by(impl, c, MSQ_ROOM, room_id, NULL, out);
}

int msq_room_by_dm_key(void *impl, struct db_conn *c, const char *key, struct room_row *out)
{
    return room_by(impl, c, MSQ_ROOM_BY_KEY, 0, key, out);
}

int msq_room_insert(void *impl, struct db_conn *c, const struct room_new *r, int64_t *id)
{
    sqlite3_stmt *s = msq_stmt(impl, c, MSQ_INSERT_ROOM);
    if (!s)
        return -EIO;
    sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, r->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, r->owner_id);
    if (r->dm_key)
        sqlite3_bind_text(s, 4, r->dm_key, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 4);
    sqlite3_bind_int64(s, 5, r->created_at);
    int rc = sqlite3_step(s);
    msq_done(s);
    if (rc != SQLITE_DONE)
        return db_errno(rc);
    *id = sqlite3_last_insert_rowid(db_sqlite(c));
    return 0;
}

/* A statement of two int64 parameters stepped once: 0 or negative. */
static int exec2(struct msq *q, struct db_conn *c, enum msq_id id, int64_t a, int64_t b)
{
    sqlite3_stmt *s = msq_stmt(q, c, id);
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, a);
    sqlite3_bind_int64(s, 2, b);
    int rc = sqlite3_step(s);
    msq_done(s);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int msq_room_set_owner(void *impl, struct db_conn *c, int64_t room_id, int64_t owner_id)
{
    return exec2(impl, c, MSQ_SET_OWNER, room_id, owner_id);
}

int msq_member_delete(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id)
{
    return exec2(impl, c, MSQ_DELETE_MEMBER, room_id, user_id);
}

int msq_member_insert(void *impl, struct db_conn *c, int64_t room_id,
                      const struct member_ref *m, int64_t joined_at)
{
    sqlite3_stmt *s = msq_stmt(impl, c, MSQ_INSERT_MEMBER);
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, room_id);
    sqlite3_bind_int64(s, 2, m->id);
    sqlite3_bind_text(s, 3, m->username, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, joined_at);
    int rc = sqlite3_step(s);
    int added = rc == SQLITE_DONE && sqlite3_changes(db_sqlite(c)) > 0;
    msq_done(s);
    return rc == SQLITE_DONE ? added : db_errno(rc);
}

/* A statement of one or two int64 parameters answering one int64: 1 (*out set), 0
 * no row, negative. */
static int scalar(struct msq *q, struct db_conn *c, enum msq_id id, int64_t a, int64_t b,
                  int64_t *out)
{
    sqlite3_stmt *s = msq_stmt(q, c, id);
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, a);
    if (sqlite3_bind_parameter_count(s) > 1)
        sqlite3_bind_int64(s, 2, b);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && out)
        *out = sqlite3_column_int64(s, 0);
    msq_done(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int msq_member_read_seq(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id,
                        int64_t *read_seq)
{
    return scalar(impl, c, MSQ_IS_MEMBER, room_id, user_id, read_seq);
}

int msq_member_count(void *impl, struct db_conn *c, int64_t room_id)
{
    int64_t n = 0;
    int rc = scalar(impl, c, MSQ_COUNT_MEMBERS, room_id, 0, &n);
    return rc < 0 ? rc : (int)n;
}

int msq_member_first(void *impl, struct db_conn *c, int64_t room_id, int64_t *user_id)
{
    return scalar(impl, c, MSQ_FIRST_MEMBER, room_id, 0, user_id);
}

int msq_member_refs(void *impl, struct db_conn *c, int64_t room_id,
                    struct member_ref **refs, int *n)
{
    sqlite3_stmt *s = msq_stmt(impl, c, MSQ_MEMBER_REFS);
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, room_id);
    int rc = msq_collect_refs(s, refs, n);
    msq_done(s);
    return rc;
}

/* ---------- reads on the pool ---------- */
int msq_room_access(void *impl, struct db_conn *c, int64_t room_id, int64_t user_id,
                    struct room_row *room, int64_t *read_seq)
{
    sqlite3_stmt *s = msq_prepare(c,
        "SELECT " MSQ_ROOM_COLUMNS ", (SELECT read_seq FROM room_members"
        " WHERE room_id = r.id AND user_id = ?2) FROM rooms r WHERE r.id = ?1");
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, room_id);
    sqlite3_bind_int64(s, 2, user_id);
    int rc = sqlite3_step(s), ret;
    if (rc == SQLITE_ROW) {
        msq_room_row(s, 0, room);
        ret = sqlite3_column_type(s, 6) == SQLITE_NULL ? -EPERM : 0;
        *read_seq = sqlite3_column_int64(s, 6);
    } else {
        ret = rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
    }
    sqlite3_finalize(s);
    return ret;
}

int msq_rooms_of_user(void *impl, struct db_conn *c, int64_t user_id, room_row_fn fn,
                      void *ctx)
{
    sqlite3_stmt *s = msq_prepare(c, "SELECT " MSQ_ROOM_COLUMNS ", m.read_seq"
                                  " FROM room_members m JOIN rooms r ON r.id = m.room_id"
                                  " WHERE m.user_id = ?1 ORDER BY r.id");
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, user_id);
    int rc, err = 0;
    while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct room_row r;
        msq_room_row(s, 0, &r);
        err = fn(ctx, &r, sqlite3_column_int64(s, 6));
    }
    sqlite3_finalize(s);
    if (err)
        return err < 0 ? err : 0;
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int msq_read_member_ids(void *impl, struct db_conn *c, int64_t room_id, int64_t **ids,
                        int *n)
{
    sqlite3_stmt *s = msq_prepare(c, "SELECT user_id FROM room_members WHERE room_id = ?1");
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, room_id);
    int rc = msq_collect_ids(s, ids, n);
    sqlite3_finalize(s);
    return rc;
}

int msq_read_member_refs(void *impl, struct db_conn *c, int64_t room_id,
                         struct member_ref **refs, int *n)
{
    sqlite3_stmt *s = msq_prepare(c, "SELECT user_id, username FROM room_members"
                                  " WHERE room_id = ?1 ORDER BY user_id");
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, room_id);
    int rc = msq_collect_refs(s, refs, n);
    sqlite3_finalize(s);
    return rc;
}

int msq_peers(void *impl, struct db_conn *c, int64_t user_id, int64_t **ids, int *n)
{
    sqlite3_stmt *s = msq_prepare(c,
        "SELECT DISTINCT m2.user_id FROM room_members m1 JOIN room_members m2"
        " ON m2.room_id = m1.room_id WHERE m1.user_id = ?1 AND m2.user_id <> ?1"
        " ORDER BY 1");
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, user_id);
    int rc = msq_collect_ids(s, ids, n);
    sqlite3_finalize(s);
    return rc;
}
