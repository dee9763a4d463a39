/* http_upgrade.c: the hand-over of an upgraded connection's socket (a WebSocket). The
 * HTTP side lets go of the request and of its connection; the socket stays open and
 * counted until its new owner closes it with http_upgraded_close, and the bytes read
 * past the request go to that owner. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/chatd.h"
#include "chatd/log.h"
#include "http_internal.h"

/* The HTTP side lets go of a request being upgraded: the socket stays open, counted,
 * until http_upgraded_close; the bytes read past the request go to the new owner. */
static void upgrade_detach(struct http_req_priv *r, uv_tcp_t **tcp, char **head,
                           size_t *head_len)
{
    struct http_req *pub = &r->pub;
    struct http_conn *c = pub->conn;
    http_count(c->server, r->route_ent, 101, pub->started_ns);
    LOG_DEBUG(c->server->app, "http", "upgraded path=%s ip=%s", pub->path, c->client_ip);
    *head = c->pending;
    *head_len = c->pending_len;
    c->pending = NULL;
    c->pending_len = 0;
    c->req = NULL;
    http_req_free(r);
    *tcp = &http_conn_release_sock(c)->tcp;
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
    rc = http_sock_write(pub->conn->sock, buf, len);
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
    http_sock_close((struct http_sock *)tcp, cb, arg);
}
