/* The outbound HTTP client against a small plain-HTTP server on the same loop:
 * status codes, a server that never answers (timeout), a closed port, the bound on
 * requests waiting, and cancellation at close. TLS is covered by the integration
 * tests, against a real HTTPS server with its own CA. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/chatd.h"
#include "chatd/log.h"
#include "test.h"
#include "../../src/modules/notification/notification_internal.h"

enum srv_mode { SRV_204, SRV_500_CLOSE, SRV_SILENT, SRV_GARBAGE, SRV_100_THEN_202,
                SRV_REDIRECT };

struct srv {
    uv_tcp_t listener;
    int port;
    enum srv_mode mode;
    int requests;          /* complete requests seen */
    int accepted;          /* connections */
    char last[4096];       /* the last request's bytes */
};

struct srv_conn {
    uv_tcp_t tcp;
    struct srv *s;
    char buf[4096];
    size_t len;
    int answered;
};

static void conn_closed(uv_handle_t *h) { free(h->data); }

static void srv_written(uv_write_t *w, int status)
{
    (void)status;
    struct srv_conn *c = w->data;
    free(w);
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void srv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    struct srv_conn *c = h->data;
    *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - 1 - c->len));
}

static void srv_answer(struct srv_conn *c)
{
    static const char *answers[] = {
        [SRV_204] = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
        [SRV_500_CLOSE] = "HTTP/1.1 500 Internal Server Error\r\n\r\noops, no length",
        [SRV_GARBAGE] = "SMTP ready\r\n\r\n",
        [SRV_100_THEN_202] = "HTTP/1.1 100 Continue\r\n\r\n"
                             "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok",
        [SRV_REDIRECT] = "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:1/x"
                         "\r\nContent-Length: 0\r\n\r\n",
    };
    c->answered = 1;
    c->s->requests++;
    memcpy(c->s->last, c->buf, c->len + 1);
    if (c->s->mode == SRV_SILENT)
        return;
    uv_write_t *w = malloc(sizeof(*w));
    w->data = c;
    uv_buf_t b = uv_buf_init((char *)answers[c->s->mode],
                             (unsigned)strlen(answers[c->s->mode]));
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, srv_written);
}

static void srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    struct srv_conn *c = st->data;
    if (n < 0) {
        if (!uv_is_closing((uv_handle_t *)st))
            uv_close((uv_handle_t *)st, conn_closed);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = 0;
    char *end = strstr(c->buf, "\r\n\r\n");
    char *cl = strstr(c->buf, "Content-Length: ");
    if (!c->answered && end && cl &&
        c->len >= (size_t)(end + 4 - c->buf) + (size_t)atol(cl + 16))
        srv_answer(c);
}

static void srv_conn_cb(uv_stream_t *l, int status)
{
    struct srv *s = l->data;
    if (status < 0)
        return;
    struct srv_conn *c = calloc(1, sizeof(*c));
    s->accepted++;
    c->s = s;
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    uv_accept(l, (uv_stream_t *)&c->tcp);
    uv_read_start((uv_stream_t *)&c->tcp, srv_alloc, srv_read);
}

static int srv_start(uv_loop_t *loop, struct srv *s, enum srv_mode mode)
{
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof(got);
    memset(s, 0, sizeof(*s));
    s->mode = mode;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    if (uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0) < 0 ||
        uv_listen((uv_stream_t *)&s->listener, 16, srv_conn_cb) < 0 ||
        uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len) < 0)
        return -1;
    s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    return 0;
}

struct result { int calls, status; char error[160]; };

static void on_result(void *arg, int status, const char *error)
{
    struct result *r = arg;
    r->calls++;
    r->status = status;
    snprintf(r->error, sizeof(r->error), "%s", error ? error : "");
}

struct fixture {
    uv_loop_t loop;
    struct chatd app;
    struct outbound *o;
    struct srv srv;
    char url[128];
};

static int fixture_init(struct fixture *f, enum srv_mode mode, int inflight, int queued)
{
    char err[256];
    memset(f, 0, sizeof(*f));
    uv_loop_init(&f->loop);
    f->app.loop = &f->loop;
    log_open(&f->app.log, CHATD_LOG_ERROR, 0, NULL);
    struct outbound_opts opts = { .ca_file = "", .max_inflight = inflight,
                                  .max_queued = queued, .connect_timeout_ms = 1000,
                                  .response_timeout_ms = 200 };
    if (srv_start(&f->loop, &f->srv, mode) < 0 ||
        outbound_new(&f->o, &f->app, &opts, err, sizeof(err)) < 0)
        return -1;
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/hook?x=1", f->srv.port);
    return 0;
}

static void closed_done(void *arg) { (*(int *)arg)++; }

static void fixture_close(struct fixture *f)
{
    int done = 0;
    outbound_close(f->o, closed_done, &done);
    uv_close((uv_handle_t *)&f->srv.listener, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    outbound_free(f->o);
    uv_loop_close(&f->loop);
    log_close(f->app.log);
}

/* Runs the loop until n callbacks arrived (the test's deadline is the client's own). */
static void run_until(struct fixture *f, const int *calls, int n)
{
    while (*calls < n && uv_run(&f->loop, UV_RUN_ONCE))
        ;
}

TEST(notif_outbound_status_and_request_shape)
{
    struct fixture f;
    struct result r = {0};
    ASSERT_EQ(fixture_init(&f, SRV_204, 4, 4), 0);
    ASSERT_EQ(outbound_send(f.o, "POST", f.url, "X-Test: 1\r\n", "{\"a\":1}", 7,
                            0, on_result, &r), 0);
    ASSERT_EQ(r.calls, 0);                     /* never from inside send */
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(r.status, 204);
    ASSERT(strncmp(f.srv.last, "POST /hook?x=1 HTTP/1.1\r\n", 25) == 0);
    char host[64];
    snprintf(host, sizeof(host), "Host: 127.0.0.1:%d\r\n", f.srv.port);
    ASSERT(strstr(f.srv.last, host) != NULL);
    ASSERT(strstr(f.srv.last, "X-Test: 1\r\n") != NULL);
    ASSERT(strstr(f.srv.last, "Content-Length: 7\r\n") != NULL);
    ASSERT(strstr(f.srv.last, "\r\n\r\n{\"a\":1}") != NULL);
    ASSERT_EQ(outbound_pending(f.o), 0);
    fixture_close(&f);
}

TEST(notif_outbound_skips_interim_answers)
{
    struct fixture f;
    struct result r = {0};
    ASSERT_EQ(fixture_init(&f, SRV_100_THEN_202, 4, 4), 0);
    ASSERT_EQ(outbound_send(f.o, "POST", f.url, NULL, "x", 1, 0, on_result, &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.status, 202);
    fixture_close(&f);
}

TEST(notif_outbound_body_ended_by_close)
{
    struct fixture f;
    struct result r = {0};
    ASSERT_EQ(fixture_init(&f, SRV_500_CLOSE, 4, 4), 0);
    ASSERT_EQ(outbound_send(f.o, "POST", f.url, NULL, "x", 1, 0, on_result, &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.status, 500);
    fixture_close(&f);
}

TEST(notif_outbound_timeout_and_garbage)
{
    struct fixture f;
    struct result r = {0};
    ASSERT_EQ(fixture_init(&f, SRV_SILENT, 4, 4), 0);
    ASSERT_EQ(outbound_send(f.o, "POST", f.url, NULL, "x", 1, 0, on_result, &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.status, -ETIMEDOUT);
    ASSERT(strstr(r.error, "timeout") != NULL);
    fixture_close(&f);

    ASSERT_EQ(fixture_init(&f, SRV_GARBAGE, 4, 4), 0);
    memset(&r, 0, sizeof(r));
    ASSERT_EQ(outbound_send(f.o, "POST", f.url, NULL, "x", 1, 0, on_result, &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.status, -EPROTO);
    fixture_close(&f);
}

TEST(notif_outbound_refused_and_bad_urls)
{
    struct fixture f;
    struct result r = {0};
    ASSERT_EQ(fixture_init(&f, SRV_204, 4, 4), 0);
    ASSERT_EQ(outbound_send(f.o, "POST", "http://127.0.0.1:1/", NULL, "", 0, 0, on_result, &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT(r.status < 0);
    ASSERT(strstr(r.error, "connect") != NULL);
    ASSERT_EQ(outbound_send(f.o, "POST", "ftp://x/", NULL, "", 0, 0, on_result, &r), -EINVAL);
    ASSERT_EQ(outbound_send(f.o, "POST", "http://a b/", NULL, "", 0, 0, on_result, &r), -EINVAL);
    ASSERT_EQ(outbound_send(f.o, "POST", "http://x/\r\nEvil: 1", NULL, "", 0, 0, on_result, &r),
              -EINVAL);
    ASSERT_EQ(outbound_send(f.o, "POST", "http://u@x/", NULL, "", 0, 0, on_result, &r), -EINVAL);
    ASSERT_EQ(outbound_send(f.o, "POST", "http://x:99999/", NULL, "", 0, 0, on_result, &r),
              -EINVAL);
    /* Brackets hold an IPv6 literal only: a name there is no URL a browser makes. */
    ASSERT_EQ(outbound_send(f.o, "POST", "http://[x.example]/", NULL, "", 0, 0, on_result, &r),
              -EINVAL);
    ASSERT_EQ(outbound_send(f.o, "POST", "http://[127.0.0.1]/", NULL, "", 0, 0, on_result, &r),
              -EINVAL);
    ASSERT_EQ(r.calls, 1);
    fixture_close(&f);
}

/* A push may not reach a loopback service: by address and by a name that resolves
 * there, the request fails before any connection; without the flag it goes through. */
TEST(notif_outbound_public_only)
{
    struct fixture f;
    struct result r = {0};
    char url[128];
    ASSERT_EQ(fixture_init(&f, SRV_204, 4, 4), 0);
    const char *hosts[] = { "127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433" };
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        snprintf(url, sizeof(url), "http://%s:%d/p", hosts[i], f.srv.port);
        ASSERT_EQ(outbound_send(f.o, "POST", url, NULL, "", 0, OUTBOUND_PUBLIC_ONLY, on_result,
                                &r), 0);
        run_until(&f, &r.calls, (int)i + 1);
        ASSERT_EQ(r.status, OUTBOUND_NOT_PUBLIC);
        ASSERT(strstr(r.error, "not a public address") != NULL);
    }
    ASSERT_EQ(f.srv.accepted, 0);
    ASSERT_EQ(outbound_send(f.o, "POST", f.url, NULL, "", 0, 0, on_result, &r), 0);
    run_until(&f, &r.calls, 5);
    ASSERT_EQ(r.status, 204);
    ASSERT_EQ(f.srv.accepted, 1);
    fixture_close(&f);
}

/* A redirect is an answer like any other: a push checked against its address must
 * not be sent somewhere else by a Location header. */
TEST(notif_outbound_does_not_follow_redirects)
{
    struct fixture f;
    struct result r = {0};
    ASSERT_EQ(fixture_init(&f, SRV_REDIRECT, 4, 4), 0);
    ASSERT_EQ(outbound_send(f.o, "POST", f.url, NULL, "x", 1, 0, on_result, &r), 0);
    run_until(&f, &r.calls, 1);
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(r.status, 307);
    ASSERT_EQ(f.srv.accepted, 1);
    fixture_close(&f);
}

TEST(notif_outbound_bounded_queue_and_close_cancels)
{
    struct fixture f;
    struct result r[3] = {{0}};
    ASSERT_EQ(fixture_init(&f, SRV_SILENT, 1, 1), 0);
    ASSERT_EQ(outbound_send(f.o, "POST", f.url, NULL, "a", 1, 0, on_result, &r[0]), 0);
    ASSERT_EQ(outbound_send(f.o, "POST", f.url, NULL, "b", 1, 0, on_result, &r[1]), 0);
    ASSERT_EQ(outbound_send(f.o, "POST", f.url, NULL, "c", 1, 0, on_result, &r[2]), -EAGAIN);
    ASSERT_EQ(outbound_pending(f.o), 2);
    while (f.srv.requests < 1 && uv_run(&f.loop, UV_RUN_ONCE))
        ;
    int done = 0;
    outbound_close(f.o, closed_done, &done);
    ASSERT_EQ(r[0].status, -ECANCELED);
    ASSERT_EQ(r[1].status, -ECANCELED);
    ASSERT_EQ(r[0].calls + r[1].calls + r[2].calls, 2);
    ASSERT_EQ(outbound_send(f.o, "POST", f.url, NULL, "d", 1, 0, on_result, &r[2]), -ECANCELED);
    uv_close((uv_handle_t *)&f.srv.listener, NULL);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    ASSERT_EQ(done, 1);
    outbound_free(f.o);
    uv_loop_close(&f.loop);
    log_close(f.app.log);
}

TEST(notif_outbound_url_to_request)
{
    struct outbound_target t;
    memset(&t, 0, sizeof(t));
    ASSERT_EQ(outbound_build_request(&t, "POST", "https://[::1]:8443/p?q=1#frag", "A: b\r\n",
                                     "xy", 2), 0);
    ASSERT_STR_EQ(t.host, "::1");
    ASSERT_STR_EQ(t.port, "8443");
    ASSERT(t.tls && t.host_is_ip);
    ASSERT_EQ(t.req_len, strlen(t.req) + 0);
    ASSERT(strncmp(t.req, "POST /p?q=1 HTTP/1.1\r\nHost: [::1]:8443\r\n", 40) == 0);
    ASSERT(strstr(t.req, "\r\nA: b\r\n\r\nxy") != NULL);
    free(t.req);

    memset(&t, 0, sizeof(t));
    ASSERT_EQ(outbound_build_request(&t, "POST", "http://Hooks.example.net?x", NULL, "", 0), 0);
    ASSERT_STR_EQ(t.host, "Hooks.example.net");
    ASSERT_STR_EQ(t.port, "80");
    ASSERT(!t.tls && !t.host_is_ip);
    ASSERT(strncmp(t.req, "POST /?x HTTP/1.1\r\n", 19) == 0);
    free(t.req);

    static const char *bad[] = { "https://", "https://:443/", "https://[::1/", "https://[::1]x/",
        "https://h:/", "https://h:0/", "https://h:123456/", "https://h:8a/", "https://a@h/",
        "https://h/a b", "https://h/\n", "ftp://h/", "h/x", "https://h:+443/", "https://h:-1/",
        "https://h:%34%34%33/", "https://h:0x1bb/" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&t, 0, sizeof(t));
        if (outbound_build_request(&t, "POST", bad[i], NULL, "", 0) != -EINVAL) {
            test_fail(__FILE__, __LINE__, "accepted %s", bad[i]);
            free(t.req);
            return;
        }
    }
}
