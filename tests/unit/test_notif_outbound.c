/* The notification module's outbound requests: core's HTTP client with netcheck.c's
 * hook for a push (public addresses only), against a plain-HTTP server on the same
 * loop; and the request bytes a URL makes. The client itself is tested in
 * test_http_client*.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/chatd.h"
#include "chatd/log.h"
#include "http_test_server.h"
#include "test.h"
#include "../../src/core/http_client_impl.h"
#include "../../src/modules/notification/notification_internal.h"

struct result { int calls, status; char error[400]; };

static void on_result(void *arg, const struct http_client_result *res)
{
    struct result *r = arg;
    r->calls++;
    r->status = res->status;
    snprintf(r->error, sizeof(r->error), "%s", res->error ? res->error : "");
}

static void closed_done(void *arg) { (*(int *)arg)++; }

/* A push may not reach a loopback service: by address and by a name that resolves
 * there, the request fails before any connection; without the hook it goes through,
 * and a connection opened without the hook is never lent to a request with it. */
TEST(notif_outbound_public_only)
{
    uv_loop_t loop;
    struct chatd app = { .loop = &loop };
    struct http_client *c;
    struct srv srv;
    struct result r = {0};
    char url[128], err[256];
    struct http_client_opts opts = { .ca_file = "", .max_inflight = 4, .max_queued = 4,
        .connect_timeout_ms = 1000, .response_timeout_ms = 1000, .max_idle_per_origin = 2,
        .max_idle = 4, .idle_timeout_ms = 5000 };
    uv_loop_init(&loop);
    log_open(&app.log, CHATD_LOG_ERROR, 0, NULL);
    ASSERT_EQ(srv_start(&loop, &srv, SRV_LENGTH), 0);
    ASSERT_EQ(http_client_new(&c, &app, &opts, err, sizeof(err)), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/p", srv.port);
    struct http_client_request plain = { .method = "POST", .url = url, .body = "" };
    ASSERT_EQ(http_client_send(c, &plain, on_result, &r), 0);
    while (r.calls < 1 && uv_run(&loop, UV_RUN_ONCE))
        ;
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(srv.accepted, 1);
    const char *hosts[] = { "127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433" };
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        snprintf(url, sizeof(url), "http://%s:%d/p", hosts[i], srv.port);
        struct http_client_request push = { .method = "POST", .url = url, .body = "",
                                            .pick = net_first_public };
        ASSERT_EQ(http_client_send(c, &push, on_result, &r), 0);
        while (r.calls < (int)i + 2 && uv_run(&loop, UV_RUN_ONCE))
            ;
        ASSERT_EQ(r.status, OUTBOUND_NOT_PUBLIC);
        ASSERT(strstr(r.error, "not a public address") != NULL);
    }
    ASSERT_EQ(srv.accepted, 1);
    ASSERT_EQ(srv.requests, 1);
    int done = 0;
    http_client_close(c, closed_done, &done);
    srv_stop(&srv);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(done, 1);
    http_client_free(c);
    uv_loop_close(&loop);
    log_close(app.log);
}

TEST(notif_outbound_url_to_request)
{
    struct hc_target t;
    struct http_client_request rq = { .method = "POST", .url = "https://[::1]:8443/p?q=1#frag",
                                      .headers = "A: b\r\n", .body = "xy", .body_len = 2 };
    memset(&t, 0, sizeof(t));
    ASSERT_EQ(hc_build_request(&t, &rq, 1), 0);
    ASSERT_STR_EQ(t.o.host, "::1");
    ASSERT_STR_EQ(t.o.port, "8443");
    ASSERT(t.o.tls && t.o.host_is_ip);
    ASSERT_EQ(t.req_len, strlen(t.req) + 0);
    ASSERT(strncmp(t.req, "POST /p?q=1 HTTP/1.1\r\nHost: [::1]:8443\r\n", 40) == 0);
    ASSERT(strstr(t.req, "\r\nA: b\r\n\r\nxy") != NULL);
    ASSERT(strstr(t.req, "Connection:") == NULL);
    free(t.req);

    struct http_client_request rq2 = { .method = "POST", .url = "http://Hooks.example.net?x",
                                       .body = "" };
    memset(&t, 0, sizeof(t));
    ASSERT_EQ(hc_build_request(&t, &rq2, 0), 0);
    ASSERT_STR_EQ(t.o.host, "Hooks.example.net");
    ASSERT_STR_EQ(t.o.port, "80");
    ASSERT(!t.o.tls && !t.o.host_is_ip);
    ASSERT(strncmp(t.req, "POST /?x HTTP/1.1\r\n", 19) == 0);
    ASSERT(strstr(t.req, "Connection: close\r\n") != NULL);   /* no reuse: said so */
    free(t.req);

    static const char *bad[] = { "https://", "https://:443/", "https://[::1/", "https://[::1]x/",
        "https://h:/", "https://h:0/", "https://h:123456/", "https://h:8a/", "https://a@h/",
        "https://h/a b", "https://h/\n", "ftp://h/", "h/x", "https://h:+443/", "https://h:-1/",
        "https://h:%34%34%33/", "https://h:0x1bb/" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct http_client_origin o;
        memset(&t, 0, sizeof(t));
        rq2.url = bad[i];
        if (hc_build_request(&t, &rq2, 1) != -EINVAL || http_client_parse_url(&o, bad[i]) != -EINVAL) {
            test_fail(__FILE__, __LINE__, "accepted %s", bad[i]);
            free(t.req);
            return;
        }
    }
}
