/* bus_internal.h: the struct behind struct bus, shared by the files of src/bus/.
 * Each calls only the ones below it:
 *   bus.c          the life cycle and the loop handles
 *   dlq_poll.c     replays of dead letters
 *   dispatch.c     running the queue: events to their subscribers, replies
 *   delivery.c     one event at one consumer: attempts, retries, backoff
 *   typed_send.c   publishing, asking and answering with structs
 *   request.c      request/reply
 *   publish.c      publishing, and the hand-over ring from other threads
 *   queue.c        the dispatch queue, and waking the loop to run it
 *   typed.c        typed events decoded for handlers and requesters
 *   deadletter.c   the dead-letter table, through its store (dlq_store.h: SQLite in
 *                  dlq_store_sqlite.c and dlq_bound.c, PostgreSQL in dlq_store_pg.c);
 *                  dlq_cli.c
 *   topics.c       topics and subscriptions
 *   bus_metrics.c  counters and gauges
 *   bus_event.c    events and their references
 *   heap.c         the timer heaps
 *   origin.c       the ids of this process
 * with the codec (codec_encode.c, codec_decode.c, event_types.c) and ring.c under all. */
#ifndef CHATD_BUS_INTERNAL_H
#define CHATD_BUS_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "chatd/bus.h"
#include "chatd/i64map.h"

#define BUS_RING_CAPACITY 65536      /* items handed over by other threads */
#define BUS_DRAIN_BATCH 4096         /* ring items per turn before yielding the loop */
/* Loop time one turn may spend on ring items (and what they publish): other threads
 * can fill the ring faster than the loop empties it, and the timers and sockets wait
 * for the whole drain. Past the slice the rest waits for the next turn, in the same
 * order. The loop's own queue is not sliced (dispatch.c says why). */
#define BUS_DRAIN_SLICE_NS (500 * 1000)
#define BUS_QUEUE_MIN 1024           /* the dispatch queue's first capacity */
#define BUS_QUEUE_MAX (1u << 20)     /* events and deliveries waiting on the loop */
#define BUS_RETRY_MAX 10000          /* deliveries waiting for their next attempt */
#define BUS_REQUESTS_MAX 65536       /* requests waiting for a reply */
#define BUS_SUBS_MAX 256
#define BUS_TOPICS_MAX 256
#define BUS_TOPIC_BUCKETS 64
#define BUS_CONSUMER_MAX 64
#define BUS_ERROR_MAX 256
#define BUS_BACKOFF_MAX_MS (3600 * 1000)
#define BUS_REPLAY_POLL_MS 1000
#define BUS_REPLAY_BATCH 256         /* rows picked up per poll */
#define BUS_REPLAY_INFLIGHT_MAX 1024
/* A replay's claim on its row lasts this long unless renewed (every third of it while
 * the replay runs): a process that dies replaying leaves rows claimed that long. */
#define BUS_REPLAY_CLAIM_MS 30000

/* --- heap.c: a binary min-heap of embedded nodes, ordered by (due, insertion) ---- */
struct db;

struct heap_node {
    uint64_t due;                    /* uv_now() ms */
    uint64_t seq;                    /* ties keep insertion order */
    size_t idx;                      /* position in the heap; SIZE_MAX when out */
};
struct heap {
    struct heap_node **v;            /* owned array; nodes are not */
    size_t len, cap, max;
    uint64_t seq;
};
void heap_init(struct heap *h, size_t max);
void heap_free(struct heap *h);
int  heap_push(struct heap *h, struct heap_node *n);     /* 0 or -ENOBUFS / -ENOMEM */
struct heap_node *heap_top(const struct heap *h);
void heap_remove(struct heap *h, struct heap_node *n);
#define heap_entry(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* --- subscriptions ------------------------------------------------------------ */
struct bus_topic;
struct bus_sub {
    struct bus_sub *next;            /* next subscriber of the same topic */
    struct bus_topic *topic;
    char consumer[BUS_CONSUMER_MAX];
    int max_attempts;
    int retry_base_ms;
    bus_dead_letter_fn dead_letter;  /* may be NULL: the payload as it is */
    bus_handler_fn fn;
    void *ctx;
};
struct bus_topic {
    struct bus_topic *hnext;         /* hash chain */
    char name[BUS_TOPIC_MAX];
    struct bus_sub *subs, *last;     /* owned, in subscription order */
    const struct ev_type *type;      /* the payload's descriptor, or NULL */
    uint64_t *events_total;
};

/* One attempt series of one event at one consumer. Owned by the bus while queued or
 * waiting for a retry, by the handler between BUS_ASYNC and bus_complete. */
struct bus_delivery {
    struct bus *b;
    struct bus_sub *sub;
    struct bus_event *ev;            /* one reference */
    int attempt;                     /* attempts started */
    int64_t first_failed_at;         /* ms since the epoch, 0 before the first failure */
    int64_t replay_id;               /* dead_letters.id when this is a replay, else 0 */
    struct heap_node hn;             /* in b->retries while waiting */
    struct bus_delivery *prev, *next;/* b->live: every delivery not yet finished */
    char error[BUS_ERROR_MAX];
};

/* The dispatch queue on the loop: a growable circular array, cap a power of two. */
enum { WORK_EVENT, WORK_DELIVERY, WORK_REPLY };
struct bus_work {
    int kind;
    void *p;
};
struct work_queue {
    struct bus_work *v;              /* owned */
    size_t head, len, cap;
};

struct bus_request {
    int64_t id;
    bus_reply_fn fn;                 /* one of fn and tfn */
    bus_reply_ev_fn tfn;             /* typed: the reply decoded by reply_type */
    const struct ev_type *reply_type;
    void *ctx;
    int status;                      /* reported at the deadline: -ETIMEDOUT, -ENOENT */
    struct heap_node hn;
};

/* A call from another thread, run on the loop (bus_call_on_loop). */
struct bus_call {
    void (*fn)(void *arg);
    void *arg;
};

/* A reply on its way to the requester (through the dispatch queue or the ring). */
struct bus_reply_msg {
    int64_t id;
    int status;
    cJSON *payload;                  /* owned */
};

/* Handles live in their own allocation: their close callbacks run after bus_free. */
struct bus_handles {
    uv_async_t async;
    uv_check_t check;                /* runs the dispatch (dispatch.c) */
    uv_check_cb dispatch;            /* its callback, bus_dispatch_check: bus_wake starts it */
    uv_idle_t idle;                  /* active while work waits: the poll does not block */
    uv_timer_t retry_timer, request_timer, poll_timer;
    int open;
};

struct bus {
    struct chatd *app;
    uv_loop_t *loop;
    uv_thread_t loop_thread;
    int64_t node, run;               /* this process's ids (bus.h) */
    struct ring *ring;               /* owned */
    struct bus_handles *h;           /* owned until closed, then freed by the close cb */

    /* Producers on other threads check closing between incrementing and
     * decrementing senders; bus_close sets closing, then waits for senders to reach
     * zero: after that no thread touches the ring or the async handle. */
    atomic_int closing;
    atomic_int senders;
    int closed;                      /* bus_close finished: publishing is refused */
    int db_ready;                    /* the dead-letter table can be written */
    int dispatching;                 /* a pump runs: bus_close from a handler leaves it be */
    uint64_t dispatched;             /* items run, ever: did this turn run any */

    struct work_queue q;
    struct bus_topic *topics[BUS_TOPIC_BUCKETS];   /* owned */
    int ntopics, nsubs;
    struct bus_delivery *live;       /* owned list */

    struct heap retries;
    struct heap requests;
    /* request id -> struct bus_request (owned), at most BUS_REQUESTS_MAX (request.c
     * checks before adding). Zeroed with the bus: an unbounded map, seed 0, which is
     * fine for ids the bus hands out itself. */
    struct i64map requests_by_id;

    int poll_inflight;               /* a poll or its claim job is on its way */
    uint64_t claims_renewed_at;      /* uv_now() of the last renewal of our claims */
    int64_t replaying[BUS_REPLAY_INFLIGHT_MAX];    /* dead letter ids being replayed */
    int nreplaying;
    double dead_letter_rows, dead_letter_bytes;

    uint64_t *events_other, *retries_total, *dead_letters_total, *dead_letters_evicted;
    uint64_t scratch[4];             /* counters when there is no metrics registry */
};

/* publish.c */
int  bus_on_loop_thread(const struct bus *b);
int  bus_ring_post(struct bus *b, void *item, int wait);
/* topics.c */
struct bus_topic *bus_topic_find(struct bus *b, const char *name);
int  bus_topic_has_subs(struct bus *b, const char *topic);
struct bus_sub *bus_find_sub(struct bus *b, const char *topic, const char *consumer);
void bus_topics_free(struct bus *b);
/* bus_metrics.c */
uint64_t *bus_counter(struct bus *b, const char *name, const char *labels,
                      const char *help, int scratch);
void bus_register_metrics(struct bus *b);
/* queue.c. bus_enqueue queues an item (0, -ENOBUFS when BUS_QUEUE_MAX are waiting,
 * -ENOMEM) and has it dispatched from the loop; bus_wake makes sure the loop will
 * (the ring's wake-up). bus_queue_push queues without waking, bus_dequeue takes the
 * oldest item (1, or 0 when there is none). */
int  bus_enqueue(struct bus *b, int kind, void *p);
void bus_wake(struct bus *b);
int  bus_queue_push(struct work_queue *q, int kind, void *p);
int  bus_dequeue(struct work_queue *q, struct bus_work *w);
/* dispatch.c. bus_dispatch_check, the check handle's callback, runs a turn's share.
 * bus_dispatch_rest, at close: every queued item and ring item runs, in order, with
 * what it publishes. bus_queue_drop frees what is left. */
void bus_dispatch_check(uv_check_t *h);
void bus_dispatch_rest(struct bus *b);
void bus_queue_drop(struct bus *b);
/* delivery.c */
struct bus_delivery *delivery_new(struct bus *b, struct bus_sub *sub, struct bus_event *ev);
void delivery_free(struct bus_delivery *d);
void delivery_run(struct bus_delivery *d);
void delivery_close(struct bus *b);
/* request.c */
void request_deliver_reply(struct bus *b, struct bus_reply_msg *r);
void request_close(struct bus *b);
void request_free(struct bus *b);      /* bus_free: the map and what is left in it */
/* deadletter.c */
int  dlq_migrate(struct db *db);
void dlq_write(struct bus *b, struct bus_delivery *d);
void dlq_replay_succeeded(struct bus *b, struct bus_delivery *d);
/* The index of id in b->replaying, or -1. */
int  dlq_replaying_index(struct bus *b, int64_t id);
/* A marked row that cannot be delivered: the reason goes into the row, the mark away. */
void dlq_replay_refused(struct bus *b, int64_t id, const char *topic, const char *consumer,
                        const char *why);
/* dlq_poll.c */
int  dlq_start_polling(struct bus *b);

#define RING_TAG_EVENT 0
#define RING_TAG_CALL  1
#define RING_TAG_REPLY 2
#define RING_TAG_MASK  ((uintptr_t)3)

/* typed.c */
/* Decodes ev's payload into ev->data by its topic's type, once; 0 or -EPROTO with
 * the reason in why. */
int  bus_event_decode(struct bus_event *ev, const struct ev_type *type, char *why,
                      size_t whylen);
/* Calls a request's callback with a raw reply (typed requests decode it first). */
void request_answer(struct bus_request *r, int status, const cJSON *payload);
/* request.c: bus_request with a typed callback. */
int64_t bus_request_typed(struct bus *b, const char *topic, cJSON *payload, int timeout_ms,
                          bus_reply_ev_fn fn, const struct ev_type *reply_type, void *ctx);

#endif
