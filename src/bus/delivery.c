/* delivery.c: one event at one consumer: the attempt, the verdict, the retries with
 * exponential backoff, and the dead letter after the last attempt. Waiting retries
 * sit in one heap ordered by due time under one timer. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/db.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
#include "bus_internal.h"

struct bus_delivery *delivery_new(struct bus *b, struct bus_sub *sub, struct bus_event *ev)
{
    struct bus_delivery *d = calloc(1, sizeof(*d));

    if (!d)
        return NULL;
    d->b = b;
    d->sub = sub;
    d->ev = ev;
    bus_event_ref(ev);
    d->hn.idx = SIZE_MAX;
    d->next = b->live;
    if (b->live)
        b->live->prev = d;
    b->live = d;
    return d;
}

void delivery_free(struct bus_delivery *d)
{
    struct bus *b = d->b;

    if (d->hn.idx != SIZE_MAX)
        heap_remove(&b->retries, &d->hn);
    if (d->prev)
        d->prev->next = d->next;
    else
        b->live = d->next;
    if (d->next)
        d->next->prev = d->prev;
    bus_event_unref(d->ev);
    free(d);
}

static void on_retry_timer(uv_timer_t *t);

static void arm_retry_timer(struct bus *b)
{
    struct heap_node *top = heap_top(&b->retries);
    uint64_t now;

    if (!b->h)
        return;
    if (!top) {
        uv_timer_stop(&b->h->retry_timer);
        return;
    }
    now = uv_now(b->loop);
    uv_timer_start(&b->h->retry_timer, on_retry_timer, top->due > now ? top->due - now : 0, 0);
}

static uint64_t backoff_ms(const struct bus_delivery *d)
{
    uint64_t delay = (uint64_t)d->sub->retry_base_ms;

    for (int i = 1; i < d->attempt && delay < BUS_BACKOFF_MAX_MS; i++)
        delay *= 2;
    return delay < BUS_BACKOFF_MAX_MS ? delay : BUS_BACKOFF_MAX_MS;
}

static int schedule_retry(struct bus *b, struct bus_delivery *d)
{
    int rc;

    d->hn.due = uv_now(b->loop) + backoff_ms(d);
    if ((rc = heap_push(&b->retries, &d->hn)) < 0)
        return rc;
    METRIC_INC(b->retries_total);
    if (heap_top(&b->retries) == &d->hn)
        arm_retry_timer(b);
    return 0;
}

static void finish(struct bus_delivery *d, int status)
{
    struct bus *b = d->b;
    int max = d->sub->max_attempts;

    if (status >= 0) {
        if (d->replay_id)
            dlq_replay_succeeded(b, d);
        delivery_free(d);
        return;
    }
    if (!d->error[0])
        snprintf(d->error, sizeof(d->error), "%s",
                 status == -ECONSTRAINT ? "constraint failed"
                 : status > -ECONSTRAINT ? strerror(-status) : "failed");
    if (!d->first_failed_at)
        d->first_failed_at = now_ms();
    LOG_WARN(b->app, "bus", "delivery failed topic=%s consumer=%s attempt=%d error=\"%s\"",
             d->ev->topic, d->sub->consumer, d->attempt, d->error);
    if (max == 0 && !d->replay_id) {
        delivery_free(d);   /* the consumer asked for one attempt and no dead letter */
        return;
    }
    if (d->attempt < max && !b->closed) {
        if (schedule_retry(b, d) == 0)
            return;
        snprintf(d->error, sizeof(d->error), "retry queue full");
    }
    dlq_write(b, d);
    delivery_free(d);
}

void delivery_run(struct bus_delivery *d)
{
    int rc;

    d->attempt++;
    d->error[0] = '\0';
    /* The handler gets the struct or nothing: a payload that does not decode is this
     * delivery's failure, with the reason, like any other. */
    if (d->sub->topic->type && !d->ev->data &&
        bus_event_decode(d->ev, d->sub->topic->type, d->error, sizeof(d->error)) < 0) {
        finish(d, -EPROTO);
        return;
    }
    rc = d->sub->fn(d, d->ev, d->sub->ctx);
    if (rc == BUS_ASYNC)
        return;   /* the handler owns d until bus_complete (which may have run) */
    finish(d, rc < 0 ? rc : 0);
}

void bus_complete(struct bus_delivery *d, int status, const char *error)
{
    if (error)
        snprintf(d->error, sizeof(d->error), "%s", error);
    finish(d, status);
}

void bus_delivery_set_error(struct bus_delivery *d, const char *error)
{
    snprintf(d->error, sizeof(d->error), "%s", error ? error : "");
}

int bus_delivery_attempt(const struct bus_delivery *d)
{
    return d->attempt;
}

int bus_delivery_is_replay(const struct bus_delivery *d)
{
    return d->replay_id != 0;
}

static void on_retry_timer(uv_timer_t *t)
{
    struct bus *b = t->data;
    uint64_t now = uv_now(b->loop);
    struct heap_node *top;

    while ((top = heap_top(&b->retries)) != NULL && top->due <= now) {
        struct bus_delivery *d = heap_entry(top, struct bus_delivery, hn);
        heap_remove(&b->retries, top);
        if (bus_enqueue(b, WORK_DELIVERY, d) < 0) {
            snprintf(d->error, sizeof(d->error), "dispatch queue full");
            dlq_write(b, d);
            delivery_free(d);
        }
    }
    arm_retry_timer(b);
}

/* The server stops with deliveries waiting for another attempt: they go to the
 * dead-letter table (a replay delivers them later), not away. */
void delivery_close(struct bus *b)
{
    struct heap_node *top;

    while ((top = heap_top(&b->retries)) != NULL) {
        struct bus_delivery *d = heap_entry(top, struct bus_delivery, hn);
        heap_remove(&b->retries, top);
        dlq_write(b, d);
        delivery_free(d);
    }
}
