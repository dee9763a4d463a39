/* batch_apply.c: a batch of messages inside the writer's transaction (the batch's
 * db_job apply; batch.c gathers batches on the loop and hands them over).
 *
 * Inside the transaction a batch costs, in store ops (message_store.h), one read of
 * each room's members and last_seq (batch_room), one message_insert per message, and
 * at the end one write of last_seq per room and one read marker per sender and room:
 * per message, only the insert (and the dedupe lookup when a client_msg_id repeats).
 * A message that is refused (not a member, no such room, 409, a constraint) writes
 * nothing, so it needs no savepoint of its own. Nor
 * does the batch: a savepoint would copy every page the batch touches. A write that
 * fails (I/O, a full disk) fails the writer's whole group instead
 * (DB_JOB_UNGUARDED): nothing of it is stored and every message of it is refused,
 * as a failed COMMIT would have done.
 *
 * Seq stays gapless: each room's counter starts from last_seq as read in this
 * transaction, advances only for a stored row, and is written back before the
 * batch's apply returns. Nobody hears of a message before the COMMIT.
 *
 * A store that has post_batch (PostgreSQL: a round trip per op would cost more than
 * the op) does all of that in one call; the results are mapped to the same answers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/log.h"
#include "chatd/util.h"
#include "message_internal.h"

/* ---------- per-batch lookup: (a, b) -> index, open addressing ---------- */
struct bkey { int64_t a, b; int idx; };

static size_t bkey_slot(int64_t a, int64_t b, size_t mask)
{
    uint64_t h = (uint64_t)a * 0x9E3779B97F4A7C15ull ^ (uint64_t)b * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h >> 29) & mask;
}

/* The index stored for (a, b), or -1 with *slot where it would go. */
static int bkey_find(const struct bkey *t, size_t mask, int64_t a, int64_t b, size_t *slot)
{
    size_t i = bkey_slot(a, b, mask);
    while (t[i].idx >= 0 && (t[i].a != a || t[i].b != b))
        i = (i + 1) & mask;
    *slot = i;
    return t[i].idx;
}

void msg_batch_reset(struct msg_batch *b)
{
    for (int i = 0; i < b->nrooms; i++)
        free(b->rooms[i].ids);
    b->nrooms = 0;
    b->nreaders = 0;
}

/* ---------- apply ---------- */
static int keys_prepare(struct msg_batch *b)
{
    size_t cap = 16;
    while (cap < 4 * (size_t)b->n)   /* rooms and (room, sender) pairs share it */
        cap <<= 1;
    if (cap > b->keys_cap) {
        free(b->keys);
        if (!(b->keys = malloc(cap * sizeof(*b->keys))))
            return -ENOMEM;
        b->keys_cap = cap;
    }
    for (size_t i = 0; i < cap; i++)
        b->keys[i].idx = -1;
    b->keys_mask = cap - 1;
    if (!b->rooms && !(b->rooms = malloc((size_t)b->cap * sizeof(*b->rooms))))
        return -ENOMEM;
    if (!b->readers && !(b->readers = malloc((size_t)b->cap * sizeof(*b->readers))))
        return -ENOMEM;
    return 0;
}

/* The batch's entry for a room: members and last_seq read once per batch. The key
 * b = 0 marks rooms; readers use the sender id, always > 0. */
static int room_of(struct msg_batch *b, struct db_conn *conn, int64_t room_id, int *out)
{
    size_t slot;
    int idx = bkey_find(b->keys, b->keys_mask, room_id, 0, &slot);
    if (idx >= 0) {
        *out = idx;
        return 0;
    }
    struct msg_broom *r = &b->rooms[b->nrooms];
    memset(r, 0, sizeof(*r));
    r->room_id = room_id;
    int rc = MSG_STORE(b->st, batch_room, conn, room_id, &r->ids, &r->n, &r->seq0);
    if (rc < 0)
        return rc;
    r->exists = rc;                  /* 1: the room row is there */
    r->seq = r->seq0;
    b->keys[slot] = (struct bkey){ room_id, 0, b->nrooms };
    *out = b->nrooms++;
    return 0;
}

static void note_reader(struct msg_batch *b, int64_t room_id, int64_t sender_id, int64_t seq)
{
    size_t slot;
    int idx = bkey_find(b->keys, b->keys_mask, room_id, sender_id, &slot);
    if (idx < 0) {
        idx = b->nreaders++;
        b->keys[slot] = (struct bkey){ room_id, sender_id, idx };
        b->readers[idx] = (struct msg_breader){ room_id, sender_id, seq };
    }
    b->readers[idx].seq = seq;       /* seqs only grow within a room */
}

static int is_member(const struct msg_broom *r, int64_t user_id)
{
    for (int i = 0; i < r->n; i++)
        if (r->ids[i] == user_id)
            return 1;
    return 0;
}

/* One message. 0 when it is settled (stored, duplicate or refused: j->status says
 * which); negative when a write failed and the batch must be undone. */
static int apply_one(struct msg_batch *b, struct db_conn *conn, struct msg_job *j)
{
    int ridx, rc;

    msg_job_reset(j);
    if ((rc = room_of(b, conn, j->room_id, &ridx)) < 0) {
        msg_job_fail(j, 500, "could not read the room");
        return 0;                    /* nothing written for it */
    }
    struct msg_broom *r = &b->rooms[ridx];
    j->member_ids = r->ids;
    j->nmembers = r->n;
    if (!is_member(r, j->sender_id)) {
        msg_job_fail(j, r->exists ? 403 : 404,
                     r->exists ? "not a member of this room" : "room not found");
        return 0;
    }
    struct msg_new m = {
        .room_id = j->room_id, .seq = r->seq + 1, .sender_id = j->sender_id,
        .created_at = now_ms(), .sender = j->sender, .body = j->body,
        .client_msg_id = j->client_msg_id,
    };
    rc = MSG_STORE(b->st, message_insert, conn, &m, &j->row, &j->dup);
    if (rc == 1) {                   /* the first copy of a repeated client_msg_id */
        if (j->row.room_id != j->room_id)
            msg_job_fail(j, 409, "client_msg_id was already used in another room");
        else
            j->status = 200;
        return 0;
    }
    if (rc == -ECONSTRAINT) {
        /* A refused single-row insert wrote nothing: this message alone fails. (Here
         * (room_id, seq) was taken: last_seq is behind the rows; nothing we did.) */
        if (b->st->app)
            LOG_WARN(b->st->app, "message", "message refused by the database room_id=%lld"
                     " seq=%lld error=\"%s\"", (long long)j->room_id,
                     (long long)(r->seq + 1), MSG_STORE(b->st, errmsg, conn));
        msg_job_fail(j, 500, "could not store the message");
        return 0;
    }
    if (rc < 0) {
        msg_job_fail(j, 500, "could not store the message");
        return rc;
    }
    r->seq++;
    note_reader(b, j->room_id, j->sender_id, r->seq);
    j->status = 201;
    return 0;
}

/* last_seq of each room and the senders' read markers, once per batch. */
static int batch_finish(struct msg_batch *b, struct db_conn *conn)
{
    struct msg_state *st = b->st;
    int rc;
    for (int i = 0; i < b->nrooms; i++)
        if (b->rooms[i].seq != b->rooms[i].seq0 &&
            (rc = MSG_STORE(st, room_set_last_seq, conn, b->rooms[i].room_id,
                            b->rooms[i].seq)) < 0)
            return rc;
    /* Sending a message reads the room up to it: one's own messages are never unread. */
    for (int i = 0; i < b->nreaders; i++) {
        const struct msg_breader *r = &b->readers[i];
        if ((rc = MSG_STORE(st, marker_raise, conn, r->room_id, r->user_id, r->seq)) < 0)
            return rc;
    }
    return 0;
}

/* ---------- the whole batch in one call (post_batch) ---------- */
/* A message's result from post_batch, as apply_one would have left it. */
static void settle_posted(struct msg_batch *b, struct msg_job *j, struct msg_post *p)
{
    if (p->room >= 0) {
        j->member_ids = b->rooms[p->room].ids;
        j->nmembers = b->rooms[p->room].n;
    }
    j->row = p->row;
    j->dup = p->copy;                /* the job owns it now (200, 409) */
    p->copy = NULL;
    switch (p->status) {
    case 201:
    case 200:
        j->status = p->status;
        return;
    case 409: msg_job_fail(j, 409, "client_msg_id was already used in another room"); return;
    case 403: msg_job_fail(j, 403, "not a member of this room"); return;
    case 404: msg_job_fail(j, 404, "room not found"); return;
    }
    if (b->st->app)
        LOG_WARN(b->st->app, "message", "message refused by the database room_id=%lld",
                 (long long)j->room_id);
    msg_job_fail(j, 500, "could not store the message");
}

static int apply_posted(struct msg_batch *b, struct db_conn *conn)
{
    struct msg_post *p = malloc((size_t)b->n * sizeof(*p));
    struct msg_post_room *rooms = malloc((size_t)b->n * sizeof(*rooms));
    int64_t now = now_ms();
    int nrooms = 0, rc = -ENOMEM;

    if (p && rooms) {
        for (int i = 0; i < b->n; i++) {
            struct msg_job *j = b->jobs[i];
            msg_job_reset(j);
            p[i] = (struct msg_post){ .room_id = j->room_id, .sender_id = j->sender_id,
                                      .created_at = now, .sender = j->sender,
                                      .body = j->body, .client_msg_id = j->client_msg_id };
        }
        rc = MSG_STORE(b->st, post_batch, conn, p, b->n, rooms, &nrooms);
    }
    if (rc == 0) {
        for (int i = 0; i < nrooms; i++)
            b->rooms[i] = (struct msg_broom){ .room_id = rooms[i].room_id,
                                              .ids = rooms[i].ids, .n = rooms[i].n,
                                              .exists = 1 };
        b->nrooms = nrooms;
        for (int i = 0; i < b->n; i++)
            settle_posted(b, b->jobs[i], &p[i]);
    }
    free(p);
    free(rooms);
    return rc;
}

int batch_apply(struct db_conn *conn, struct db_job *job)
{
    struct msg_batch *b = (struct msg_batch *)job;
    int rc;

    /* Apply may run again after a failed attempt (the writer retries a group that
     * deadlocked with another writer): start from a clean slate. */
    msg_batch_reset(b);
    b->failed = 0;
    if ((rc = keys_prepare(b)) < 0)
        goto fail;
    if (b->st->store.ops->post_batch) {
        if ((rc = apply_posted(b, conn)) < 0)
            goto fail;
        return 0;
    }
    for (int i = 0; i < b->n; i++) {
        if ((rc = apply_one(b, conn, b->jobs[i])) < 0)
            goto fail;
        /* A failed read (I/O, full disk, no memory) can make the engine roll the
         * whole transaction back by itself; with no savepoint around the batch, what
         * came after would be written outside it while the group is reported failed. */
        if (MSG_STORE(b->st, txn_lost, conn)) {
            rc = -EIO;
            goto fail;
        }
    }
    if ((rc = batch_finish(b, conn)) < 0)
        goto fail;
    return 0;
fail:
    if (b->st->app)
        LOG_WARN(b->st->app, "message", "batch not stored messages=%d error=\"%s\"", b->n,
                 MSG_STORE(b->st, errmsg, conn));
    b->failed = rc;
    return rc;
}
