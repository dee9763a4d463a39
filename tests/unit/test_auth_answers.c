/* The answers of the auth routes to a failed read or write (answers.c): a database
 * that cannot be reached (-ENOTCONN, PostgreSQL lost) is 503 unavailable with
 * Retry-After, as the other "try again" answers are, and not 500; any other storage
 * error stays 500 with its message. */
#include <errno.h>
#include <string.h>

#include "bus_fixture.h"
#include "test.h"
#include "chatd/http.h"
#include "../../src/core/http_internal.h"
#include "../../src/modules/auth/auth_routes.h"

struct case_ {
    int rc;
    int busy;                          /* 1: auth_respond_busy, 0: storage error */
    int cleared;                       /* the op's request was handed back */
};

static void answer(struct http_req *req, void *ctx)
{
    struct case_ *c = ctx;
    struct auth_op op;

    memset(&op, 0, sizeof op);
    op.req = req;
    if (c->busy)
        auth_respond_busy(&op, c->rc);
    else
        auth_respond_storage_error(&op, c->rc, "could not store the user");
    c->cleared = op.req == NULL;
}

/* The bytes answered to one GET /x with c. */
static void answer_of(struct case_ *c, struct strbuf *out)
{
    static const char get[] = "GET /x HTTP/1.1\r\nHost: x\r\n\r\n";
    struct fx f;
    struct http_server *s = NULL;
    struct http_capture cap;
    struct http_conn *conn;

    memset(&cap, 0, sizeof cap);
    strbuf_init(&cap.out, 1 << 16);
    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(http_server_new(&s, &f.app), 0);
    f.app.http = s;
    ASSERT_EQ(http_route(s, HTTP_VERB_GET, "/x", 0, answer, c), 0);
    ASSERT_EQ(http_test_conn(s, &cap, &conn), 0);
    http_conn_feed(conn, get, sizeof get - 1);
    strbuf_append(out, cap.out.data, cap.out.len);
    strbuf_append(out, "", 1);
    http_server_close(s, NULL, NULL);
    fx_stop(&f);
    http_server_free(s);
    strbuf_free(&cap.out);
}

static void expect(int rc, int busy, const char *status, const char *what)
{
    struct case_ c = { .rc = rc, .busy = busy };
    struct strbuf out;

    strbuf_init(&out, 1 << 16);
    answer_of(&c, &out);
    if (!test_failed()) {
        ASSERT(strncmp(out.data, status, strlen(status)) == 0);
        ASSERT(strstr(out.data, what) != NULL);
        ASSERT_EQ(c.cleared, 1);
        if (strstr(status, "503"))
            ASSERT(strstr(out.data, "Retry-After: 1\r\n") != NULL);
    }
    strbuf_free(&out);
}

TEST(auth_answers_database_unreachable_is_503)
{
    expect(-ENOTCONN, 0, "HTTP/1.1 503", "\"code\":\"unavailable\"");
    ASSERT_OK_SO_FAR();
    expect(-ENOTCONN, 1, "HTTP/1.1 503", "the database is not available");
}

TEST(auth_answers_other_storage_errors_stay_500)
{
    expect(-EIO, 0, "HTTP/1.1 500", "could not store the user");
    ASSERT_OK_SO_FAR();
    expect(-ENOSPC, 0, "HTTP/1.1 500", "could not store the user");
    ASSERT_OK_SO_FAR();
    expect(-EAGAIN, 1, "HTTP/1.1 503", "the server is busy");
    ASSERT_OK_SO_FAR();
    expect(-EIO, 1, "HTTP/1.1 500", "internal error");
}
