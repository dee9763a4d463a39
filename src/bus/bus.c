/* bus.c: the event bus on the loop thread: events, the hand-over ring from other
 * threads, the dispatch queue, subscriptions and the bus's life cycle.
 *
 * Every event goes through one FIFO (struct work_queue) and is dispatched by
 * bus_pump; a pump already running (we are inside a handler) only queues, so a
 * handler never runs inside another handler and events keep their publish order. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/db.h"
#include "chatd/event_codec.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/ring.h"
#include "chatd/util.h"
#include "bus_internal.h"

struct bus_call {
    void (*fn)(void *arg);
    void *arg;
};

/* --- events ------------------------------------------------------------------------ */

/* Event ids only need to be unique within the process: one counter for every bus. */
static atomic_uint_fast64_t next_event_id = 1;

struct bus_event *bus_event_new(const char *topic, cJSON *payload)
{
    struct bus_event *ev;
    size_t n = topic ? strlen(topic) : 0;

    if (n == 0 || n >= BUS_TOPIC_MAX || !(ev = calloc(1, sizeof(*ev)))) {
        cJSON_Delete(payload);
        return NULL;
    }
    if (!payload && !(payload = cJSON_CreateObject())) {
        free(ev);
        return NULL;
    }
    memcpy(ev->topic, topic, n + 1);
    ev->payload = payload;
    ev->id = atomic_fetch_add_explicit(&next_event_id, 1, memory_order_relaxed);
    ev->ts = now_ms();
    ev->refs = 1;
    return ev;
}

void bus_event_ref(struct bus_event *ev)
{
    __atomic_fetch_add(&ev->refs, 1, __ATOMIC_RELAXED);
}

void bus_event_unref(struct bus_event *ev)
{
    if (!ev || __atomic_sub_fetch(&ev->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    ev_free(ev->data);
    cJSON_Delete(ev->payload);
    free(ev);
}

/* --- topics and subscriptions -------------------------------------------------------- */

static unsigned topic_hash(const char *s)
{
    unsigned h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h % BUS_TOPIC_BUCKETS;
}

static struct bus_topic *topic_find(struct bus *b, const char *name)
{
    for (struct bus_topic *t = b->topics[topic_hash(name)]; t; t = t->hnext)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

/* Topic names become label values: keep them to a tame alphabet. */
static int label_safe(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static uint64_t *counter(struct bus *b, const char *name, const char *labels,
                         const char *help, int scratch)
{
    if (!b->app->metrics)
        return &b->scratch[scratch];
    return metrics_counter(b->app->metrics, name, labels, help);
}

static struct bus_topic *topic_get(struct bus *b, const char *name)
{
    struct bus_topic *t = topic_find(b, name);
    char labels[BUS_TOPIC_MAX + 16];

    if (t || b->ntopics >= BUS_TOPICS_MAX || !label_safe(name) || !(t = calloc(1, sizeof(*t))))
        return t;
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->type = ev_type_of_topic(name);
    snprintf(labels, sizeof(labels), "topic=\"%s\"", name);
    t->events_total = counter(b, "chatd_bus_events_total", labels,
                              "Events dispatched by the bus, by topic.", 0);
    unsigned h = topic_hash(name);
    t->hnext = b->topics[h];
    b->topics[h] = t;
    b->ntopics++;
    return t;
}

int bus_subscribe(struct bus *b, const char *topic, const struct bus_sub_opts *opts,
                  bus_handler_fn fn, void *ctx)
{
    struct bus_topic *t;
    struct bus_sub *s;

    if (!topic || !fn || strlen(topic) >= BUS_TOPIC_MAX)
        return -EINVAL;
    if (b->nsubs >= BUS_SUBS_MAX)
        return -ENOBUFS;
    if (!(t = topic_get(b, topic)))
        return b->ntopics >= BUS_TOPICS_MAX ? -ENOBUFS : -ENOMEM;
    if (!(s = calloc(1, sizeof(*s))))
        return -ENOMEM;
    snprintf(s->consumer, sizeof(s->consumer), "%s",
             opts && opts->consumer ? opts->consumer : topic);
    s->max_attempts = opts && opts->max_attempts > 0 ? opts->max_attempts : 0;
    s->retry_base_ms = opts && opts->retry_base_ms > 0 ? opts->retry_base_ms : 0;
    s->dead_letter = opts ? opts->dead_letter : NULL;
    s->fn = fn;
    s->ctx = ctx;
    s->topic = t;
    if (t->last)
        t->last->next = s;
    else
        t->subs = s;
    t->last = s;
    b->nsubs++;
    return 0;
}

int bus_topic_has_subs(struct bus *b, const char *topic)
{
    struct bus_topic *t = topic_find(b, topic);
    return t && t->subs;
}

struct bus_sub *bus_find_sub(struct bus *b, const char *topic, const char *consumer)
{
    struct bus_topic *t = topic_find(b, topic);

    for (struct bus_sub *s = t ? t->subs : NULL; s; s = s->next)
        if (strcmp(s->consumer, consumer) == 0)
            return s;
    return NULL;
}

/* --- the dispatch queue ---------------------------------------------------------------- */

int bus_enqueue(struct bus *b, int kind, void *p)
{
    struct work_queue *q = &b->q;

    if (q->len == q->cap) {
        if (q->cap >= BUS_QUEUE_MAX)
            return -ENOBUFS;
        size_t cap = q->cap ? q->cap * 2 : 1024;
        struct bus_work *v = malloc(cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        for (size_t i = 0; i < q->len; i++)
            v[i] = q->v[(q->head + i) % q->cap];
        free(q->v);
        q->v = v;
        q->cap = cap;
        q->head = 0;
    }
    q->v[(q->head + q->len) % q->cap] = (struct bus_work){ kind, p };
    q->len++;
    return 0;
}

static int dequeue(struct bus *b, struct bus_work *w)
{
    struct work_queue *q = &b->q;

    if (q->len == 0)
        return 0;
    *w = q->v[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    return 1;
}

static void dispatch_event(struct bus *b, struct bus_event *ev)
{
    struct bus_topic *t = topic_find(b, ev->topic);

    METRIC_INC(t ? t->events_total : b->events_other);
    for (struct bus_sub *s = t ? t->subs : NULL; s; s = s->next) {
        struct bus_delivery *d = delivery_new(b, s, ev);
        if (!d) {
            LOG_ERROR(b->app, "bus", "out of memory delivering topic=%s consumer=%s",
                      ev->topic, s->consumer);
            continue;
        }
        delivery_run(d);
    }
    bus_event_unref(ev);
}

/* Inside a ring drain whose slice is over, what is queued waits for the next drain
 * (events published by a ring item's call, e.g. the results of a whole group of
 * writes, are dispatched over several turns). Elsewhere everything is dispatched. */
static int slice_over(const struct bus *b)
{
    return b->slice_end && uv_hrtime() >= b->slice_end;
}

void bus_pump(struct bus *b)
{
    struct bus_work w;

    if (b->dispatching)
        return;
    b->dispatching = 1;
    while (!slice_over(b) && dequeue(b, &w)) {
        if (w.kind == WORK_EVENT)
            dispatch_event(b, w.p);
        else if (w.kind == WORK_DELIVERY)
            delivery_run(w.p);
        else
            request_deliver_reply(b, w.p);
    }
    b->dispatching = 0;
}

/* An event takes the ids of the process that first publishes it; one that came
 * from another process keeps its own. */
static void stamp(const struct bus *b, struct bus_event *ev)
{
    if (!ev->run) {
        ev->node = b->node;
        ev->run = b->run;
    }
}

int bus_publish(struct bus *b, struct bus_event *ev)
{
    int rc;

    if (!ev)
        return -EINVAL;
    stamp(b, ev);
    if (b->closed) {
        bus_event_unref(ev);
        return -ECANCELED;
    }
    if ((rc = bus_enqueue(b, WORK_EVENT, ev)) < 0) {
        LOG_ERROR(b->app, "bus", "dispatch queue full topic=%s", ev->topic);
        bus_event_unref(ev);
        return rc;
    }
    bus_pump(b);
    return 0;
}

/* --- the ring: hand-over from other threads ------------------------------------------ */

int bus_on_loop_thread(const struct bus *b)
{
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &b->loop_thread);
}

static void short_sleep(void)
{
    struct timespec ts = { 0, 200 * 1000 };
    nanosleep(&ts, NULL);
}

/* Pushes one tagged item and wakes the loop. wait: retry while the ring is full. */
int bus_ring_post(struct bus *b, void *item, int wait)
{
    int rc;

    for (;;) {
        atomic_fetch_add(&b->senders, 1);
        if (atomic_load(&b->closing)) {
            atomic_fetch_sub(&b->senders, 1);
            return -ECANCELED;
        }
        rc = ring_push(b->ring, item);
        if (rc == 0) {
            /* The push must be visible before the wake-up (libuv issue 4584). */
            atomic_thread_fence(memory_order_seq_cst);
            uv_async_send(&b->h->async);
        }
        atomic_fetch_sub(&b->senders, 1);
        if (rc != -EAGAIN || !wait)
            return rc;
        short_sleep();
    }
}

int bus_post(struct bus *b, struct bus_event *ev)
{
    if (!ev)
        return -EINVAL;
    stamp(b, ev);
    return bus_ring_post(b, ev, 0);
}

int bus_post_wait(struct bus *b, struct bus_event *ev)
{
    int rc;

    if (!ev)
        return -EINVAL;
    stamp(b, ev);
    if ((rc = bus_ring_post(b, ev, 1)) < 0)
        bus_event_unref(ev);
    return rc;
}

static int call_post(struct bus *b, void (*fn)(void *), void *arg, int wait)
{
    struct bus_call *c = malloc(sizeof(*c));
    int rc;

    if (!c)
        return -ENOMEM;
    c->fn = fn;
    c->arg = arg;
    if ((rc = bus_ring_post(b, (void *)((uintptr_t)c | RING_TAG_CALL), wait)) < 0)
        free(c);
    return rc;
}

int bus_call_on_loop(struct bus *b, void (*fn)(void *arg), void *arg)
{
    return call_post(b, fn, arg, 0);
}

int bus_call_on_loop_wait(struct bus *b, void (*fn)(void *arg), void *arg)
{
    return call_post(b, fn, arg, 1);
}

/* Handles one ring item. A call runs at once: its argument is the caller's, and only
 * the call knows how to release it. An event or a reply goes through the dispatch
 * queue; one that does not fit there is dropped (the bus owns both, so it frees them). */
static void ring_item(struct bus *b, void *p)
{
    uintptr_t tag = (uintptr_t)p & RING_TAG_MASK;
    void *item = (void *)((uintptr_t)p & ~RING_TAG_MASK);

    if (tag == RING_TAG_CALL) {
        struct bus_call c = *(struct bus_call *)item;
        free(item);
        c.fn(c.arg);
        return;
    }
    int kind = tag == RING_TAG_EVENT ? WORK_EVENT : WORK_REPLY;
    if (bus_enqueue(b, kind, item) < 0) {
        LOG_ERROR(b->app, "bus", "dispatch queue full: item from another thread dropped");
        if (kind == WORK_EVENT) {
            bus_event_unref(item);
        } else {
            cJSON_Delete(((struct bus_reply_msg *)item)->payload);
            free(item);
        }
        return;
    }
    bus_pump(b);
}

/* Events left from the last drain first, then ring items, until both are empty,
 * BUS_DRAIN_BATCH items were taken or the slice is used up; 1 when work may be left.
 * Everything goes through the one FIFO, so order holds across slices. */
int bus_drain_some(struct bus *b, uint64_t budget_ns)
{
    int n = 0, more = 1;
    void *p;

    b->slice_end = uv_hrtime() + budget_ns;
    bus_pump(b);
    while (b->q.len == 0) {
        if (n >= BUS_DRAIN_BATCH || slice_over(b))
            goto out;
        if ((p = ring_pop(b->ring)) == NULL) {
            more = 0;
            goto out;
        }
        ring_item(b, p);
        n++;
    }
out:
    b->slice_end = 0;
    return more;
}

static void on_async(uv_async_t *a)
{
    struct bus *b = a->data;

    /* Wake-ups coalesce, so take everything there is, but in slices: a flood from
     * the writer must not keep the loop from its timers and sockets. The async is
     * sent again for what is left: it runs in the next turn's poll phase, after the
     * timers, and items keep their order since only this callback pops the ring. */
    if (bus_drain_some(b, BUS_DRAIN_SLICE_NS) && !atomic_load(&b->closing))
        uv_async_send(&b->h->async);
}

/* --- metrics ------------------------------------------------------------------------------ */

uint64_t bus_depth(const struct bus *b)
{
    return ring_size(b->ring) + b->q.len + b->retries.len;
}

static double depth_gauge(void *ctx)
{
    return (double)bus_depth(ctx);
}

static double dead_letters_gauge(void *ctx)
{
    return ((struct bus *)ctx)->dead_letter_rows;
}

static double dead_letter_bytes_gauge(void *ctx)
{
    return ((struct bus *)ctx)->dead_letter_bytes;
}

static void register_metrics(struct bus *b)
{
    struct metrics *m = b->app->metrics;

    b->events_other = counter(b, "chatd_bus_events_total", "topic=\"other\"",
                              "Events dispatched by the bus, by topic.", 0);
    b->retries_total = counter(b, "chatd_bus_retries_total", NULL,
                               "Failed deliveries scheduled for another attempt.", 1);
    b->dead_letters_total = counter(b, "chatd_dead_letters_total", NULL,
                                    "Events written to the dead-letter table.", 2);
    b->dead_letters_evicted = counter(b, "chatd_dead_letters_evicted_total", NULL,
                                      "Dead letters removed, oldest first, to keep the table"
                                      " within [bus] deadletter_max_rows and"
                                      " deadletter_max_bytes.", 3);
    if (!m)
        return;
    metrics_gauge_fn(m, "chatd_bus_queue_depth", NULL,
                     "Events waiting in the bus: ring, dispatch queue and retries.",
                     depth_gauge, b);
    metrics_gauge_fn(m, "chatd_dead_letters", NULL, "Rows in the dead-letter table.",
                     dead_letters_gauge, b);
    metrics_gauge_fn(m, "chatd_dead_letter_bytes", NULL,
                     "Bytes of topic, payload, consumer and error in the dead-letter table.",
                     dead_letter_bytes_gauge, b);
}

/* --- life cycle ---------------------------------------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
    struct bus_handles *hs = h->data;
    if (--hs->open == 0)
        free(hs);
}

static int handles_init(struct bus *b)
{
    struct bus_handles *h = calloc(1, sizeof(*h));
    int rc;

    if (!h)
        return -ENOMEM;
    if ((rc = uv_async_init(b->loop, &h->async, on_async)) < 0) {
        free(h);
        return rc;
    }
    uv_timer_init(b->loop, &h->retry_timer);
    uv_timer_init(b->loop, &h->request_timer);
    uv_timer_init(b->loop, &h->poll_timer);
    h->async.data = b;
    h->retry_timer.data = h->request_timer.data = h->poll_timer.data = b;
    /* The async handle stays referenced: results from other threads (a commit's
     * done()) may still be on their way while nothing else is active, e.g. when a
     * module drains. bus_close releases the loop. */
    h->open = 4;
    b->h = h;
    return 0;
}

static void handles_close(struct bus *b)
{
    struct bus_handles *h = b->h;
    uv_handle_t *all[] = { (uv_handle_t *)&h->async, (uv_handle_t *)&h->retry_timer,
                           (uv_handle_t *)&h->request_timer, (uv_handle_t *)&h->poll_timer };

    b->h = NULL;
    for (int i = 0; i < 4; i++) {
        all[i]->data = h;
        uv_close(all[i], handle_closed);
    }
}

/* 48 random bits (never 0): exact in a JSON number, and two runs of one node meet
 * the same id once in 2^24 pairs of runs. */
static int64_t bus_draw_run_id(void)
{
    uint64_t r = 0;

    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
    r &= (1ull << 48) - 1;
    return r ? (int64_t)r : 1;
}

int bus_new(struct bus **out, struct chatd *app)
{
    struct bus *b = calloc(1, sizeof(*b));
    int rc;

    if (!b)
        return -ENOMEM;
    b->app = app;
    b->loop = app->loop;
    b->loop_thread = uv_thread_self();
    b->node = 0;
    b->run = bus_draw_run_id();
    atomic_init(&b->closing, 0);
    atomic_init(&b->senders, 0);
    heap_init(&b->retries, BUS_RETRY_MAX);
    heap_init(&b->requests, BUS_REQUESTS_MAX);
    if ((rc = ring_new(&b->ring, BUS_RING_CAPACITY)) < 0 || (rc = handles_init(b)) < 0) {
        ring_free(b->ring);
        free(b);
        return rc;
    }
    register_metrics(b);
    *out = b;
    return 0;
}

int bus_start(struct bus *b)
{
    int rc;

    if (!b->app->db)
        return 0;   /* no database (tests): dead letters are logged, not stored */
    if ((rc = dlq_migrate(b->app->db)) < 0)
        return rc;
    b->db_ready = 1;
    return dlq_start_polling(b);
}

/* Stops producers, then empties the ring, dispatching what is left. */
static void shut(struct bus *b)
{
    void *p;

    atomic_store(&b->closing, 1);
    while (atomic_load(&b->senders) > 0)
        sched_yield();
    uv_timer_stop(&b->h->poll_timer);
    /* With no sender left, every claimed slot is published: one pass empties it. */
    while ((p = ring_pop(b->ring)) != NULL)
        ring_item(b, p);
    bus_pump(b);   /* what a cut-short drain left */
    delivery_close(b);
    request_close(b);
    b->db_ready = 0;
    b->closed = 1;
    handles_close(b);
}

void bus_close(struct bus *b)
{
    if (!b || b->closed)
        return;
    shut(b);
}

static void free_topics(struct bus *b)
{
    for (int i = 0; i < BUS_TOPIC_BUCKETS; i++) {
        while (b->topics[i]) {
            struct bus_topic *t = b->topics[i];
            b->topics[i] = t->hnext;
            while (t->subs) {
                struct bus_sub *s = t->subs;
                t->subs = s->next;
                free(s);
            }
            free(t);
        }
    }
}

void bus_free(struct bus *b)
{
    struct bus_work w;

    if (!b)
        return;
    if (!b->closed) {
        /* The calls still queued carry what only running them releases, and the
         * modules they would run in may be gone: neither running nor dropping them is
         * right. The order is the caller's to keep (bus.h). */
        fprintf(stderr, "chatd: bus_free before bus_close: queued calls would leak\n");
        abort();
    }
    while (dequeue(b, &w)) {
        if (w.kind == WORK_EVENT) {
            bus_event_unref(w.p);
        } else if (w.kind == WORK_DELIVERY) {
            delivery_free(w.p);
        } else {
            cJSON_Delete(((struct bus_reply_msg *)w.p)->payload);
            free(w.p);
        }
    }
    /* Deliveries a handler kept (BUS_ASYNC) and never completed. */
    while (b->live)
        delivery_free(b->live);
    free(b->q.v);
    heap_free(&b->retries);
    heap_free(&b->requests);
    free_topics(b);
    ring_free(b->ring);
    free(b);
}
