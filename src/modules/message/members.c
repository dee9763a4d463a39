/* members.c: who is in a room. The writer jobs that add and remove members, and the
 * rooms.peers request (who shares a room with a user). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/events.h"
#include "chatd/util.h"
#include "message_internal.h"

int msg_reply_error(struct bus *bus, const struct bus_event *request, int status,
                    const char *code, const char *message)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
    return bus_reply(bus, request, status, e);
}

static int fail(struct room_job *j, int status, const char *msg, int rc)
{
    j->status = status;
    j->errmsg = msg;
    return rc;
}

int room_load_member_refs(struct msg_state *st, sqlite3 *conn, struct room_job *j)
{
    sqlite3_stmt *s = wstmt(st, conn, WS_MEMBER_REFS);
    if (!s)
        return -EIO;
    int cap = 8, n = 0, rc;
    struct member_ref *a = malloc((size_t)cap * sizeof(*a));
    if (!a)
        return -ENOMEM;
    sqlite3_bind_int64(s, 1, j->room.id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            struct member_ref *b = realloc(a, (size_t)cap * 2 * sizeof(*a));
            if (!b) {
                rc = SQLITE_NOMEM;
                break;
            }
            a = b;
            cap *= 2;
        }
        const char *u = (const char *)sqlite3_column_text(s, 1);
        a[n].id = sqlite3_column_int64(s, 0);
        snprintf(a[n].username, sizeof(a[n].username), "%s", u ? u : "");
        n++;
    }
    wstmt_done(s);
    if (rc != SQLITE_DONE) {
        free(a);
        return db_errno(rc);
    }
    free(j->members);
    j->members = a;
    j->nmembers = n;
    return 0;
}

/* The room and whether user_id is in it: 1 member, 0 not, negative error. */
static int member_of(struct msg_state *st, sqlite3 *conn, int64_t room_id, int64_t user_id)
{
    sqlite3_stmt *s = wstmt(st, conn, WS_IS_MEMBER);
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, room_id);
    sqlite3_bind_int64(s, 2, user_id);
    int rc = sqlite3_step(s);
    wstmt_done(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : db_errno(rc);
}

/* Authorization first: 404 unknown room, 403 caller not a member, then the rest. */
static int load_room(struct msg_state *st, sqlite3 *conn, struct room_job *j)
{
    sqlite3_stmt *s = wstmt(st, conn, WS_ROOM);
    if (!s)
        return fail(j, 500, "could not read the room", -EIO);
    sqlite3_bind_int64(s, 1, j->room_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        room_row_from_stmt(s, 0, &j->room);
    wstmt_done(s);
    if (rc == SQLITE_DONE)
        return fail(j, 404, "room not found", -ENOENT);
    if (rc != SQLITE_ROW)
        return fail(j, 500, "could not read the room", db_errno(rc));
    rc = member_of(st, conn, j->room_id, j->actor_id);
    if (rc < 0)
        return fail(j, 500, "could not read the room", rc);
    if (rc == 0)
        return fail(j, 403, "not a member of this room", -EPERM);
    if (strcmp(j->room.kind, "direct") == 0)
        return fail(j, 400, "the members of a direct room cannot change", -EINVAL);
    return 0;
}

int room_apply_add(struct msg_state *st, sqlite3 *conn, struct room_job *j)
{
    int rc = load_room(st, conn, j);
    if (rc < 0)
        return rc;
    if (j->room.owner_id != j->actor_id)
        return fail(j, 403, "only the owner can add members", -EPERM);
    if (j->target.id <= 0) {
        snprintf(j->errbuf, sizeof(j->errbuf), "unknown user: %s", j->unknown);
        return fail(j, 404, j->errbuf, -ENOENT);
    }
    sqlite3_stmt *s = wstmt(st, conn, WS_COUNT_MEMBERS);
    if (!s)
        return fail(j, 500, "could not add the member", -EIO);
    sqlite3_bind_int64(s, 1, j->room_id);
    int64_t count = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    wstmt_done(s);
    if (count >= MSG_ROOM_MAX_MEMBERS)
        return fail(j, 409, "the room is full", -ENOSPC);

    if (!(s = wstmt(st, conn, WS_INSERT_MEMBER)))
        return fail(j, 500, "could not add the member", -EIO);
    sqlite3_bind_int64(s, 1, j->room_id);
    sqlite3_bind_int64(s, 2, j->target.id);
    sqlite3_bind_text(s, 3, j->target.username, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, now_ms());
    rc = sqlite3_step(s);
    j->changed = rc == SQLITE_DONE && sqlite3_changes(conn) > 0;
    wstmt_done(s);
    if (rc != SQLITE_DONE)
        return fail(j, 500, "could not add the member", db_errno(rc));
    if ((rc = room_load_member_refs(st, conn, j)) < 0)
        return fail(j, 500, "could not add the member", rc);
    j->status = 204;
    return 0;
}

static int hand_over_ownership(struct msg_state *st, sqlite3 *conn, struct room_job *j)
{
    sqlite3_stmt *s = wstmt(st, conn, WS_NEXT_OWNER);
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, j->room_id);
    int rc = sqlite3_step(s);
    int64_t next = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    wstmt_done(s);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? 0 : db_errno(rc);   /* empty room: keep the id */
    if (!(s = wstmt(st, conn, WS_SET_OWNER)))
        return -EIO;
    sqlite3_bind_int64(s, 1, j->room_id);
    sqlite3_bind_int64(s, 2, next);
    rc = sqlite3_step(s);
    wstmt_done(s);
    if (rc != SQLITE_DONE)
        return db_errno(rc);
    j->room.owner_id = next;
    return 0;
}

int room_apply_remove(struct msg_state *st, sqlite3 *conn, struct room_job *j)
{
    int rc = load_room(st, conn, j);
    if (rc < 0)
        return rc;
    if (j->room.owner_id != j->actor_id && j->target.id != j->actor_id)
        return fail(j, 403, "only the owner can remove other members", -EPERM);
    if ((rc = member_of(st, conn, j->room_id, j->target.id)) <= 0)
        return rc < 0 ? fail(j, 500, "could not remove the member", rc)
                      : fail(j, 404, "that user is not a member of this room", -ENOENT);
    /* Everyone before the leave hears of it, the leaver included. */
    if ((rc = room_load_member_refs(st, conn, j)) < 0)
        return fail(j, 500, "could not remove the member", rc);
    sqlite3_stmt *s = wstmt(st, conn, WS_DELETE_MEMBER);
    if (!s)
        return fail(j, 500, "could not remove the member", -EIO);
    sqlite3_bind_int64(s, 1, j->room_id);
    sqlite3_bind_int64(s, 2, j->target.id);
    rc = sqlite3_step(s);
    wstmt_done(s);
    if (rc != SQLITE_DONE)
        return fail(j, 500, "could not remove the member", db_errno(rc));
    if (j->target.id == j->room.owner_id && (rc = hand_over_ownership(st, conn, j)) < 0)
        return fail(j, 500, "could not remove the member", rc);
    j->changed = 1;
    j->status = 204;
    return 0;
}

/* ---------- rooms.peers ---------- */
struct peers_ctx {
    struct msg_state *st;
    struct bus_event *ev;            /* a reference, dropped after the reply */
    int64_t user_id;
    cJSON *answer;                   /* owned */
};

static int peers_fn(struct db_conn *conn_, void *arg)
{
    sqlite3 *conn = db_sqlite(conn_);
    struct peers_ctx *c = arg;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(conn,
            "SELECT DISTINCT m2.user_id FROM room_members m1 JOIN room_members m2"
            " ON m2.room_id = m1.room_id WHERE m1.user_id = ?1 AND m2.user_id <> ?1"
            " ORDER BY 1", -1, &s, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int64(s, 1, c->user_id);
    c->answer = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(c->answer, "user_ids");
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)sqlite3_column_int64(s, 0)));
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static void peers_after(void *arg, int status)
{
    struct peers_ctx *c = arg;
    if (status < 0) {
        msg_reply_error(c->st->app->bus, c->ev, status, "internal", "could not read the rooms");
    } else {
        bus_reply(c->st->app->bus, c->ev, 0, c->answer);
        c->answer = NULL;
    }
    cJSON_Delete(c->answer);
    bus_event_unref(c->ev);
    msg_inflight_done(c->st);
    free(c);
}

int rooms_peers_request(struct msg_state *st, const struct bus_event *ev)
{
    int64_t user_id;
    if (json_get_i64(ev->payload, "user_id", &user_id) < 0 || user_id <= 0) {
        return msg_reply_error(st->app->bus, ev, -EINVAL,
                               "invalid_argument", "rooms.peers needs user_id");
    }
    struct peers_ctx *c = st->draining ? NULL : calloc(1, sizeof(*c));
    if (!c) {
        return msg_reply_error(st->app->bus, ev, -ECANCELED,
                               "unavailable", "the server is shutting down");
    }
    c->st = st;
    c->ev = (struct bus_event *)ev;
    c->user_id = user_id;
    bus_event_ref(c->ev);
    if (db_read(st->app->db, peers_fn, peers_after, c) < 0) {
        bus_event_unref(c->ev);
        free(c);
        return msg_reply_error(st->app->bus, ev, -EAGAIN,
                               "unavailable", "the database is not available");
    }
    st->inflight++;
    return 0;
}
