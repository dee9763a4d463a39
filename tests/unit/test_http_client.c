/* Core's HTTP client against a plain-HTTP server on the same loop
 * (http_test_server.h): answers and their bodies, kept-alive connections and their
 * bounds, servers that close, hostile answers, timeouts, the queue bound and close.
 * TLS is in test_http_client_tls.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/chatd.h"
#include "chatd/http_client.h"
#include "chatd/log.h"
#include "http_test_server.h"
#include "test.h"

struct result { int calls, status; char error[200]; char body[256]; size_t body_len; };

static void on_result(void *arg, const struct http_client_result *res)
{
    struct result *r = arg;
    r->calls++;
    r->status = res->status;
    r->body_len = res->body_len;
    snprintf(r->error, sizeof(r->error), "%s", res->error ? res->error : "");
    snprintf(r->body, sizeof(r->body), "%s", res->body ? res->body : "");
}

struct fixture {
    uv_loop_t loop;
    struct chatd app;
    struct http_client *c;
    struct srv srv;
    char url[128];
};

static const struct http_client_opts default_opts = {
    .ca_file = "", .max_inflight = 8, .max_queued = 8, .connect_timeout_ms = 1000,
    .response_timeout_ms = 300, .max_idle_per_origin = 2, .max_idle = 3,
    .idle_timeout_ms = 5000, .max_head_bytes = 8192, .max_body_bytes = 1024,
};

static int fixture_init_opts(struct fixture *f, enum srv_mode mode,
                             const struct http_client_opts *opts)
{
    char err[256];
    memset(f, 0, sizeof(*f));
    uv_loop_init(&f->loop);
    f->app.loop = &f->loop;
    log_open(&f->app.log, CHATD_LOG_ERROR, 0, NULL);
    if (srv_start(&f->loop, &f->srv, mode) < 0 ||
        http_client_new(&f->c, &f->app, opts, err, sizeof(err)) < 0)
        return -1;
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/hook?x=1", f->srv.port);
    return 0;
}

static int fixture_init(struct fixture *f, enum srv_mode mode)
{
    return fixture_init_opts(f, mode, &default_opts);
}

static void closed_done(void *arg) { (*(int *)arg)++; }

static void fixture_close(struct fixture *f)
{
    int done = 0;
    http_client_close(f->c, closed_done, &done);
    srv_stop(&f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    http_client_free(f->c);
    uv_loop_close(&f->loop);
    log_close(f->app.log);
}

static int post(struct fixture *f, const char *url, const char *body, struct result *r)
{
    struct http_client_request rq = { .method = "POST", .url = url, .body = body,
                                      .body_len = strlen(body) };
    return http_client_send(f->c, &rq, on_result, r);
}

/* Runs the loop until *calls reaches n (the client's own deadlines end a stuck one). */
static void run_until(struct fixture *f, const int *calls, int n)
{
    while (*calls < n && uv_run(&f->loop, UV_RUN_ONCE))
        ;
}

static int idle_now(struct fixture *f)
{
    struct http_client_stats st;
    http_client_stats(f->c, &st);
    return st.idle;
}

TEST(http_client_status_body_and_request_shape)
{
    struct fixture f;
    struct result r = {0};
    ASSERT_EQ(fixture_init(&f, SRV_LENGTH), 0);
    struct http_client_request rq = { .method = "POST", .url = f.url,
                                      .headers = "X-Test: 1\r\n", .body = "{\"a\":1}",
                                      .body_len = 7 };
    ASSERT_EQ(http_client_send(f.c, &rq, on_result, &r), 0);
    ASSERT_EQ(r.calls, 0);                     /* never from inside send */
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.status, 200);
    ASSERT_STR_EQ(r.body, "hello");
    ASSERT(strncmp(f.srv.last, "POST /hook?x=1 HTTP/1.1\r\n", 25) == 0);
    char host[64];
    snprintf(host, sizeof(host), "Host: 127.0.0.1:%d\r\n", f.srv.port);
    ASSERT(strstr(f.srv.last, host) != NULL);
    ASSERT(strstr(f.srv.last, "X-Test: 1\r\n") != NULL);
    ASSERT(strstr(f.srv.last, "Content-Length: 7\r\n") != NULL);
    ASSERT(strstr(f.srv.last, "Connection: close") == NULL);
    ASSERT(strstr(f.srv.last, "\r\n\r\n{\"a\":1}") != NULL);
    ASSERT_EQ(http_client_pending(f.c), 0);
    fixture_close(&f);
}

/* N requests one after the other to one origin: one TCP connection. */
static void sequential_on_one_connection(enum srv_mode mode, const char *body)
{
    struct fixture f;
    struct result r = {0};
    struct http_client_stats st;
    ASSERT_EQ(fixture_init(&f, mode), 0);
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(post(&f, f.url, "x", &r), 0);
        run_until(&f, &r.calls, i + 1);
        ASSERT_EQ(r.status, 200);
        ASSERT_STR_EQ(r.body, body);
    }
    ASSERT_EQ(f.srv.accepted, 1);
    ASSERT_EQ(f.srv.requests, 5);
    http_client_stats(f.c, &st);
    ASSERT_EQ(st.connections, 1);
    ASSERT_EQ(st.reused, 4);
    ASSERT_EQ(st.idle, 1);
    fixture_close(&f);
}

TEST(http_client_reuses_after_content_length_body)
{
    sequential_on_one_connection(SRV_LENGTH, "hello");
}

TEST(http_client_reuses_after_chunked_body)
{
    sequential_on_one_connection(SRV_CHUNKED, "hello world");
}

/* 5 at once open 5 connections; at most max_idle_per_origin (2) stay. */
TEST(http_client_idle_bound_per_origin_and_in_all)
{
    struct fixture f;
    struct srv other;
    struct result r[8] = {{0}};
    char url2[128];
    int calls = 0;
    ASSERT_EQ(fixture_init(&f, SRV_LENGTH), 0);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(post(&f, f.url, "x", &r[i]), 0);
    while (calls < 5 && uv_run(&f.loop, UV_RUN_ONCE))
        for (int i = calls = 0; i < 5; i++)
            calls += r[i].calls;
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(r[i].status, 200);
    ASSERT_EQ(f.srv.accepted, 5);
    ASSERT_EQ(idle_now(&f), 2);
    while (f.srv.open > 2 && uv_run(&f.loop, UV_RUN_ONCE))
        ;                                      /* the others were closed */
    ASSERT_EQ(f.srv.open, 2);
    /* A second origin: 2 more idle would make 4, past max_idle (3): the oldest goes. */
    ASSERT_EQ(srv_start(&f.loop, &other, SRV_LENGTH), 0);
    snprintf(url2, sizeof(url2), "http://127.0.0.1:%d/", other.port);
    ASSERT_EQ(post(&f, url2, "x", &r[5]), 0);
    ASSERT_EQ(post(&f, url2, "x", &r[6]), 0);
    while ((r[5].calls + r[6].calls) < 2 && uv_run(&f.loop, UV_RUN_ONCE))
        ;
    ASSERT_EQ(r[6].status, 200);
    ASSERT_EQ(idle_now(&f), 3);
    while (f.srv.open + other.open > 3 && uv_run(&f.loop, UV_RUN_ONCE))
        ;
    ASSERT_EQ(f.srv.open, 1);
    ASSERT_EQ(other.open, 2);
    srv_stop(&other);
    fixture_close(&f);
}

/* The server closes the idle connection: the client sees it and opens another. */
TEST(http_client_server_closes_idle_connection)
{
    struct fixture f;
    struct result r = {0};
    ASSERT_EQ(fixture_init(&f, SRV_LENGTH), 0);
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(idle_now(&f), 1);
    srv_close_conns(&f.srv);
    while (idle_now(&f) > 0 && uv_run(&f.loop, UV_RUN_ONCE))
        ;
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 2);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(f.srv.accepted, 2);
    fixture_close(&f);
}

/* The server drops the connection as the request arrives on it (it closed it idle at
 * that moment): sent once more on a fresh connection, and answered. */
TEST(http_client_retries_once_on_a_fresh_connection)
{
    struct fixture f;
    struct result r = {0};
    struct http_client_stats st;
    ASSERT_EQ(fixture_init(&f, SRV_DROP_SECOND), 0);
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 2);
    ASSERT_EQ(r.calls, 2);
    ASSERT_EQ(r.status, 200);
    ASSERT_STR_EQ(r.body, "first");
    http_client_stats(f.c, &st);
    ASSERT_EQ(st.retried, 1);
    ASSERT_EQ(f.srv.accepted, 2);
    ASSERT_EQ(f.srv.requests, 3);
    fixture_close(&f);
}

/* On a fresh connection a failure is the answer: no second try. */
TEST(http_client_no_retry_on_a_fresh_connection)
{
    struct fixture f;
    struct result r = {0};
    ASSERT_EQ(fixture_init(&f, SRV_DROP_ALL), 0);
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.status, -ECONNRESET);
    ASSERT_EQ(f.srv.requests, 1);
    ASSERT_EQ(f.srv.accepted, 1);
    fixture_close(&f);
}

/* Connection: close from the server: never reused, even when it leaves it open. */
TEST(http_client_honours_connection_close)
{
    struct fixture f;
    struct result r = {0};
    ASSERT_EQ(fixture_init(&f, SRV_SAYS_CLOSE), 0);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(post(&f, f.url, "x", &r), 0);
        run_until(&f, &r.calls, i + 1);
        ASSERT_EQ(r.status, 200);
    }
    ASSERT_EQ(f.srv.accepted, 3);
    ASSERT_EQ(idle_now(&f), 0);
    fixture_close(&f);

    ASSERT_EQ(fixture_init(&f, SRV_204_CLOSE), 0);
    memset(&r, 0, sizeof(r));
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.status, 204);
    ASSERT_EQ(idle_now(&f), 0);
    fixture_close(&f);
}

TEST(http_client_body_ended_by_close_and_interim_answers)
{
    struct fixture f;
    struct result r = {0};
    ASSERT_EQ(fixture_init(&f, SRV_500_EOF), 0);
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.status, 500);
    ASSERT_STR_EQ(r.body, "oops, no length");
    ASSERT_EQ(idle_now(&f), 0);
    fixture_close(&f);

    ASSERT_EQ(fixture_init(&f, SRV_100_THEN_202), 0);
    memset(&r, 0, sizeof(r));
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.status, 202);
    ASSERT_STR_EQ(r.body, "ok");
    fixture_close(&f);
}

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

    /* An idle connection is closed after idle_timeout_ms. */
    opts.idle_timeout_ms = 20;
    ASSERT_EQ(fixture_init_opts(&f, SRV_LENGTH, &opts), 0);
    memset(&r, 0, sizeof(r));
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(idle_now(&f), 1);
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
