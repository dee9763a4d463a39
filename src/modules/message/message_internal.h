/* message_internal.h: the message module's private interfaces. The module owns
 * rooms, memberships, messages and read markers, kept by its store (message_store.h).
 * Writes go through the database's writer thread as db_jobs (group commit); reads run
 * on the thread pool; the loop thread only validates, queues and answers. */
#ifndef CHATD_MESSAGE_INTERNAL_H
#define CHATD_MESSAGE_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include "chatd/chatd.h"
#include "chatd/db.h"
#include "chatd/events.h"
#include "chatd/http.h"
#include "chatd/i64map.h"
#include "message_store.h"

struct bus_event;

#define MSG_PENDING_MAX       4096   /* HTTP posts waiting for their commit; more: 503 */
#define MSG_CACHE_ROOMS       4096   /* rooms kept in the membership cache (LRU) */
#define MSG_CACHE_LOADS_MAX   64     /* concurrent cache loads; more: the typing is dropped */
#define MSG_ROOM_MAX_MEMBERS  1000   /* members of one room */
#define MSG_CLIENT_ID_MAX     128    /* bytes of client_msg_id */
#define MSG_HISTORY_DEFAULT   50
#define MSG_HISTORY_MAX       200
#define MSG_SYNC_LIMIT        500    /* messages per room in one sync */
#define MSG_SYNC_ROOMS_MAX    1000   /* rooms in one sync page request */
#define MSG_SYNC_PAGE_DEFAULT 64     /* messages in one sync page, unless asked */
#define MSG_SYNC_BYTES_DEFAULT (256 * 1024)   /* about this much of them, unless asked */
#define MSG_SYNC_BYTES_MAX    (16 << 20)
#define MSG_LOOKUP_TIMEOUT_MS 5000
#define MSG_LIMIT_USERS       65536  /* senders remembered by the send rate limit (LRU) */
#define MSG_BATCH_MAX         1024   /* messages in one writer job */
#define MSG_BATCHES_OUT_MAX   2      /* batches with the writer: the one it commits and
                                        the next, waiting, so it never waits for us */
#define MSG_QUEUED_MAX        DB_WRITE_QUEUE_MAX   /* messages waiting for a commit;
                                                     more: 503 */

/* ---------- membership cache (member_cache.c): loop thread only ---------- */
struct mcache;
int  mcache_new(struct mcache **out, size_t capacity);
void mcache_free(struct mcache *c);
/* Borrowed array valid until the next call that changes the cache; NULL on a miss.
 * A hit makes the room the most recently used. */
const int64_t *mcache_get(struct mcache *c, int64_t room_id, int *n);
/* Replaces the room's entry (copying ids); evicts the least recently used past the
 * capacity. 0 or -ENOMEM. */
int  mcache_put(struct mcache *c, int64_t room_id, const int64_t *ids, int n);
/* Keep a cached entry in step with a committed change; no-op when not cached. */
void mcache_add_member(struct mcache *c, int64_t room_id, int64_t user_id);
void mcache_remove_member(struct mcache *c, int64_t room_id, int64_t user_id);
size_t mcache_size(const struct mcache *c);
/* Bumped on every membership change: a load that started before a change must not
 * fill the cache with what it read. */
uint64_t mcache_epoch(const struct mcache *c);
void mcache_bump_epoch(struct mcache *c);

/* ---------- the HTTP posts waiting for a commit (pending.c) ---------- */
struct pending_table {
    struct i64map map;               /* request id -> struct http_req, at most max */
};
int  pending_init(struct pending_table *t, size_t max);
void pending_free(struct pending_table *t);
int  pending_put(struct pending_table *t, struct http_req *req);   /* 0, -ENOSPC */
struct http_req *pending_take(struct pending_table *t, uint64_t req_id);
size_t pending_count(const struct pending_table *t);

/* ---------- history paging (history.c): pure ---------- */
/* The rows of one page: seq > lo AND seq < hi. desc: the newest rows below hi come
 * first (paging back, or the default newest page); else the oldest above lo (paging
 * forward with after). The query asks for limit + 1 rows; the extra one only tells
 * that more exist (has_more) in the direction of paging. */
struct msg_page {
    int64_t lo, hi;
    int     desc;
    int     limit;
};
/* before/after/limit as the raw query strings, NULL when absent. 0 or -EINVAL with
 * *err a static message. */
int msg_page_plan(const char *before, const char *after, const char *limit,
                  struct msg_page *out, const char **err);
/* Rows to keep out of `fetched`, and whether more exist. */
int msg_page_keep(const struct msg_page *p, int fetched, int *has_more);
/* Strict decimal for query values and ids: decimal_parse (digits only, no leading
 * zero, <= 2^53). */
int msg_parse_u64(const char *s, int64_t *out);

/* ---------- rows and their JSON (row_json.c) ---------- */
/* (struct msg_row, room_row and member_ref are the store's: message_store.h.) */
cJSON *msg_row_json(const struct msg_row *m);
cJSON *room_row_json(const struct room_row *r);
cJSON *members_json(const struct member_ref *m, int n);

/* ---------- module state ---------- */
struct metrics_hist;
struct msg_batch;

struct msg_state {
    struct chatd *app;               /* not owned */
    struct msg_store store;          /* owned: the tables, behind message_store.h */
    int max_body_bytes;
    int draining;
    void (*drain_done)(void *state);
    int inflight;                    /* room jobs, reads and lookups not yet back */
    int jobs_inflight;               /* messages not done yet (atomic: read by tests) */
    struct msg_batch *open_batch;    /* owned: the batch gathering; may be NULL */
    int batches_out;                 /* batches handed to the writer, not back yet */
    uv_check_t flush;                /* hands the open batch over at the end of a turn */
    int flush_init;                  /* 1 once flush is initialized (closed at drain) */
    void (*flush_closed_cb)(struct msg_state *st);
    uv_timer_t drain_timer;          /* polls for the end of in-flight work */
    struct pending_table pending;    /* owned */
    struct mcache *members;          /* owned */
    struct ratelimit *send_limit;    /* owned: [limits] messages_per_s, per sender */
    int cache_loads;                 /* cache loads on the pool right now */
    uint64_t w_batches;              /* message batches committed (tests) */
    /* Metrics (owned by app->metrics). */
    uint64_t *m_stored, *m_duplicates, *m_rejected;
    struct metrics_hist *m_latency, *m_batch;
};

/* A store op on the module's store: MSG_STORE(st, room_get, conn, id, &row). */
#define MSG_STORE(st, op, ...) ((st)->store.ops->op((st)->store.impl, __VA_ARGS__))

/* Loop: one unit of in-flight work ended (the drain waits for none to be left). Here,
 * beside the state, so that the files message_module.c wires need nothing of it. */
static inline void msg_inflight_done(struct msg_state *st)
{
    st->inflight--;
}

/* message_module.c */
/* The store's migrations on db (init; tests). */
int  msg_migrate(struct msg_state *st, struct db *db);
int  msg_subscribe(struct msg_state *st);        /* bus subscriptions (start) */
int  msg_state_new(struct msg_state **out, struct chatd *app);
void msg_state_free(struct msg_state *st);

/* ---------- writer side (writer_jobs.c) ---------- */
/* Queues a job in which the store releases what it keeps for the writer (its
 * prepared statements); then fn(arg) on the loop. */
int  writer_finalize(struct msg_state *st, void (*fn)(void *arg), void *arg);
/* Queues a job that writes nothing; fn(arg) on the loop once every result (message.stored
 * ...) of the writes queued before it was published. 0 or negative (db_write's). */
int  writer_fence(struct msg_state *st, void (*fn)(void *arg), void *arg);
/* The api.md error code of an HTTP status (message.rejected's code). */
const char *msg_code_of_status(int status);

/* ---------- messages (messages.c) ---------- */
/* Validates and queues a submitted message; on any refusal publishes
 * message.rejected. Loop thread. */
void msg_submit(struct msg_state *st, const struct ev_message_submitted *m);
/* One message on its way to the writer (inside a struct msg_batch): msg_job.c. */
struct msg_job {
    struct msg_state *st;
    int64_t room_id, sender_id;
    const char *sender, *body, *client_msg_id;  /* in the job's own allocation */
    struct ev_origin origin;                 /* copied from message.submitted */
    uint64_t t0_ns;                          /* when it was queued */
    /* Results (writer). */
    int status;                              /* http status: 201, 200 duplicate, or error */
    const char *errmsg;                      /* static */
    struct msg_row row;                      /* the stored (or first) message */
    char *dup;                               /* owned: a duplicate's strings (row) */
    const int64_t *member_ids; int nmembers; /* borrowed from the batch's room */
};
struct msg_job *msg_job_new(struct msg_state *st, int64_t room_id, int64_t sender_id,
                            const char *sender, const char *body, const char *cmid,
                            const struct ev_origin *origin);
void msg_job_free(struct msg_job *j);
void msg_job_reset(struct msg_job *j);
void msg_job_fail(struct msg_job *j, int status, const char *msg);
/* Loop, after the commit: publishes message.stored or message.rejected; frees j. */
void msg_job_post_result(struct msg_state *st, struct msg_job *j);

/* ---------- batches of messages (batch.c, batch_apply.c) ---------- */
struct msg_broom {                           /* a room as one batch sees it */
    int64_t room_id;
    int64_t *ids; int n;                     /* members, owned */
    int exists;
    int64_t seq0, seq;                       /* last_seq when read, last one given */
};
struct bkey;
struct msg_batch {
    struct db_job base;
    struct msg_state *st;
    struct msg_job **jobs; int n, cap;       /* owned */
    /* Writer, between db_write and after(). */
    int failed;                              /* the error that undid the batch, or 0 */
    struct msg_broom *rooms; int nrooms;     /* owned */
    struct msg_breader { int64_t room_id, user_id, seq; } *readers;
    int nreaders;
    struct bkey *keys; size_t keys_cap, keys_mask;
};
struct msg_batch *msg_batch_new(struct msg_state *st);
void msg_batch_free(struct msg_batch *b);   /* frees the jobs it holds */
int  msg_batch_add(struct msg_batch *b, struct msg_job *j);
/* Loop: hands j to the open batch (0), or -ENOMEM (j stays the caller's then). The
 * open batch goes to the writer at the end of the loop turn unless the writer has
 * MSG_BATCHES_OUT_MAX of ours, else when one comes back (or once full); never added
 * to after that. */
int  msg_batch_queue(struct msg_state *st, struct msg_job *j);
/* Loop: closes the end-of-turn handle (drain, tests); cb(st) once it is closed, at
 * once when it was never opened. */
void msg_batch_close(struct msg_state *st, void (*cb)(struct msg_state *st));
/* Loop: before queueing another writer job of this module, so messages accepted
 * after it are not stored before it. */
void msg_batch_close_open(struct msg_state *st);
/* batch_apply.c. The batch's db_job apply (writer); reset drops what an apply read. */
int  batch_apply(struct db_conn *conn, struct db_job *job);
void msg_batch_reset(struct msg_batch *b);

/* ---------- what became of a message (results.c) ---------- */
struct msg_outcome {
    const struct ev_origin *origin;          /* the submitted one's */
    const char *client_msg_id;               /* may be NULL */
    int64_t room_id;
    int status;                              /* 201, 200 (a duplicate) or an error */
    const char *errmsg;                      /* with an error */
    int64_t retry_after_ms;                  /* with 429 */
    const struct msg_row *row;               /* stored (201, 200), else NULL */
    const int64_t *member_ids; int nmembers;
};
void msg_job_outcome(const struct msg_job *j, struct msg_outcome *o);
/* The events' structs (m holds the message; both borrow from o). */
void msg_stored_ev(const struct msg_outcome *o, struct ev_message_stored *s, struct ev_msg *m);
void msg_rejected_ev(const struct msg_outcome *o, struct ev_message_rejected *r);
/* Answers the HTTP post when it is ours, then publishes message.stored or
 * message.rejected. bus_publish_ev's result. */
int  msg_publish_outcome(struct msg_state *st, const struct msg_outcome *o);

/* ---------- validation (validate.c), shared by HTTP and the bus ---------- */
enum msg_fault {
    MSG_VALID = 0,
    MSG_FAULT_ROOM_ID,               /* not a positive integer */
    MSG_FAULT_BODY_TYPE,             /* missing, or not a string */
    MSG_FAULT_BODY_EMPTY,
    MSG_FAULT_BODY_LONG,             /* past [message] max_body_bytes */
    MSG_FAULT_BODY_UTF8,
    MSG_FAULT_BODY_CONTROL,
    MSG_FAULT_BODY_BIDI,
    MSG_FAULT_CMID_TYPE,             /* present, neither a string nor null */
    MSG_FAULT_CMID_LENGTH,           /* not 1 to MSG_CLIENT_ID_MAX bytes */
    MSG_FAULT_CMID_UTF8,
    MSG_FAULT_CMID_CONTROL,
    MSG_FAULT_CMID_BIDI,
    MSG_FAULT__COUNT
};
/* Stands for a field of another JSON type than string (body or client_msg_id). */
extern const char MSG_NOT_A_STRING[];
/* body: NULL or MSG_NOT_A_STRING is refused; client_msg_id: NULL for none. */
enum msg_fault msg_validate(const struct msg_state *st, int64_t room_id, const char *body,
                            const char *client_msg_id);
/* The words for a fault that both edges use: message.rejected's message (code
 * invalid_argument), and the HTTP 400's text where the route has none of its own. */
const char *msg_fault_text(enum msg_fault f);

/* ---------- rooms and members (rooms.c, members.c) ---------- */
enum room_op { ROOM_OP_CREATE = 1, ROOM_OP_DM, ROOM_OP_ADD, ROOM_OP_REMOVE };
struct room_job {
    struct db_job base;
    struct msg_state *st;
    int op;
    struct http_req *req;                    /* answered on the loop */
    int64_t actor_id; char actor_name[40];
    int64_t room_id;
    struct member_ref target;                /* add / remove / dm peer; id 0 = unknown */
    char unknown[256];                       /* usernames that auth does not know */
    char name[MSG_ROOM_NAME_MAX + 1];        /* create */
    struct member_ref *invitees; int ninvitees;   /* create: owned */
    /* Results (writer). */
    int status; const char *errmsg;
    char errbuf[320];                        /* errmsg when it names something */
    int changed;                             /* a row was written */
    struct room_row room;
    int64_t read_seq;                        /* the actor's marker (dm) */
    struct member_ref *members; int nmembers; /* owned: members after (create/dm/add),
                                                 before (remove) */
};
struct room_job *room_job_new(struct msg_state *st, int op, struct http_req *req);
void room_job_free(struct room_job *j);
/* A room job that fails answers status with msg; returns rc (negative). Here rather
 * than in rooms.c: members.c uses it too, and rooms.c calls into members.c. */
static inline int room_job_fail(struct room_job *j, int status, const char *msg, int rc)
{
    j->status = status;
    j->errmsg = msg;
    return rc;
}
int  room_job_apply(struct db_conn *conn, struct db_job *job);
/* Queue the job; on failure answers the request and frees the job. */
void room_job_queue(struct room_job *j);
/* Membership-changing applies (members.c). */
int  room_apply_add(struct msg_state *st, struct db_conn *conn, struct room_job *j);
int  room_apply_remove(struct msg_state *st, struct db_conn *conn, struct room_job *j);
int  room_load_member_refs(struct msg_state *st, struct db_conn *conn, struct room_job *j);
/* A username as users are stored: lower case. 0 or -EINVAL when not a username. */

/* ---------- reads (reads.c) ---------- */
/* Moves a read marker (HTTP when req is set, else from the bus). Loop thread. */
void reads_submit(struct msg_state *st, struct http_req *req, int64_t room_id,
                  int64_t user_id, int64_t seq);
/* The marker's writer job, as reads_submit makes and queues it (tests run its apply
 * inside jobs of their own). NULL when out of memory. */
struct read_job;
struct read_job *read_job_new(struct msg_state *st, struct http_req *req, int64_t room_id,
                              int64_t user_id, int64_t seq);
int  read_job_apply(struct db_conn *conn, struct db_job *job);
/* The answer the job came to on the writer: 204, 403, 404, 500 (0 before apply). */
int  read_job_status(const struct read_job *j);
void read_job_free(struct read_job *j);

/* ---------- routes (routes_rooms.c, routes_rooms_read.c, routes_messages.c) ---------- */
int  routes_rooms_add(struct msg_state *st);
int  routes_messages_add(struct msg_state *st);
/* routes_rooms_read.c: GET /v1/rooms and GET /v1/rooms/{id} (ctx is the msg_state). */
void rooms_route_list(struct http_req *req, void *ctx);
void rooms_route_show(struct http_req *req, void *ctx);
/* Bus handlers (messages.c, sync_pages.c, members.c, typing.c) */
/* Answers a bus request with status and {"code","message"}. Returns bus_reply_ev's. */
int  msg_reply_error(struct bus *bus, const struct bus_event *request, int status,
                     const char *code, const char *message);
int  sync_page_request(struct msg_state *st, const struct bus_event *ev);
int  rooms_peers_request(struct msg_state *st, const struct bus_event *ev);
void typing_submit(struct msg_state *st, const struct ev_typing_submitted *t);
void history_get(struct msg_state *st, struct http_req *req);

#endif
