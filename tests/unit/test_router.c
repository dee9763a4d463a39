/* test_router.c: the gateway's route table: literal and {param} segments, 404, 405 with
 * Allow, HEAD on GET routes, trailing slashes. */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "../../src/core/http_internal.h"

static void nop(struct http_req *r, void *ctx) { (void)r; (void)ctx; }

static int build(struct http_router *rt)
{
    memset(rt, 0, sizeof(*rt));
    int rc = 0;
    rc |= http_router_add(rt, HTTP_VERB_GET, "/v1/rooms", 0, nop, NULL);
    rc |= http_router_add(rt, HTTP_VERB_POST, "/v1/rooms", 0, nop, NULL);
    rc |= http_router_add(rt, HTTP_VERB_GET, "/v1/rooms/{id}", 0, nop, NULL);
    rc |= http_router_add(rt, HTTP_VERB_GET, "/v1/rooms/{id}/messages", 0, nop, NULL);
    rc |= http_router_add(rt, HTTP_VERB_POST, "/v1/rooms/{id}/messages", 0, nop, NULL);
    rc |= http_router_add(rt, HTTP_VERB_DELETE, "/v1/rooms/{id}/members/{user_id}", 0, nop, NULL);
    rc |= http_router_add(rt, HTTP_VERB_GET, "/v1/rooms/mine", 0, nop, NULL);
    rc |= http_router_add(rt, HTTP_VERB_GET, "/", 0, nop, NULL);
    return rc;
}

/* Matches method + path; returns the pattern, or "404"/"405". */
static const char *match(struct http_router *rt, int verb, const char *path,
                         char *allow, const char **p0, const char **p1, int *np)
{
    static char buf[256];
    static char pathbuf[256];
    snprintf(pathbuf, sizeof(pathbuf), "%s", path);
    const char *params[HTTP_MAX_PARAMS] = { 0 };
    int n = 0;
    struct http_match m;
    http_router_match(rt, verb, pathbuf, params, &n, &m);
    if (allow)
        snprintf(allow, 80, "%s", m.allow);
    if (p0)
        *p0 = params[0];
    if (p1)
        *p1 = params[1];
    if (np)
        *np = n;
    if (m.route)
        return m.route->pattern;
    snprintf(buf, sizeof(buf), "%d", m.status);
    return buf;
}

TEST(router_literal_and_params)
{
    struct http_router rt;
    ASSERT_EQ(build(&rt), 0);
    const char *p0 = NULL, *p1 = NULL;
    int n = -1;
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_GET, "/v1/rooms", NULL, &p0, NULL, &n), "/v1/rooms");
    ASSERT_EQ(n, 0);
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_GET, "/v1/rooms/42", NULL, &p0, NULL, &n),
                  "/v1/rooms/{id}");
    ASSERT_EQ(n, 1);
    ASSERT_STR_EQ(p0, "42");
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_DELETE, "/v1/rooms/7/members/9", NULL, &p0, &p1, &n),
                  "/v1/rooms/{id}/members/{user_id}");
    ASSERT_EQ(n, 2);
    ASSERT_STR_EQ(p0, "7");
    ASSERT_STR_EQ(p1, "9");
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_POST, "/v1/rooms/3/messages", NULL, &p0, NULL, &n),
                  "/v1/rooms/{id}/messages");
    ASSERT_STR_EQ(p0, "3");
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_GET, "/", NULL, NULL, NULL, &n), "/");
    http_router_free(&rt);
}

TEST(router_literal_beats_param)
{
    struct http_router rt;
    ASSERT_EQ(build(&rt), 0);
    int n = -1;
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_GET, "/v1/rooms/mine", NULL, NULL, NULL, &n),
                  "/v1/rooms/mine");
    ASSERT_EQ(n, 0);
    http_router_free(&rt);
}

TEST(router_not_found)
{
    struct http_router rt;
    ASSERT_EQ(build(&rt), 0);
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_GET, "/v1/nothing", NULL, NULL, NULL, NULL), "404");
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_GET, "/v1/rooms/1/2", NULL, NULL, NULL, NULL), "404");
    /* An empty segment does not fill a parameter. */
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_GET, "/v1/rooms//messages", NULL, NULL, NULL, NULL),
                  "404");
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_GET, "", NULL, NULL, NULL, NULL), "404");
    http_router_free(&rt);
}

TEST(router_trailing_slash_is_another_path)
{
    struct http_router rt;
    ASSERT_EQ(build(&rt), 0);
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_GET, "/v1/rooms/", NULL, NULL, NULL, NULL), "404");
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_GET, "/v1/rooms/5/messages/", NULL, NULL, NULL, NULL),
                  "404");
    http_router_free(&rt);
}

TEST(router_method_not_allowed_lists_allow)
{
    struct http_router rt;
    ASSERT_EQ(build(&rt), 0);
    char allow[80];
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_DELETE, "/v1/rooms", allow, NULL, NULL, NULL), "405");
    ASSERT_STR_EQ(allow, "GET, HEAD, POST");
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_PUT, "/v1/rooms/5/messages", allow, NULL, NULL, NULL),
                  "405");
    ASSERT_STR_EQ(allow, "GET, HEAD, POST");
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_GET, "/v1/rooms/5/members/6", allow, NULL, NULL, NULL),
                  "405");
    ASSERT_STR_EQ(allow, "DELETE");
    http_router_free(&rt);
}

TEST(router_head_uses_get_routes)
{
    struct http_router rt;
    ASSERT_EQ(build(&rt), 0);
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_HEAD, "/v1/rooms/8", NULL, NULL, NULL, NULL),
                  "/v1/rooms/{id}");
    ASSERT_STR_EQ(match(&rt, HTTP_VERB_HEAD, "/v1/rooms/8/members/1", NULL, NULL, NULL, NULL),
                  "405");
    http_router_free(&rt);
}

TEST(router_rejects_bad_patterns)
{
    struct http_router rt;
    memset(&rt, 0, sizeof(rt));
    ASSERT(http_router_add(&rt, HTTP_VERB_GET, "nope", 0, nop, NULL) < 0);
    ASSERT(http_router_add(&rt, HTTP_VERB_GET, "/a", 0, NULL, NULL) < 0);
    ASSERT(http_router_add(&rt, HTTP_VERB_GET, "/{a}/{b}/{c}/{d}/{e}", 0, nop, NULL) < 0);
    ASSERT_EQ(http_router_add(&rt, HTTP_VERB_GET, "/{a}/{b}/{c}/{d}", 0, nop, NULL), 0);
    ASSERT_EQ(rt.nroutes, 1);
    http_router_free(&rt);
}
