/* http_dispatch.c: a parsed request to its route: the client address (behind a
 * trusted proxy, X-Forwarded-For's last entry), the route table (404, 405 with Allow,
 * the web client's files), and for a protected route the bearer check (401). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <strings.h>

#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/log.h"
#include "http_internal.h"

/* Bearer token from the Authorization header, or ?access_token= where allowed. */
static int request_token(struct http_req *r, unsigned flags, char *out, size_t outlen)
{
    const char *auth = http_header(r, "Authorization");
    if (auth) {
        while (*auth == ' ')
            auth++;
        if (strncasecmp(auth, "Bearer ", 7) != 0)
            return -EINVAL;
        auth += 7;
        while (*auth == ' ')
            auth++;
        size_t n = strlen(auth);
        while (n > 0 && auth[n - 1] == ' ')
            n--;
        if (n == 0 || n >= outlen)
            return -EINVAL;
        memcpy(out, auth, n);
        out[n] = '\0';
        return 0;
    }
    if ((flags & HTTP_ROUTE_RAW_TOKEN) && http_query(r, "access_token", out, outlen) == 0 &&
        out[0])
        return 0;
    return -ENOENT;
}

static int check_auth(struct http_req *r, unsigned flags)
{
    static const char hdr[] = "WWW-Authenticate: Bearer\r\n";
    static const char hdr_bad[] = "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n";
    char token[8192];
    int rc = request_token(r, flags, token, sizeof(token));
    if (rc == -ENOENT) {
        http_respond_error_hdr(r, 401, hdr, "missing bearer token");
        return -EACCES;
    }
    const char *reason = "malformed";
    if (rc == 0)
        rc = http_verify_token(r->server, token, &r->user, &reason);
    if (rc < 0 || r->user.id <= 0) {
        LOG_DEBUG(r->server->app, "http", "token refused path=%s reason=%s ip=%s",
                  r->path, reason ? reason : "?", r->client_ip);
        http_respond_error_hdr(r, 401, hdr_bad, "invalid access token (%s)",
                               reason ? reason : "invalid");
        return -EACCES;
    }
    return 0;
}

/* Behind a reverse proxy every peer is the proxy: with trust_proxy, a loopback peer's
 * X-Forwarded-For names the client. Only its last entry is trusted (the one our proxy
 * appended); anything a client wrote before it could be forged. */
static int is_loopback(const char *ip)
{
    return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 ||
           strncmp(ip, "::ffff:127.", 11) == 0;
}

static void http_client_ip_from_proxy(struct http_req *pub, const char *peer)
{
    const char *xff = http_header(pub, "X-Forwarded-For"), *last;
    char ip[sizeof(pub->client_ip)];
    unsigned char addr[sizeof(struct in6_addr)];
    size_t n;

    if (xff == NULL || !is_loopback(peer))
        return;
    last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    while (*last == ' ' || *last == '\t')
        last++;
    n = strcspn(last, " \t");
    if (n == 0 || n >= sizeof(ip))
        return;
    memcpy(ip, last, n);
    ip[n] = '\0';
    if (inet_pton(AF_INET, ip, addr) == 1 || inet_pton(AF_INET6, ip, addr) == 1)
        snprintf(pub->client_ip, sizeof(pub->client_ip), "%s", ip);
}

void http_dispatch(struct http_conn *c)
{
    struct http_server *s = c->server;
    struct http_req_priv *r = c->req;
    struct http_req *pub = &r->pub;
    pub->server = s;
    pub->conn = c;
    pub->id = ++s->next_req_id;
    snprintf(pub->client_ip, sizeof(pub->client_ip), "%s", c->client_ip);
    if (s->app->cfg->server.trust_proxy)
        http_client_ip_from_proxy(pub, c->client_ip);
    pub->body = r->body.len ? r->body.data : "";
    pub->body_len = r->body.len;
    /* An upgrade request that is answered normally leaves the connection in an unknown
     * protocol state: close after the answer. */
    if (r->upgrade)
        r->keep_alive = 0;
    r->pathbuf = strdup(pub->path);
    if (!r->pathbuf) {
        http_respond_error(pub, 500, "out of memory");
        return;
    }
    struct http_match m;
    http_router_match(&s->router, pub->verb, r->pathbuf, pub->params, &pub->nparams, &m);
    if (!m.route) {
        int get = pub->verb == HTTP_VERB_GET || pub->verb == HTTP_VERB_HEAD;
        if (m.status == 404 && get && http_static_try(pub))
            return;
        if (m.status == 404 && !get && http_static_exists(s, pub->path)) {
            snprintf(m.allow, sizeof(m.allow), "GET, HEAD");
            m.status = 405;
        }
        if (m.status == 405) {
            char extra[128];
            snprintf(extra, sizeof(extra), "Allow: %s\r\n", m.allow);
            http_respond_error_hdr(pub, 405, extra, "method %s not allowed here (allowed: %s)",
                                   http_verb_name(pub->verb), m.allow);
            return;
        }
        http_respond_error(pub, 404, "no such resource");
        return;
    }
    r->route_ent = m.route;
    pub->route = m.route->pattern;
    if ((m.route->flags & HTTP_ROUTE_AUTH) && check_auth(pub, m.route->flags) < 0)
        return;
    m.route->fn(pub, m.route->ctx);
}

