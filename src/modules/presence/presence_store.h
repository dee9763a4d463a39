/* presence_store.h: where the presence module keeps who holds which connections.
 * The module only talks to this interface, so the in-memory implementation
 * (presence_store_mem.c, one process) can be replaced by one backed by an external
 * store shared by several processes (the seed design used Redis: a set of connection
 * ids per user with a TTL refreshed by heartbeats) without touching the module.
 * Calls are synchronous and run on the loop thread: an external implementation keeps
 * a local view and replicates behind it.
 *
 * Connection ids are recorded, not just counted, so a repeated or late event cannot
 * make the count drift: adding a known connection or removing an unknown one is a
 * no-op. */
#ifndef CHATD_PRESENCE_STORE_H
#define CHATD_PRESENCE_STORE_H

#include <stddef.h>
#include <stdint.h>

struct presence_store_ops {
    /* Records conn_id as open for user_id. Returns the user's number of open
     * connections afterwards (unchanged for a known conn_id), or a negative error. */
    int    (*add)(void *impl, int64_t user_id, uint64_t conn_id);
    /* Forgets conn_id. Returns the number left (0: the user is offline), or -ENOENT
     * when conn_id was not recorded for user_id. */
    int    (*remove)(void *impl, int64_t user_id, uint64_t conn_id);
    /* Open connections of user_id (0 when offline). */
    int    (*count)(void *impl, int64_t user_id);
    /* Users with at least one open connection. */
    size_t (*users_online)(void *impl);
    void   (*free)(void *impl);
};

struct presence_store {
    const struct presence_store_ops *ops;
    void *impl;                      /* owned by the implementation */
};

/* The in-memory implementation: everything is lost with the process, which is what
 * makes "after a crash nobody is online" hold by construction. */
int presence_store_mem_new(struct presence_store *out);

static inline int presence_store_add(struct presence_store *s, int64_t u, uint64_t c)
{
    return s->ops->add(s->impl, u, c);
}
static inline int presence_store_remove(struct presence_store *s, int64_t u, uint64_t c)
{
    return s->ops->remove(s->impl, u, c);
}
static inline int presence_store_count(struct presence_store *s, int64_t u)
{
    return s->ops->count(s->impl, u);
}
static inline size_t presence_store_users_online(struct presence_store *s)
{
    return s->ops->users_online(s->impl);
}
static inline void presence_store_free(struct presence_store *s)
{
    if (s->ops)
        s->ops->free(s->impl);
    s->ops = NULL;
    s->impl = NULL;
}

#endif
