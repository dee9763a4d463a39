/* outbound_url.c: the URL of an outbound request and the request bytes. A URL comes
 * from a client (a push endpoint) or chatd.conf (the webhook) and ends up in our
 * request line and Host header, so it is checked strictly here: http or https, a host,
 * an optional numeric port, no user info, no spaces or control characters. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "chatd/chatd.h"
#include "notification_internal.h"

/* Splits an http(s) URL. Refuses user info, spaces and control characters (a URL
 * comes from a client and ends up in our request line). */
static int parse_url(struct outbound_target *t, const char *url, const char **hostport,
                     size_t *hplen, const char **path)
{
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return -EINVAL;
    const char *rest;
    if (strncmp(url, "https://", 8) == 0) {
        t->tls = 1;
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
    const char *port = NULL, *h = rest;
    size_t namelen;
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
    if (namelen == 0 || namelen >= sizeof(t->host))
        return -EINVAL;
    memcpy(t->host, h, namelen);
    t->host[namelen] = 0;
    unsigned char tmp[16];
    /* Brackets hold an IPv6 literal (RFC 3986): "[push.example.com]" is no URL, and
     * resolving what it holds would connect where no browser would. */
    if (h != rest && inet_pton(AF_INET6, t->host, tmp) != 1)
        return -EINVAL;
    if (port) {
        size_t pl = (size_t)(rest + hl - port);
        long pn = 0;
        if (pl == 0 || pl > 5)
            return -EINVAL;
        for (size_t i = 0; i < pl; i++) {       /* digits only: strtol takes "+1", " 1" */
            if (port[i] < '0' || port[i] > '9')
                return -EINVAL;
            pn = pn * 10 + (port[i] - '0');
        }
        if (pn < 1 || pn > 65535)
            return -EINVAL;
        snprintf(t->port, sizeof(t->port), "%ld", pn);
    } else {
        snprintf(t->port, sizeof(t->port), "%s", t->tls ? "443" : "80");
    }
    t->host_is_ip = inet_pton(AF_INET, t->host, tmp) == 1 || inet_pton(AF_INET6, t->host, tmp) == 1;
    return 0;
}

int outbound_parse_url(struct outbound_target *t, const char *url)
{
    const char *hostport, *path;
    size_t hplen;
    memset(t, 0, sizeof(*t));
    return parse_url(t, url, &hostport, &hplen, &path);
}

int outbound_build_request(struct outbound_target *t, const char *method, const char *url,
                           const char *headers, const void *body, size_t len)
{
    const char *hostport, *path;
    size_t hplen;
    int rc = parse_url(t, url, &hostport, &hplen, &path);
    if (rc < 0)
        return rc;
    size_t pathlen = strcspn(path, "#");
    const char *fmt = "%s %s%.*s HTTP/1.1\r\nHost: %.*s\r\nUser-Agent: chatd/" CHATD_VERSION
                      "\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n";
    const char *slash = (pathlen == 0 || path[0] != '/') ? "/" : "";
    int n = snprintf(NULL, 0, fmt, method, slash, (int)pathlen, path, (int)hplen, hostport,
                     len, headers ? headers : "");
    if (n < 0)
        return -EINVAL;
    t->req = malloc((size_t)n + 1 + len);
    if (!t->req)
        return -ENOMEM;
    snprintf(t->req, (size_t)n + 1, fmt, method, slash, (int)pathlen, path, (int)hplen,
             hostport, len, headers ? headers : "");
    if (len)
        memcpy(t->req + n, body, len);
    t->req_len = (size_t)n + len;
    t->req[t->req_len] = '\0';         /* for logs and tests; never sent */
    return 0;
}

