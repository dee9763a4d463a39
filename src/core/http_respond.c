/* http_respond.c: answers and request helpers. An answer is built into one buffer
 * (head + body: http_answer.c) and written with one uv_write; then the connection
 * moves on to the next pipelined request or closes. */
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
    int rc = http_head_append(&b, status, content_type, len, extra_headers, keep, r->http10);
    if (rc == 0 && http_has_body(status) && !r->head_only && len > 0)
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
    char *body = http_error_json(status, msg);
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

/* Decodes s[0..n) ('+' is a space, %XX a byte) into out. */
static int url_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%' && i + 2 < n && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
            ch = hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]);
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
