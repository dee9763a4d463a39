/* http_client.c: the HTTP client's requests (http_client.h). A request goes on an
 * idle connection to its origin when the pool has one (http_client_pool.c), else on a
 * fresh connection (http_client_conn.c) while its origin is under
 * max_conns_per_origin. Past max_inflight, or with its origin at its bound, it waits
 * in one queue of at most max_queued, in the order sent; the queue is served by
 * skipping the requests whose origin is full, so a saturated origin holds back only
 * its own requests (and in their order). A connection reports its outcome here
 * (on_report), which decides: the answer goes to the caller and the connection back to
 * the pool when it may be reused (where the next request for its origin takes it); a
 * failure on a reused connection before any byte of the answer is the server having
 * closed it meanwhile, and the request is sent once more on a fresh connection if
 * that cannot make it act twice (nothing of it written, or replayable); any other
 * failure goes to the caller. After every change that frees a slot or a
 * connection the queue is served again.
 *
 * A request's memory is freed right after its callback: the connections own every
 * handle and their bytes in flight. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/chatd.h"
#include "chatd/log.h"
#include "http_client_impl.h"

#define HC_DEFAULT_HEAD (16 * 1024)
#define HC_DEFAULT_BODY (64 * 1024)

static void req_free(struct http_client *c, struct hc_req *r)
{
    hc_origin_unref(c, r->origin);
    free(r->t.req);
    free(r);
}

static void deliver(struct hc_req *r, int status, const char *error, char *body,
                    size_t body_len)
{
    struct http_client_result res = { .status = status, .error = error,
                                      .body = body ? body : "", .body_len = body_len };
    r->cb(r->arg, &res);
    free(body);
    req_free(r->client, r);
}

/* A fresh connection for r, counted against its origin's bound. */
static int open_conn(struct http_client *c, struct hc_req *r)
{
    int rc = hc_conn_open(c, r);
    if (rc == 0) {
        r->origin->conns++;
        r->origin->refs++;
    }
    return rc;
}

static void close_conn(struct http_client *c, struct hc_conn *k)
{
    struct hc_origin *g = k->origin;
    hc_conn_close(k);
    if (g) {
        k->origin = NULL;
        g->conns--;
        hc_origin_unref(c, g);
    }
}

/* r's origin has neither an idle connection nor room for another. */
static int origin_full(const struct http_client *c, const struct hc_req *r)
{
    int bound = c->opts.max_conns_per_origin;
    return bound > 0 && r->origin->idle == 0 && r->origin->conns >= bound;
}

static int can_start(const struct http_client *c, const struct hc_req *r)
{
    return c->inflight < c->opts.max_inflight && !origin_full(c, r);
}

static int start(struct http_client *c, struct hc_req *r)
{
    struct hc_conn *k = hc_pool_take(c, r);
    c->inflight++;
    if (k) {
        c->stats.reused++;
        hc_conn_exchange(k, r);
        return 0;
    }
    int rc = open_conn(c, r);
    if (rc < 0)
        c->inflight--;
    return rc;
}

/* The oldest waiting request that may start now, taken out of the queue, or NULL. */
static struct hc_req *next_startable(struct http_client *c)
{
    struct hc_req *prev = NULL, *r = c->qhead;
    while (r && !can_start(c, r)) {
        prev = r;
        r = r->next;
    }
    if (!r)
        return NULL;
    if (prev)
        prev->next = r->next;
    else
        c->qhead = r->next;
    if (c->qtail == r)
        c->qtail = prev;
    r->next = NULL;
    c->queued--;
    return r;
}

/* From the head each time: starting may report (and serve the queue) from inside. */
static void pump_queue(struct http_client *c)
{
    struct hc_req *r;
    while (!c->closing && c->inflight < c->opts.max_inflight && (r = next_startable(c)))
        if (start(c, r) < 0)
            deliver(r, -ENOMEM, "out of memory", NULL, 0);
}

/* Back to the pool if it may and the bounds allow, else closed. */
static void release(struct http_client *c, struct hc_conn *k)
{
    struct hc_conn *drop = k;
    if (k->reusable && !c->closing)
        drop = hc_pool_put(c, k);
    if (drop != k)
        hc_conn_set_idle(k);
    if (drop)
        close_conn(c, drop);
}

/* The server may close a kept-alive connection at any moment (RFC 9112 9.6): when it
 * did so before answering, the request never reached it or was dropped unanswered;
 * but one written may also have been acted upon before the close (RFC 9110 9.2.2),
 * so only one that was not, or that may be repeated, goes again. */
static int worth_retrying(const struct http_client *c, const struct hc_conn *k,
                          const struct hc_req *r, int status)
{
    return k->exchanges > 0 && !k->resp.started && !r->retried && !c->closing &&
           (!k->wrote || r->replayable) && status != -ETIMEDOUT &&
           status != HTTP_CLIENT_REFUSED;
}

/* RFC 9110 9.2.2: these, without a body, change nothing when repeated. */
static int replayable(const struct http_client_request *rq)
{
    static const char *const safe[] = { "GET", "HEAD", "OPTIONS" };
    if (rq->replayable)
        return 1;
    for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]); i++)
        if (rq->method && strcmp(rq->method, safe[i]) == 0)
            return rq->body_len == 0;
    return 0;
}

static void on_report(struct hc_conn *k, int status, const char *error)
{
    struct http_client *c = k->client;
    struct hc_req *r = k->req;
    if (!r) {                          /* an idle one went away */
        if (k->state == HC_IDLE)
            hc_pool_remove(c, k);
        close_conn(c, k);
        pump_queue(c);                 /* its origin has room for one more */
        return;
    }
    k->req = NULL;
    if (status < 0 && worth_retrying(c, k, r, status)) {
        r->retried = 1;
        c->stats.retried++;
        close_conn(c, k);
        int rc = open_conn(c, r);
        if (rc < 0) {
            c->inflight--;
            pump_queue(c);
            deliver(r, rc, "out of memory", NULL, 0);
        }
        return;
    }
    size_t body_len = 0;
    char *body = status > 0 ? hc_response_take_body(&k->resp, &body_len) : NULL;
    c->inflight--;
    if (status > 0)
        release(c, k);
    else
        close_conn(c, k);
    /* The queue first: a request sent from the callback waits behind it. */
    pump_queue(c);
    deliver(r, status, error, body, body_len);
}

int http_client_send(struct http_client *c, const struct http_client_request *rq,
                     http_client_cb cb, void *arg)
{
    if (c->closing)
        return -ECANCELED;
    if (c->inflight >= c->opts.max_inflight && c->queued >= c->opts.max_queued)
        return -EAGAIN;
    struct hc_req *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->client = c;
    r->cb = cb;
    r->arg = arg;
    r->pick = rq->pick;
    r->replayable = replayable(rq);
    int keep_alive = c->opts.max_idle_per_origin > 0 && c->opts.max_idle > 0;
    int rc = hc_build_request(&r->t, rq, keep_alive);
    if (rc == 0 && !(r->origin = hc_origin_ref(c, &r->t.o, r->pick)))
        rc = -ENOMEM;
    /* Nothing startable waits when send runs (the queue is served after every
     * change), so starting r now keeps the order. */
    if (rc == 0 && can_start(c, r)) {
        rc = start(c, r);
    } else if (rc == 0 && c->queued >= c->opts.max_queued) {
        rc = -EAGAIN;
    } else if (rc == 0) {
        if (c->qtail)
            c->qtail->next = r;
        else
            c->qhead = r;
        c->qtail = r;
        c->queued++;
    }
    if (rc < 0)
        req_free(c, r);
    return rc;
}

int http_client_pending(const struct http_client *c)
{
    return c->inflight + c->queued;
}

void http_client_stats(const struct http_client *c, struct http_client_stats *out)
{
    *out = c->stats;
    out->idle = c->idle;
}

int http_client_new(struct http_client **out, struct chatd *app,
                    const struct http_client_opts *opts, char *err, size_t errlen)
{
    char warn[256] = "";
    struct http_client *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->app = app;
    c->opts = *opts;
    c->report = on_report;
    if (!c->opts.max_head_bytes)
        c->opts.max_head_bytes = HC_DEFAULT_HEAD;
    if (!c->opts.max_body_bytes)
        c->opts.max_body_bytes = HC_DEFAULT_BODY;
    int rc = hc_tls_ctx_new(&c->ctx, opts->ca_file, err, errlen, warn, sizeof(warn));
    if (rc < 0) {
        free(c);
        return rc;
    }
    if (warn[0])
        LOG_WARN(app, HC_LOG, "%s", warn);
    *out = c;
    return 0;
}

void http_client_close(struct http_client *c, void (*done)(void *arg), void *arg)
{
    c->closing = 1;
    c->close_done = done;
    c->close_arg = arg;
    c->live++;                         /* hold: done must not run before we return */
    while (c->qhead) {
        struct hc_req *r = c->qhead;
        c->qhead = r->next;
        c->queued--;
        deliver(r, -ECANCELED, "shutting down", NULL, 0);
    }
    c->qtail = NULL;
    while (c->conns) {
        struct hc_conn *k = c->conns;
        struct hc_req *r = k->req;
        if (k->state == HC_IDLE)
            hc_pool_remove(c, k);
        close_conn(c, k);
        if (r) {
            c->inflight--;
            deliver(r, -ECANCELED, "shutting down", NULL, 0);
        }
    }
    c->live--;
    if (c->live == 0 && c->close_done) {
        c->close_done = NULL;
        done(arg);
    }
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    hc_origins_free(c);                /* none once closed; defensive */
    SSL_CTX_free(c->ctx);
    free(c);
}
