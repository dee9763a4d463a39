/* http_conn.c: one HTTP/1.1 connection. llhttp parses into a per-request object; the
 * parser pauses at the end of each request so the next pipelined request is parsed
 * only once the current one is answered (answers leave in order, and at most one read
 * of unparsed bytes waits in memory). Reading stops while a handler owns the request.
 *
 * Timers, one per connection: a fresh or kept-alive connection waits for its next
 * request at most idle_timeout_ms (header_timeout_ms when fresh); once a request's
 * first byte arrives the whole head must be in within header_timeout_ms; a body must
 * keep moving (idle_timeout_ms between reads). A final answer (an error, Connection:
 * close) is followed by a lingering close: our side shuts down and input is drained
 * for a moment, so the client reads the answer instead of a reset. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

static void timer_arm(struct http_conn *c, int ms);
static void conn_process(struct http_conn *c);

void http_req_free(struct http_req_priv *r)
{
    if (!r)
        return;
    strbuf_free(&r->url);
    strbuf_free(&r->hdr);
    strbuf_free(&r->body);
    free(r->pathbuf);
    free(r);
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
    timer_arm(c, c->server->app->cfg->server.idle_timeout_ms);
    const char *expect = hdr_get(r, "Expect");
    if (expect && strcasecmp(expect, "100-continue") == 0 &&
        ((p->flags & F_CHUNKED) || p->content_length > 0)) {
        char *cont = strdup("HTTP/1.1 100 Continue\r\n\r\n");
        if (cont)
            http_conn_write(c, cont, strlen(cont));
    }
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

/* ---- I/O ---- */

struct http_wreq {
    uv_write_t w;
    struct http_sock *sock;
    char *buf;
};

static void on_write(uv_write_t *w, int status)
{
    struct http_wreq *wr = (struct http_wreq *)w;
    struct http_sock *sock = wr->sock;
    free(wr->buf);
    free(wr);
    /* The socket lives until its close callback, which runs after every write's. */
    struct http_conn *c = sock->conn;
    if (!c || c->state == HTTP_CONN_CLOSING)
        return;
    if (status < 0) {
        http_conn_close(c);
        return;
    }
    if (c->write_blocked && sock->tcp.write_queue_size < HTTP_WRITE_HIGH / 2) {
        c->write_blocked = 0;
        conn_process(c);
    }
}

static int sock_write(struct http_sock *sock, char *buf, size_t len)
{
    struct http_wreq *wr = malloc(sizeof(*wr));
    if (!wr) {
        free(buf);
        return -ENOMEM;
    }
    wr->sock = sock;
    wr->buf = buf;
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    int rc = uv_write(&wr->w, (uv_stream_t *)&sock->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(buf);
        free(wr);
    }
    return rc;
}

int http_conn_write(struct http_conn *c, char *buf, size_t len)
{
    if (c->capture) {
        int rc = strbuf_append(&c->capture->out, buf, len);
        free(buf);
        return rc;
    }
    if (c->state == HTTP_CONN_CLOSING || !c->sock) {
        free(buf);
        return -EPIPE;
    }
    int rc = sock_write(c->sock, buf, len);
    if (rc < 0)
        http_conn_close(c);
    return rc;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct http_sock *sock = (struct http_sock *)h;
    /* libuv reads one socket at a time on this thread: one buffer serves them all. */
    buf->base = sock->server->rbuf;
    buf->len = sizeof(sock->server->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct http_sock *sock = (struct http_sock *)st;
    struct http_conn *c = sock->conn;
    if (!c || nread == 0)
        return;
    if (nread < 0) {
        /* EOF or error: nothing more will come, and nobody is waiting for an answer
         * (reading is stopped while a handler runs). */
        http_conn_close(c);
        return;
    }
    if (c->state == HTTP_CONN_LINGER)
        return;
    http_conn_feed(c, buf->base, (size_t)nread);
}

static void read_set(struct http_conn *c, int on)
{
    if (!c->sock || c->reading == on)
        return;
    c->reading = on;
    if (on)
        uv_read_start((uv_stream_t *)&c->sock->tcp, on_alloc, on_read);
    else
        uv_read_stop((uv_stream_t *)&c->sock->tcp);
}

/* ---- timers and closing ---- */

static void on_timer(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    switch (c->state) {
    case HTTP_CONN_HEAD:
        http_conn_fail(c, 408, "request head not received in time");
        break;
    case HTTP_CONN_BODY:
        http_conn_fail(c, 408, "request body not received in time");
        break;
    case HTTP_CONN_IDLE:
    case HTTP_CONN_LINGER:
        http_conn_close(c);
        break;
    default:
        break;
    }
}

static void timer_arm(struct http_conn *c, int ms)
{
    if (ms <= 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
}

static void conn_free_part(struct http_conn *c)
{
    if (--c->closes_left > 0)
        return;
    struct http_server *s = c->server;
    free(c->pending);
    free(c);
    s->nhttp--;
    http_server_conn_gone(s);
}

static void on_timer_closed(uv_handle_t *h)
{
    conn_free_part(h->data);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct http_sock *sock = (struct http_sock *)h;
    struct http_server *s = sock->server;
    struct http_conn *c = sock->conn;
    if (sock->close_cb)
        sock->close_cb(sock->close_arg);
    s->nconns--;
    free(sock);
    if (c)
        conn_free_part(c);
    else
        http_server_conn_gone(s);
}

static void conn_unlink(struct http_conn *c)
{
    struct http_server *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else if (s->conns == c)
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

void http_conn_close(struct http_conn *c)
{
    if (c->state == HTTP_CONN_CLOSING)
        return;
    int handled = c->state == HTTP_CONN_HANDLER;
    c->state = HTTP_CONN_CLOSING;
    if (c->req) {
        if (handled)
            c->req->pub.conn = NULL;   /* the handler still owns it and answers into the void */
        else
            http_req_free(c->req);
        c->req = NULL;
    }
    conn_unlink(c);
    if (c->capture)
        c->capture->closed = 1;
    c->closes_left = 1;
    if (c->sock) {
        c->closes_left++;
        uv_close((uv_handle_t *)&c->sock->tcp, on_sock_closed);
    }
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    free(req);
}

/* The last answer is written: shut our side, drain what the client still sends for a
 * moment (so it reads the answer rather than a reset), then close. */
static void conn_linger(struct http_conn *c)
{
    if (c->state == HTTP_CONN_CLOSING)
        return;
    if (c->capture || !c->sock) {
        http_conn_close(c);
        return;
    }
    c->state = HTTP_CONN_LINGER;
    free(c->pending);
    c->pending = NULL;
    c->pending_len = 0;
    uv_shutdown_t *sh = malloc(sizeof(*sh));
    if (!sh || uv_shutdown(sh, (uv_stream_t *)&c->sock->tcp, on_shutdown) < 0) {
        free(sh);
        http_conn_close(c);
        return;
    }
    read_set(c, 1);
    timer_arm(c, HTTP_LINGER_MS);
}

void http_conn_fail(struct http_conn *c, int status, const char *msg)
{
    if (c->state == HTTP_CONN_CLOSING || c->state == HTTP_CONN_LINGER)
        return;
    struct http_server *s = c->server;
    uint64_t started = c->req ? c->req->pub.started_ns : mono_ns();
    http_req_free(c->req);
    c->req = NULL;
    if (status >= 500 || status == 408 || status == 431 || status == 413)
        LOG_WARN(s->app, "http", "request refused status=%d reason=\"%s\" ip=%s",
                 status, msg, c->client_ip);
    else
        LOG_DEBUG(s->app, "http", "request refused status=%d reason=\"%s\" ip=%s",
                  status, msg, c->client_ip);
    http_count(s, NULL, status, started);
    size_t len;
    char *bytes = http_error_bytes(status, msg, NULL, 1, &len);
    c->state = HTTP_CONN_IDLE;   /* not CLOSING: the write must go out */
    if (bytes)
        http_conn_write(c, bytes, len);
    conn_linger(c);
}

/* ---- feeding the parser ---- */

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
        timer_arm(c, c->server->app->cfg->server.header_timeout_ms);
    } else if (c->state == HTTP_CONN_BODY) {
        timer_arm(c, c->server->app->cfg->server.idle_timeout_ms);
    }
    int was_head = !c->head_done;
    llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
    if (c->state == HTTP_CONN_CLOSING)
        return;
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
        read_set(c, 0);
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
        read_set(c, 0);
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
        read_set(c, 1);
    else if (c->write_blocked)
        read_set(c, 0);
    c->in_process = 0;
}

void http_conn_answered(struct http_conn *c, int keep_alive)
{
    if (c->state == HTTP_CONN_CLOSING)
        return;
    if (!keep_alive) {
        conn_linger(c);
        return;
    }
    c->state = HTTP_CONN_IDLE;
    c->head_done = 0;
    c->head_bytes = 0;
    c->err_status = 0;
    c->err_msg = NULL;
    timer_arm(c, c->server->app->cfg->server.idle_timeout_ms);
    conn_process(c);
}

/* ---- creation ---- */

int http_conn_new(struct http_server *s, struct http_sock *sock, struct http_conn **out)
{
    struct http_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->server = s;
    c->sock = sock;
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    uv_timer_init(s->app->loop, &c->timer);
    c->timer.data = c;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nhttp++;
    if (sock)
        sock->conn = c;
    *out = c;
    return 0;
}

void http_conn_start(struct http_conn *c)
{
    c->state = HTTP_CONN_IDLE;
    timer_arm(c, c->server->app->cfg->server.header_timeout_ms);
    read_set(c, 1);
}

int http_test_conn(struct http_server *s, struct http_capture *cap, struct http_conn **out)
{
    int rc = http_conn_new(s, NULL, out);
    if (rc < 0)
        return rc;
    (*out)->capture = cap;
    snprintf((*out)->client_ip, sizeof((*out)->client_ip), "test");
    http_conn_start(*out);
    return 0;
}

/* ---- WebSocket hand-over ---- */

/* The HTTP side lets go of a request being upgraded: the socket stays open, counted,
 * until http_upgraded_close; the bytes read past the request go to the new owner. */
static void upgrade_detach(struct http_req_priv *r, uv_tcp_t **tcp, char **head,
                           size_t *head_len)
{
    struct http_req *pub = &r->pub;
    struct http_conn *c = pub->conn;
    struct http_sock *sock = c->sock;

    http_count(c->server, r->route_ent, 101, pub->started_ns);
    LOG_DEBUG(c->server->app, "http", "upgraded path=%s ip=%s", pub->path, c->client_ip);
    *head = c->pending;
    *head_len = c->pending_len;
    c->pending = NULL;
    c->pending_len = 0;
    c->req = NULL;
    http_req_free(r);
    sock->conn = NULL;
    sock->tcp.data = NULL;
    c->sock = NULL;
    c->state = HTTP_CONN_CLOSING;
    conn_unlink(c);
    c->closes_left = 1;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    *tcp = &sock->tcp;
}

static int upgrade_check(struct http_req *pub)
{
    struct http_conn *c = pub->conn;

    if (!c || c->req != (struct http_req_priv *)pub || c->state != HTTP_CONN_HANDLER ||
        !c->sock)
        return -ENOTCONN;
    return 0;
}

int http_upgrade(struct http_req *pub, const char *response_headers,
                 uv_tcp_t **tcp, char **head, size_t *head_len)
{
    int rc = upgrade_check(pub);
    if (rc < 0)
        return rc;
    /* About 130 bytes: sized exactly, one allocation, freed when the write is done. */
    if (!response_headers)
        response_headers = "";
    size_t hlen = strlen(response_headers);
    size_t len = sizeof(HTTP_101_LINE) - 1 + hlen + 2;
    char *buf = malloc(len);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, HTTP_101_LINE, sizeof(HTTP_101_LINE) - 1);
    memcpy(buf + sizeof(HTTP_101_LINE) - 1, response_headers, hlen);
    memcpy(buf + len - 2, "\r\n", 2);
    rc = sock_write(pub->conn->sock, buf, len);
    if (rc < 0)
        return rc;
    upgrade_detach((struct http_req_priv *)pub, tcp, head, head_len);
    return 0;
}

int http_upgrade_detach(struct http_req *pub, uv_tcp_t **tcp, char **head, size_t *head_len)
{
    int rc = upgrade_check(pub);
    if (rc < 0)
        return rc;
    upgrade_detach((struct http_req_priv *)pub, tcp, head, head_len);
    return 0;
}

void http_upgraded_close(uv_tcp_t *tcp, void (*cb)(void *arg), void *arg)
{
    struct http_sock *sock = (struct http_sock *)tcp;
    if (uv_is_closing((uv_handle_t *)tcp))
        return;
    sock->close_cb = cb;
    sock->close_arg = arg;
    uv_close((uv_handle_t *)tcp, on_sock_closed);
}
