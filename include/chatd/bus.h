/* bus.h: the in-process event bus. Events are self-contained values: a topic name
 * and a JSON payload (so a bridge to an external broker could carry them when a
 * module moves to its own process). Publishing only queues: dispatch runs later on
 * the loop thread (right after the poll phase of the same loop turn, everything the
 * loop queued; src/bus/dispatch.c), in publish order, and never inside the publisher.
 * An event published from inside a handler is dispatched after that handler has
 * returned and after the other subscribers of the current event. Callbacks given to
 * bus_request never run inside it either. Other threads hand events (or loop
 * callbacks) over through a bounded lock-free MPSC ring and one uv_async_t, taken
 * for at most 0.5 ms a turn; a full ring is back-pressure on the producer
 * (bus_post_wait waits), never a loss.
 *
 * Failures: a handler that fails an event (returns < 0, or completes it with an
 * error) gets it again with exponential backoff (retry_base_ms, doubling) up to
 * max_attempts; then the event is written to the dead-letter table (in the database,
 * SQLite or PostgreSQL) with topic, payload, consumer, error, attempts and times. The table is bounded ([bus]
 * deadletter_max_rows, deadletter_max_bytes: the oldest rows go first). Dead letters
 * survive restarts; a
 * replay (chatd dlq replay, through the database) delivers the event to that
 * consumer again, and a replay that succeeds removes the row. */
#ifndef CHATD_BUS_H
#define CHATD_BUS_H

#include <stdint.h>
#include <cjson/cJSON.h>

struct chatd;
struct bus;
struct db;
struct ev_type;
struct ev_origin;

#define BUS_TOPIC_MAX 48

/* Ids name a process run: (node, run, id) is unique across processes, and a
 * request's answer goes back to the node and run that asked (reply_to is the
 * request's id there). node is 0 for the one process of today; run is drawn at
 * random each time the bus starts (bus_run_id), so ids of an earlier run of the same
 * node (a dead letter's, a broker's) never meet ours. */
struct bus_event {
    char     topic[BUS_TOPIC_MAX];
    cJSON   *payload;          /* owned by the event: the wire form */
    void    *data;             /* the decoded struct (events.h) or NULL: set by the bus
                                * before the first delivery, owned by the event */
    uint64_t id;               /* unique per process run, set by bus_event_new */
    uint64_t reply_to;         /* id of the bus_request this answers / asks, or 0 */
    int64_t  node, run;        /* the process the event (and its reply_to) came from;
                                * set by the bus that first publishes it */
    int64_t  ts;               /* ms since the epoch, creation time */
    int      refs;             /* private */
};

/* Takes ownership of payload (NULL means an empty object). NULL on OOM. */
struct bus_event *bus_event_new(const char *topic, cJSON *payload);
void bus_event_ref(struct bus_event *ev);
void bus_event_unref(struct bus_event *ev);

/* Publish on the loop thread: queues the event; no handler runs before this returns.
 * Consumes the caller's reference. 0, -ENOBUFS when 2^20 items wait already
 * (back-pressure: the event is refused), -ECANCELED after bus_close. */
int  bus_publish(struct bus *b, struct bus_event *ev);
/* Publish from a worker thread, through the ring: retries (with a short sleep) while
 * the ring is full, until it fits or the bus is closing (-ECANCELED). Consumes the
 * reference either way. */
int  bus_post_wait(struct bus *b, struct bus_event *ev);
/* Run fn(arg) on the loop thread, from any thread, through the same ring. */
int  bus_call_on_loop(struct bus *b, void (*fn)(void *arg), void *arg);
int  bus_call_on_loop_wait(struct bus *b, void (*fn)(void *arg), void *arg);

/* Typed events (event_codec.h): the struct is encoded into the wire form here, and
 * decoded for the handlers (ev->data) before the first delivery; a payload that
 * does not decode fails that delivery (retried, then dead-lettered with the reason)
 * and never reaches the handler. bus_event_new_ev: NULL when a required field is
 * missing or memory ran out; bus_publish_ev: 0 or negative (-EINVAL for a struct
 * that does not encode). */
struct bus_event *bus_event_new_ev(const struct ev_type *type, const void *data);
int  bus_publish_ev(struct bus *b, const struct ev_type *type, const void *data);

/* This process: node id and run id, and an origin naming a connection or an HTTP
 * request of it. A result whose origin names another process is not ours to
 * answer (bus_origin_is_here). */
int64_t bus_node_id(const struct bus *b);
int64_t bus_run_id(const struct bus *b);
void bus_origin_conn(const struct bus *b, uint64_t conn_id, struct ev_origin *out);
void bus_origin_http(const struct bus *b, uint64_t request_id, struct ev_origin *out);
int  bus_origin_is_here(const struct bus *b, const struct ev_origin *o);

/* Consumers. */
struct bus_delivery;   /* one attempt of one event at one consumer */
#define BUS_ASYNC 1    /* handler return: will call bus_complete() later */
typedef int (*bus_handler_fn)(struct bus_delivery *d, struct bus_event *ev, void *ctx);

/* What a dead letter keeps of an event's payload: a new object (the bus frees it;
 * ev_encode of a smaller struct), smaller than the payload when the consumer can
 * rebuild the rest on a replay (a reference to a stored message rather than a copy of
 * it), or NULL for the payload as it is. ev->data is the decoded struct, NULL when
 * the payload did not decode (then it is kept as it is: that is what failed). */
typedef cJSON *(*bus_dead_letter_fn)(const struct bus_event *ev, void *ctx);

struct bus_sub_opts {
    const char *consumer;      /* "notification.push": names the consumer in dead letters */
    int max_attempts;          /* 0 = 1 attempt, no retry and no dead letter */
    int retry_base_ms;         /* first backoff; doubles each attempt */
    bus_dead_letter_fn dead_letter;   /* optional */
};
int  bus_subscribe(struct bus *b, const char *topic, const struct bus_sub_opts *opts,
                   bus_handler_fn fn, void *ctx);
/* For BUS_ASYNC handlers: status 0 = handled, < 0 = failed (error text kept for the
 * dead letter). The delivery is freed. Loop thread only. */
void bus_complete(struct bus_delivery *d, int status, const char *error);
/* Sync handlers returning < 0 can say why: copied into the dead letter. */
void bus_delivery_set_error(struct bus_delivery *d, const char *error);
int  bus_delivery_attempt(const struct bus_delivery *d);   /* 1 for the first */
/* 1 when d replays a dead letter (its failure updates the row, its success removes it). */
int  bus_delivery_is_replay(const struct bus_delivery *d);

/* Request / reply: a request is an event whose reply_to names where the answer goes.
 * The responder (a subscriber of topic) answers with bus_reply; the requester's
 * callback runs on the loop with status 0 and the reply payload (borrowed), or with
 * -ETIMEDOUT / -ECANCELED. Returns the request id (> 0) or a negative error. */
typedef void (*bus_reply_fn)(void *ctx, int status, const cJSON *payload);
int64_t bus_request(struct bus *b, const char *topic, cJSON *payload, int timeout_ms,
                    bus_reply_fn fn, void *ctx);
/* Typed: the request struct of type (a topic with a reply descriptor) in, the
 * decoded reply struct (type->reply) out, borrowed for the callback. status < 0:
 * reply is a struct ev_error when the responder said why, else NULL; a reply that
 * does not decode comes as -EPROTO. */
typedef void (*bus_reply_ev_fn)(void *ctx, int status, const void *reply);
int64_t bus_request_ev(struct bus *b, const struct ev_type *type, const void *data,
                       int timeout_ms, bus_reply_ev_fn fn, void *ctx);
/* Answer a request event with its reply struct (status 0), or fail it with a code
 * and message (status < 0, data a struct ev_error or NULL). Any thread. */
int  bus_reply_ev(struct bus *b, const struct bus_event *request, int status,
                  const void *data);
/* The callback will not run after this (e.g. the asking connection closed). */
void bus_request_cancel(struct bus *b, int64_t request_id);
/* Answer a request event; takes payload. status 0 or negative (payload may hold
 * {"code","message"}). Safe from any thread (goes through the ring off-loop). */
int  bus_reply(struct bus *b, const struct bus_event *request, int status, cJSON *payload);

/* Lifecycle (core/lifecycle.c). bus_new before modules' init; bus_start after db is
 * open (starts dead-letter replay polling); bus_close stops timers and dispatches what
 * is still queued, in order (the loop's queue, the ring's items, then what their
 * handlers publish), every request still waiting hearing -ECANCELED, before refusing
 * more. A call's argument belongs to whoever posted it, and only running the call
 * releases it, so bus_close comes before the modules are destroyed, and always before
 * bus_free: bus_free on a bus not closed aborts rather than leak what the calls carry. */
int  bus_new(struct bus **out, struct chatd *app);
int  bus_start(struct bus *b);
void bus_close(struct bus *b);
void bus_free(struct bus *b);
/* Queue depth (ring + pending retries), for /metrics and tests. */
uint64_t bus_depth(const struct bus *b);

/* Creates or upgrades the bus's own tables (the dead letters) on db, and nothing else:
 * bus_start does it too; `chatd migrate-db` runs it alone on the target database. */
int  bus_migrate(struct db *db);

/* "chatd dlq ..." on the command line: argv[0] is "dlq". Gets the config, log and an
 * open database (no running loop). Returns the process exit status. */
int  bus_dlq_command(struct chatd *app, int argc, char **argv);

#endif
