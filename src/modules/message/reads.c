/* reads.c: read markers. A marker only moves forward (a late or repeated "read" can
 * never make messages unread again) and never past the room's last seq (a larger
 * value is clamped to it). The write goes through the writer like everything else;
 * room.read tells the other members once it is committed, and only when it moved. */
#include <errno.h>
#include <stdlib.h>
#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/log.h"
#include "message_internal.h"

struct read_job {
    struct db_job base;
    struct msg_state *st;
    struct http_req *req;            /* NULL when the marker came over the bus */
    int64_t room_id, user_id, seq;
    /* Results (writer). */
    int status; const char *errmsg;
    int moved;
    int64_t *member_ids; int nmembers;   /* owned */
};

static int read_job_fail(struct read_job *j, int status, const char *msg, int rc)
{
    j->status = status;
    j->errmsg = msg;
    return rc;
}

/* The room is locked first (as a batch locks it before it raises markers), then
 * the member's marker: one lock order on every node, so a marker and a batch of the
 * same room on two nodes wait for each other instead of deadlocking. */
int read_job_apply(struct db_conn *conn, struct db_job *job)
{
    struct read_job *j = (struct read_job *)job;
    struct msg_state *st = j->st;
    struct room_row room = {0};
    j->moved = 0;
    j->status = 0;

    int rc = MSG_STORE(st, room_lock, conn, j->room_id, &room);
    if (rc == 0)
        return read_job_fail(j, 404, "room not found", -ENOENT);
    if (rc < 0)
        return read_job_fail(j, 500, "could not read the room", rc);
    rc = MSG_STORE(st, member_read_seq, conn, j->room_id, j->user_id, NULL);
    if (rc == 0)
        return read_job_fail(j, 403, "not a member of this room", -EPERM);
    if (rc < 0)
        return read_job_fail(j, 500, "could not read the room", rc);

    if (j->seq > room.last_seq)
        j->seq = room.last_seq;
    if ((rc = MSG_STORE(st, marker_raise, conn, j->room_id, j->user_id, j->seq)) < 0)
        return read_job_fail(j, 500, "could not store the marker", rc);
    j->moved = rc;
    free(j->member_ids);
    j->member_ids = NULL;
    j->nmembers = 0;
    if (j->moved && (rc = MSG_STORE(st, member_ids, conn, j->room_id, &j->member_ids,
                                    &j->nmembers)) < 0)
        return read_job_fail(j, 500, "could not read the room", rc);
    j->status = 204;
    return 0;
}

static void read_finish(struct read_job *j)
{
    struct msg_state *st = j->st;
    if (j->req) {
        if (j->status >= 400)
            http_respond_error(j->req, j->status, "%s", j->errmsg);
        else
            http_respond_empty(j->req, 204);
    } else if (j->status >= 400) {
        LOG_DEBUG(st->app, "message", "read marker refused room_id=%lld user_id=%lld "
                  "status=%d", (long long)j->room_id, (long long)j->user_id, j->status);
    }
    if (j->status < 400 && j->moved) {
        struct ev_room_read r = {
            .room_id = j->room_id, .user_id = j->user_id, .seq = j->seq,
            .member_ids = { j->member_ids, (size_t)j->nmembers },
        };
        bus_publish_ev(st->app->bus, &EV_ROOM_READ, &r);
    }
    msg_inflight_done(st);
    read_job_free(j);
}

void read_job_free(struct read_job *j)
{
    if (!j)
        return;
    free(j->member_ids);
    free(j);
}

int read_job_status(const struct read_job *j)
{
    return j->status;
}

static void read_after(struct db_job *job, int status)
{
    struct read_job *j = (struct read_job *)job;
    if (status < 0 && j->status < 400) {
        j->status = 503;
        j->errmsg = "could not commit the marker";
    } else if (status == -ENOTCONN && j->status >= 500) {
        j->status = 503;             /* a statement failed because the database went away */
        j->errmsg = "the database is not available";
    }
    read_finish(j);
}

struct read_job *read_job_new(struct msg_state *st, struct http_req *req, int64_t room_id,
                              int64_t user_id, int64_t seq)
{
    struct read_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->base.apply = read_job_apply;
    j->base.after = read_after;
    j->st = st;
    j->req = req;
    j->room_id = room_id;
    j->user_id = user_id;
    j->seq = seq;
    return j;
}

void reads_submit(struct msg_state *st, struct http_req *req, int64_t room_id,
                  int64_t user_id, int64_t seq)
{
    struct read_job *j = read_job_new(st, req, room_id, user_id, seq);
    int rc = j ? 0 : -ENOMEM;
    if (j) {
        msg_batch_close_open(st);
        rc = st->draining ? -ECANCELED : db_write(st->app->db, &j->base);
    }
    if (rc < 0) {
        free(j);
        if (req)
            http_respond_error(req, 503, rc == -EAGAIN ? "too many writes waiting"
                                                       : "the database is not available");
        return;
    }
    st->inflight++;
}
