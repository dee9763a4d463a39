/* Core's HTTP client at its limits, against a plain-HTTP server on the same loop
 * (http_client_fixture.h): hostile and oversized answers, timeouts, bad URLs, the
 * queue bound, and close cancelling everything. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "http_client_fixture.h"
#include "test.h"

/* Hostile answers fail clearly and leave no connection to reuse. */
static void refused_answer(enum srv_mode mode, int status, const char *text)
{
    struct fixture f;
    struct result r = {0};
    ASSERT_EQ(fixture_init(&f, mode), 0);
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(r.status, status);
    if (!strstr(r.error, text))
        test_fail(__FILE__, __LINE__, "error \"%s\" lacks \"%s\"", r.error, text);
    ASSERT_EQ(idle_now(&f), 0);
    fixture_close(&f);
}

TEST(http_client_refuses_oversized_and_malformed_answers)
{
    refused_answer(SRV_HUGE_BODY, -EMSGSIZE, "response body too large");
    ASSERT_OK_SO_FAR();
    refused_answer(SRV_HUGE_HEAD, -EMSGSIZE, "response headers too large");
    ASSERT_OK_SO_FAR();
    refused_answer(SRV_GARBAGE, -EPROTO, "bad response");
    ASSERT_OK_SO_FAR();
    refused_answer(SRV_STATUS_ZERO, -EPROTO, "status out of range");
}

/* Bytes after a complete answer: the answer counts, the connection does not. */
TEST(http_client_stray_bytes_end_the_connection)
{
    struct fixture f;
    struct result r = {0};
    ASSERT_EQ(fixture_init(&f, SRV_TRAILING), 0);
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.status, 200);
    ASSERT_STR_EQ(r.body, "ok");
    ASSERT_EQ(idle_now(&f), 0);
    fixture_close(&f);
}

/* The idle count as the answer is delivered: the connection went back to the pool
 * just before, and its idle deadline cannot have passed yet however loaded the
 * machine is. */
struct idle_probe { struct result r; struct http_client *c; int idle; };

static void note_idle(void *arg, const struct http_client_result *res)
{
    struct idle_probe *p = arg;
    struct http_client_stats st;
    on_result(&p->r, res);
    http_client_stats(p->c, &st);
    p->idle = st.idle;
}

TEST(http_client_timeouts)
{
    struct fixture f;
    struct result r = {0};
    struct http_client_opts opts = default_opts;
    ASSERT_EQ(fixture_init(&f, SRV_SILENT), 0);
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.status, -ETIMEDOUT);
    ASSERT_STR_EQ(r.error, "timeout waiting for the response");
    ASSERT_EQ(idle_now(&f), 0);
    fixture_close(&f);

    /* The TLS handshake is part of connecting: a server that never answers it. */
    opts.connect_timeout_ms = 100;
    ASSERT_EQ(fixture_init_opts(&f, SRV_SILENT, &opts), 0);
    memset(&r, 0, sizeof(r));
    snprintf(f.url, sizeof(f.url), "https://127.0.0.1:%d/", f.srv.port);
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.status, -ETIMEDOUT);
    ASSERT_STR_EQ(r.error, "timeout connecting");
    fixture_close(&f);

    /* An idle connection is closed after idle_timeout_ms. */
    opts.idle_timeout_ms = 150;   /* the loop's time is cached before its wait: not too short */
    ASSERT_EQ(fixture_init_opts(&f, SRV_LENGTH, &opts), 0);
    struct idle_probe probe = { .c = f.c, .idle = -1 };
    struct http_client_request rq = { .method = "POST", .url = f.url, .body = "x",
                                      .body_len = 1 };
    ASSERT_EQ(http_client_send(f.c, &rq, note_idle, &probe), 0);
    run_until(&f, &probe.r.calls, 1);
    ASSERT_EQ(probe.r.status, 200);
    ASSERT_EQ(probe.idle, 1);
    while (f.srv.open > 0 && uv_run(&f.loop, UV_RUN_ONCE))
        ;
    ASSERT_EQ(idle_now(&f), 0);
    ASSERT_EQ(f.srv.open, 0);
    fixture_close(&f);
}

TEST(http_client_refused_port_and_bad_urls)
{
    struct fixture f;
    struct result r = {0};
    ASSERT_EQ(fixture_init(&f, SRV_LENGTH), 0);
    ASSERT_EQ(post(&f, "http://127.0.0.1:1/", "", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT(r.status < 0);
    ASSERT(strstr(r.error, "connect") != NULL);
    static const char *bad[] = { "ftp://x/", "http://a b/", "http://x/\r\nEvil: 1",
        "http://u@x/", "http://x:99999/", "http://[x.example]/", "http://[127.0.0.1]/" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT_EQ(post(&f, bad[i], "", &r), -EINVAL);
    ASSERT_EQ(r.calls, 1);
    fixture_close(&f);
}

/* A redirect is an answer like any other: never followed. */
TEST(http_client_does_not_follow_redirects)
{
    struct fixture f;
    struct result r = {0};
    ASSERT_EQ(fixture_init(&f, SRV_REDIRECT), 0);
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.status, 307);
    ASSERT_EQ(f.srv.accepted, 1);
    fixture_close(&f);
}

TEST(http_client_bounded_queue_and_close_cancels)
{
    struct fixture f;
    struct result r[3] = {{0}};
    struct http_client_opts opts = default_opts;
    opts.max_inflight = 1;
    opts.max_queued = 1;
    ASSERT_EQ(fixture_init_opts(&f, SRV_SILENT, &opts), 0);
    ASSERT_EQ(post(&f, f.url, "a", &r[0]), 0);
    ASSERT_EQ(post(&f, f.url, "b", &r[1]), 0);
    ASSERT_EQ(post(&f, f.url, "c", &r[2]), -EAGAIN);
    ASSERT_EQ(http_client_pending(f.c), 2);
    while (f.srv.requests < 1 && uv_run(&f.loop, UV_RUN_ONCE))
        ;
    int done = 0;
    http_client_close(f.c, closed_done, &done);
    ASSERT_EQ(r[0].status, -ECANCELED);
    ASSERT_EQ(r[1].status, -ECANCELED);
    ASSERT_EQ(r[0].calls + r[1].calls + r[2].calls, 2);
    ASSERT_EQ(post(&f, f.url, "d", &r[2]), -ECANCELED);
    ASSERT_EQ(done, 0);                        /* the socket is still closing */
    srv_stop(&f.srv);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    ASSERT_EQ(done, 1);
    http_client_free(f.c);
    uv_loop_close(&f.loop);
    log_close(f.app.log);
}

/* Close also ends the idle connections; done runs once they are closed. */
TEST(http_client_close_ends_idle_connections)
{
    struct fixture f;
    struct result r = {0};
    int done = 0;
    ASSERT_EQ(fixture_init(&f, SRV_LENGTH), 0);
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(idle_now(&f), 1);
    http_client_close(f.c, closed_done, &done);
    ASSERT_EQ(idle_now(&f), 0);
    while (f.srv.open > 0 && uv_run(&f.loop, UV_RUN_ONCE))
        ;
    uv_close((uv_handle_t *)&f.srv.listener, NULL);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    ASSERT_EQ(done, 1);
    ASSERT_EQ(r.calls, 1);
    http_client_free(f.c);
    uv_loop_close(&f.loop);
    log_close(f.app.log);
}
