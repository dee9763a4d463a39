/* routes_rooms_read.c: GET /v1/rooms (the caller's rooms, each with the caller's read
 * marker) and GET /v1/rooms/{id} (one room with its members), read on the thread
 * pool. routes_rooms.c registers them with the other room routes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/util.h"
#include "message_internal.h"

/* ---------- GET /v1/rooms and GET /v1/rooms/{id} ---------- */
struct rooms_read {
    struct msg_state *st;
    struct http_req *req;
    int64_t room_id, user_id;        /* room_id 0: the caller's list */
    int status;
    cJSON *answer;                   /* owned */
};

static int add_members(struct msg_state *st, struct db_conn *conn, cJSON *room,
                       int64_t room_id)
{
    struct member_ref *m;
    int n, rc = MSG_STORE(st, read_member_refs, conn, room_id, &m, &n);
    if (rc < 0)
        return rc;
    cJSON_AddItemToObject(room, "members", members_json(m, n));
    free(m);
    return 0;
}

static cJSON *room_for_caller(const struct room_row *r, int64_t read_seq)
{
    cJSON *o = room_row_json(r);
    int64_t unread = r->last_seq - read_seq;
    cJSON_AddNumberToObject(o, "read_seq", (double)read_seq);
    cJSON_AddNumberToObject(o, "unread", (double)(unread > 0 ? unread : 0));
    return o;
}

struct list_ctx {
    struct rooms_read *c;
    struct db_conn *conn;
    cJSON *arr;
};

static int list_room(void *ctx, const struct room_row *r, int64_t read_seq)
{
    struct list_ctx *l = ctx;
    cJSON *o = room_for_caller(r, read_seq);
    int err = 0;
    /* Direct rooms carry their two members: that is how a client names them. */
    if (strcmp(r->kind, "direct") == 0)
        err = add_members(l->c->st, l->conn, o, r->id);
    cJSON_AddItemToArray(l->arr, o);
    return err;
}

static int list_fn(struct db_conn *conn, struct rooms_read *c)
{
    c->answer = cJSON_CreateObject();
    struct list_ctx l = { c, conn, cJSON_AddArrayToObject(c->answer, "rooms") };
    return MSG_STORE(c->st, rooms_of_user, conn, c->user_id, list_room, &l);
}

static int show_fn(struct db_conn *conn, struct rooms_read *c)
{
    struct room_row r;
    int64_t read_seq;
    int rc = MSG_STORE(c->st, room_access, conn, c->room_id, c->user_id, &r, &read_seq);
    if (rc == -ENOENT || rc == -EPERM) {
        c->status = rc == -ENOENT ? 404 : 403;
        return 0;
    }
    if (rc < 0)
        return rc;
    cJSON *o = room_for_caller(&r, read_seq);
    c->answer = cJSON_CreateObject();
    cJSON_AddItemToObject(c->answer, "room", o);
    return add_members(c->st, conn, o, r.id);
}

static int rooms_read_fn(struct db_conn *conn, void *arg)
{
    struct rooms_read *c = arg;
    c->status = 200;
    return c->room_id ? show_fn(conn, c) : list_fn(conn, c);
}

static void rooms_read_after(void *arg, int status)
{
    struct rooms_read *c = arg;
    if (status == -ENOTCONN)
        http_respond_error(c->req, 503, "the database is not available");
    else if (status < 0)
        http_respond_error(c->req, 500, "could not read the rooms");
    else if (c->status == 404)
        http_respond_error(c->req, 404, "room not found");
    else if (c->status == 403)
        http_respond_error(c->req, 403, "not a member of this room");
    else {
        http_respond_json(c->req, 200, c->answer);
        c->answer = NULL;
    }
    cJSON_Delete(c->answer);
    msg_inflight_done(c->st);
    free(c);
}

static void rooms_read(struct msg_state *st, struct http_req *req, int64_t room_id)
{
    if (st->draining) {
        http_respond_error(req, 503, "the server is shutting down");
        return;
    }
    struct rooms_read *c = calloc(1, sizeof(*c));
    if (!c) {
        http_respond_error(req, 503, "out of memory");
        return;
    }
    c->st = st;
    c->req = req;
    c->room_id = room_id;
    c->user_id = req->user.id;
    if (db_read(st->app->db, rooms_read_fn, rooms_read_after, c) < 0) {
        free(c);
        http_respond_error(req, 503, "the database is not available");
        return;
    }
    st->inflight++;
}

void rooms_route_list(struct http_req *req, void *ctx)
{
    rooms_read(ctx, req, 0);
}

void rooms_route_show(struct http_req *req, void *ctx)
{
    int64_t room_id = http_param_id(req, 0);
    if (room_id <= 0) {
        http_respond_error(req, 400, "invalid room id");
        return;
    }
    rooms_read(ctx, req, room_id);
}
