/* Core's HTTP client against a plain-HTTP server on the same loop
 * (http_client_fixture.h): answers and their bodies, kept-alive connections and their
 * bounds, servers that close or say Connection: close. Hostile answers, timeouts, the
 * queue bound and close are in test_http_client_limits.c, TLS in
 * test_http_client_tls.c. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "http_client_fixture.h"
#include "test.h"

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

static int post_replayable(struct fixture *f, const char *body, struct result *r)
{
    struct http_client_request rq = { .method = "POST", .url = f->url, .body = body,
                                      .body_len = strlen(body), .replayable = 1 };
    return http_client_send(f->c, &rq, on_result, r);
}

/* The server drops the connection as the request arrives on it (it closed it idle at
 * that moment): a replayable request is sent once more on a fresh connection, and
 * answered. */
TEST(http_client_retries_once_on_a_fresh_connection)
{
    struct fixture f;
    struct result r = {0};
    struct http_client_stats st;
    ASSERT_EQ(fixture_init(&f, SRV_DROP_SECOND), 0);
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(post_replayable(&f, "x", &r), 0);
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

/* A POST not marked replayable that was written before the server dropped the
 * connection may have been acted upon: its failure is the answer, no second copy. A
 * GET is replayable by itself. */
TEST(http_client_written_post_is_not_sent_twice)
{
    struct fixture f;
    struct result r = {0};
    struct http_client_stats st;
    ASSERT_EQ(fixture_init(&f, SRV_DROP_SECOND), 0);
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(post(&f, f.url, "x", &r), 0);
    run_until(&f, &r.calls, 2);
    ASSERT_EQ(r.status, -ECONNRESET);
    http_client_stats(f.c, &st);
    ASSERT_EQ(st.retried, 0);
    ASSERT_EQ(f.srv.requests, 2);
    ASSERT_EQ(f.srv.accepted, 1);
    fixture_close(&f);

    ASSERT_EQ(fixture_init(&f, SRV_DROP_SECOND), 0);
    memset(&r, 0, sizeof(r));
    struct http_client_request get = { .method = "GET", .url = f.url };
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(http_client_send(f.c, &get, on_result, &r), 0);
        run_until(&f, &r.calls, i + 1);
    }
    ASSERT_EQ(r.status, 200);
    http_client_stats(f.c, &st);
    ASSERT_EQ(st.retried, 1);
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
