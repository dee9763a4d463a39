/* http_answer.c: the parts every answer is made of: status lines, the head, the error
 * body in the API's format, and the counting of each answer in
 * chatd_http_requests_total{route,code} and the latency histogram. Used by the
 * answers of handlers (http_respond.c) and of the connection itself (http_conn.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chatd/chatd.h"
#include "chatd/metrics.h"
#include "chatd/util.h"
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

int http_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

int http_head_append(struct strbuf *b, int status, const char *ctype, size_t len,
                       const char *extra, int keep_alive, int http10)
{
    int rc = strbuf_printf(b, "HTTP/1.1 %d %s\r\n", status, status_text(status));
    if (rc == 0 && ctype && http_has_body(status))
        rc = strbuf_printf(b, "Content-Type: %s\r\n", ctype);
    if (rc == 0 && http_has_body(status))
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

char *http_error_json(int status, const char *msg)
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
    char *body = http_error_json(status, msg);
    if (!body)
        return NULL;
    size_t blen = strlen(body);
    struct strbuf b;
    strbuf_init(&b, 1 << 20);
    int rc = http_head_append(&b, status, "application/json", blen, extra, !close, 0);
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

