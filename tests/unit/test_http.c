/* test_http.c: the HTTP gateway driven without a network: bytes go into a connection's
 * parser and answers come back through the test capture. Covers keep-alive and
 * pipelining, the limits (431, 413, 408), malformed input, auth, HEAD, helpers. One
 * test also goes through a real loopback socket (upgrade hand-over, max_connections). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "test.h"
#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "../../src/core/http_internal.h"

struct fx {
    uv_loop_t loop;
    struct chatd app;
    struct chatd_config cfg;
    struct http_server *s;
    struct http_capture cap;
    struct http_conn *c;
    struct http_req *held;           /* a request the "slow" handler keeps */
    int calls;
    char seen[512];                  /* paths handled, in order */
};

static void on_echo(struct http_req *r, void *ctx)
{
    struct fx *f = ctx;
    f->calls++;
    strncat(f->seen, r->path, sizeof(f->seen) - strlen(f->seen) - 2);
    strcat(f->seen, " ");
    char body[256];
    char q[64] = "";
    http_query(r, "q", q, sizeof(q));
    int n = snprintf(body, sizeof(body), "{\"path\":\"%s\",\"len\":%zu,\"q\":\"%s\",\"id\":%lld}",
                     r->path, r->body_len, q, (long long)http_param_id(r, 0));
    http_respond_json_str(r, 200, body, (size_t)n);
}

static void on_slow(struct http_req *r, void *ctx)
{
    struct fx *f = ctx;
    f->calls++;
    strcat(f->seen, "slow ");
    f->held = r;                     /* answered later by the test */
}

static void on_json(struct http_req *r, void *ctx)
{
    cJSON *b = http_json_body(r);
    if (!b)
        return;
    cJSON_Delete(b);
    http_respond_empty(r, 204);
}

static void on_me(struct http_req *r, void *ctx)
{
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"id\":%lld,\"name\":\"%s\"}",
                     (long long)r->user.id, r->user.name);
    http_respond_json_str(r, 200, body, (size_t)n);
}

static int verify(void *ctx, const char *token, struct http_user *user, const char **reason)
{
    if (strcmp(token, "good") != 0) {
        *reason = "bad_signature";
        return -EACCES;
    }
    user->id = 7;
    snprintf(user->name, sizeof(user->name), "alice");
    return 0;
}

static int fx_init(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    if (uv_loop_init(&f->loop) < 0)
        return -1;
    config_defaults(&f->cfg);
    f->cfg.server.max_header_bytes = 1024;
    f->cfg.server.max_body_bytes = 100;
    f->app.loop = &f->loop;
    f->app.cfg = &f->cfg;
    if (log_open(&f->app.log, CHATD_LOG_ERROR, 0, NULL) < 0 || metrics_new(&f->app.metrics) < 0)
        return -1;
    if (http_server_new(&f->s, &f->app) < 0)
        return -1;
    f->app.http = f->s;
    int rc = 0;
    rc |= http_route(f->s, HTTP_VERB_GET, "/echo", 0, on_echo, f);
    rc |= http_route(f->s, HTTP_VERB_POST, "/echo", 0, on_echo, f);
    rc |= http_route(f->s, HTTP_VERB_GET, "/items/{id}", 0, on_echo, f);
    rc |= http_route(f->s, HTTP_VERB_GET, "/slow", 0, on_slow, f);
    rc |= http_route(f->s, HTTP_VERB_POST, "/json", 0, on_json, f);
    rc |= http_route(f->s, HTTP_VERB_GET, "/me", HTTP_ROUTE_AUTH, on_me, f);
    rc |= http_route(f->s, HTTP_VERB_GET, "/ws", HTTP_ROUTE_AUTH | HTTP_ROUTE_RAW_TOKEN, on_me, f);
    strbuf_init(&f->cap.out, 1 << 20);
    if (rc || http_test_conn(f->s, &f->cap, &f->c) < 0)
        return -1;
    return 0;
}

static void fx_free(struct fx *f)
{
    if (f->held)
        http_respond_empty(f->held, 204);
    if (!f->cap.closed)
        http_conn_close(f->c);
    http_server_close(f->s, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    http_server_free(f->s);
    metrics_free(f->app.metrics);
    log_close(f->app.log);
    uv_loop_close(&f->loop);
    strbuf_free(&f->cap.out);
}

static void feed(struct fx *f, const char *s)
{
    http_conn_feed(f->c, s, strlen(s));
}

static const char *out(struct fx *f)
{
    return f->cap.out.len ? f->cap.out.data : "";
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

TEST(http_get_answers_json_keep_alive)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    feed(&f, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 200 OK\r\n", 17) == 0);
    ASSERT(strstr(out(&f), "Content-Type: application/json\r\n"));
    ASSERT(strstr(out(&f), "Content-Length: 15\r\n"));
    ASSERT(strstr(out(&f), "Cache-Control: no-store\r\n"));
    ASSERT(!strstr(out(&f), "Connection: close"));
    ASSERT(strstr(out(&f), "\r\n\r\n{\"status\":\"ok\"}"));
    ASSERT(!f.cap.closed);
    feed(&f, "GET /readyz HTTP/1.1\r\n\r\n");
    ASSERT(strstr(out(&f), "{\"status\":\"ready\"}"));
    ASSERT(!f.cap.closed);
    fx_free(&f);
}

TEST(http_pipelined_answers_in_order)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    feed(&f, "GET /slow HTTP/1.1\r\n\r\nGET /echo?q=a HTTP/1.1\r\n\r\n"
             "GET /echo?q=b HTTP/1.1\r\n\r\n");
    /* The second request is not parsed before the first is answered. */
    ASSERT_EQ(f.calls, 1);
    ASSERT_EQ(f.cap.out.len, 0);
    ASSERT(f.held);
    struct http_req *r = f.held;
    f.held = NULL;
    http_respond_json_str(r, 200, "{\"first\":1}", 11);
    ASSERT_EQ(f.calls, 3);
    ASSERT_STR_EQ(f.seen, "slow /echo /echo ");
    const char *o = out(&f);
    const char *a = strstr(o, "{\"first\":1}");
    const char *b = strstr(o, "\"q\":\"a\"");
    const char *c = strstr(o, "\"q\":\"b\"");
    ASSERT(a && b && c && a < b && b < c);
    ASSERT_EQ(count(o, "HTTP/1.1 200 OK"), 3);
    fx_free(&f);
}

TEST(http_request_in_one_byte_pieces)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    const char *req = "POST /echo?q=x%20y HTTP/1.1\r\nHost: example\r\nX-Long-Name: a value\r\n"
                      "Content-Length: 5\r\n\r\nhello";
    for (size_t i = 0; req[i]; i++)
        http_conn_feed(f.c, req + i, 1);
    ASSERT(strstr(out(&f), "\"len\":5"));
    ASSERT(strstr(out(&f), "\"q\":\"x y\""));
    ASSERT(strstr(out(&f), "\"path\":\"/echo\""));
    fx_free(&f);
}

TEST(http_chunked_body_and_params)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    feed(&f, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
    ASSERT(strstr(out(&f), "\"len\":7"));
    feed(&f, "GET /items/123 HTTP/1.1\r\n\r\n");
    ASSERT(strstr(out(&f), "\"id\":123"));
    feed(&f, "GET /items/12x HTTP/1.1\r\n\r\n");
    ASSERT(strstr(out(&f), "\"id\":-1"));
    fx_free(&f);
}

TEST(http_header_bytes_limit_431)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    char big[2048];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    feed(&f, "GET /echo HTTP/1.1\r\nX-Big: ");
    feed(&f, big);
    ASSERT(strncmp(out(&f), "HTTP/1.1 431 ", 13) == 0);
    ASSERT(strstr(out(&f), "Content-Type: application/json"));
    ASSERT(strstr(out(&f), "Connection: close"));
    ASSERT(strstr(out(&f), "\"code\":\"invalid_argument\""));
    ASSERT(f.cap.closed);
    ASSERT_EQ(f.calls, 0);
    fx_free(&f);
}

TEST(http_too_many_headers_431)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    f.cfg.server.max_header_bytes = 16384;
    feed(&f, "GET /echo HTTP/1.1\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS + 1; i++) {
        char h[32];
        snprintf(h, sizeof(h), "X-H%d: v\r\n", i);
        feed(&f, h);
    }
    feed(&f, "\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 431 ", 13) == 0);
    ASSERT(f.cap.closed);
    fx_free(&f);
}

TEST(http_body_limit_413)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    feed(&f, "POST /echo HTTP/1.1\r\nContent-Length: 101\r\n\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 413 ", 13) == 0);
    ASSERT(strstr(out(&f), "\"code\":\"payload_too_large\""));
    ASSERT(f.cap.closed);
    fx_free(&f);

    /* Chunked: the total counts, whatever the chunk sizes. */
    ASSERT_EQ(fx_init(&f), 0);
    feed(&f, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 30 && !f.cap.closed; i++)
        feed(&f, "a\r\n0123456789\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 413 ", 13) == 0);
    ASSERT_EQ(f.calls, 0);
    fx_free(&f);

    /* Exactly at the limit is fine. */
    ASSERT_EQ(fx_init(&f), 0);
    char req[256];
    snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\n%0100d", 0);
    feed(&f, req);
    ASSERT(strstr(out(&f), "\"len\":100"));
    fx_free(&f);
}

TEST(http_garbage_400_and_close)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    feed(&f, "HELLO WORLD\r\n\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 400 ", 13) == 0);
    ASSERT(strstr(out(&f), "{\"error\":{\"code\":\"invalid_argument\""));
    ASSERT(f.cap.closed);
    fx_free(&f);

    ASSERT_EQ(fx_init(&f), 0);
    feed(&f, "GET /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 400 ", 13) == 0);
    ASSERT(f.cap.closed);
    fx_free(&f);

    ASSERT_EQ(fx_init(&f), 0);
    feed(&f, "GET http://evil/ HTTP/1.1\r\n\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 400 ", 13) == 0);
    fx_free(&f);
}

TEST(http_404_405_json)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    feed(&f, "GET /v1/nothing HTTP/1.1\r\n\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 404 ", 13) == 0);
    ASSERT(strstr(out(&f), "\"code\":\"not_found\""));
    ASSERT(!f.cap.closed);
    f.cap.out.len = 0;
    feed(&f, "DELETE /echo HTTP/1.1\r\n\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 405 ", 13) == 0);
    ASSERT(strstr(out(&f), "Allow: GET, HEAD, POST\r\n"));
    ASSERT(strstr(out(&f), "\"code\":\"method_not_allowed\""));
    ASSERT(!f.cap.closed);
    fx_free(&f);
}

TEST(http_head_has_no_body)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    feed(&f, "HEAD /healthz HTTP/1.1\r\n\r\n");
    ASSERT(strstr(out(&f), "HTTP/1.1 200 OK\r\n"));
    ASSERT(strstr(out(&f), "Content-Length: 15\r\n"));
    size_t n = f.cap.out.len;
    ASSERT(n > 4 && memcmp(out(&f) + n - 4, "\r\n\r\n", 4) == 0);
    fx_free(&f);
}

TEST(http_connection_close_and_http10)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    feed(&f, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n");
    ASSERT_EQ(count(out(&f), "HTTP/1.1 200"), 1);
    ASSERT(strstr(out(&f), "Connection: close\r\n"));
    ASSERT(f.cap.closed);
    fx_free(&f);

    ASSERT_EQ(fx_init(&f), 0);
    feed(&f, "GET /healthz HTTP/1.0\r\n\r\n");
    ASSERT(strstr(out(&f), "Connection: close\r\n"));
    ASSERT(f.cap.closed);
    fx_free(&f);

    ASSERT_EQ(fx_init(&f), 0);
    feed(&f, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ASSERT(strstr(out(&f), "Connection: keep-alive\r\n"));
    ASSERT(!f.cap.closed);
    fx_free(&f);
}

TEST(http_auth_bearer)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    /* No keys given to the gateway yet: its own check refuses, 401. */
    feed(&f, "GET /me HTTP/1.1\r\nAuthorization: Bearer good\r\n\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 401 ", 13) == 0);
    ASSERT(strstr(out(&f), "WWW-Authenticate: Bearer"));
    ASSERT(strstr(out(&f), "\"code\":\"unauthorized\""));
    http_set_verifier(f.s, verify, NULL);
    f.cap.out.len = 0;
    feed(&f, "GET /me HTTP/1.1\r\n\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 401 ", 13) == 0);
    f.cap.out.len = 0;
    feed(&f, "GET /me HTTP/1.1\r\nAuthorization: Bearer bad\r\n\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 401 ", 13) == 0);
    ASSERT(strstr(out(&f), "bad_signature"));
    f.cap.out.len = 0;
    feed(&f, "GET /me HTTP/1.1\r\nauthorization: bearer good\r\n\r\n");
    ASSERT(strstr(out(&f), "{\"id\":7,\"name\":\"alice\"}"));
    /* ?access_token= only where the route allows it. */
    f.cap.out.len = 0;
    feed(&f, "GET /me?access_token=good HTTP/1.1\r\n\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 401 ", 13) == 0);
    f.cap.out.len = 0;
    feed(&f, "GET /ws?access_token=good HTTP/1.1\r\n\r\n");
    ASSERT(strstr(out(&f), "{\"id\":7,\"name\":\"alice\"}"));
    fx_free(&f);
}

TEST(http_json_body_helper)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    feed(&f, "POST /json HTTP/1.1\r\nContent-Length: 7\r\n\r\n{\"a\":1}");
    ASSERT(strncmp(out(&f), "HTTP/1.1 204 ", 13) == 0);
    ASSERT(!strstr(out(&f), "Content-Length"));
    f.cap.out.len = 0;
    feed(&f, "POST /json HTTP/1.1\r\nContent-Length: 3\r\n\r\n[1]");
    ASSERT(strncmp(out(&f), "HTTP/1.1 400 ", 13) == 0);
    ASSERT(strstr(out(&f), "\"code\":\"invalid_argument\""));
    ASSERT(!f.cap.closed);
    fx_free(&f);
}

TEST(http_headers_and_query_helpers)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    struct http_header h[] = { { "X-Empty", "" }, { "Content-Type", "text/plain" } };
    struct http_req r;
    memset(&r, 0, sizeof(r));
    r.headers = h;
    r.nheaders = 2;
    r.query = "a=1&b=x+y%21&c&d=%zz&long=0123456789";
    ASSERT_STR_EQ(http_header(&r, "content-type"), "text/plain");
    ASSERT_STR_EQ(http_header(&r, "x-empty"), "");
    ASSERT(http_header(&r, "missing") == NULL);
    char v[8];
    ASSERT_EQ(http_query(&r, "b", v, sizeof(v)), 0);
    ASSERT_STR_EQ(v, "x y!");
    ASSERT_EQ(http_query(&r, "c", v, sizeof(v)), 0);
    ASSERT_STR_EQ(v, "");
    ASSERT_EQ(http_query(&r, "d", v, sizeof(v)), 0);
    ASSERT_STR_EQ(v, "%zz");
    ASSERT_EQ(http_query(&r, "zz", v, sizeof(v)), -ENOENT);
    ASSERT_EQ(http_query(&r, "long", v, sizeof(v)), -ENOBUFS);
    ASSERT_STR_EQ(http_error_code(413), "payload_too_large");
    ASSERT_STR_EQ(http_error_code(429), "rate_limited");
    fx_free(&f);
}

TEST(http_empty_header_value_parsed)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    http_set_verifier(f.s, verify, NULL);
    feed(&f, "GET /me HTTP/1.1\r\nX-Empty:\r\nAuthorization: Bearer good\r\n\r\n");
    ASSERT(strstr(out(&f), "\"id\":7"));
    fx_free(&f);
}

static void wait_closed(struct fx *f, uint64_t deadline_ms)
{
    uint64_t end = uv_now(&f->loop) + deadline_ms;
    while (!f->cap.closed && uv_now(&f->loop) < end) {
        uv_run(&f->loop, UV_RUN_ONCE);
        uv_update_time(&f->loop);
    }
}

TEST(http_header_timeout_408)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    f.cfg.server.header_timeout_ms = 50;
    f.cfg.server.idle_timeout_ms = 5000;
    /* A first request is answered, then a second head dribbles in and stalls. */
    feed(&f, "GET /healthz HTTP/1.1\r\n\r\n");
    f.cap.out.len = 0;
    feed(&f, "GET /healthz HTTP/1.1\r\nX-A: 1\r\n");
    wait_closed(&f, 3000);
    ASSERT(f.cap.closed);
    ASSERT(strncmp(out(&f), "HTTP/1.1 408 ", 13) == 0);
    fx_free(&f);
}

TEST(http_idle_timeout_closes_quietly)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    f.cfg.server.idle_timeout_ms = 30;
    feed(&f, "GET /healthz HTTP/1.1\r\n\r\n");
    f.cap.out.len = 0;
    wait_closed(&f, 3000);
    ASSERT(f.cap.closed);
    ASSERT_EQ(f.cap.out.len, 0);
    fx_free(&f);
}

TEST(http_static_and_metrics)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f), 0);
    feed(&f, "GET / HTTP/1.1\r\n\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 200 ", 13) == 0);
    ASSERT(strstr(out(&f), "Content-Type: text/html"));
    ASSERT(strstr(out(&f), "Cache-Control: no-cache\r\n"));
    ASSERT(strstr(out(&f), "Content-Security-Policy: default-src 'self'"));
    ASSERT(strstr(out(&f), "X-Content-Type-Options: nosniff\r\n"));
    const char *et = strstr(out(&f), "ETag: ");
    ASSERT(et);
    char etag[64];
    size_t n = strcspn(et + 6, "\r");
    ASSERT(n < sizeof(etag));
    memcpy(etag, et + 6, n);
    etag[n] = '\0';
    f.cap.out.len = 0;
    char req[256];
    snprintf(req, sizeof(req), "GET /index.html HTTP/1.1\r\nIf-None-Match: %s\r\n\r\n", etag);
    feed(&f, req);
    ASSERT(strncmp(out(&f), "HTTP/1.1 304 ", 13) == 0);
    f.cap.out.len = 0;
    feed(&f, "GET /../etc/passwd HTTP/1.1\r\n\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 404 ", 13) == 0);
    ASSERT(strstr(out(&f), "application/json"));
    f.cap.out.len = 0;
    feed(&f, "POST /index.html HTTP/1.1\r\n\r\n");
    ASSERT(strncmp(out(&f), "HTTP/1.1 405 ", 13) == 0);
    f.cap.out.len = 0;
    feed(&f, "GET /metrics HTTP/1.1\r\n\r\n");
    ASSERT(strstr(out(&f), "Content-Type: text/plain; version=0.0.4"));
    ASSERT(strstr(out(&f), "chatd_http_requests_total{route=\"/healthz\"") == NULL);
    ASSERT(strstr(out(&f), "chatd_http_requests_total{route=\"none\",code=\"404\"} 1"));
    ASSERT(strstr(out(&f), "chatd_http_request_duration_seconds_bucket"));
    fx_free(&f);
}

/* ---- through a real loopback socket ---- */

struct sockfx {
    struct fx f;
    uv_tcp_t client;
    uv_connect_t creq;
    uv_write_t wreq;
    struct strbuf got;
    int eof;
    uv_tcp_t *up;                   /* the upgraded socket */
    char head[64];
    int conns_when_upgraded;
    int upgraded_closed;
    const char *send;
};

static void up_closed(void *arg)
{
    ((struct sockfx *)arg)->upgraded_closed = 1;
}

static void up_written(uv_write_t *w, int status)
{
    struct sockfx *sf = w->data;
    free(w);
    http_upgraded_close(sf->up, up_closed, sf);
}

static void on_upgrade(struct http_req *r, void *ctx)
{
    struct sockfx *sf = ctx;
    char *head = NULL;
    size_t len = 0;
    if (http_upgrade(r, "Upgrade: test\r\nConnection: Upgrade\r\n", &sf->up, &head, &len) < 0)
        return;
    snprintf(sf->head, sizeof(sf->head), "%.*s", (int)len, head ? head : "");
    free(head);
    sf->conns_when_upgraded = http_server_connections(sf->f.s);
    uv_write_t *w = malloc(sizeof(*w));
    w->data = sf;
    uv_buf_t b = uv_buf_init((char *)"PONG", 4);
    uv_write(w, (uv_stream_t *)sf->up, &b, 1, up_written);
}

static void cl_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    static char buf[65536];
    b->base = buf;
    b->len = sizeof(buf);
}

static void cl_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct sockfx *sf = st->data;
    if (n > 0)
        strbuf_append(&sf->got, b->base, (size_t)n);
    else if (n < 0) {
        sf->eof = 1;
        uv_close((uv_handle_t *)st, NULL);
    }
}

static void cl_written(uv_write_t *w, int status) { (void)w; (void)status; }

static void cl_connected(uv_connect_t *req, int status)
{
    struct sockfx *sf = req->data;
    if (status < 0) {
        sf->eof = -1;
        return;
    }
    uv_read_start((uv_stream_t *)&sf->client, cl_alloc, cl_read);
    uv_buf_t b = uv_buf_init((char *)sf->send, (unsigned)strlen(sf->send));
    uv_write(&sf->wreq, (uv_stream_t *)&sf->client, &b, 1, cl_written);
}

static int sock_listen(struct sockfx *sf, struct sockaddr_in *sa)
{
    char bound[64];
    if (http_server_listen(sf->f.s, bound, sizeof(bound)) < 0)
        return -1;
    return uv_ip4_addr("127.0.0.1", atoi(strrchr(bound, ':') + 1), sa);
}

static int sock_connect(struct sockfx *sf, const struct sockaddr_in *sa, const char *send)
{
    strbuf_init(&sf->got, 1 << 20);
    sf->send = send;
    uv_tcp_init(&sf->f.loop, &sf->client);
    sf->client.data = sf;
    sf->creq.data = sf;
    return uv_tcp_connect(&sf->creq, &sf->client, (const struct sockaddr *)sa, cl_connected);
}

static int sock_start(struct sockfx *sf, const char *send)
{
    struct sockaddr_in sa;
    if (sock_listen(sf, &sa) < 0)
        return -1;
    return sock_connect(sf, &sa, send);
}

static void sock_wait(struct sockfx *sf, int *flag, uint64_t deadline_ms)
{
    uint64_t end = uv_now(&sf->f.loop) + deadline_ms;
    while (!*flag && uv_now(&sf->f.loop) < end) {
        uv_run(&sf->f.loop, UV_RUN_ONCE);
        uv_update_time(&sf->f.loop);
    }
}

static void idle_connected(uv_connect_t *req, int status)
{
    *(int *)req->data = status == 0 ? 1 : -1;
}

TEST(http_socket_upgrade_hands_over)
{
    static struct sockfx sf;
    memset(&sf, 0, sizeof(sf));
    ASSERT_EQ(fx_init(&sf.f), 0);
    ASSERT_EQ(http_route(sf.f.s, HTTP_VERB_GET, "/up", 0, on_upgrade, &sf), 0);
    ASSERT_EQ(sock_start(&sf, "GET /up HTTP/1.1\r\nHost: x\r\nUpgrade: test\r\n"
                              "Connection: Upgrade\r\n\r\nHELLO"), 0);
    sock_wait(&sf, &sf.eof, 5000);
    ASSERT_EQ(sf.eof, 1);
    const char *got = sf.got.len ? sf.got.data : "";
    static const char want[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\n";
    ASSERT(strncmp(got, want, sizeof(want) - 1) == 0);
    ASSERT(strstr(got, "\r\n\r\nPONG"));
    ASSERT_STR_EQ(sf.head, "HELLO");
    ASSERT_EQ(sf.conns_when_upgraded, 1);
    sock_wait(&sf, &sf.upgraded_closed, 2000);
    ASSERT(sf.upgraded_closed);
    ASSERT_EQ(http_server_connections(sf.f.s), 0);
    strbuf_free(&sf.got);
    fx_free(&sf.f);
}

TEST(http_socket_max_connections_503)
{
    static struct sockfx sf;
    memset(&sf, 0, sizeof(sf));
    ASSERT_EQ(fx_init(&sf.f), 0);
    sf.f.cfg.server.max_connections = 1;
    struct sockaddr_in sa;
    ASSERT_EQ(sock_listen(&sf, &sa), 0);
    /* A first client takes the one place... */
    uv_tcp_t first;
    uv_connect_t creq;
    int connected = 0;
    uv_tcp_init(&sf.f.loop, &first);
    creq.data = &connected;
    ASSERT_EQ(uv_tcp_connect(&creq, &first, (struct sockaddr *)&sa, idle_connected), 0);
    uint64_t end = uv_now(&sf.f.loop) + 5000;
    while (http_server_connections(sf.f.s) < 1 && uv_now(&sf.f.loop) < end)
        uv_run(&sf.f.loop, UV_RUN_ONCE);
    ASSERT_EQ(http_server_connections(sf.f.s), 1);
    /* ...so the second hears 503 and is closed. */
    ASSERT_EQ(sock_connect(&sf, &sa, "GET /healthz HTTP/1.1\r\n\r\n"), 0);
    sock_wait(&sf, &sf.eof, 5000);
    ASSERT_EQ(sf.eof, 1);
    const char *got = sf.got.len ? sf.got.data : "";
    ASSERT(strncmp(got, "HTTP/1.1 503 ", 13) == 0);
    ASSERT(strstr(got, "\"code\":\"unavailable\""));
    uv_close((uv_handle_t *)&first, NULL);
    strbuf_free(&sf.got);
    fx_free(&sf.f);
}

/* Mutated requests in random pieces: whatever arrives, the connection either answers
 * with a status line or stays waiting; nothing crashes or leaks (run under ASan). */
TEST(http_mutated_input_is_survived)
{
    static const char *seeds[] = {
        "GET /echo?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /echo HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
        "GET /items/5 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    };
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (int iter = 0; iter < 3000; iter++) {
        struct fx f;
        ASSERT_EQ(fx_init(&f), 0);
        char buf[512];
        const char *src = seeds[iter % 4];
        size_t n = strlen(src);
        memcpy(buf, src, n);
        for (int k = 0; k < 1 + iter % 4; k++) {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            buf[seed % n] = (char)(seed >> 32);
        }
        size_t off = 0;
        while (off < n && !f.cap.closed) {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            size_t piece = 1 + seed % 16;
            if (piece > n - off)
                piece = n - off;
            http_conn_feed(f.c, buf + off, piece);
            off += piece;
        }
        if (f.cap.out.len)
            ASSERT(strncmp(out(&f), "HTTP/1.1 ", 9) == 0);
        fx_free(&f);
    }
}
