/* Two nodes on one PostgreSQL database (two struct db, two writer threads) racing
 * on one room: the first writer's transaction is held open by a gate while the
 * second one runs, so each case meets the race every time. Skips without a server
 * (pg_fixture.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "message_store_fixture.h"
#include "../../src/modules/message/message_internal.h"

/* A writer job around step: step(c, arg, 0), then (until go, at most 30 s) the
 * transaction stays open, then step(c, arg, 1). */
struct pr_gate {
    struct db_job base;
    int (*step)(struct db_conn *c, void *arg, int phase);
    void *arg;
    int held, go, done, status, applies;
};

static int pr_gate_apply(struct db_conn *c, struct db_job *job)
{
    struct pr_gate *g = (struct pr_gate *)job;
    __atomic_add_fetch(&g->applies, 1, __ATOMIC_ACQ_REL);
    int rc = g->step(c, g->arg, 0);
    __atomic_store_n(&g->held, 1, __ATOMIC_RELEASE);
    uint64_t deadline = mono_ms() + 30000;
    while (!__atomic_load_n(&g->go, __ATOMIC_ACQUIRE) && mono_ms() < deadline)
        fx_nap();
    return rc < 0 ? rc : g->step(c, g->arg, 1);
}

static void pr_gate_done(struct db_job *job, int status)
{
    struct pr_gate *g = (struct pr_gate *)job;
    g->status = status;
    __atomic_store_n(&g->done, 1, __ATOMIC_RELEASE);
}

static void pr_gate_init(struct pr_gate *g, int (*step)(struct db_conn *, void *, int),
                         void *arg, int go)
{
    memset(g, 0, sizeof(*g));
    g->base = (struct db_job){ .apply = pr_gate_apply, .done = pr_gate_done,
                               .flags = DB_JOB_UNGUARDED };
    g->step = step;
    g->arg = arg;
    g->go = go;
}

static int pr_flag(int *f)
{
    return __atomic_load_n(f, __ATOMIC_ACQUIRE);
}

/* Until g's transaction is open and held (1), or 20 s (0). */
static int pr_wait_held(struct pr_gate *g)
{
    uint64_t deadline = mono_ms() + 20000;
    while (!pr_flag(&g->held) && mono_ms() < deadline)
        fx_nap();
    return pr_flag(&g->held);
}

/* Lets open's transaction go on, then until both gates' groups are done (1), or 20 s
 * (0). */
static int pr_open_and_finish(struct pr_gate *open, struct pr_gate *a, struct pr_gate *b)
{
    __atomic_store_n(&open->go, 1, __ATOMIC_RELEASE);
    uint64_t deadline = mono_ms() + 20000;
    while (!(pr_flag(&a->done) && pr_flag(&b->done)) && mono_ms() < deadline)
        fx_nap();
    return pr_flag(&a->done) && pr_flag(&b->done);
}

/* Until a backend of the database waits on a lock (1) or *done is set (0). */
static int pr_lock_wait_seen(const char *url, int *done)
{
    uint64_t deadline = mono_ms() + 20000;
    while (!pr_flag(done) && mono_ms() < deadline) {
        if (pg_test_int(url, "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                   " current_database() AND wait_event_type = 'Lock'") > 0)
            return 1;
        fx_nap();
    }
    return 0;
}

/* The test's node 1 (t) and node 2 (f2, s2) on t's database, writers started. */
struct pr_nodes {
    struct sfx t;
    struct fx f2;
    struct msg_store s2;
    struct msg_state st[2];          /* only .store: what the jobs' applies use */
};

static int pr_open_second(struct pr_nodes *n)
{
    if (fx_init(&n->f2) < 0 || db_open_url(&n->f2.app.db, &n->f2.app, n->t.url) < 0 ||
        msg_store_pg_new(&n->s2) < 0 || db_start(n->t.f.app.db) < 0 ||
        db_start(n->f2.app.db) < 0)
        return -1;
    n->st[0].store = n->t.s;
    n->st[1].store = n->s2;
    return 0;
}

static void pr_close(struct pr_nodes *n)
{
    db_close(n->f2.app.db);
    n->f2.app.db = NULL;
    msg_store_free(&n->s2);
    fx_stop(&n->f2);
    store_close(&n->t);
}

static int pr_member(struct sfx *t, int64_t room, int64_t user)
{
    struct member_ref m = { .id = user };
    snprintf(m.username, sizeof m.username, "u%lld", (long long)user);
    return MSF_OP(t, member_insert, t->c, room, &m, 1) == 1 ? 0 : -1;
}

static int pr_room(struct sfx *t, int64_t expect_id)
{
    struct room_new rn = { .name = "room", .kind = "group", .owner_id = 1, .created_at = 1 };
    int64_t id;
    return MSF_OP(t, room_insert, t->c, &rn, &id) < 0 || id != expect_id ? -1 : 0;
}

/* ---------- a direct room opened by both nodes at once ---------- */
static int pr_room_step(struct db_conn *c, void *arg, int phase)
{
    return phase ? 0 : room_job_apply(c, &((struct room_job *)arg)->base);
}

static struct room_job *pr_dm_job(struct msg_state *st)
{
    struct room_job *j = room_job_new(st, ROOM_OP_DM, NULL);
    if (!j)
        return NULL;
    j->actor_id = 1;
    snprintf(j->actor_name, sizeof j->actor_name, "alice");
    j->target = (struct member_ref){ .id = 2, .username = "bob" };
    return j;
}

TEST(message_pg_race_dm_opened_by_two_nodes_at_once_is_one_room)
{
    struct pr_nodes n;
    memset(&n, 0, sizeof n);
    MSF_OPEN(&n.t, &msf_engines[1]);
    ASSERT_EQ(pr_open_second(&n), 0);
    struct room_job *ja = pr_dm_job(&n.st[0]), *jb = pr_dm_job(&n.st[1]);
    ASSERT(ja && jb);
    static struct pr_gate a, b;
    pr_gate_init(&a, pr_room_step, ja, 0);
    pr_gate_init(&b, pr_room_step, jb, 1);
    ASSERT_EQ(db_write(n.t.f.app.db, &a.base), 0);
    ASSERT(pr_wait_held(&a));
    /* Node 2 finds no room (node 1's is not committed) and its insert waits. */
    ASSERT_EQ(db_write(n.f2.app.db, &b.base), 0);
    ASSERT_EQ(pr_lock_wait_seen(n.t.url, &b.done), 1);
    ASSERT(pr_open_and_finish(&a, &a, &b));
    ASSERT_EQ(a.status, 0);
    ASSERT_EQ(b.status, 0);
    ASSERT_EQ(ja->status, 200);
    ASSERT_EQ(jb->status, 200);
    ASSERT_EQ(ja->room.id, jb->room.id);
    ASSERT_EQ(jb->nmembers, 2);
    ASSERT_EQ(ja->changed, 1);
    ASSERT_EQ(jb->changed, 0);
    ASSERT_EQ(pg_test_int(n.t.url, "SELECT count(*) FROM rooms"), 1);
    room_job_free(ja);
    room_job_free(jb);
    pr_close(&n);
}

/* ---------- the same client_msg_ids in two rooms at once ---------- */
struct pr_batch {
    struct msg_store *store;
    struct msg_post p[2][2];         /* per phase, up to two messages */
    int n[2];
    struct msg_post_room rooms[2];
    int nrooms;
};

static void pr_batch_drop(struct pr_batch *b)
{
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < b->n[k]; i++) {
            free(b->p[k][i].copy);
            b->p[k][i].copy = NULL;
        }
    for (int i = 0; i < b->nrooms; i++)
        free(b->rooms[i].ids);
    b->nrooms = 0;
}

static int pr_batch_step(struct db_conn *c, void *arg, int phase)
{
    struct pr_batch *b = arg;
    if (!b->n[phase])
        return 0;
    for (int i = 0; i < b->nrooms; i++)
        free(b->rooms[i].ids);
    b->nrooms = 0;
    return b->store->ops->post_batch(b->store->impl, c, b->p[phase], b->n[phase], b->rooms,
                                     &b->nrooms);
}

static struct msg_post pr_post(int64_t room, int64_t sender, const char *cmid)
{
    return (struct msg_post){ .room_id = room, .sender_id = sender, .created_at = 5,
                              .sender = "s", .body = "hi", .client_msg_id = cmid };
}

/* Node 2 holds (sender 1, "k1") uncommitted in room 2; node 1's batch in room 1 has
 * (2, "k2") then (1, "k1") and waits on the second; node 2 then stores (2, "k2").
 * Taken in batch order, node 1 would hold "k2" and the two would deadlock (one
 * group run again after deadlock_timeout); taken in key order, node 1 holds
 * nothing node 2 needs. */
TEST(message_pg_race_batches_sharing_client_ids_do_not_deadlock)
{
    struct pr_nodes n;
    memset(&n, 0, sizeof n);
    MSF_OPEN(&n.t, &msf_engines[1]);
    for (int64_t r = 1; r <= 2; r++) {
        ASSERT_EQ(pr_room(&n.t, r), 0);
        ASSERT_EQ(pr_member(&n.t, r, 1), 0);
        ASSERT_EQ(pr_member(&n.t, r, 2), 0);
    }
    ASSERT_EQ(pr_open_second(&n), 0);
    static struct pr_batch ba, bb;
    memset(&ba, 0, sizeof ba);
    memset(&bb, 0, sizeof bb);
    ba.store = &n.t.s;
    ba.p[0][0] = pr_post(1, 2, "k2");
    ba.p[0][1] = pr_post(1, 1, "k1");
    ba.n[0] = 2;
    bb.store = &n.s2;
    bb.p[0][0] = pr_post(2, 1, "k1");
    bb.p[1][0] = pr_post(2, 2, "k2");
    bb.n[0] = bb.n[1] = 1;
    static struct pr_gate a, b;
    pr_gate_init(&b, pr_batch_step, &bb, 0);
    pr_gate_init(&a, pr_batch_step, &ba, 1);
    ASSERT_EQ(db_write(n.f2.app.db, &b.base), 0);
    ASSERT(pr_wait_held(&b));
    ASSERT_EQ(db_write(n.t.f.app.db, &a.base), 0);
    ASSERT_EQ(pr_lock_wait_seen(n.t.url, &a.done), 1);
    ASSERT(pr_open_and_finish(&b, &a, &b));
    ASSERT_EQ(a.status, 0);
    ASSERT_EQ(b.status, 0);
    ASSERT_EQ(pr_flag(&a.applies), 1);          /* neither group ran again */
    ASSERT_EQ(pr_flag(&b.applies), 1);
    ASSERT_EQ(bb.p[0][0].status, 201);
    ASSERT_EQ(bb.p[1][0].status, 201);
    ASSERT_EQ(ba.p[0][0].status, 409);          /* repeats of room 2's messages */
    ASSERT_EQ(ba.p[0][1].status, 409);
    ASSERT_EQ(pg_test_int(n.t.url, "SELECT last_seq FROM rooms WHERE id = 1"), 0);
    ASSERT_EQ(pg_test_int(n.t.url, "SELECT count(*) FROM messages"), 2);
    pr_batch_drop(&ba);
    pr_batch_drop(&bb);
    pr_close(&n);
}

/* ---------- the last free place of a room taken on both nodes at once ---------- */
static struct room_job *pr_add_job(struct msg_state *st, int64_t user)
{
    struct room_job *j = room_job_new(st, ROOM_OP_ADD, NULL);
    if (!j)
        return NULL;
    j->actor_id = 1;
    snprintf(j->actor_name, sizeof j->actor_name, "u1");
    j->room_id = 1;
    j->target = (struct member_ref){ .id = user };
    snprintf(j->target.username, sizeof j->target.username, "u%lld", (long long)user);
    return j;
}

/* One place left: node 1 adds a member (not committed yet), node 2 adds another.
 * Node 2's check waits for node 1's COMMIT on the room and then finds it full. */
TEST(message_pg_race_two_nodes_do_not_overfill_a_room)
{
    struct pr_nodes n;
    memset(&n, 0, sizeof n);
    MSF_OPEN(&n.t, &msf_engines[1]);
    ASSERT_EQ(pr_room(&n.t, 1), 0);
    char sql[256];
    snprintf(sql, sizeof sql, "WITH i AS (INSERT INTO room_members (room_id, user_id, username,"
             " joined_at) SELECT 1, g, 'u' || g, 1 FROM generate_series(1, %d) g RETURNING 1)"
             " SELECT count(*) FROM i", MSG_ROOM_MAX_MEMBERS - 1);
    ASSERT_EQ(pg_test_int(n.t.url, sql), MSG_ROOM_MAX_MEMBERS - 1);
    ASSERT_EQ(pr_open_second(&n), 0);
    struct room_job *ja = pr_add_job(&n.st[0], 5000), *jb = pr_add_job(&n.st[1], 5001);
    ASSERT(ja && jb);
    static struct pr_gate a, b;
    pr_gate_init(&a, pr_room_step, ja, 0);
    pr_gate_init(&b, pr_room_step, jb, 1);
    ASSERT_EQ(db_write(n.t.f.app.db, &a.base), 0);
    ASSERT(pr_wait_held(&a));
    ASSERT_EQ(ja->status, 204);
    ASSERT_EQ(db_write(n.f2.app.db, &b.base), 0);
    ASSERT_EQ(pr_lock_wait_seen(n.t.url, &b.done), 1);
    ASSERT(pr_open_and_finish(&a, &a, &b));
    ASSERT_EQ(a.status, 0);
    ASSERT_EQ(jb->status, 409);
    ASSERT_EQ(pg_test_int(n.t.url, "SELECT count(*) FROM room_members WHERE room_id = 1"),
              MSG_ROOM_MAX_MEMBERS);
    room_job_free(ja);
    room_job_free(jb);
    pr_close(&n);
}

/* ---------- a read marker and a batch of one room on both nodes ---------- */
struct pr_marker_then_batch {
    struct read_job *read;
    struct pr_batch batch;
};

static int pr_marker_step(struct db_conn *c, void *arg, int phase)
{
    struct pr_marker_then_batch *m = arg;
    if (phase == 0)
        return read_job_apply(c, (struct db_job *)m->read);
    return pr_batch_step(c, &m->batch, 0);
}

/* Node 1 raises user 1's marker (its job not committed yet), node 2 stores a message
 * of user 1 (raising the same marker), then node 1's group goes on with a batch of
 * the room. With the marker taken before the room, the two would deadlock (one group
 * run again after deadlock_timeout); with the room first, node 2 waits. */
TEST(message_pg_race_marker_and_batch_on_two_nodes_do_not_deadlock)
{
    struct pr_nodes n;
    memset(&n, 0, sizeof n);
    MSF_OPEN(&n.t, &msf_engines[1]);
    ASSERT_EQ(pr_room(&n.t, 1), 0);
    ASSERT_EQ(pr_member(&n.t, 1, 1), 0);
    ASSERT_EQ(pr_member(&n.t, 1, 2), 0);
    ASSERT_EQ(pg_test_int(n.t.url, "UPDATE rooms SET last_seq = 5 WHERE id = 1 RETURNING id"), 1);
    ASSERT_EQ(pr_open_second(&n), 0);
    static struct pr_marker_then_batch ma;
    static struct pr_batch bb;
    memset(&ma, 0, sizeof ma);
    memset(&bb, 0, sizeof bb);
    ma.read = read_job_new(&n.st[0], NULL, 1, 1, 5);
    ASSERT(ma.read != NULL);
    ma.batch.store = &n.t.s;
    ma.batch.p[0][0] = pr_post(1, 2, "from-node-1");
    ma.batch.n[0] = 1;
    bb.store = &n.s2;
    bb.p[0][0] = pr_post(1, 1, "from-node-2");
    bb.n[0] = 1;
    static struct pr_gate a, b;
    pr_gate_init(&a, pr_marker_step, &ma, 0);
    pr_gate_init(&b, pr_batch_step, &bb, 1);
    ASSERT_EQ(db_write(n.t.f.app.db, &a.base), 0);
    ASSERT(pr_wait_held(&a));
    ASSERT_EQ(read_job_status(ma.read), 204);
    ASSERT_EQ(db_write(n.f2.app.db, &b.base), 0);
    ASSERT_EQ(pr_lock_wait_seen(n.t.url, &b.done), 1);
    ASSERT(pr_open_and_finish(&a, &a, &b));
    ASSERT_EQ(a.status, 0);
    ASSERT_EQ(b.status, 0);
    ASSERT_EQ(pr_flag(&a.applies), 1);          /* neither group ran again */
    ASSERT_EQ(pr_flag(&b.applies), 1);
    ASSERT_EQ(ma.batch.p[0][0].status, 201);
    ASSERT_EQ(ma.batch.p[0][0].row.seq, 6);     /* node 1 committed first */
    ASSERT_EQ(bb.p[0][0].status, 201);
    ASSERT_EQ(bb.p[0][0].row.seq, 7);
    ASSERT_EQ(pg_test_int(n.t.url, "SELECT read_seq FROM room_members WHERE room_id = 1"
                     " AND user_id = 1"), 7);
    read_job_free(ma.read);
    pr_batch_drop(&ma.batch);
    pr_batch_drop(&bb);
    pr_close(&n);
}
