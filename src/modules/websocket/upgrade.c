/* upgrade.c: GET /v1/ws. The gateway has already checked the token (401 before any
 * upgrade) and hands us the user. Here: the connect rate per client address (429),
 * the RFC 6455 handshake headers (400), the caps on connections open at once per user
 * and per client address (429), Sec-WebSocket-Accept, the chatd.v1 subprotocol, then
 * the hand-over of the socket and of the bytes the client sent after its request to
 * core's WebSocket transport (chatd/ws_transport.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "chatd/client_addr.h"
#include "chatd/http.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "ws_internal.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int ws_accept_key(const char *key, char *out, size_t outlen)
{
    unsigned char digest[SHA_DIGEST_LENGTH];
    char buf[128];
    int n;

    if (!key || outlen < 29)
        return -EINVAL;
    n = snprintf(buf, sizeof(buf), "%s%s", key, WS_GUID);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return -EINVAL;
    SHA1((const unsigned char *)buf, (size_t)n, digest);
    EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
    return 0;
}

/* Sec-WebSocket-Key: base64 of 16 bytes, so 24 characters ending in "==". */
static int key_valid(const char *key)
{
    unsigned char raw[24];

    if (!key || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
        return 0;
    return EVP_DecodeBlock(raw, (const unsigned char *)key, 24) == 18;
}

/* 1 if the comma-separated header value holds token (case-insensitive). */
static int has_token(const char *value, const char *token)
{
    size_t tlen = strlen(token);

    while (value && *value) {
        while (*value == ' ' || *value == '\t' || *value == ',')
            value++;
        const char *end = value;
        while (*end && *end != ',')
            end++;
        const char *e = end;
        while (e > value && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - value) == tlen && strncasecmp(value, token, tlen) == 0)
            return 1;
        value = end;
    }
    return 0;
}

static const char *check_headers(struct http_req *req, const char **extra)
{
    const char *v;

    *extra = NULL;
    if (!has_token(http_header(req, "Upgrade"), "websocket"))
        return "this endpoint needs a WebSocket upgrade (Upgrade: websocket)";
    if (!has_token(http_header(req, "Connection"), "upgrade"))
        return "this endpoint needs Connection: Upgrade";
    v = http_header(req, "Sec-WebSocket-Version");
    if (!v || strcmp(v, "13") != 0) {
        *extra = "Sec-WebSocket-Version: 13\r\n";
        return "only WebSocket version 13 is supported";
    }
    if (!key_valid(http_header(req, "Sec-WebSocket-Key")))
        return "Sec-WebSocket-Key must be 16 bytes in base64";
    return NULL;
}

/* An error answer in the API's format, with extra headers (NULL or "Name: v\r\n"). */
static void refuse(struct ws_module *m, struct http_req *req, int status, const char *extra,
                   const char *msg)
{
    char body[320];
    int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                     http_error_code(status), msg);

    METRIC_INC(m->metrics.rejected_upgrades);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = 0;
    http_respond(req, status, "application/json", body, (size_t)n, extra);
}

/* The caps on connections open at once, per user (the registry's count) and per client
 * address (its key: an IPv6 /64 counts as one); a connection stops counting when its
 * close begins (a closing one lingers at most WS_CLOSE_LINGER_MS). 0 with *addr
 * counted, or the request answered. */
static int take_slot(struct ws_module *m, struct http_req *req, int64_t user_id,
                     const char *addr_key, struct keycount_ent **addr)
{
    const struct ws_user *u = ws_registry_user(m, user_id);
    char msg[160];
    int rc;

    if (u && u->nconns >= m->conns_per_user) {
        snprintf(msg, sizeof(msg), "this user has %d WebSocket connections open, the most "
                 "allowed: close one first", u->nconns);
        refuse(m, req, 429, "Retry-After: 1\r\n", msg);
        return -EBUSY;
    }
    rc = keycount_acquire(m->conns_by_addr, addr_key, m->conns_per_addr, addr);
    if (rc == -EBUSY) {
        snprintf(msg, sizeof(msg), "%u WebSocket connections from this address (an IPv6 "
                 "one: its /64) are open, the most allowed: close one first",
                 m->conns_per_addr);
        refuse(m, req, 429, "Retry-After: 1\r\n", msg);
    } else if (rc < 0) {
        refuse(m, req, 503, NULL, "too many connections at once: try again later");
    }
    return rc;
}

/* The stream is made with the 101 answer as its first queued bytes and the
 * connection's memory in the same block; the hello frame follows the answer, in the
 * same first write. 0 once the request is gone, or it is still ours to answer. */
static int handover(struct ws_module *m, struct http_req *req, const struct http_user *user,
                    struct keycount_ent *addr, const char *answer, size_t answer_len)
{
    struct ws_conn *c;
    struct ws_stream *s;
    int rc = ws_stream_accept(m->tx, req, answer, answer_len, sizeof(*c), (void **)&c, &s);

    if (rc == -ECONNABORTED) {
        keycount_release(m->conns_by_addr, addr);
        return 0;                    /* the socket went with the request */
    }
    if (rc < 0)
        return rc;
    METRIC_INC(m->metrics.upgrades);
    if (ws_conn_init(m, c, s, user) < 0) {
        keycount_release(m->conns_by_addr, addr);
        ws_stream_abort(s);
        return 0;
    }
    c->addr = addr;
    ws_conn_open(c);
    return 0;
}

void ws_upgrade_handler(struct http_req *req, void *ctx)
{
    struct ws_module *m = ctx;
    struct http_user user = req->user;
    const char *err, *extra;
    char accept[32], answer[256], addr_key[CLIENT_ADDR_KEY_MAX];
    int alen;
    int64_t wait;
    struct keycount_ent *addr = NULL;

    if (m->draining || m->app->draining) {
        METRIC_INC(m->metrics.rejected_upgrades);
        http_respond_error(req, 503, "the server is shutting down");
        return;
    }
    client_addr_key(req->client_ip, addr_key);
    wait = ratelimit_take(m->connect_rl, addr_key, mono_ms());
    if (wait > 0) {
        METRIC_INC(m->metrics.rejected_upgrades);
        http_respond_rate_limited(req, wait);
        return;
    }
    err = check_headers(req, &extra);
    if (err) {
        refuse(m, req, 400, extra, err);   /* extra: the version hint */
        return;
    }
    if (take_slot(m, req, user.id, addr_key, &addr) < 0)
        return;
    ws_accept_key(http_header(req, "Sec-WebSocket-Key"), accept, sizeof(accept));
    alen = snprintf(answer, sizeof(answer),
                   HTTP_101_LINE "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: %s\r\n%s\r\n",
                   accept, has_token(http_header(req, "Sec-WebSocket-Protocol"), WS_SUBPROTOCOL)
                           ? "Sec-WebSocket-Protocol: " WS_SUBPROTOCOL "\r\n" : "");
    if (alen < 0 || (size_t)alen >= sizeof(answer) ||
        handover(m, req, &user, addr, answer, (size_t)alen) < 0) {
        /* The request is still ours (the client is probably gone): answer it. */
        keycount_release(m->conns_by_addr, addr);
        http_respond_error(req, 500, "the upgrade failed");
    }
}
