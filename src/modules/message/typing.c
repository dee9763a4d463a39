/* typing.c: typing.submitted -> room.typing to the other members. Typing is not
 * stored, but it must only reach a room's members, which the loop has to know without
 * touching SQLite: the membership cache answers, and a miss is loaded on the thread
 * pool. Typing is ephemeral, so under pressure it is dropped rather than queued. */
#include <errno.h>
#include <stdlib.h>
#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/util.h"
#include "message_internal.h"

static void publish_typing(struct msg_state *st, int64_t room_id, int64_t user_id,
                           const int64_t *ids, int n)
{
    int member = 0;
    for (int i = 0; i < n && !member; i++)
        member = ids[i] == user_id;
    if (!member || n < 2)
        return;                      /* not a member: typing is dropped silently */
    int64_t *others = malloc((size_t)(n - 1) * sizeof(*others));
    if (!others)
        return;                      /* ephemeral: dropped under pressure */
    size_t k = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] != user_id)
            others[k++] = ids[i];
    struct ev_room_typing t = { .room_id = room_id, .user_id = user_id,
                                .member_ids = { others, k } };
    bus_publish_ev(st->app->bus, &EV_ROOM_TYPING, &t);
    free(others);
}

struct member_load {
    struct msg_state *st;
    int64_t room_id, user_id;
    uint64_t epoch;                  /* the cache's epoch when the load began */
    int64_t *ids; int n;             /* owned */
};

static int member_load_fn(struct db_conn *conn, void *arg)
{
    struct member_load *l = arg;
    return MSG_STORE(l->st, read_member_ids, conn, l->room_id, &l->ids, &l->n);
}

static void member_load_after(void *arg, int status)
{
    struct member_load *l = arg;
    struct msg_state *st = l->st;
    st->cache_loads--;
    if (status == 0) {
        /* A membership change committed meanwhile may be missing from what was read:
         * use it for this event, but do not keep it. */
        if (mcache_epoch(st->members) == l->epoch)
            mcache_put(st->members, l->room_id, l->ids, l->n);
        publish_typing(st, l->room_id, l->user_id, l->ids, l->n);
    }
    msg_inflight_done(st);
    free(l->ids);
    free(l);
}

void typing_submit(struct msg_state *st, const struct ev_typing_submitted *t)
{
    int64_t room_id = t->room_id, user_id = t->user_id;
    if (room_id <= 0 || st->draining)
        return;
    int n;
    const int64_t *ids = mcache_get(st->members, room_id, &n);
    if (ids) {
        publish_typing(st, room_id, user_id, ids, n);
        return;
    }
    if (st->cache_loads >= MSG_CACHE_LOADS_MAX)
        return;                      /* typing is ephemeral: drop rather than queue */
    struct member_load *l = calloc(1, sizeof(*l));
    if (!l)
        return;
    l->st = st;
    l->room_id = room_id;
    l->user_id = user_id;
    l->epoch = mcache_epoch(st->members);
    if (db_read(st->app->db, member_load_fn, member_load_after, l) < 0) {
        free(l);
        return;
    }
    st->cache_loads++;
    st->inflight++;
}
