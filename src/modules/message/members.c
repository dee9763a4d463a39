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
    struct ev_error e = { .code = code, .message = message };
    return bus_reply_ev(bus, request, status, &e);
}

int room_load_member_refs(struct msg_state *st, struct db_conn *conn, struct room_job *j)
{
    struct member_ref *a;
    int n, rc = MSG_STORE(st, member_refs, conn, j->room.id, &a, &n);
    if (rc < 0)
        return rc;
    free(j->members);
    j->members = a;
    j->nmembers = n;
    return 0;
}

/* Authorization first: 404 unknown room, 403 caller not a member, then the rest.
 * The room stays locked until COMMIT: what the job checks (the owner, the member
 * count, who is in) cannot change on another node before its change is in. */
static int load_room(struct msg_state *st, struct db_conn *conn, struct room_job *j)
{
    int rc = MSG_STORE(st, room_lock, conn, j->room_id, &j->room);
    if (rc == 0)
        return room_job_fail(j, 404, "room not found", -ENOENT);
    if (rc < 0)
        return room_job_fail(j, 500, "could not read the room", rc);
    rc = MSG_STORE(st, member_read_seq, conn, j->room_id, j->actor_id, NULL);
    if (rc < 0)
        return room_job_fail(j, 500, "could not read the room", rc);
    if (rc == 0)
        return room_job_fail(j, 403, "not a member of this room", -EPERM);
    if (strcmp(j->room.kind, "direct") == 0)
        return room_job_fail(j, 400, "the members of a direct room cannot change", -EINVAL);
    return 0;
}

int room_apply_add(struct msg_state *st, struct db_conn *conn, struct room_job *j)
{
    int rc = load_room(st, conn, j);
    if (rc < 0)
        return rc;
    if (j->room.owner_id != j->actor_id)
        return room_job_fail(j, 403, "only the owner can add members", -EPERM);
    if (j->target.id <= 0) {
        snprintf(j->errbuf, sizeof(j->errbuf), "unknown user: %s", j->unknown);
        return room_job_fail(j, 404, j->errbuf, -ENOENT);
    }
    int count = MSG_STORE(st, member_count, conn, j->room_id);
    if (count < 0)
        return room_job_fail(j, 500, "could not add the member", count);
    if (count >= MSG_ROOM_MAX_MEMBERS)
        return room_job_fail(j, 409, "the room is full", -ENOSPC);
    rc = MSG_STORE(st, member_insert, conn, j->room_id, &j->target, now_ms());
    if (rc < 0)
        return room_job_fail(j, 500, "could not add the member", rc);
    j->changed = rc;
    if ((rc = room_load_member_refs(st, conn, j)) < 0)
        return room_job_fail(j, 500, "could not add the member", rc);
    j->status = 204;
    return 0;
}

static int hand_over_ownership(struct msg_state *st, struct db_conn *conn,
                               struct room_job *j)
{
    int64_t next;
    int rc = MSG_STORE(st, member_first, conn, j->room_id, &next);
    if (rc <= 0)
        return rc;                   /* an empty room keeps the id */
    if ((rc = MSG_STORE(st, room_set_owner, conn, j->room_id, next)) < 0)
        return rc;
    j->room.owner_id = next;
    return 0;
}

int room_apply_remove(struct msg_state *st, struct db_conn *conn, struct room_job *j)
{
    int rc = load_room(st, conn, j);
    if (rc < 0)
        return rc;
    if (j->room.owner_id != j->actor_id && j->target.id != j->actor_id)
        return room_job_fail(j, 403, "only the owner can remove other members", -EPERM);
    if ((rc = MSG_STORE(st, member_read_seq, conn, j->room_id, j->target.id, NULL)) < 0)
        return room_job_fail(j, 500, "could not remove the member", rc);
    if (rc == 0)
        return room_job_fail(j, 404, "that user is not a member of this room", -ENOENT);
    /* Everyone before the leave hears of it, the leaver included. */
    if ((rc = room_load_member_refs(st, conn, j)) < 0)
        return room_job_fail(j, 500, "could not remove the member", rc);
    if ((rc = MSG_STORE(st, member_delete, conn, j->room_id, j->target.id)) < 0)
        return room_job_fail(j, 500, "could not remove the member", rc);
    if (j->target.id == j->room.owner_id && (rc = hand_over_ownership(st, conn, j)) < 0)
        return room_job_fail(j, 500, "could not remove the member", rc);
    j->changed = 1;
    j->status = 204;
    return 0;
}

/* ---------- rooms.peers ---------- */
struct peers_ctx {
    struct msg_state *st;
    struct bus_event *ev;            /* a reference, dropped after the reply */
    int64_t user_id;
    int64_t *ids; int n;             /* owned: the answer */
};

static int peers_fn(struct db_conn *conn, void *arg)
{
    struct peers_ctx *c = arg;
    return MSG_STORE(c->st, peers, conn, c->user_id, &c->ids, &c->n);
}

static void peers_after(void *arg, int status)
{
    struct peers_ctx *c = arg;
    if (status < 0) {
        msg_reply_error(c->st->app->bus, c->ev, status, "internal", "could not read the rooms");
    } else {
        struct ev_rooms_peers_reply r = { .user_ids = { c->ids, (size_t)c->n } };
        bus_reply_ev(c->st->app->bus, c->ev, 0, &r);
    }
    free(c->ids);
    bus_event_unref(c->ev);
    msg_inflight_done(c->st);
    free(c);
}

int rooms_peers_request(struct msg_state *st, const struct bus_event *ev)
{
    /* user_id > 0: the bus decoded it (a request without one never gets here). */
    int64_t user_id = ((const struct ev_rooms_peers *)ev->data)->user_id;
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
