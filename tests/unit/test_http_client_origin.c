/* Core's HTTP client's bound on the connections open to one origin
 * (max_conns_per_origin), against plain-HTTP servers on the same loop
 * (http_client_fixture.h): a burst shares the bound's connections, other origins are
 * not held back, a closed connection lets a waiting request open another, close
 * cancels the waiting ones, and the queue bound still holds. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "http_client_fixture.h"
#include "test.h"

static struct http_client_opts bounded(int per_origin)
{
    struct http_client_opts o = default_opts;
    o.max_conns_per_origin = per_origin;
    o.max_queued = 32;
    return o;
}

static int calls_of(const struct result *r, int n)
{
    int calls = 0;
    for (int i = 0; i < n; i++)
        calls += r[i].calls;
    return calls;
}

/* Runs until n results came in, noting the most connections the server had open. */
static int run_all(struct fixture *f, const struct result *r, int n)
{
    int most = f->srv.open;
    while (calls_of(r, n) < n && uv_run(&f->loop, UV_RUN_ONCE))
        if (f->srv.open > most)
            most = f->srv.open;
    return most;
}

TEST(http_client_origin_burst_shares_the_bound_connections)
{
    enum { N = 12 };
    struct fixture f;
    struct result r[N] = {{0}};
    struct http_client_stats st;
    struct http_client_opts opts = bounded(3);
    ASSERT_EQ(fixture_init_opts(&f, SRV_LENGTH, &opts), 0);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(post(&f, f.url, "x", &r[i]), 0);
    ASSERT_EQ(http_client_pending(f.c), N);
    ASSERT(run_all(&f, r, N) <= 3);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(r[i].calls, 1);
        ASSERT_EQ(r[i].status, 200);
    }
    ASSERT_EQ(f.srv.accepted, 3);
    ASSERT_EQ(f.srv.requests, N);
    http_client_stats(f.c, &st);
    ASSERT_EQ(st.connections, 3);
    ASSERT_EQ(st.reused, N - 3);
    ASSERT_EQ(http_client_pending(f.c), 0);
    fixture_close(&f);
}

/* Without the bound (0) every request past the idle ones opens its own connection. */
TEST(http_client_origin_no_bound_opens_one_per_request)
{
    enum { N = 6 };
    struct fixture f;
    struct result r[N] = {{0}};
    ASSERT_EQ(fixture_init(&f, SRV_LENGTH), 0);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(post(&f, f.url, "x", &r[i]), 0);
    run_all(&f, r, N);
    ASSERT_EQ(f.srv.accepted, N);
    fixture_close(&f);
}

/* An origin that never answers holds its own requests only: one sent later to another
 * origin passes them, whether it starts at once or waits for a slot behind them. */
TEST(http_client_origin_saturated_does_not_hold_back_others)
{
    struct fixture f;
    struct srv other;
    struct result a[3] = {{0}}, b[2] = {{0}};
    char url2[128];
    struct http_client_opts opts = bounded(1);
    opts.max_inflight = 2;
    opts.response_timeout_ms = 5000;
    ASSERT_EQ(fixture_init_opts(&f, SRV_SILENT, &opts), 0);
    ASSERT_EQ(srv_start(&f.loop, &other, SRV_LENGTH), 0);
    snprintf(url2, sizeof(url2), "http://127.0.0.1:%d/", other.port);
    ASSERT_EQ(post(&f, f.url, "a0", &a[0]), 0);   /* on the one connection */
    ASSERT_EQ(post(&f, f.url, "a1", &a[1]), 0);   /* waits for its origin */
    while (f.srv.requests < 1 && uv_run(&f.loop, UV_RUN_ONCE))
        ;                                         /* a0 is at the server */
    ASSERT_EQ(post(&f, url2, "b0", &b[0]), 0);    /* starts: the last slot */
    ASSERT_EQ(post(&f, f.url, "a2", &a[2]), 0);
    ASSERT_EQ(post(&f, url2, "b1", &b[1]), 0);    /* waits for a slot, behind a1, a2 */
    ASSERT_EQ(http_client_pending(f.c), 5);
    run_all(&f, b, 2);
    ASSERT_EQ(b[0].status, 200);
    ASSERT_EQ(b[1].status, 200);
    ASSERT_EQ(other.accepted, 1);                 /* b1 took b0's connection */
    ASSERT_EQ(calls_of(a, 3), 0);
    ASSERT_EQ(f.srv.accepted, 1);
    ASSERT_EQ(f.srv.requests, 1);
    ASSERT_EQ(http_client_pending(f.c), 3);
    srv_stop(&other);
    fixture_close(&f);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(a[i].calls, 1);
        ASSERT_EQ(a[i].status, -ECANCELED);
    }
}

/* Connection: close, or a failure, ends the connection: the next waiting request for
 * the origin opens a new one, never more than the bound at once. */
static void takes_over_after_close(enum srv_mode mode, int status)
{
    enum { N = 4 };
    struct fixture f;
    struct result r[N] = {{0}};
    struct http_client_opts opts = bounded(1);
    ASSERT_EQ(fixture_init_opts(&f, mode, &opts), 0);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(post(&f, f.url, "x", &r[i]), 0);
    ASSERT(run_all(&f, r, N) <= 1);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(r[i].calls, 1);
        ASSERT_EQ(r[i].status, status);
    }
    ASSERT_EQ(f.srv.accepted, N);
    ASSERT_EQ(f.srv.requests, N);
    fixture_close(&f);
}

TEST(http_client_origin_waiting_request_opens_after_a_close)
{
    takes_over_after_close(SRV_SAYS_CLOSE, 200);
    ASSERT_OK_SO_FAR();
    takes_over_after_close(SRV_204_CLOSE, 204);
    ASSERT_OK_SO_FAR();
    takes_over_after_close(SRV_DROP_ALL, -ECONNRESET);
}

/* A waiting (replayable) request that takes over a kept-alive connection the server
 * dropped is sent once more, on a fresh one that stays within the bound. */
TEST(http_client_origin_retry_on_a_taken_over_connection)
{
    struct fixture f;
    struct result r[2] = {{0}};
    struct http_client_stats st;
    struct http_client_opts opts = bounded(1);
    struct http_client_request rq = { .method = "POST", .url = f.url, .body = "x",
                                      .body_len = 1, .replayable = 1 };
    ASSERT_EQ(fixture_init_opts(&f, SRV_DROP_SECOND, &opts), 0);
    ASSERT_EQ(post(&f, f.url, "x", &r[0]), 0);
    ASSERT_EQ(http_client_send(f.c, &rq, on_result, &r[1]), 0);
    ASSERT(run_all(&f, r, 2) <= 1);
    ASSERT_EQ(r[0].status, 200);
    ASSERT_EQ(r[1].status, 200);
    http_client_stats(f.c, &st);
    ASSERT_EQ(st.retried, 1);
    ASSERT_EQ(st.reused, 1);
    ASSERT_EQ(f.srv.accepted, 2);
    fixture_close(&f);
}

/* Close cancels the requests waiting for their origin, each exactly once. */
TEST(http_client_origin_close_cancels_the_waiting)
{
    struct fixture f;
    struct result r[3] = {{0}};
    int done = 0;
    struct http_client_opts opts = bounded(1);
    ASSERT_EQ(fixture_init_opts(&f, SRV_SILENT, &opts), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(post(&f, f.url, "x", &r[i]), 0);
    while (f.srv.requests < 1 && uv_run(&f.loop, UV_RUN_ONCE))
        ;
    ASSERT_EQ(calls_of(r, 3), 0);
    http_client_close(f.c, closed_done, &done);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(r[i].calls, 1);
        ASSERT_EQ(r[i].status, -ECANCELED);
    }
    ASSERT_EQ(http_client_pending(f.c), 0);
    srv_stop(&f.srv);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    ASSERT_EQ(done, 1);
    ASSERT_EQ(calls_of(r, 3), 3);
    ASSERT_EQ(f.srv.accepted, 1);
    http_client_free(f.c);
    uv_loop_close(&f.loop);
    log_close(f.app.log);
}

/* Waiting for an origin counts against max_queued: past it, -EAGAIN, though slots
 * are free. */
TEST(http_client_origin_queue_bound_says_eagain)
{
    struct fixture f;
    struct result r[4] = {{0}};
    struct http_client_opts opts = bounded(1);
    opts.max_queued = 2;
    ASSERT_EQ(fixture_init_opts(&f, SRV_SILENT, &opts), 0);
    ASSERT_EQ(post(&f, f.url, "a", &r[0]), 0);
    ASSERT_EQ(post(&f, f.url, "b", &r[1]), 0);
    ASSERT_EQ(post(&f, f.url, "c", &r[2]), 0);
    ASSERT_EQ(post(&f, f.url, "d", &r[3]), -EAGAIN);
    ASSERT_EQ(http_client_pending(f.c), 3);
    ASSERT_EQ(post(&f, "http://x/\r\n", "", &r[3]), -EINVAL);
    fixture_close(&f);
    ASSERT_EQ(calls_of(r, 4), 3);
    ASSERT_EQ(r[3].calls, 0);
}

/* A waiting request's deadline starts once it has its connection: the one ahead of
 * it times out first, then it gets its own full response_timeout_ms. The times are
 * the loop's, read as each answer is delivered: a request started after the first
 * answer cannot time out less than 100 ms of loop time after it. */
struct timed { struct result r; uv_loop_t *loop; uint64_t at; };

static void note_time(void *arg, const struct http_client_result *res)
{
    struct timed *t = arg;
    on_result(&t->r, res);
    t->at = uv_now(t->loop);
}

TEST(http_client_origin_wait_is_not_part_of_the_deadline)
{
    struct fixture f;
    struct timed t[2];
    memset(t, 0, sizeof(t));
    struct http_client_opts opts = bounded(1);
    opts.response_timeout_ms = 100;
    ASSERT_EQ(fixture_init_opts(&f, SRV_SILENT, &opts), 0);
    struct http_client_request rq = { .method = "POST", .url = f.url, .body = "x",
                                      .body_len = 1 };
    for (int i = 0; i < 2; i++) {
        t[i].loop = &f.loop;
        ASSERT_EQ(http_client_send(f.c, &rq, note_time, &t[i]), 0);
    }
    run_until(&f, &t[0].r.calls, 1);
    ASSERT_EQ(t[0].r.status, -ETIMEDOUT);
    ASSERT_EQ(t[1].r.calls, 0);                  /* now on its own connection */
    run_until(&f, &t[1].r.calls, 1);
    ASSERT_EQ(t[1].r.status, -ETIMEDOUT);
    ASSERT_STR_EQ(t[1].r.error, "timeout waiting for the response");   /* it was sent */
    ASSERT(t[1].at >= t[0].at + 100);
    fixture_close(&f);
}
