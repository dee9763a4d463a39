/* http_respond.c: answers and request helpers. An answer is built into one buffer
 * (head + body) and written with one uv_write; then the connection moves on to the
 * next pipelined request or closes. Every answer is counted in
 * chatd_http_requests_total{route,code} and the latency histogram. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <strings.h>

#include "chatd/chatd.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/text.h"
#include "http_internal.h"

static const char *status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return status < 500 ? (status < 400 ? "OK" : "Bad Request") : "Internal Server Error";
    }
}

const char *http_error_code(int status)
{
    switch (status) {
    case 400: return "invalid_argument";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "request_timeout";
    case 409: return "conflict";
    case 413: return "payload_too_large";
    case 429: return "rate_limited";
    case 431: return "invalid_argument";
    case 500: return "internal";
    case 503: return "unavailable";
    default: return status >= 500 ? "internal" : "invalid_argument";
    }
}

/* ---- metrics ---- */

static uint64_t *code_counter(struct http_server *s, struct http_code_counter *cache,
                              const char *route, int status)
{
    for (int i = 0; i < HTTP_CODE_CACHE; i++) {
        if (cache[i].counter && cache[i].code == status)
            return cache[i].counter;
    }
    char labels[400];
    snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%d\"", route, status);
    uint64_t *ctr = metrics_counter(s->app->metrics, "chatd_http_requests_total", labels,
                                    "HTTP requests answered, by route pattern and status");
    for (int i = 0; i < HTTP_CODE_CACHE; i++) {
        if (!cache[i].counter) {
            cache[i].code = status;
            cache[i].counter = ctr;
            break;
        }
    }
    return ctr;
}

void http_count(struct http_server *s, struct http_route_ent *route, int status,
                uint64_t started_ns)
{
    if (!s->app->metrics)
        return;
    uint64_t *ctr = route ? code_counter(s, route->codes, route->pattern, status)
                          : code_counter(s, s->none_codes, "none", status);
    METRIC_INC(ctr);
    if (s->latency)
        metrics_observe(s->latency, (double)(mono_ns() - started_ns) / 1e9);
}

/* ---- building answers ---- */

static int has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

static int head_append(struct strbuf *b, int status, const char *ctype, size_t len,
                       const char *extra, int keep_alive, int http10)
{
    int rc = strbuf_printf(b, "HTTP/1.1 %d %s\r\n", status, status_text(status));
    if (rc == 0 && ctype && has_body(status))
        rc = strbuf_printf(b, "Content-Type: %s\r\n", ctype);
    if (rc == 0 && has_body(status))
        rc = strbuf_printf(b, "Content-Length: %zu\r\n", len);
    if (rc == 0 && !(extra && strcasestr(extra, "Cache-Control:")))
        rc = strbuf_printf(b, "Cache-Control: no-store\r\n");
    if (rc == 0 && !keep_alive)
        rc = strbuf_printf(b, "Connection: close\r\n");
    else if (rc == 0 && http10)
        rc = strbuf_printf(b, "Connection: keep-alive\r\n");
    if (rc == 0 && extra)
        rc = strbuf_printf(b, "%s", extra);
    if (rc == 0)
        rc = strbuf_append(b, "\r\n", 2);
    return rc;
}

static char *error_json(int status, const char *msg)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    char *out = NULL;
    if (err && cJSON_AddStringToObject(err, "code", http_error_code(status)) &&
        cJSON_AddStringToObject(err, "message", msg ? msg : ""))
        out = json_print(root);
    cJSON_Delete(root);
    return out;
}

char *http_error_bytes(int status, const char *msg, const char *extra, int close,
                       size_t *len)
{
    char *body = error_json(status, msg);
    if (!body)
        return NULL;
    size_t blen = strlen(body);
    struct strbuf b;
    strbuf_init(&b, 1 << 20);
    int rc = head_append(&b, status, "application/json", blen, extra, !close, 0);
    if (rc == 0)
        rc = strbuf_append(&b, body, blen);
    free(body);
    if (rc < 0) {
        strbuf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

static void log_answer(struct http_server *s, struct http_req_priv *r, int status)
{
    if (!s->app->log || !log_enabled(s->app->log, CHATD_LOG_DEBUG))
        return;
    double ms = (double)(mono_ns() - r->pub.started_ns) / 1e6;
    LOG_DEBUG(s->app, "http", "request id=%llu method=%s path=%s status=%d ms=%.3f ip=%s user=%lld",
              (unsigned long long)r->pub.id, http_verb_name(r->pub.verb), r->pub.path,
              status, ms, r->pub.client_ip, (long long)r->pub.user.id);
}

void http_respond(struct http_req *pub, int status, const char *content_type,
                  const void *body, size_t len, const char *extra_headers)
{
    struct http_req_priv *r = (struct http_req_priv *)pub;
    struct http_conn *c = pub->conn;
    struct http_server *s = pub->server;
    http_count(s, r->route_ent, status, pub->started_ns);
    log_answer(s, r, status);
    if (!c) {
        http_req_free(r);
        return;
    }
    int keep = r->keep_alive && !s->closing && !s->app->draining;
    struct strbuf b;
    strbuf_init(&b, (size_t)1 << 30);
    int rc = head_append(&b, status, content_type, len, extra_headers, keep, r->http10);
    if (rc == 0 && has_body(status) && !r->head_only && len > 0)
        rc = strbuf_append(&b, body, len);
    c->req = NULL;
    http_req_free(r);
    if (rc < 0) {
        strbuf_free(&b);
        http_conn_close(c);
        return;
    }
    http_conn_write(c, b.data, b.len);
    http_conn_answered(c, keep);
}

void http_respond_json_str(struct http_req *r, int status, const char *json, size_t len)
{
    http_respond(r, status, "application/json", json, len, NULL);
}

void http_respond_json(struct http_req *r, int status, cJSON *json)
{
    char *text = json ? json_print(json) : NULL;
    cJSON_Delete(json);
    if (!text) {
        http_respond_error(r, 500, "out of memory");
        return;
    }
    http_respond(r, status, "application/json", text, strlen(text), NULL);
    free(text);
}

void http_respond_empty(struct http_req *r, int status)
{
    http_respond(r, status, NULL, NULL, 0, NULL);
}

static void respond_error_v(struct http_req *r, int status, const char *extra,
                            const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* RFC 9110 section 15.5.2: every 401 names the scheme, a wrong password's too. */
    if (status == 401 && !extra)
        extra = "WWW-Authenticate: Bearer\r\n";
    if (status >= 500)
        LOG_WARN(r->server->app, "http", "error answer status=%d path=%s msg=\"%s\"",
                 status, r->path, msg);
    char *body = error_json(status, msg);
    if (!body) {
        http_respond(r, status, "application/json", "{}", 2, extra);
        return;
    }
    http_respond(r, status, "application/json", body, strlen(body), extra);
    free(body);
}

void http_respond_error(struct http_req *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    respond_error_v(r, status, NULL, fmt, ap);
    va_end(ap);
}

void http_respond_error_hdr(struct http_req *r, int status, const char *extra,
                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    respond_error_v(r, status, extra, fmt, ap);
    va_end(ap);
}

void http_respond_rate_limited(struct http_req *r, int64_t retry_after_ms)
{
    int64_t secs = (retry_after_ms + 999) / 1000;
    if (secs < 1)
        secs = 1;
    char extra[64];
    snprintf(extra, sizeof(extra), "Retry-After: %lld\r\n", (long long)secs);
    http_respond_error_hdr(r, 429, extra, "too many requests, retry in %lld s", (long long)secs);
}

/* ---- request helpers ---- */

const char *http_header(const struct http_req *r, const char *name)
{
    for (int i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) ('+' is a space, %XX a byte) into out. */
static int url_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            ch = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
            i += 2;
        }
        if (o + 1 >= outlen)
            return -ENOBUFS;
        out[o++] = (char)ch;
    }
    if (outlen == 0)
        return -ENOBUFS;
    out[o] = '\0';
    return 0;
}

int http_query(const struct http_req *r, const char *name, char *out, size_t outlen)
{
    const char *p = r->query ? r->query : "";
    size_t nlen = strlen(name);
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen;
        char key[128];
        if (klen < sizeof(key) && url_decode(p, klen, key, sizeof(key)) == 0 &&
            strlen(key) == nlen && memcmp(key, name, nlen) == 0) {
            if (!eq)
                return url_decode("", 0, out, outlen);
            return url_decode(eq + 1, plen - klen - 1, out, outlen);
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return -ENOENT;
}

int64_t http_param_id(const struct http_req *r, int i)
{
    if (i < 0 || i >= r->nparams || !r->params[i])
        return -1;
    const char *p = r->params[i];
    int64_t v;
    if (decimal_parse(p, strlen(p), &v) < 0 || v == 0)
        return -1;
    return v;
}

/* A \u0000 gets its own answer: json_parse_object refuses it, and "not a JSON object"
 * would mislead. Only a refused body is scanned for it. */
cJSON *http_json_body(struct http_req *r)
{
    cJSON *obj = r->body_len ? json_parse_object(r->body, r->body_len) : NULL;
    if (!obj)
        http_respond_error(r, 400, json_has_nul_escape(r->body, r->body_len)
                                       ? "strings must not hold NUL characters"
                                       : "the request body must be a JSON object");
    return obj;
}
