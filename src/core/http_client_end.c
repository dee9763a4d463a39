/* http_client_end.c: how a connection of the HTTP client ends: its failures reported
 * up (c->report), its close, and its memory freed once nothing of libuv refers to it.
 *   CLOSED     handles closing; freed once they are closed
 *
 * Memory lives until every handle is closed (libuv calls pending connect/write
 * callbacks with UV_ECANCELED before the close callback), so an error text in
 * k->error stays readable after hc_conn_close. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/ssl.h>
#include "http_client_impl.h"

/* ---- close ---- */

void hc_conn_maybe_free(struct hc_conn *k)
{
    if (k->state != HC_CLOSED || k->handles > 0 || k->gai_pending)
        return;
    struct http_client *c = k->client;
    SSL_free(k->ssl);
    hc_response_free(&k->resp);
    free(k);
    c->live--;
    if (c->closing && c->live == 0 && c->close_done) {
        void (*done)(void *) = c->close_done;
        c->close_done = NULL;
        done(c->close_arg);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct hc_conn *k = h->data;
    k->handles--;
    hc_conn_maybe_free(k);
}

void hc_conn_close(struct hc_conn *k)
{
    struct http_client *c = k->client;
    if (k->state == HC_CLOSED)
        return;
    k->state = HC_CLOSED;
    k->req = NULL;
    if (k->prev)
        k->prev->next = k->next;
    else
        c->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->prev = k->next = NULL;
    if (k->gai_pending)
        uv_cancel((uv_req_t *)&k->gai);
    uv_close((uv_handle_t *)&k->timer, on_handle_closed);
    if (k->tcp_open)
        uv_close((uv_handle_t *)&k->tcp, on_handle_closed);
}

/* ---- reports ---- */

/* The failure in k->error goes up: the request's, or the loss of an idle one. */
void hc_conn_report_error(struct hc_conn *k, int status)
{
    if (k->state == HC_CLOSED)
        return;
    k->reusable = 0;
    k->client->report(k, k->req ? status : 0, k->req ? k->error : NULL);
}

void hc_conn_fail(struct hc_conn *k, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->error, sizeof(k->error), fmt, ap);
    va_end(ap);
    hc_conn_report_error(k, status);
}

void hc_conn_fail_uv(struct hc_conn *k, const char *what, int err)
{
    hc_conn_fail(k, err, "%s: %s", what, uv_strerror(err));
}
