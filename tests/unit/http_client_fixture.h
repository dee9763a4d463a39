/* http_client_fixture.h: a client and a plain-HTTP test server (http_test_server.h) on
 * one loop, for the HTTP client's tests. */
#ifndef CHATD_HTTP_CLIENT_FIXTURE_H
#define CHATD_HTTP_CLIENT_FIXTURE_H

#include <stdio.h>
#include <string.h>
#include "chatd/chatd.h"
#include "chatd/http_client.h"
#include "chatd/log.h"
#include "http_test_server.h"

struct result { int calls, status; char error[200]; char body[256]; size_t body_len; };

static inline void on_result(void *arg, const struct http_client_result *res)
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

static inline int fixture_init_opts(struct fixture *f, enum srv_mode mode,
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

static inline int fixture_init(struct fixture *f, enum srv_mode mode)
{
    return fixture_init_opts(f, mode, &default_opts);
}

static inline void closed_done(void *arg) { (*(int *)arg)++; }

static inline void fixture_close(struct fixture *f)
{
    int done = 0;
    http_client_close(f->c, closed_done, &done);
    srv_stop(&f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    http_client_free(f->c);
    uv_loop_close(&f->loop);
    log_close(f->app.log);
}

static inline int post(struct fixture *f, const char *url, const char *body, struct result *r)
{
    struct http_client_request rq = { .method = "POST", .url = url, .body = body,
                                      .body_len = strlen(body) };
    return http_client_send(f->c, &rq, on_result, r);
}

/* Runs the loop until *calls reaches n (the client's own deadlines end a stuck one). */
static inline void run_until(struct fixture *f, const int *calls, int n)
{
    while (*calls < n && uv_run(&f->loop, UV_RUN_ONCE))
        ;
}

static inline int idle_now(struct fixture *f)
{
    struct http_client_stats st;
    http_client_stats(f->c, &st);
    return st.idle;
}

#endif
