/* drain.c: the notification module's drain. Deliveries in flight (subscription
 * lookups, push preparations, outbound requests) may finish for up to NOTIF_DRAIN_MS;
 * then the HTTP client is closed, which cancels the rest (the bus retries or
 * dead-letters them as with any failure). Every piece of asynchronous work calls
 * notif_work_done when it ends, so the drain ends as soon as nothing is left. */
#include "chatd/log.h"
#include "notification_internal.h"

#define NOTIF_DRAIN_MS 5000

static void drain_timer_closed(uv_handle_t *h)
{
    struct notif *n = h->data;
    n->drain_done(n);
}

static void drain_finish_check(struct notif *n)
{
    if (n->closed || !n->out_closed || n->lookups || n->prepares)
        return;
    n->closed = 1;
    uv_timer_stop(&n->drain_timer);
    uv_close((uv_handle_t *)&n->drain_timer, drain_timer_closed);
}

static void client_closed(void *arg)
{
    struct notif *n = arg;
    n->out_closed = 1;
    drain_finish_check(n);
}

static void close_client(struct notif *n)
{
    if (n->out_closing)
        return;
    n->out_closing = 1;
    http_client_close(n->out, client_closed, n);
}

static void drain_deadline(uv_timer_t *t)
{
    struct notif *n = t->data;
    if (http_client_pending(n->out))
        LOG_WARN(n->app, NOTIF_MOD, "drain: cancelling %d notification requests",
                 http_client_pending(n->out));
    close_client(n);
}

void notif_work_done(struct notif *n)
{
    if (!n->draining || n->closed)
        return;
    if (!n->out_closing && !n->lookups && !n->prepares && !http_client_pending(n->out))
        close_client(n);
    else
        drain_finish_check(n);
}

void notif_drain_start(struct notif *n, void (*done)(void *))
{
    n->draining = 1;
    n->drain_done = done;
    uv_timer_init(n->app->loop, &n->drain_timer);
    n->drain_timer.data = n;
    uv_timer_start(&n->drain_timer, drain_deadline, NOTIF_DRAIN_MS, 0);
    notif_work_done(n);
}
