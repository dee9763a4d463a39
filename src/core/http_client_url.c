/* http_client_url.c: the URL of a request and the request bytes. A URL may come from
 * a client (a push endpoint) and ends up in our request line and Host header, so it
 * is checked strictly here: http or https, a host, an optional numeric port, no user
 * info, no spaces or control characters. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "chatd/chatd.h"
#include "http_client_impl.h"

static int parse_port(struct http_client_origin *o, const char *port, size_t pl)
{
    long pn = 0;
    if (pl == 0 || pl > 5)
        return -EINVAL;
    for (size_t i = 0; i < pl; i++) {          /* digits only: strtol takes "+1", " 1" */
        if (port[i] < '0' || port[i] > '9')
            return -EINVAL;
        pn = pn * 10 + (port[i] - '0');
    }
    if (pn < 1 || pn > 65535)
        return -EINVAL;
    snprintf(o->port, sizeof(o->port), "%ld", pn);
    return 0;
}

/* The host and port of rest[0..hl): "name", "name:port", "[v6]", "[v6]:port". */
static int parse_authority(struct http_client_origin *o, const char *rest, size_t hl)
{
    const char *port = NULL, *h = rest;
    size_t namelen;
    unsigned char tmp[16];
    if (rest[0] == '[') {
        const char *end = memchr(rest, ']', hl);
        if (!end)
            return -EINVAL;
        h = rest + 1;
        namelen = (size_t)(end - h);
        if (end + 1 < rest + hl) {
            if (end[1] != ':')
                return -EINVAL;
            port = end + 2;
        }
    } else {
        const char *colon = memchr(rest, ':', hl);
        namelen = colon ? (size_t)(colon - rest) : hl;
        port = colon ? colon + 1 : NULL;
    }
    if (namelen == 0 || namelen >= sizeof(o->host))
        return -EINVAL;
    memcpy(o->host, h, namelen);
    o->host[namelen] = 0;
    /* Brackets hold an IPv6 literal (RFC 3986): "[push.example.com]" is no URL, and
     * resolving what it holds would connect where no browser would. */
    if (h != rest && inet_pton(AF_INET6, o->host, tmp) != 1)
        return -EINVAL;
    if (port && parse_port(o, port, (size_t)(rest + hl - port)) < 0)
        return -EINVAL;
    if (!port)
        snprintf(o->port, sizeof(o->port), "%s", o->tls ? "443" : "80");
    o->host_is_ip = inet_pton(AF_INET, o->host, tmp) == 1 ||
                    inet_pton(AF_INET6, o->host, tmp) == 1;
    return 0;
}

/* Splits an http(s) URL into o, the authority as written and the path. */
static int parse_url(struct http_client_origin *o, const char *url, const char **hostport,
                     size_t *hplen, const char **path)
{
    memset(o, 0, sizeof(*o));
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return -EINVAL;
    const char *rest;
    if (strncmp(url, "https://", 8) == 0) {
        o->tls = 1;
        rest = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        rest = url + 7;
    } else {
        return -EINVAL;
    }
    size_t hl = strcspn(rest, "/?#");
    if (hl == 0 || memchr(rest, '@', hl))
        return -EINVAL;
    *hostport = rest;
    *hplen = hl;
    *path = rest + hl;
    return parse_authority(o, rest, hl);
}

int http_client_parse_url(struct http_client_origin *o, const char *url)
{
    const char *hostport, *path;
    size_t hplen;
    return parse_url(o, url, &hostport, &hplen, &path);
}

int hc_build_request(struct hc_target *t, const struct http_client_request *rq,
                     int keep_alive)
{
    const char *hostport, *path;
    size_t hplen, len = rq->body_len;
    int rc = parse_url(&t->o, rq->url, &hostport, &hplen, &path);
    if (rc < 0)
        return rc;
    size_t pathlen = strcspn(path, "#");
    /* HTTP/1.1 connections persist unless one side says otherwise (RFC 9112 9.3). */
    const char *conn = keep_alive ? "" : "Connection: close\r\n";
    const char *fmt = "%s %s%.*s HTTP/1.1\r\nHost: %.*s\r\nUser-Agent: chatd/" CHATD_VERSION
                      "\r\nContent-Length: %zu\r\n%s%s\r\n";
    const char *slash = (pathlen == 0 || path[0] != '/') ? "/" : "";
    const char *headers = rq->headers ? rq->headers : "";
    int n = snprintf(NULL, 0, fmt, rq->method, slash, (int)pathlen, path, (int)hplen,
                     hostport, len, conn, headers);
    if (n < 0)
        return -EINVAL;
    t->req = malloc((size_t)n + 1 + len);
    if (!t->req)
        return -ENOMEM;
    snprintf(t->req, (size_t)n + 1, fmt, rq->method, slash, (int)pathlen, path, (int)hplen,
             hostport, len, conn, headers);
    if (len)
        memcpy(t->req + n, rq->body, len);
    t->req_len = (size_t)n + len;
    t->req[t->req_len] = '\0';         /* for logs and tests; never sent */
    return 0;
}
