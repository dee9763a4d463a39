/* http_parse.c: a connection's bytes made into requests, one at a time. llhttp's
 * callbacks build one request (struct http_req_priv): every data callback may fire in
 * pieces, so they accumulate; the head is counted against max_header_bytes (431) as it
 * arrives, the body against max_body_bytes (413). The parser pauses at the end of each
 * request so the next pipelined request is parsed only once the current one is
 * answered (answers leave in order, and at most one read of unparsed bytes waits in
 * memory); reading stops while a handler owns the request. The socket, its timer and
 * its closing are http_conn.c's, which calls up here through http_parse_ops. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/log.h"
#include "http_internal.h"

static int cfg_max_head(const struct http_conn *c)
{
    return c->server->app->cfg->server.max_header_bytes;
}

static int cfg_max_body(const struct http_conn *c)
{
    return c->server->app->cfg->server.max_body_bytes;
}

/* ---- llhttp callbacks: every data callback may fire in pieces, so accumulate. ---- */

static int fail_user(llhttp_t *p, int status, const char *msg)
{
    struct http_conn *c = p->data;
    c->err_status = status;
    c->err_msg = msg;
    llhttp_set_error_reason(p, msg);
    return HPE_USER;
}

static int count_head(llhttp_t *p, size_t n)
{
    struct http_conn *c = p->data;
    c->head_bytes += n;
    if (c->head_bytes > (size_t)cfg_max_head(c))
        return fail_user(p, 431, "request head too large");
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct http_conn *c = p->data;
    http_req_free(c->req);
    struct http_req_priv *r = calloc(1, sizeof(*r));
    if (!r)
        return fail_user(p, 500, "out of memory");
    size_t mh = (size_t)cfg_max_head(c) + 1;
    strbuf_init(&r->url, mh);
    strbuf_init(&r->hdr, mh + 2 * HTTP_MAX_HEADERS);
    strbuf_init(&r->body, (size_t)cfg_max_body(c) + 1);
    r->pub.started_ns = mono_ns();
    c->req = r;
    c->head_bytes = 0;
    c->head_done = 0;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    if (count_head(p, n))
        return HPE_USER;
    if (strbuf_append(&c->req->url, at, n) < 0)
        return fail_user(p, 431, "request target too long");
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    struct http_req_priv *r = c->req;
    if (count_head(p, n + 4))       /* ": " and CRLF count as head bytes too */
        return HPE_USER;
    if (!r->in_value && r->nhdr > 0 && r->hval_off[r->nhdr - 1] == 0) {
        /* still inside the same field name */
    } else {
        if (r->nhdr == HTTP_MAX_HEADERS)
            return fail_user(p, 431, "too many header fields");
        r->hname_off[r->nhdr] = r->hdr.len;
        r->hval_off[r->nhdr] = 0;
        r->nhdr++;
        r->in_value = 0;
    }
    if (strbuf_append(&r->hdr, at, n) < 0)
        return fail_user(p, 431, "request head too large");
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    struct http_req_priv *r = c->req;
    if (r->nhdr == 0 || strbuf_append(&r->hdr, "", 1) < 0)
        return fail_user(p, 431, "request head too large");
    r->hval_off[r->nhdr - 1] = r->hdr.len;
    r->in_value = 1;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    if (count_head(p, n))
        return HPE_USER;
    if (strbuf_append(&c->req->hdr, at, n) < 0)
        return fail_user(p, 431, "request head too large");
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    if (strbuf_append(&c->req->hdr, "", 1) < 0)
        return fail_user(p, 431, "request head too large");
    return 0;
}

static const char *hdr_get(struct http_req_priv *r, const char *name)
{
    for (int i = 0; i < r->pub.nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    struct http_req_priv *r = c->req;
    static const char empty[1] = "";

    for (int i = 0; i < r->nhdr; i++) {
        r->headers[i].name = r->hdr.data + r->hname_off[i];
        r->headers[i].value = r->hval_off[i] ? r->hdr.data + r->hval_off[i] : empty;
    }
    r->pub.headers = r->headers;
    r->pub.nheaders = r->nhdr;
    if (r->url.len == 0 || r->url.data[0] != '/') {
        c->err_status = 400;
        c->err_msg = "request target must be an absolute path";
        return -1;
    }
    char *q = strchr(r->url.data, '?');
    if (q)
        *q++ = '\0';
    r->pub.path = r->url.data;
    r->pub.query = q ? q : empty;
    r->pub.verb = http_verb_from_llhttp(p->method);
    r->head_only = r->pub.verb == HTTP_VERB_HEAD;
    r->upgrade = p->upgrade;
    r->http10 = p->http_major == 1 && p->http_minor == 0;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > (uint64_t)cfg_max_body(c)) {
        c->err_status = 413;
        c->err_msg = "request body too large";
        return -1;
    }
    c->head_done = 1;
    c->state = HTTP_CONN_BODY;
    const char *expect = hdr_get(r, "Expect");
    r->expect_continue = expect && strcasecmp(expect, "100-continue") == 0 &&
                         ((p->flags & F_CHUNKED) || p->content_length > 0);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    if (c->req->body.len + n > (size_t)cfg_max_body(c))
        return fail_user(p, 413, "request body too large");
    if (strbuf_append(&c->req->body, at, n) < 0)
        return fail_user(p, 413, "request body too large");
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    if (c->state == HTTP_CONN_CLOSING)
        return -1;               /* a write failed while parsing: stop here */
    c->req->keep_alive = llhttp_should_keep_alive(p);
    c->state = HTTP_CONN_HANDLER;
    /* Stop here: the rest of the input waits until this request is answered. */
    return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- feeding the parser ---- */

/* The head is in (http_parse.c): the body must keep moving, and a client that waits
 * for it is told to go on. */
static void head_complete(struct http_conn *c)
{
    http_conn_timer(c, c->server->app->cfg->server.idle_timeout_ms);
    if (c->req && c->req->expect_continue) {
        char *cont = strdup("HTTP/1.1 100 Continue\r\n\r\n");
        if (cont)
            http_conn_write(c, cont, strlen(cont));
    }
}

static void save_rest(struct http_conn *c, const char *rest, size_t n)
{
    if (n == 0)
        return;
    char *copy = malloc(n);
    if (!copy) {
        http_conn_close(c);
        return;
    }
    memcpy(copy, rest, n);
    c->pending = copy;
    c->pending_len = n;
}

void http_conn_feed(struct http_conn *c, const char *data, size_t len)
{
    if (len == 0 || c->state > HTTP_CONN_BODY)
        return;
    if (c->state == HTTP_CONN_IDLE) {
        c->state = HTTP_CONN_HEAD;
        c->head_raw = 0;
        http_conn_timer(c, c->server->app->cfg->server.header_timeout_ms);
    } else if (c->state == HTTP_CONN_BODY) {
        http_conn_timer(c, c->server->app->cfg->server.idle_timeout_ms);
    }
    int was_head = !c->head_done;
    llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
    if (c->state == HTTP_CONN_CLOSING)
        return;
    if (was_head && c->head_done)
        head_complete(c);
    if (err == HPE_OK) {
        /* Whitespace the callbacks never see still counts against the head limit. */
        if (was_head && !c->head_done) {
            c->head_raw += len;
            if (c->head_raw > 2 * (size_t)cfg_max_head(c) + 1024)
                http_conn_fail(c, 431, "request head too large");
        }
        return;
    }
    if (err == HPE_PAUSED && c->state == HTTP_CONN_HANDLER) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        size_t used = pos ? (size_t)(pos - data) : len;
        llhttp_resume(&c->parser);
        save_rest(c, data + used, len - used);
        if (c->state != HTTP_CONN_HANDLER)
            return;
        http_conn_read(c, 0);
        uv_timer_stop(&c->timer);
        http_dispatch(c);
        return;
    }
    int status = c->err_status ? c->err_status : 400;
    const char *msg = c->err_status ? c->err_msg : "malformed request";
    if (!c->err_status)
        LOG_DEBUG(c->server->app, "http", "parse error err=%s reason=\"%s\"",
                  llhttp_errno_name(err), llhttp_get_error_reason(&c->parser));
    http_conn_fail(c, status, msg);
}

/* Parses what was read past the last request, one request at a time. A handler that
 * answers at once re-enters through http_conn_answered; the guard turns that into the
 * next turn of this loop rather than a deeper stack. */
static void conn_process(struct http_conn *c)
{
    if (c->in_process)
        return;
    /* A client that pipelines requests but does not read the answers would make us
     * queue answers without end: stop parsing (and reading) until it catches up. */
    if (c->sock && c->sock->tcp.write_queue_size > HTTP_WRITE_HIGH) {
        c->write_blocked = 1;
        http_conn_read(c, 0);
        return;
    }
    c->in_process = 1;
    while (c->state <= HTTP_CONN_BODY && c->pending_len > 0 && !c->write_blocked) {
        char *buf = c->pending;
        size_t n = c->pending_len;
        c->pending = NULL;
        c->pending_len = 0;
        http_conn_feed(c, buf, n);
        free(buf);
        if (c->sock && c->sock->tcp.write_queue_size > HTTP_WRITE_HIGH)
            c->write_blocked = 1;
    }
    if (c->state <= HTTP_CONN_BODY && !c->write_blocked)
        http_conn_read(c, 1);
    else if (c->write_blocked)
        http_conn_read(c, 0);
    c->in_process = 0;
}

void http_conn_answered(struct http_conn *c, int keep_alive)
{
    if (c->state == HTTP_CONN_CLOSING)
        return;
    if (!keep_alive) {
        http_conn_linger(c);
        return;
    }
    c->state = HTTP_CONN_IDLE;
    c->head_done = 0;
    c->head_bytes = 0;
    c->err_status = 0;
    c->err_msg = NULL;
    http_conn_timer(c, c->server->app->cfg->server.idle_timeout_ms);
    conn_process(c);
}

static void conn_resume(struct http_conn *c)
{
    conn_process(c);
}

/* What the socket layer (http_conn.c) calls when bytes arrive or a client that did not
 * read its answers caught up. */
const struct http_parse_ops http_parse_ops = {
    .settings = &parser_settings, .feed = http_conn_feed, .resume = conn_resume,
};
