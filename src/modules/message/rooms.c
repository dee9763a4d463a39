/* rooms.c: the access check every room route starts with, and the writer jobs that
 * create rooms (group rooms and direct rooms). A job's result comes back to the loop,
 * which answers the request and tells the other modules (room.changed) only after
 * the commit. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/log.h"
#include "chatd/util.h"
#include "message_internal.h"

/* ---------- jobs ---------- */
static void room_job_after(struct db_job *job, int status);

struct room_job *room_job_new(struct msg_state *st, int op, struct http_req *req)
{
    struct room_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->base.apply = room_job_apply;
    j->base.after = room_job_after;
    j->st = st;
    j->op = op;
    j->req = req;
    if (req) {
        j->actor_id = req->user.id;
        snprintf(j->actor_name, sizeof(j->actor_name), "%s", req->user.name);
    }
    return j;
}

void room_job_free(struct room_job *j)
{
    if (!j)
        return;
    free(j->invitees);
    free(j->members);
    free(j);
}

static int insert_member(struct msg_state *st, struct db_conn *conn, int64_t room_id,
                         const struct member_ref *m, int64_t now)
{
    int rc = MSG_STORE(st, member_insert, conn, room_id, m, now);
    return rc < 0 ? rc : 0;
}

static int insert_room(struct msg_state *st, struct db_conn *conn, struct room_job *j,
                       const char *kind, const char *key, int64_t now)
{
    struct room_new r = { .name = j->name, .kind = kind, .dm_key = key,
                          .owner_id = j->actor_id, .created_at = now };
    int64_t id;
    int rc = MSG_STORE(st, room_insert, conn, &r, &id);
    if (rc < 0)
        return rc;
    j->room = (struct room_row){ .id = id, .owner_id = j->actor_id, .created_at = now };
    snprintf(j->room.name, sizeof(j->room.name), "%s", j->name);
    snprintf(j->room.kind, sizeof(j->room.kind), "%s", kind);
    return 0;
}

static int apply_create(struct msg_state *st, struct db_conn *conn, struct room_job *j)
{
    int64_t now = now_ms();
    int rc = insert_room(st, conn, j, "group", NULL, now);
    if (rc < 0)
        return room_job_fail(j, 500, "could not create the room", rc);
    struct member_ref owner = { .id = j->actor_id };
    snprintf(owner.username, sizeof(owner.username), "%s", j->actor_name);
    if ((rc = insert_member(st, conn, j->room.id, &owner, now)) < 0)
        return room_job_fail(j, 500, "could not create the room", rc);
    for (int i = 0; i < j->ninvitees; i++)
        if ((rc = insert_member(st, conn, j->room.id, &j->invitees[i], now)) < 0)
            return room_job_fail(j, 500, "could not create the room", rc);
    if ((rc = room_load_member_refs(st, conn, j)) < 0)
        return room_job_fail(j, 500, "could not create the room", rc);
    j->changed = 1;
    j->status = 201;
    return 0;
}

/* The direct room of the pair, new: named after both, both members. */
static int dm_create(struct msg_state *st, struct db_conn *conn, struct room_job *j,
                     int64_t lo, const char *key)
{
    int64_t now = now_ms();
    const char *a = lo == j->actor_id ? j->actor_name : j->target.username;
    const char *b = lo == j->actor_id ? j->target.username : j->actor_name;
    snprintf(j->name, sizeof(j->name), "%s,%s", a, b);
    struct member_ref me = { .id = j->actor_id };
    snprintf(me.username, sizeof(me.username), "%s", j->actor_name);
    int rc;
    if ((rc = insert_room(st, conn, j, "direct", key, now)) < 0 ||
        (rc = insert_member(st, conn, j->room.id, &me, now)) < 0 ||
        (rc = insert_member(st, conn, j->room.id, &j->target, now)) < 0)
        return rc;
    j->changed = 1;
    return 0;
}

/* One direct room per unordered pair: the pair key is UNIQUE, so even two writers
 * cannot make two rooms; with one writer the lookup below already finds it. When
 * another writer made the room since the lookup (its insert committed while ours
 * waited on the key), the room is theirs: it is looked up again (a new statement
 * sees their commit) and opened as found. */
static int apply_dm(struct msg_state *st, struct db_conn *conn, struct room_job *j)
{
    int64_t lo = j->actor_id < j->target.id ? j->actor_id : j->target.id;
    int64_t hi = j->actor_id < j->target.id ? j->target.id : j->actor_id;
    char key[48];
    snprintf(key, sizeof(key), "%lld:%lld", (long long)lo, (long long)hi);

    int rc = MSG_STORE(st, room_by_dm_key, conn, key, &j->room);
    if (rc == 0 && (rc = dm_create(st, conn, j, lo, key)) == -ECONSTRAINT)
        rc = MSG_STORE(st, room_by_dm_key, conn, key, &j->room) == 1 ? 1 : -ECONSTRAINT;
    if (rc < 0)
        return room_job_fail(j, 500, "could not open the direct room", rc);
    j->status = 200;
    if (rc == 1)                     /* the marker is only for the answer: best effort */
        MSG_STORE(st, member_read_seq, conn, j->room.id, j->actor_id, &j->read_seq);
    if ((rc = room_load_member_refs(st, conn, j)) < 0)
        return room_job_fail(j, 500, "could not open the direct room", rc);
    return 0;
}

int room_job_apply(struct db_conn *conn, struct db_job *job)
{
    struct room_job *j = (struct room_job *)job;
    /* Apply may run again after a failed commit: start from a clean result. */
    j->status = 0;
    j->errmsg = NULL;
    j->changed = 0;
    j->read_seq = 0;
    free(j->members);
    j->members = NULL;
    j->nmembers = 0;
    switch (j->op) {
    case ROOM_OP_CREATE: return apply_create(j->st, conn, j);
    case ROOM_OP_DM:     return apply_dm(j->st, conn, j);
    case ROOM_OP_ADD:    return room_apply_add(j->st, conn, j);
    case ROOM_OP_REMOVE: return room_apply_remove(j->st, conn, j);
    }
    return room_job_fail(j, 500, "unknown operation", -EINVAL);
}

/* ---------- back on the loop ---------- */
static cJSON *room_with_members(const struct room_job *j)
{
    cJSON *r = room_row_json(&j->room);
    cJSON_AddItemToObject(r, "members", members_json(j->members, j->nmembers));
    return r;
}

/* room.changed: the room as clients see it (with its members), and who should hear
 * it: every member, or only_user alone. */
static void publish_changed(struct msg_state *st, const struct room_job *j,
                            enum ev_room_change event, int64_t user_id, int only_user)
{
    size_t cap = (size_t)(j->nmembers > 0 ? j->nmembers : 1);
    int64_t *ids = malloc(cap * sizeof(*ids));
    struct ev_user *members = malloc(cap * sizeof(*members));
    size_t n = 0;

    for (int i = 0; ids && members && i < j->nmembers; i++) {
        members[i] = (struct ev_user){ j->members[i].id, j->members[i].username };
        if (!only_user || j->members[i].id == user_id)
            ids[n++] = j->members[i].id;
    }
    const struct room_row *r = &j->room;
    struct ev_room room = { .id = r->id, .owner_id = r->owner_id, .created_at = r->created_at,
                            .last_seq = r->last_seq, .name = r->name, .kind = r->kind,
                            .members = members, .nmembers = (size_t)j->nmembers };
    struct ev_room_changed c = {
        .event = event,
        .room = &room, .user_id = user_id, .member_ids = { ids, n },
    };
    if (!ids || !members || bus_publish_ev(st->app->bus, &EV_ROOM_CHANGED, &c) < 0)
        LOG_WARN(st->app, "message", "room.changed not published room_id=%lld",
                 (long long)r->id);
    free(ids);
    free(members);
}

static void cache_members(struct msg_state *st, const struct room_job *j)
{
    int64_t *ids = malloc((size_t)(j->nmembers > 0 ? j->nmembers : 1) * sizeof(*ids));
    if (!ids)
        return;
    for (int i = 0; i < j->nmembers; i++)
        ids[i] = j->members[i].id;
    mcache_put(st->members, j->room.id, ids, j->nmembers);
    free(ids);
}

/* Loop, after COMMIT: answers the request, publishes the change, frees the job. */
static void room_job_finish(struct room_job *j)
{
    struct msg_state *st = j->st;

    if (j->status >= 400) {
        http_respond_error(j->req, j->status, "%s", j->errmsg ? j->errmsg : "failed");
        goto out;
    }
    if (j->changed)
        mcache_bump_epoch(st->members);
    switch (j->op) {
    case ROOM_OP_CREATE:
    case ROOM_OP_DM: {
        cJSON *o = cJSON_CreateObject();
        cJSON *r = room_with_members(j);
        int64_t unread = j->room.last_seq - j->read_seq;
        cJSON_AddNumberToObject(r, "read_seq", (double)j->read_seq);
        cJSON_AddNumberToObject(r, "unread", (double)(unread > 0 ? unread : 0));
        cJSON_AddItemToObject(o, "room", r);
        http_respond_json(j->req, j->status, o);
        if (j->changed) {
            cache_members(st, j);
            for (int i = 0; i < j->nmembers; i++)
                publish_changed(st, j, EV_ROOM_JOINED, j->members[i].id, 1);
        }
        break;
    }
    case ROOM_OP_ADD:
        http_respond_empty(j->req, 204);
        if (j->changed) {
            mcache_add_member(st->members, j->room.id, j->target.id);
            publish_changed(st, j, EV_ROOM_JOINED, j->target.id, 0);
        }
        break;
    case ROOM_OP_REMOVE:
        http_respond_empty(j->req, 204);
        if (j->changed) {
            mcache_remove_member(st->members, j->room.id, j->target.id);
            publish_changed(st, j, EV_ROOM_LEFT, j->target.id, 0);
        }
        break;
    }
out:
    msg_inflight_done(st);
    room_job_free(j);
}

static void room_job_after(struct db_job *job, int status)
{
    struct room_job *j = (struct room_job *)job;
    if (status < 0 && j->status < 400) {
        j->status = 503;
        j->errmsg = "could not commit the change";
    } else if (status == -ENOTCONN && j->status >= 500) {
        j->status = 503;             /* a statement failed because the database went away */
        j->errmsg = "the database is not available";
    }
    room_job_finish(j);
}

void room_job_queue(struct room_job *j)
{
    struct msg_state *st = j->st;
    msg_batch_close_open(st);
    int rc = st->draining ? -ECANCELED : db_write(st->app->db, &j->base);
    if (rc < 0) {
        http_respond_error(j->req, 503, rc == -EAGAIN ? "too many writes waiting"
                                                       : "the database is not available");
        room_job_free(j);
        return;
    }
    st->inflight++;
}
