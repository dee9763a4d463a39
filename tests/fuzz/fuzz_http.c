/* fuzz_http.c: the HTTP request path without a network. Bytes go into one
 * connection's parser (llhttp callbacks, limits, router, query and body helpers, the
 * bearer check, the built-in routes), split into pieces at points the input chooses,
 * and the answers land in a capture buffer. Every input gets a fresh connection on one
 * long-lived server. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "../../src/core/http_internal.h"

struct fz {
    uv_loop_t loop;
    struct chatd app;
    struct chatd_config cfg;
    struct http_server *s;
    struct http_req *held;           /* a request the "slow" handler keeps */
};

static struct fz *fz;

static void on_echo(struct http_req *r, void *ctx)
{
    char q[64] = "";
    char body[256];

    http_query(r, "q", q, sizeof(q));
    int n = snprintf(body, sizeof(body), "{\"len\":%zu,\"id\":%lld,\"q\":%zu}",
                     r->body_len, (long long)http_param_id(r, 0), strlen(q));
    http_respond_json_str(r, 200, body, (size_t)n);
}

static void on_slow(struct http_req *r, void *ctx)
{
    struct fz *f = ctx;

    if (f->held)
        http_respond_empty(r, 204);
    else
        f->held = r;                 /* answered at the end of the input */
}

static void on_json(struct http_req *r, void *ctx)
{
    cJSON *b = http_json_body(r);    /* answers 400 itself when the body is bad */

    if (!b)
        return;
    cJSON_Delete(b);
    http_respond_empty(r, 204);
}

static void on_me(struct http_req *r, void *ctx)
{
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"id\":%lld}", (long long)r->user.id);
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

static int setup(void)
{
    int rc = 0;

    fz = calloc(1, sizeof(*fz));
    if (!fz || uv_loop_init(&fz->loop) < 0)
        return -1;
    config_defaults(&fz->cfg);
    /* Small limits, so that short inputs reach them. */
    fz->cfg.server.max_header_bytes = 2048;
    fz->cfg.server.max_body_bytes = 512;
    fz->app.loop = &fz->loop;
    fz->app.cfg = &fz->cfg;
    if (log_open(&fz->app.log, CHATD_LOG_ERROR + 1, 0, NULL) < 0 ||
        metrics_new(&fz->app.metrics) < 0 || http_server_new(&fz->s, &fz->app) < 0)
        return -1;
    fz->app.http = fz->s;
    http_set_verifier(fz->s, verify, fz);
    rc |= http_route(fz->s, HTTP_VERB_GET, "/echo", 0, on_echo, fz);
    rc |= http_route(fz->s, HTTP_VERB_POST, "/echo", 0, on_echo, fz);
    rc |= http_route(fz->s, HTTP_VERB_GET, "/items/{id}", 0, on_echo, fz);
    rc |= http_route(fz->s, HTTP_VERB_DELETE, "/items/{id}/sub/{id2}", 0, on_echo, fz);
    rc |= http_route(fz->s, HTTP_VERB_GET, "/slow", 0, on_slow, fz);
    rc |= http_route(fz->s, HTTP_VERB_POST, "/json", 0, on_json, fz);
    rc |= http_route(fz->s, HTTP_VERB_PUT, "/json", HTTP_ROUTE_AUTH, on_json, fz);
    rc |= http_route(fz->s, HTTP_VERB_GET, "/me", HTTP_ROUTE_AUTH, on_me, fz);
    rc |= http_route(fz->s, HTTP_VERB_GET, "/ws", HTTP_ROUTE_AUTH | HTTP_ROUTE_RAW_TOKEN,
                     on_me, fz);
    return rc ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_capture cap;
    struct http_conn *c;
    size_t piece;

    if (!fz && setup() < 0)
        abort();
    if (size == 0)
        return 0;
    /* The first byte picks the piece size (0: everything in one read). */
    piece = data[0];
    data++;
    size--;
    memset(&cap, 0, sizeof(cap));
    strbuf_init(&cap.out, 1 << 20);
    if (http_test_conn(fz->s, &cap, &c) < 0)
        abort();
    for (size_t off = 0; off < size && !cap.closed;) {
        size_t n = piece && piece < size - off ? piece : size - off;
        http_conn_feed(c, (const char *)data + off, n);
        off += n;
    }
    if (fz->held) {
        struct http_req *r = fz->held;
        fz->held = NULL;
        http_respond_empty(r, 204);
    }
    if (!cap.closed)
        http_conn_close(c);
    uv_run(&fz->loop, UV_RUN_NOWAIT);
    strbuf_free(&cap.out);
    return 0;
}
