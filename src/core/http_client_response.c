/* http_client_response.c: one answer, read through llhttp (pitfalls: its settings
 * are static, data callbacks come in pieces, it has no size limits of its own). The
 * status line and headers are counted against max_head, the body is kept up to
 * max_body; past either the answer is refused (HPE_USER) and the connection is not
 * to be used again. Interim answers (1xx) are read and skipped. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "http_client_impl.h"

static int refuse(llhttp_t *p, int code, const char *why)
{
    struct hc_response *r = p->data;
    r->code = code;
    r->error = why;
    llhttp_set_error_reason(p, why);
    return HPE_USER;
}

static int count_head(llhttp_t *p, size_t len)
{
    struct hc_response *r = p->data;
    r->head_bytes += len;
    return r->head_bytes > r->max_head ? refuse(p, -EMSGSIZE, "response headers too large") : 0;
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
    (void)at;
    return count_head(p, len);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    (void)at;
    return count_head(p, len + 4);     /* ": " and CRLF count too */
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    (void)at;
    return count_head(p, len);
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct hc_response *r = p->data;
    if (len > r->max_body - r->body_len)
        return refuse(p, -EMSGSIZE, "response body too large");
    if (r->body_len + len + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return refuse(p, -ENOMEM, "out of memory");
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

/* llhttp takes any three digits: an answer is 1xx interim or 200 to 999 final. */
static int on_headers_complete(llhttp_t *p)
{
    if (llhttp_get_status_code(p) >= 100)
        return 0;
    refuse(p, -EPROTO, "status out of range");
    return -1;                         /* this callback's error (HPE_USER is not one) */
}

static int on_message_complete(llhttp_t *p)
{
    struct hc_response *r = p->data;
    int status = llhttp_get_status_code(p);
    if (status >= 100 && status < 200) {
        r->head_bytes = 0;             /* interim (100 Continue...): the answer follows */
        return 0;
    }
    r->complete = 1;
    r->status = status;
    /* Connection: close, HTTP/1.0 without keep-alive, or a body ended by the close. */
    r->keep_alive = llhttp_should_keep_alive(p);
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void hc_response_init(struct hc_response *r, size_t max_head, size_t max_body)
{
    memset(r, 0, sizeof(*r));
    r->max_head = max_head;
    r->max_body = max_body;
    hc_response_reset(r);
}

void hc_response_reset(struct hc_response *r)
{
    llhttp_init(&r->parser, HTTP_RESPONSE, &settings);
    r->parser.data = r;
    r->status = r->complete = r->keep_alive = r->started = 0;
    r->head_bytes = r->body_len = 0;
    r->error = NULL;
    r->code = 0;
}

void hc_response_free(struct hc_response *r)
{
    free(r->body);
    r->body = NULL;
    r->body_cap = r->body_len = 0;
}

int hc_response_feed(struct hc_response *r, const char *data, size_t len, size_t *used)
{
    if (len)
        r->started = 1;
    llhttp_errno_t e = llhttp_execute(&r->parser, data, len);
    if (r->complete) {
        const char *pos = llhttp_get_error_pos(&r->parser);
        *used = pos && pos >= data && pos <= data + len ? (size_t)(pos - data) : len;
        return 1;
    }
    if (e == HPE_OK)
        return 0;
    if (!r->error)
        r->error = llhttp_get_error_reason(&r->parser);
    return r->code ? r->code : -EPROTO;
}

int hc_response_eof(struct hc_response *r)
{
    if (!r->complete)
        llhttp_finish(&r->parser);     /* ends a body delimited by the close */
    if (r->complete)
        r->keep_alive = 0;
    return r->complete;
}

char *hc_response_take_body(struct hc_response *r, size_t *len)
{
    char *b = r->body;
    *len = r->body_len;
    r->body = NULL;
    r->body_cap = r->body_len = 0;
    return b;
}
