/* The message store driven through its ops alone, on a database of its own: what
 * any engine behind message_store.h must answer. Every case runs once per engine of
 * message_store_fixture.h (the PostgreSQL line skips without a server). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "message_store_fixture.h"

#define OP(t, op, ...) MSF_OP(t, op, __VA_ARGS__)

static int64_t new_room(struct sfx *t, const char *name, const char *kind, const char *key,
                        int64_t owner)
{
    struct room_new r = { .name = name, .kind = kind, .dm_key = key, .owner_id = owner,
                          .created_at = 1000 };
    int64_t id = 0;
    return OP(t, room_insert, t->c, &r, &id) == 0 ? id : -1;
}

static int add_member(struct sfx *t, int64_t room, int64_t id, const char *name)
{
    struct member_ref m = { .id = id };
    snprintf(m.username, sizeof(m.username), "%s", name);
    return OP(t, member_insert, t->c, room, &m, 1000 + id);
}

static int insert(struct sfx *t, int64_t room, int64_t seq, int64_t sender, const char *body,
                  const char *cmid, struct msg_row *out, char **copy)
{
    struct msg_new m = { .room_id = room, .seq = seq, .sender_id = sender,
                         .created_at = 2000 + seq, .sender = "ann", .body = body,
                         .client_msg_id = cmid };
    return OP(t, message_insert, t->c, &m, out, copy);
}

static void message_store_rooms_and_members_on(const struct msf_engine *e)
{
    struct sfx t;
    MSF_OPEN(&t, e);
    int64_t g = new_room(&t, "general", "group", NULL, 1);
    int64_t d = new_room(&t, "ann,bob", "direct", "1:2", 1);
    ASSERT(g > 0 && d > 0 && g != d);
    ASSERT_EQ(new_room(&t, "again", "direct", "1:2", 2), -1);   /* one room per pair */
    ASSERT_EQ(add_member(&t, g, 1, "ann"), 1);
    ASSERT_EQ(add_member(&t, g, 2, "bob"), 1);
    ASSERT_EQ(add_member(&t, g, 2, "bob"), 0);                  /* already in */
    ASSERT_EQ(add_member(&t, g, 3, "cyd"), 1);
    ASSERT_EQ(add_member(&t, d, 1, "ann"), 1);
    ASSERT_EQ(add_member(&t, d, 4, "dan"), 1);
    ASSERT_EQ(OP(&t, member_count, t.c, g), 3);

    struct room_row r;
    ASSERT_EQ(OP(&t, room_get, t.c, g, &r), 1);
    ASSERT_STR_EQ(r.name, "general");
    ASSERT_STR_EQ(r.kind, "group");
    ASSERT_EQ(r.owner_id, 1);
    ASSERT_EQ(r.last_seq, 0);
    ASSERT_EQ(OP(&t, room_get, t.c, 999, &r), 0);
    memset(&r, 0, sizeof r);
    ASSERT_EQ(OP(&t, room_lock, t.c, g, &r), 1);               /* the same row */
    ASSERT_EQ(r.id, g);
    ASSERT_STR_EQ(r.name, "general");
    ASSERT_EQ(r.owner_id, 1);
    ASSERT_EQ(OP(&t, room_lock, t.c, 999, &r), 0);
    ASSERT_EQ(OP(&t, room_by_dm_key, t.c, "1:2", &r), 1);
    ASSERT_EQ(r.id, d);
    ASSERT_EQ(OP(&t, room_by_dm_key, t.c, "1:3", &r), 0);

    int64_t v = -1;
    ASSERT_EQ(OP(&t, member_read_seq, t.c, g, 2, &v), 1);
    ASSERT_EQ(v, 0);
    ASSERT_EQ(OP(&t, member_read_seq, t.c, g, 4, NULL), 0);
    ASSERT_EQ(OP(&t, member_first, t.c, g, &v), 1);
    ASSERT_EQ(v, 1);                 /* joined first */
    ASSERT_EQ(OP(&t, member_delete, t.c, g, 1), 0);
    ASSERT_EQ(OP(&t, member_first, t.c, g, &v), 1);
    ASSERT_EQ(v, 2);
    ASSERT_EQ(OP(&t, room_set_owner, t.c, g, 2), 0);
    ASSERT_EQ(OP(&t, room_get, t.c, g, &r), 1);
    ASSERT_EQ(r.owner_id, 2);

    struct member_ref *refs = NULL;
    int n = 0;
    ASSERT_EQ(OP(&t, member_refs, t.c, g, &refs, &n), 0);
    ASSERT_EQ(n, 2);
    ASSERT(refs[0].id == 2 && strcmp(refs[0].username, "bob") == 0);
    ASSERT(refs[1].id == 3 && strcmp(refs[1].username, "cyd") == 0);
    free(refs);
    ASSERT_EQ(OP(&t, read_member_refs, t.c, d, &refs, &n), 0);
    ASSERT(n == 2 && refs[0].id == 1 && refs[1].id == 4);
    free(refs);
    int64_t *ids = NULL;
    ASSERT_EQ(OP(&t, read_member_ids, t.c, g, &ids, &n), 0);
    ASSERT(n == 2 && ids[0] + ids[1] == 5);
    free(ids);
    ASSERT_EQ(OP(&t, peers, t.c, 2, &ids, &n), 0);
    ASSERT(n == 1 && ids[0] == 3);   /* ann left the group; dan shares nothing with bob */
    free(ids);
    ASSERT_EQ(OP(&t, peers, t.c, 1, &ids, &n), 0);
    ASSERT(n == 1 && ids[0] == 4);
    free(ids);

    int64_t rs = -1;
    ASSERT_EQ(OP(&t, room_access, t.c, g, 3, &r, &rs), 0);
    ASSERT_EQ(rs, 0);
    ASSERT_EQ(OP(&t, room_access, t.c, g, 1, &r, &rs), -EPERM);
    ASSERT_EQ(OP(&t, room_access, t.c, 999, 1, &r, &rs), -ENOENT);
    store_close(&t);
}

TEST(message_store_rooms_and_members)
{
    MSF_EACH_ENGINE(message_store_rooms_and_members_on);
}

static int count_room(void *ctx, const struct room_row *r, int64_t read_seq)
{
    int64_t *seen = ctx;
    seen[0]++;
    seen[1] = r->id;
    seen[2] = read_seq;
    return 0;
}

static void message_store_batch_insert_and_duplicate_on(const struct msf_engine *e)
{
    struct sfx t;
    MSF_OPEN(&t, e);
    int64_t a = new_room(&t, "a", "group", NULL, 1), b = new_room(&t, "b", "group", NULL, 1);
    ASSERT_EQ(add_member(&t, a, 1, "ann"), 1);
    ASSERT_EQ(add_member(&t, a, 2, "bob"), 1);
    ASSERT_EQ(add_member(&t, b, 1, "ann"), 1);

    int64_t *ids = NULL, seq = -1;
    int n = -1;
    ASSERT_EQ(OP(&t, batch_room, t.c, a, &ids, &n, &seq), 1);
    ASSERT(n == 2 && seq == 0);
    free(ids);
    ASSERT_EQ(OP(&t, batch_room, t.c, 999, &ids, &n, &seq), 0);
    ASSERT(n == 0 && ids == NULL);

    struct msg_row m, first;
    char *copy = NULL;
    ASSERT_EQ(insert(&t, a, 1, 1, "one", "c-1", &m, &copy), 0);
    ASSERT(copy == NULL && m.id > 0 && m.seq == 1 && m.room_id == a);
    ASSERT_STR_EQ(m.body, "one");
    first = m;
    ASSERT_EQ(insert(&t, a, 2, 1, "two", NULL, &m, &copy), 0);
    ASSERT(m.id > first.id && m.client_msg_id == NULL);
    ASSERT_EQ(insert(&t, a, 3, 2, "same id, other sender", "c-1", &m, &copy), 0);
    ASSERT_EQ(OP(&t, room_set_last_seq, t.c, a, 3), 0);
    ASSERT_EQ(OP(&t, batch_room, t.c, a, &ids, &n, &seq), 1);
    ASSERT_EQ(seq, 3);
    free(ids);

    /* A repeated (sender, client_msg_id) answers the first message, even from another
     * room, and stores nothing. */
    ASSERT_EQ(insert(&t, b, 1, 1, "again", "c-1", &m, &copy), 1);
    ASSERT(copy != NULL);
    ASSERT(m.id == first.id && m.room_id == a && m.seq == 1 && m.created_at == 2001);
    ASSERT_STR_EQ(m.body, "one");
    ASSERT_STR_EQ(m.sender, "ann");
    ASSERT_STR_EQ(m.client_msg_id, "c-1");
    free(copy);
    copy = NULL;
    /* (room, seq) taken: refused, nothing written. */
    ASSERT_EQ(insert(&t, a, 2, 1, "clash", NULL, &m, &copy), -ECONSTRAINT);
    ASSERT(copy == NULL);
    ASSERT_EQ(insert(&t, b, 1, 1, "fresh", NULL, &m, &copy), 0);

    ASSERT_EQ(OP(&t, marker_raise, t.c, a, 2, 3), 1);
    ASSERT_EQ(OP(&t, marker_raise, t.c, a, 2, 1), 0);      /* never back */
    ASSERT_EQ(OP(&t, marker_raise, t.c, a, 9, 3), 0);      /* not a member */
    int64_t v;
    ASSERT_EQ(OP(&t, member_read_seq, t.c, a, 2, &v), 1);
    ASSERT_EQ(v, 3);
    int64_t seen[3] = { 0 };
    ASSERT_EQ(OP(&t, rooms_of_user, t.c, 2, count_room, seen), 0);
    ASSERT(seen[0] == 1 && seen[1] == a && seen[2] == 3);
    ASSERT_EQ(OP(&t, member_ids, t.c, a, &ids, &n), 0);
    ASSERT_EQ(n, 2);
    free(ids);
    store_close(&t);
}

TEST(message_store_batch_insert_and_duplicate)
{
    MSF_EACH_ENGINE(message_store_batch_insert_and_duplicate_on);
}

struct seqs { int64_t v[16]; int n, stop_at; };

static int take_seq(void *ctx, const struct msg_row *m)
{
    struct seqs *s = ctx;
    if (s->stop_at && s->n == s->stop_at)
        return 1;
    s->v[s->n++] = m->seq;
    return 0;
}

static int range(struct sfx *t, int64_t room, int64_t lo, int64_t hi, int desc, int limit,
                 struct seqs *out)
{
    struct msg_range r = { .room_id = room, .lo = lo, .hi = hi, .desc = desc, .limit = limit };
    return OP(t, messages, t->c, &r, take_seq, out);
}

static void message_store_history_and_sync_ranges_on(const struct msf_engine *e)
{
    struct sfx t;
    MSF_OPEN(&t, e);
    int64_t a = new_room(&t, "a", "group", NULL, 1), b = new_room(&t, "b", "group", NULL, 1);
    struct msg_row m;
    char *copy;
    for (int i = 1; i <= 10; i++) {
        ASSERT_EQ(insert(&t, a, i, 1, "x", NULL, &m, &copy), 0);
        ASSERT_EQ(insert(&t, b, i, 1, "y", NULL, &m, &copy), 0);
    }
    struct seqs s = { .n = 0 };
    /* History paging back: the newest below `before`, newest first. */
    ASSERT_EQ(range(&t, a, 0, 8, 1, 3, &s), 0);
    ASSERT(s.n == 3 && s.v[0] == 7 && s.v[1] == 6 && s.v[2] == 5);
    /* The default newest page, more asked than there are. */
    s = (struct seqs){ .n = 0 };
    ASSERT_EQ(range(&t, a, 0, INT64_MAX, 1, 16, &s), 0);
    ASSERT(s.n == 10 && s.v[0] == 10 && s.v[9] == 1);
    /* Forward (after, and a sync's page): oldest first, inside both bounds. */
    s = (struct seqs){ .n = 0 };
    ASSERT_EQ(range(&t, a, 2, 6, 0, 10, &s), 0);
    ASSERT(s.n == 3 && s.v[0] == 3 && s.v[2] == 5);
    s = (struct seqs){ .n = 0 };
    ASSERT_EQ(range(&t, b, 8, INT64_MAX, 0, 10, &s), 0);
    ASSERT(s.n == 2 && s.v[0] == 9 && s.v[1] == 10);
    /* A callback that stops the range: 1, nothing after. */
    s = (struct seqs){ .n = 0, .stop_at = 2 };
    ASSERT_EQ(range(&t, a, 0, INT64_MAX, 0, 10, &s), 1);
    ASSERT(s.n == 2 && s.v[1] == 2);
    s = (struct seqs){ .n = 0 };
    ASSERT_EQ(range(&t, 999, 0, INT64_MAX, 0, 10, &s), 0);
    ASSERT_EQ(s.n, 0);
    store_close(&t);
}

TEST(message_store_history_and_sync_ranges)
{
    MSF_EACH_ENGINE(message_store_history_and_sync_ranges_on);
}
