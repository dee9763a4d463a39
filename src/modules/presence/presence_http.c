/* presence_http.c: GET /v1/presence?user_ids=1,2,3. Only users who share a room with
 * the caller (asked of the message module through rooms.peers), and the caller itself,
 * are answered; the others are left out, so the answer tells nothing about strangers,
 * not even whether they exist. Online status comes from memory, last_seen_at from the
 * presence table. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/http.h"
#include "chatd/text.h"
#include "chatd/util.h"
#include "presence_internal.h"

struct pquery {
    struct presence *p;
    struct http_req *req;            /* answered exactly once */
    int64_t caller;
    int n;                           /* ids asked */
    int64_t ids[PRESENCE_QUERY_MAX_IDS];
    int64_t seen[PRESENCE_QUERY_MAX_IDS];
};

/* "1,2,3" -> ids (duplicates dropped). 0, or -EINVAL / -E2BIG. */
static int parse_ids(const char *s, struct pquery *q)
{
    while (*s) {
        const char *end = strchr(s, ',');
        int64_t v;
        if (!end)
            end = s + strlen(s);
        /* Plain decimal ids as in paths: no sign, no space, no empty entry. */
        if (decimal_parse(s, (size_t)(end - s), &v) < 0 || v <= 0 || (*end && !end[1]))
            return -EINVAL;
        int dup = 0;
        for (int i = 0; i < q->n; i++)
            dup |= q->ids[i] == v;
        if (!dup) {
            if (q->n == PRESENCE_QUERY_MAX_IDS)
                return -E2BIG;
            q->ids[q->n++] = v;
        }
        s = *end ? end + 1 : end;
    }
    return q->n ? 0 : -EINVAL;
}

static void answer(void *arg, int status)
{
    struct pquery *q = arg;
    struct presence *p = q->p;
    cJSON *o, *arr;
    int64_t now = now_ms();

    if (status < 0) {
        http_respond_error(q->req, 503, "presence is not available right now");
        free(q);
        return;
    }
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "presence");
    for (int i = 0; arr && i < q->n; i++) {
        cJSON *e = cJSON_CreateObject();
        int online = presence_store_count(&p->store, q->ids[i]) > 0;
        cJSON_AddNumberToObject(e, "user_id", (double)q->ids[i]);
        cJSON_AddStringToObject(e, "status", online ? "online" : "offline");
        /* A disconnect not yet in the table (it is written in batches) is newer. */
        struct pres_user *u = online ? NULL : i64map_get(&p->users, q->ids[i]);
        int64_t seen = u && u->last_seen_at > q->seen[i] ? u->last_seen_at : q->seen[i];
        if (online)
            cJSON_AddNumberToObject(e, "last_seen_at", (double)now);
        else if (seen > 0)
            cJSON_AddNumberToObject(e, "last_seen_at", (double)seen);
        else
            cJSON_AddNullToObject(e, "last_seen_at");
        cJSON_AddItemToArray(arr, e);
    }
    http_respond_json(q->req, 200, o);
    free(q);
}

static void on_peers(void *ctx, int status, const void *reply)
{
    const struct ev_rooms_peers_reply *peers = status == 0 ? reply : NULL;
    struct pquery *q = ctx;
    struct i64map set;               /* bounded by the reply's ids */
    int k = 0;

    i64map_init(&set, 0);
    if (!peers || i64map_reserve(&set, peers->user_ids.n) < 0) {
        http_respond_error(q->req, 503, "presence is not available right now");
        free(q);
        return;
    }
    for (size_t i = 0; i < peers->user_ids.n; i++)
        if (peers->user_ids.v[i] >= 1)
            i64map_put(&set, peers->user_ids.v[i], q);
    for (int i = 0; i < q->n; i++)
        if (q->ids[i] == q->caller || i64map_get(&set, q->ids[i]))
            q->ids[k++] = q->ids[i];
    i64map_free(&set);
    q->n = k;
    if (k == 0) {
        answer(q, 0);
        return;
    }
    if (presence_seen_fetch(q->p, q->ids, q->n, q->seen, answer, q) < 0)
        answer(q, -EIO);
}

void presence_http_get(struct http_req *req, void *ctx)
{
    struct presence *p = ctx;
    struct pquery *q = calloc(1, sizeof(*q));
    char buf[PRESENCE_QUERY_MAX_IDS * 21];
    struct ev_rooms_peers ask;
    int rc;

    if (!q) {
        http_respond_error(req, 503, "out of memory");
        return;
    }
    q->p = p;
    q->req = req;
    q->caller = req->user.id;
    rc = http_query(req, "user_ids", buf, sizeof(buf));
    if (rc == 0)
        rc = parse_ids(buf, q);
    if (rc < 0) {
        http_respond_error(req, 400, rc == -E2BIG || rc == -ENOBUFS
                           ? "at most %d user_ids" : "user_ids must be a comma-separated "
                           "list of user ids (at most %d)", PRESENCE_QUERY_MAX_IDS);
        free(q);
        return;
    }
    ask = (struct ev_rooms_peers){ .user_id = q->caller };
    if (bus_request_ev(p->app->bus, &EV_ROOMS_PEERS, &ask, PRESENCE_PEERS_TIMEOUT_MS,
                       on_peers, q) < 0) {
        http_respond_error(req, 503, "presence is not available right now");
        free(q);
    }
}
