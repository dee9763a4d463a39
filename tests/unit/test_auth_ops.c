/* The trips of auth ops through the writer thread: an op whose write finishes after
 * the bus closed (a stop while it was queued) comes back when db_close runs the afters
 * still due, and is freed there instead of leaked, with the request it held if its
 * client is gone (LeakSanitizer would see either); nothing is written to a client. */
#include <stdlib.h>
#include <string.h>

#include "bus_fixture.h"
#include "test.h"
#include "chatd/http.h"
#include "../../src/core/http_internal.h"
#include "../../src/modules/auth/auth_internal.h"

struct probe_op {
    struct auth_op op;                 /* first: freed through it */
    int *applied, *came_back, *freed;
};

static int probe_apply(struct auth_op *op, struct db_conn *conn)
{
    struct probe_op *p = (struct probe_op *)op;
    (*p->applied)++;
    return sqlite3_exec(db_sqlite(conn), "CREATE TABLE IF NOT EXISTS probe (x)", NULL, NULL,
                        NULL) == SQLITE_OK ? 0 : -EIO;
}

static void probe_next(struct auth_op *op)
{
    struct probe_op *p = (struct probe_op *)op;
    (*p->came_back)++;
    auth_op_done(op);
}

static void probe_free(struct auth_op *op)
{
    struct probe_op *p = (struct probe_op *)op;
    (*p->freed)++;
    free(p);
}

static struct probe_op *probe_new(struct auth *a, int *applied, int *came_back, int *freed)
{
    struct probe_op *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->applied = applied;
    p->came_back = came_back;
    p->freed = freed;
    auth_op_init(&p->op, a, NULL, probe_free);
    return p;
}

/* The usual trip, for contrast: the op comes back to the loop and is freed there. */
TEST(auth_op_write_comes_back_to_the_loop)
{
    struct fx f;
    struct auth a;
    int applied = 0, came_back = 0, freed = 0;
    struct probe_op *p;

    memset(&a, 0, sizeof a);
    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 1), 0);
    a.app = &f.app;
    ASSERT((p = probe_new(&a, &applied, &came_back, &freed)) != NULL);
    ASSERT_EQ(auth_op_write(&p->op, probe_apply, probe_next), 0);
    ASSERT(FX_RUN_UNTIL(&f, freed == 1, 5000));
    ASSERT_EQ(applied, 1);
    ASSERT_EQ(came_back, 1);
    ASSERT_EQ(a.inflight, 0);
    fx_stop(&f);
}

TEST(auth_op_write_after_bus_close_frees_its_op)
{
    struct fx f;
    struct auth a;
    int applied = 0, came_back = 0, freed = 0;
    struct probe_op *p;

    memset(&a, 0, sizeof a);
    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 1), 0);
    a.app = &f.app;
    ASSERT((p = probe_new(&a, &applied, &came_back, &freed)) != NULL);
    bus_close(f.app.bus);
    ASSERT_EQ(auth_op_write(&p->op, probe_apply, probe_next), 0);
    db_close(f.app.db);              /* runs the job, then the afters still due */
    f.app.db = NULL;
    ASSERT_EQ(applied, 1);           /* the write is on disk */
    ASSERT_EQ(came_back, 1);         /* its after ran at db_close, on this thread */
    ASSERT_EQ(freed, 1);
    fx_stop(&f);
}

static void hold(struct http_req *req, void *ctx)
{
    *(struct http_req **)ctx = req;
}

/* As in a stop: the HTTP server closed its connections while the handler held the
 * request (its op queued for the writer), then the bus closed. */
TEST(auth_op_write_after_bus_close_frees_its_request)
{
    struct fx f;
    struct auth a;
    struct http_server *s = NULL;
    struct http_capture cap;
    struct http_conn *c;
    struct http_req *held = NULL;
    int applied = 0, came_back = 0, freed = 0;
    struct probe_op *p;
    static const char get[] = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";

    memset(&a, 0, sizeof a);
    memset(&cap, 0, sizeof cap);
    strbuf_init(&cap.out, 1 << 16);
    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 1), 0);
    a.app = &f.app;
    ASSERT_EQ(http_server_new(&s, &f.app), 0);
    f.app.http = s;
    ASSERT_EQ(http_route(s, HTTP_VERB_GET, "/slow", 0, hold, &held), 0);
    ASSERT_EQ(http_test_conn(s, &cap, &c), 0);
    http_conn_feed(c, get, sizeof get - 1);
    ASSERT(held != NULL);
    ASSERT((p = probe_new(&a, &applied, &came_back, &freed)) != NULL);
    p->op.req = held;
    http_server_close(s, NULL, NULL);
    ASSERT(held->conn == NULL);      /* the handler still owns it, with no client */
    bus_close(f.app.bus);
    ASSERT_EQ(auth_op_write(&p->op, probe_apply, probe_next), 0);
    db_close(f.app.db);
    f.app.db = NULL;
    ASSERT_EQ(applied, 1);
    ASSERT_EQ(came_back, 1);
    ASSERT_EQ(freed, 1);
    ASSERT_EQ(cap.out.len, 0);       /* nothing written: there is no one to read it */
    fx_stop(&f);
    http_server_free(s);
    strbuf_free(&cap.out);
}
