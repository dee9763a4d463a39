/* http_router.c: method + path pattern table. Patterns are split into segments once at
 * registration; a lookup splits the request path the same way and compares segment by
 * segment, "{name}" matching any one non-empty segment. When several patterns match,
 * the one with literal segments earliest wins ("/v1/rooms/dm" beats "/v1/rooms/{id}"). */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <llhttp.h>

#include "http_internal.h"

static const char *const verb_names[] = {
    [HTTP_VERB_GET] = "GET", [HTTP_VERB_HEAD] = "HEAD", [HTTP_VERB_POST] = "POST",
    [HTTP_VERB_PUT] = "PUT", [HTTP_VERB_DELETE] = "DELETE", [HTTP_VERB_PATCH] = "PATCH",
    [HTTP_VERB_OPTIONS] = "OPTIONS", [HTTP_VERB_OTHER] = "OTHER",
};

const char *http_verb_name(int verb)
{
    if (verb < HTTP_VERB_GET || verb > HTTP_VERB_OTHER)
        return "OTHER";
    return verb_names[verb];
}

int http_verb_from_llhttp(int method)
{
    switch (method) {
    case HTTP_GET: return HTTP_VERB_GET;
    case HTTP_HEAD: return HTTP_VERB_HEAD;
    case HTTP_POST: return HTTP_VERB_POST;
    case HTTP_PUT: return HTTP_VERB_PUT;
    case HTTP_DELETE: return HTTP_VERB_DELETE;
    case HTTP_PATCH: return HTTP_VERB_PATCH;
    case HTTP_OPTIONS: return HTTP_VERB_OPTIONS;
    default: return HTTP_VERB_OTHER;
    }
}

/* Splits "/a/b/c" into "a","b","c" in place. The root "/" has zero segments; an empty
 * segment ("/a//b", "/a/") is kept as "" so a trailing slash is a different path. */
static int split_path(char *p, char **segs, int max)
{
    int n = 0;
    if (*p != '/')
        return -EINVAL;
    if (p[1] == '\0')
        return 0;
    p++;
    for (;;) {
        if (n == max)
            return -E2BIG;
        segs[n++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    return n;
}

static int is_param(const char *seg)
{
    size_t n = strlen(seg);
    return n >= 3 && seg[0] == '{' && seg[n - 1] == '}';
}

int http_router_add(struct http_router *rt, int verb, const char *pattern, unsigned flags,
                    http_handler_fn fn, void *ctx)
{
    if (!pattern || pattern[0] != '/' || !fn || verb < HTTP_VERB_GET || verb >= HTTP_VERB_OTHER)
        return -EINVAL;
    if (rt->nroutes == rt->cap) {
        int cap = rt->cap ? rt->cap * 2 : 32;
        struct http_route_ent *n = realloc(rt->routes, (size_t)cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        rt->routes = n;
        rt->cap = cap;
    }
    struct http_route_ent *e = &rt->routes[rt->nroutes];
    memset(e, 0, sizeof(*e));
    e->pattern = strdup(pattern);
    e->segbuf = strdup(pattern);
    if (!e->pattern || !e->segbuf)
        goto fail;
    e->nsegs = split_path(e->segbuf, e->segs, HTTP_MAX_SEGMENTS);
    if (e->nsegs < 0)
        goto fail;
    int nparams = 0;
    for (int i = 0; i < e->nsegs; i++)
        nparams += is_param(e->segs[i]);
    if (nparams > HTTP_MAX_PARAMS)
        goto fail;
    e->verb = verb;
    e->flags = flags;
    e->fn = fn;
    e->ctx = ctx;
    rt->nroutes++;
    return 0;
fail:
    free(e->pattern);
    free(e->segbuf);
    return -EINVAL;
}

/* Score of a pattern against the path's segments: -1 when it does not match, else a
 * bit per literal segment, earlier segments weighing more. */
static long long route_score(const struct http_route_ent *e, char **segs, int nsegs)
{
    if (e->nsegs != nsegs)
        return -1;
    long long score = 0;
    for (int i = 0; i < nsegs; i++) {
        if (is_param(e->segs[i])) {
            if (segs[i][0] == '\0')
                return -1;
        } else if (strcmp(e->segs[i], segs[i]) != 0) {
            return -1;
        } else {
            score |= 1LL << (HTTP_MAX_SEGMENTS - 1 - i);
        }
    }
    return score;
}

static void allow_add(char *allow, size_t cap, const char *name)
{
    size_t len = strlen(allow);
    snprintf(allow + len, cap - len, "%s%s", len ? ", " : "", name);
}

void http_router_match(struct http_router *rt, int verb, char *pathbuf,
                       const char **params, int *nparams, struct http_match *m)
{
    char *segs[HTTP_MAX_SEGMENTS];
    memset(m, 0, sizeof(*m));
    *nparams = 0;
    int nsegs = split_path(pathbuf, segs, HTTP_MAX_SEGMENTS);
    if (nsegs < 0) {
        m->status = 404;
        return;
    }
    /* HEAD is answered by GET routes. */
    int want = verb == HTTP_VERB_HEAD ? HTTP_VERB_GET : verb;
    struct http_route_ent *best = NULL;
    long long best_score = -1;
    int other = 0;
    for (int i = 0; i < rt->nroutes; i++) {
        struct http_route_ent *e = &rt->routes[i];
        long long sc = route_score(e, segs, nsegs);
        if (sc < 0)
            continue;
        if (e->verb != want) {
            other = 1;
            continue;
        }
        if (sc > best_score) {
            best = e;
            best_score = sc;
        }
    }
    if (best) {
        m->route = best;
        for (int i = 0; i < nsegs && *nparams < HTTP_MAX_PARAMS; i++)
            if (is_param(best->segs[i]))
                params[(*nparams)++] = segs[i];
        return;
    }
    if (!other) {
        m->status = 404;
        return;
    }
    m->status = 405;
    static const int order[] = { HTTP_VERB_GET, HTTP_VERB_HEAD, HTTP_VERB_POST, HTTP_VERB_PUT,
                                 HTTP_VERB_PATCH, HTTP_VERB_DELETE, HTTP_VERB_OPTIONS };
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        for (int i = 0; i < rt->nroutes; i++) {
            struct http_route_ent *e = &rt->routes[i];
            int v = order[k] == HTTP_VERB_HEAD ? HTTP_VERB_GET : order[k];
            if (e->verb == v && route_score(e, segs, nsegs) >= 0) {
                allow_add(m->allow, sizeof(m->allow), http_verb_name(order[k]));
                break;
            }
        }
    }
}

void http_router_free(struct http_router *rt)
{
    for (int i = 0; i < rt->nroutes; i++) {
        free(rt->routes[i].pattern);
        free(rt->routes[i].segbuf);
    }
    free(rt->routes);
    memset(rt, 0, sizeof(*rt));
}

int http_route(struct http_server *s, int verb, const char *pattern, unsigned flags,
               http_handler_fn fn, void *ctx)
{
    return http_router_add(&s->router, verb, pattern, flags, fn, ctx);
}
