/* sync_pages.c: message.sync, one page of what a connection missed. The websocket
 * module asks for the next page only once its connection has taken the last one, so
 * a sync of a thousand rooms of 500 messages is never in memory whole: a page holds
 * at most max_messages messages, and stops at the first message that brings it to
 * max_bytes (one message always fits). Per room the messages come in seq order from
 * `after`, at most `limit` of them (what the room may still replay in this sync): a
 * room with more than that is `truncated`, one cut by the end of the page has `more`
 * and is the last of the answer. The reads run on the thread pool (db_read).
 *
 * A request naming no rooms is the sync's last word: it reads nothing and is answered
 * once the writer has come round to it, so after the message.stored events of every
 * message the pages before it could have read. A sync that ends with it has seen, held
 * back and left out each of those before it says `synced`: none comes live again. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "chatd/util.h"
#include "message_internal.h"

struct sync_ask { int64_t room_id, after; int limit; };

struct sync_page {
    struct msg_state *st;
    struct bus_event *ev;            /* a reference, dropped after the reply */
    int64_t user_id;
    struct sync_ask *rooms;          /* owned, in the order asked */
    int nrooms;
    int left;                        /* messages the page may still take */
    size_t bytes, max_bytes;
    /* The answer, built on the pool thread, encoded by bus_reply_ev on the loop. */
    struct ev_sync_room_page *pages; /* owned, one per room answered */
    size_t npages;
    struct ev_msg *msgs;             /* owned: room after room, `left` at most */
    char **strs;                     /* owned: each message's strings, one block each */
    int nmsgs;
};

/* The keys, numbers (at most 20 digits each) and frame header around a message's
 * strings in its "message" frame. */
#define ROW_FRAME_OVERHEAD 256

/* Bytes a string takes in JSON, quotes included, escaped as cJSON prints it: a body
 * of control characters is six times its length, and the budget must hold. */
static size_t json_string_bytes(const char *str)
{
    const unsigned char *t = (const unsigned char *)str;
    size_t len = 2;

    for (size_t i = 0; t && t[i]; i++) {
        if (t[i] == '"' || t[i] == '\\' || t[i] == '\b' || t[i] == '\f' || t[i] == '\n' ||
            t[i] == '\r' || t[i] == '\t')
            len += 2;
        else
            len += t[i] < 0x20 ? 6 : 1;
    }
    return len;
}

/* What a message takes in its frame, at most. */
static size_t row_bytes(const struct msg_row *m)
{
    return ROW_FRAME_OVERHEAD + json_string_bytes(m->sender) + json_string_bytes(m->body) +
           json_string_bytes(m->client_msg_id);
}

static int page_full(const struct sync_page *pg)
{
    return pg->left == 0 || pg->bytes >= pg->max_bytes;
}

/* The message, its strings copied (the row's live only in the callback). */
static int keep_msg(struct sync_page *pg, const struct msg_row *m)
{
    size_t ls = strlen(m->sender) + 1, lb = strlen(m->body) + 1;
    size_t lc = m->client_msg_id ? strlen(m->client_msg_id) + 1 : 0;
    char *b = malloc(ls + lb + lc);
    if (!b)
        return -ENOMEM;
    pg->strs[pg->nmsgs] = b;
    pg->msgs[pg->nmsgs++] = (struct ev_msg){
        .id = m->id, .room_id = m->room_id, .seq = m->seq, .sender_id = m->sender_id,
        .created_at = m->created_at, .sender = memcpy(b, m->sender, ls),
        .body = memcpy(b + ls, m->body, lb),
        .client_msg_id = lc ? memcpy(b + ls + lb, m->client_msg_id, lc) : NULL,
    };
    return 0;
}

/* A room's rows as they come, while the page and the room's share have room. */
struct room_rows {
    struct sync_page *pg;
    int want, kept;
    int64_t *last;
};

static int room_row(void *ctx, const struct msg_row *m)
{
    struct room_rows *r = ctx;
    struct sync_page *pg = r->pg;
    if (r->kept == r->want || pg->bytes >= pg->max_bytes)
        return 1;                    /* a row beyond what this page takes */
    if (!m->sender || !m->body || keep_msg(pg, m) < 0)
        return -ENOMEM;
    pg->bytes += row_bytes(m);
    pg->left--;
    r->kept++;
    *r->last = m->seq;
    return 0;
}

/* Appends the room's next messages to the page: 1 when a row beyond them exists, 0
 * when the room has no more, negative errno on failure. *last is the last seq taken. */
static int read_room(struct db_conn *conn, struct sync_page *pg, const struct sync_ask *a,
                     int want, int64_t *last)
{
    struct msg_range range = { .room_id = a->room_id, .lo = a->after, .hi = INT64_MAX,
                               .desc = 0, .limit = want + 1 };
    struct room_rows r = { .pg = pg, .want = want, .last = last };
    return MSG_STORE(pg->st, messages, conn, &range, room_row, &r);
}

/* One room's entry; 1 when the page ended inside the room, 0, or negative. A room the
 * user is not in answers no messages, so the asker's cursor moves past it all the
 * same (and learns nothing). */
static int page_room(struct db_conn *conn, struct sync_page *pg, const struct sync_ask *a)
{
    struct room_row room;
    int64_t read_seq, last = a->after;
    int want = a->limit < pg->left ? a->limit : pg->left, beyond = 0, first = pg->nmsgs;
    int rc = MSG_STORE(pg->st, room_access, conn, a->room_id, pg->user_id, &room, &read_seq);

    if (rc < 0 && rc != -ENOENT && rc != -EPERM)
        return rc;
    if (rc == 0 && (beyond = read_room(conn, pg, a, want, &last)) < 0)
        return beyond;
    int taken = pg->nmsgs - first;
    int truncated = beyond && taken == a->limit;
    pg->pages[pg->npages++] = (struct ev_sync_room_page){
        .room_id = a->room_id, .messages = pg->msgs + first, .nmessages = (size_t)taken,
        .truncated = truncated, .more = beyond && !truncated, .next_seq = last + 1,
    };
    return beyond && !truncated;
}

static int sync_fn(struct db_conn *conn, void *arg)
{
    struct sync_page *pg = arg;
    for (int i = 0; i < pg->nrooms && !page_full(pg); i++) {
        int rc = page_room(conn, pg, &pg->rooms[i]);
        if (rc < 0)
            return rc;
        if (rc == 1)
            break;
    }
    return 0;
}

static void sync_page_free(struct sync_page *pg)
{
    for (int i = 0; i < pg->nmsgs; i++)
        free(pg->strs[i]);
    free(pg->strs);
    free(pg->msgs);
    free(pg->pages);
    if (pg->ev)
        bus_event_unref(pg->ev);
    free(pg->rooms);
    free(pg);
}

static void sync_after(void *arg, int status)
{
    struct sync_page *pg = arg;
    struct msg_state *st = pg->st;

    if (status < 0) {
        msg_reply_error(st->app->bus, pg->ev, status, "internal", "could not read the messages");
    } else {
        struct ev_message_sync_reply r = { .rooms = pg->pages, .nrooms = pg->npages };
        bus_reply_ev(st->app->bus, pg->ev, 0, &r);
    }
    sync_page_free(pg);
    msg_inflight_done(st);
}

static void fence_reached(void *arg)
{
    sync_after(arg, 0);              /* no rooms: {"rooms":[]} */
}

/* The page: read from the database, or for no rooms a round through the writer. */
static int page_start(struct msg_state *st, struct sync_page *pg)
{
    if (pg->nrooms == 0)
        return writer_fence(st, fence_reached, pg);
    return db_read(st->app->db, sync_fn, sync_after, pg);
}

/* The rooms asked for, checked: after >= 0, limit 1 to 500 (0: not given, 500). */
static int parse_rooms(const struct ev_message_sync *q, struct sync_page *pg)
{
    if (q->nrooms > MSG_SYNC_ROOMS_MAX)
        return -EINVAL;
    size_t n = q->nrooms ? q->nrooms : 1;
    pg->rooms = calloc(n, sizeof(*pg->rooms));
    pg->pages = calloc(n, sizeof(*pg->pages));
    if (!pg->rooms || !pg->pages)
        return -ENOMEM;
    for (size_t i = 0; i < q->nrooms; i++) {
        const struct ev_sync_room_ask *it = &q->rooms[i];
        int64_t limit = it->limit ? it->limit : MSG_SYNC_LIMIT;
        if (it->after < 0 || limit < 1 || limit > MSG_SYNC_LIMIT)
            return -EINVAL;
        pg->rooms[pg->nrooms++] = (struct sync_ask){ it->room_id, it->after, (int)limit };
    }
    return 0;
}

/* max_messages and max_bytes (0: not given), defaulted and kept in their bounds; room
 * for the page's messages. */
static int parse_budget(const struct ev_message_sync *q, struct sync_page *pg)
{
    int64_t msgs = q->max_messages ? q->max_messages : MSG_SYNC_PAGE_DEFAULT;
    int64_t bytes = q->max_bytes ? q->max_bytes : MSG_SYNC_BYTES_DEFAULT;

    pg->left = msgs < 1 ? 1 : msgs > MSG_SYNC_LIMIT ? MSG_SYNC_LIMIT : (int)msgs;
    pg->max_bytes = bytes < 1 ? 1 : bytes > MSG_SYNC_BYTES_MAX ? MSG_SYNC_BYTES_MAX
                                                                : (size_t)bytes;
    pg->msgs = calloc((size_t)pg->left, sizeof(*pg->msgs));
    pg->strs = calloc((size_t)pg->left, sizeof(*pg->strs));
    return pg->msgs && pg->strs ? 0 : -ENOMEM;
}

int sync_page_request(struct msg_state *st, const struct bus_event *ev)
{
    struct bus *bus = st->app->bus;
    const struct ev_message_sync *q = ev->data;
    struct sync_page *pg;
    int rc;

    if (st->draining)
        return msg_reply_error(bus, ev, -ECANCELED, "unavailable",
                               "the server is shutting down");
    if (!(pg = calloc(1, sizeof(*pg))))
        return msg_reply_error(bus, ev, -ENOMEM, "unavailable", "out of memory");
    pg->st = st;
    pg->user_id = q->user_id;
    if ((rc = parse_budget(q, pg)) < 0 || (rc = parse_rooms(q, pg)) < 0) {
        sync_page_free(pg);
        return msg_reply_error(bus, ev, rc, rc == -ENOMEM ? "unavailable" : "invalid_argument",
                               "sync rooms: room_id, after and limit (1 to 500) each");
    }
    pg->ev = (struct bus_event *)ev;
    bus_event_ref(pg->ev);
    if (page_start(st, pg) < 0) {
        sync_page_free(pg);
        return msg_reply_error(bus, ev, -EAGAIN, "unavailable",
                               "the database is not available");
    }
    st->inflight++;
    return 0;
}
