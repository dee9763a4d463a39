/* bus.c: the event bus on the loop thread: events, the hand-over ring from other
 * threads, subscriptions and the bus's life cycle. When and in what order handlers
 * run is dispatch.c's: publishing only queues. */
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

struct bus_topic *bus_topic_find(struct bus *b, const char *name)
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
    struct bus_topic *t = bus_topic_find(b, name);
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
    struct bus_topic *t = bus_topic_find(b, topic);
    return t && t->subs;
}

struct bus_sub *bus_find_sub(struct bus *b, const char *topic, const char *consumer)
{
    struct bus_topic *t = bus_topic_find(b, topic);

    for (struct bus_sub *s = t ? t->subs : NULL; s; s = s->next)
        if (strcmp(s->consumer, consumer) == 0)
            return s;
    return NULL;
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

static void on_async(uv_async_t *a)
{
    /* Wake-ups coalesce: the check of this same turn takes everything there is. */
    bus_wake(a->data);
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
    uv_check_init(b->loop, &h->check);
    uv_idle_init(b->loop, &h->idle);
    uv_timer_init(b->loop, &h->retry_timer);
    uv_timer_init(b->loop, &h->request_timer);
    uv_timer_init(b->loop, &h->poll_timer);
    h->async.data = h->check.data = h->idle.data = b;
    h->retry_timer.data = h->request_timer.data = h->poll_timer.data = b;
    /* The async handle stays referenced: results from other threads (a commit's
     * done()) may still be on their way while nothing else is active, e.g. when a
     * module drains. bus_close releases the loop. The idle handle is referenced
     * too, active only while work waits, so the loop does not end with work queued. */
    uv_unref((uv_handle_t *)&h->check);
    h->open = 6;
    b->h = h;
    return 0;
}

static void handles_close(struct bus *b)
{
    struct bus_handles *h = b->h;
    uv_handle_t *all[] = { (uv_handle_t *)&h->async, (uv_handle_t *)&h->check,
                           (uv_handle_t *)&h->idle, (uv_handle_t *)&h->retry_timer,
                           (uv_handle_t *)&h->request_timer, (uv_handle_t *)&h->poll_timer };

    b->h = NULL;
    for (int i = 0; i < 6; i++) {
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

/* Stops producers, then empties the ring and the dispatch queue, dispatching what is
 * left in order with whatever the handlers publish meanwhile. Requesters still waiting
 * hear -ECANCELED; what they publish then is dispatched too. */
static void shut(struct bus *b)
{
    atomic_store(&b->closing, 1);
    while (atomic_load(&b->senders) > 0)
        sched_yield();
    uv_timer_stop(&b->h->poll_timer);
    bus_dispatch_rest(b);
    delivery_close(b);
    request_close(b);
    bus_dispatch_rest(b);
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
    if (!b)
        return;
    if (!b->closed) {
        /* The calls still queued carry what only running them releases, and the
         * modules they would run in may be gone: neither running nor dropping them is
         * right. The order is the caller's to keep (bus.h). */
        fprintf(stderr, "chatd: bus_free before bus_close: queued calls would leak\n");
        abort();
    }
    bus_queue_drop(b);
    /* Deliveries a handler kept (BUS_ASYNC) and never completed. */
    while (b->live)
        delivery_free(b->live);
    heap_free(&b->retries);
    heap_free(&b->requests);
    request_free(b);
    free_topics(b);
    ring_free(b->ring);
    free(b);
}
