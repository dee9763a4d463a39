/* request.c: request/reply over the bus. A request is an event whose reply_to is its
 * own id; the responder answers with bus_reply, which comes back through the
 * dispatch queue (or the ring, from another thread) to the requester's callback: on
 * the loop, never inside bus_request or bus_reply.
 * Waiting requests sit in a map by id and in a heap by deadline under one timer. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/log.h"
#include "bus_internal.h"

/* Takes the request out of the map and the heap; the caller frees it. */
static struct bus_request *take(struct bus *b, int64_t id)
{
    struct bus_request *r = i64map_take(&b->requests_by_id, id);

    if (r)
        heap_remove(&b->requests, &r->hn);
    return r;
}

static void on_request_timer(uv_timer_t *t);
static int64_t request_start(struct bus *b, const char *topic, cJSON *payload,
                             int timeout_ms, const struct bus_request *who);

static void arm(struct bus *b)
{
    struct heap_node *top = heap_top(&b->requests);
    uint64_t now;

    if (!b->h)
        return;
    if (!top) {
        uv_timer_stop(&b->h->request_timer);
        return;
    }
    now = uv_now(b->loop);
    uv_timer_start(&b->h->request_timer, on_request_timer,
                   top->due > now ? top->due - now : 0, 0);
}

static void on_request_timer(uv_timer_t *t)
{
    struct bus *b = t->data;
    uint64_t now = uv_now(b->loop);
    struct heap_node *top;

    while ((top = heap_top(&b->requests)) != NULL && top->due <= now) {
        struct bus_request *r = take(b, heap_entry(top, struct bus_request, hn)->id);
        request_answer(r, r->status, NULL);
        free(r);
    }
    arm(b);
}

int64_t bus_request(struct bus *b, const char *topic, cJSON *payload, int timeout_ms,
                    bus_reply_fn fn, void *ctx)
{
    if (!fn) {
        cJSON_Delete(payload);
        return -EINVAL;
    }
    return request_start(b, topic, payload, timeout_ms, &(struct bus_request){ .fn = fn,
                         .ctx = ctx });
}

int64_t bus_request_typed(struct bus *b, const char *topic, cJSON *payload, int timeout_ms,
                          bus_reply_ev_fn fn, const struct ev_type *reply_type, void *ctx)
{
    return request_start(b, topic, payload, timeout_ms, &(struct bus_request){ .tfn = fn,
                         .reply_type = reply_type, .ctx = ctx });
}

/* who: the callback and its context (copied into the request). */
static int64_t request_start(struct bus *b, const char *topic, cJSON *payload,
                             int timeout_ms, const struct bus_request *who)
{
    struct bus_event *ev;
    struct bus_request *r;
    int rc;

    if (timeout_ms < 0) {
        cJSON_Delete(payload);
        return -EINVAL;
    }
    if (b->closed) {
        cJSON_Delete(payload);
        return -ECANCELED;
    }
    if (i64map_count(&b->requests_by_id) >= BUS_REQUESTS_MAX) {
        cJSON_Delete(payload);
        return -EAGAIN;
    }
    if (!(ev = bus_event_new(topic, payload)))
        return -ENOMEM;
    if (!(r = calloc(1, sizeof(*r)))) {
        bus_event_unref(ev);
        return -ENOMEM;
    }
    ev->reply_to = ev->id;
    r->id = (int64_t)ev->id;
    r->fn = who->fn;
    r->tfn = who->tfn;
    r->reply_type = who->reply_type;
    r->ctx = who->ctx;
    r->status = -ETIMEDOUT;
    r->hn.due = uv_now(b->loop) + (uint64_t)timeout_ms;
    /* Nobody answers this topic: fail on the next turn of the loop rather than
     * after the whole timeout, and never inside the caller. */
    if (!bus_topic_has_subs(b, topic)) {
        r->status = -ENOENT;
        r->hn.due = uv_now(b->loop);
    }
    if ((rc = i64map_put(&b->requests_by_id, r->id, r)) < 0) {
        free(r);
        bus_event_unref(ev);
        return rc;
    }
    if ((rc = heap_push(&b->requests, &r->hn)) < 0) {
        i64map_del(&b->requests_by_id, r->id);
        free(r);
        bus_event_unref(ev);
        return rc == -ENOBUFS ? -EAGAIN : rc;
    }
    if (heap_top(&b->requests) == &r->hn)
        arm(b);
    if (r->status == -ENOENT) {
        bus_event_unref(ev);
        return r->id;
    }
    int64_t id = r->id;
    if ((rc = bus_publish(b, ev)) < 0) {
        bus_request_cancel(b, id);
        return rc;
    }
    return id;
}

void bus_request_cancel(struct bus *b, int64_t request_id)
{
    struct bus_request *r = take(b, request_id);

    free(r);
}

int bus_reply(struct bus *b, const struct bus_event *request, int status, cJSON *payload)
{
    struct bus_reply_msg *m;
    int rc;

    if (!request || request->reply_to == 0) {
        cJSON_Delete(payload);
        return -EINVAL;
    }
    if (!(m = malloc(sizeof(*m)))) {
        cJSON_Delete(payload);
        return -ENOMEM;
    }
    m->id = (int64_t)request->reply_to;
    m->status = status;
    m->payload = payload;
    if (!bus_on_loop_thread(b)) {
        rc = bus_ring_post(b, (void *)((uintptr_t)m | RING_TAG_REPLY), 1);
    } else if (b->closed) {
        rc = -ECANCELED;
    } else if ((rc = bus_enqueue(b, WORK_REPLY, m)) == 0) {
        return 0;
    }
    if (rc < 0) {
        cJSON_Delete(payload);
        free(m);
    }
    return rc;
}

void request_deliver_reply(struct bus *b, struct bus_reply_msg *m)
{
    struct bus_request *r = take(b, m->id);

    /* No request: it timed out or was cancelled, and the answer is not wanted. */
    if (r) {
        request_answer(r, m->status, m->payload);
        free(r);
    }
    cJSON_Delete(m->payload);
    free(m);
}

/* Requesters hear -ECANCELED so they can free what they hold. */
void request_close(struct bus *b)
{
    struct heap_node *top;

    while ((top = heap_top(&b->requests)) != NULL) {
        struct bus_request *r = take(b, heap_entry(top, struct bus_request, hn)->id);
        request_answer(r, -ECANCELED, NULL);
        free(r);
    }
}

/* What a handler asked after request_close, during the last dispatch: nobody is left
 * to hear it. */
void request_free(struct bus *b)
{
    struct i64map_iter it;

    for (struct i64map_ent *e = i64map_first(&b->requests_by_id, &it); e;
         e = i64map_next(&b->requests_by_id, &it))
        free(e->val.ptr);
    i64map_free(&b->requests_by_id);
}
