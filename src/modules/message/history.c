/* history.c: reading messages back: GET /v1/rooms/{id}/messages pages through a
 * room (the websocket module's sync is sync_pages.c). The query runs on the thread
 * pool with a read-only connection (db_read); the loop only parses it and answers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/text.h"
#include "chatd/util.h"
#include "message_internal.h"

int msg_parse_u64(const char *s, int64_t *out)
{
    return s ? decimal_parse(s, strlen(s), out) : -EINVAL;
}

int msg_page_plan(const char *before, const char *after, const char *limit,
                  struct msg_page *out, const char **err)
{
    int64_t v;
    struct msg_page p = { .lo = 0, .hi = INT64_MAX, .desc = 1, .limit = MSG_HISTORY_DEFAULT };

    if (limit) {
        if (msg_parse_u64(limit, &v) < 0 || v < 1 || v > MSG_HISTORY_MAX) {
            *err = "limit must be an integer from 1 to 200";
            return -EINVAL;
        }
        p.limit = (int)v;
    }
    if (before) {
        if (msg_parse_u64(before, &v) < 0 || v < 1) {
            *err = "before must be a positive integer (a seq)";
            return -EINVAL;
        }
        p.hi = v;
    }
    if (after) {
        if (msg_parse_u64(after, &v) < 0) {
            *err = "after must be a non-negative integer (a seq)";
            return -EINVAL;
        }
        p.lo = v;
        p.desc = 0;      /* paging forward: the oldest rows above `after` first */
    }
    *out = p;
    return 0;
}

int msg_page_keep(const struct msg_page *p, int fetched, int *has_more)
{
    *has_more = fetched > p->limit;
    return fetched > p->limit ? p->limit : fetched;
}

/* The rows of a page as they come (newest first when paging back): the first `keep`
 * become JSON, the one beyond is only counted. */
struct page_rows {
    cJSON **rows;                    /* keep of them */
    int keep, n;
};

static int page_row(void *ctx, const struct msg_row *m)
{
    struct page_rows *p = ctx;
    if (p->n < p->keep)
        p->rows[p->n] = msg_row_json(m);
    p->n++;
    return 0;
}

/* Up to limit + 1 rows of the page, the first `limit` appended to arr in ascending
 * seq. Returns the number fetched or negative. */
static int fetch_rows(struct msg_state *st, struct db_conn *conn, int64_t room_id,
                      const struct msg_page *pg, cJSON *arr)
{
    struct msg_range r = { .room_id = room_id, .lo = pg->lo, .hi = pg->hi,
                           .desc = pg->desc, .limit = pg->limit + 1 };
    struct page_rows p = { .keep = pg->limit };
    if (!(p.rows = calloc((size_t)(p.keep > 0 ? p.keep : 1), sizeof(*p.rows))))
        return -ENOMEM;
    int rc = MSG_STORE(st, messages, conn, &r, page_row, &p);
    int kept = p.n < p.keep ? p.n : p.keep;
    for (int i = 0; i < kept; i++) {
        cJSON *item = p.rows[pg->desc ? kept - 1 - i : i];
        if (item)
            cJSON_AddItemToArray(arr, item);
    }
    free(p.rows);
    return rc < 0 ? rc : p.n;
}

/* ---------- GET /v1/rooms/{id}/messages ---------- */
struct history_ctx {
    struct msg_state *st;
    struct http_req *req;
    int64_t room_id, user_id;
    struct msg_page page;
    int status;                      /* http status of the answer */
    cJSON *answer;                   /* owned */
};

static int history_fn(struct db_conn *conn, void *arg)
{
    struct history_ctx *h = arg;
    struct room_row room;
    int64_t read_seq;
    int rc = MSG_STORE(h->st, room_access, conn, h->room_id, h->user_id, &room, &read_seq);
    if (rc == -ENOENT || rc == -EPERM) {
        h->status = rc == -ENOENT ? 404 : 403;
        return 0;
    }
    if (rc < 0)
        return rc;
    cJSON *arr = cJSON_CreateArray();
    h->answer = cJSON_CreateObject();
    if (!arr || !h->answer) {
        cJSON_Delete(arr);
        return -ENOMEM;
    }
    cJSON_AddItemToObject(h->answer, "messages", arr);
    rc = fetch_rows(h->st, conn, h->room_id, &h->page, arr);
    if (rc < 0)
        return rc;
    int has_more;
    msg_page_keep(&h->page, rc, &has_more);
    cJSON_AddBoolToObject(h->answer, "has_more", has_more);
    h->status = 200;
    return 0;
}

static void history_after(void *arg, int status)
{
    struct history_ctx *h = arg;
    if (status == -ENOTCONN)
        http_respond_error(h->req, 503, "the database is not available");
    else if (status < 0)
        http_respond_error(h->req, 500, "could not read the history");
    else if (h->status == 404)
        http_respond_error(h->req, 404, "room not found");
    else if (h->status == 403)
        http_respond_error(h->req, 403, "not a member of this room");
    else {
        http_respond_json(h->req, 200, h->answer);
        h->answer = NULL;
    }
    cJSON_Delete(h->answer);
    msg_inflight_done(h->st);
    free(h);
}

/* Query parameter or NULL when absent; -ENOBUFS (too long) counts as present and bad. */
static const char *query_value(struct http_req *req, const char *name, char *buf,
                               size_t len)
{
    int rc = http_query(req, name, buf, len);
    if (rc == -ENOENT)
        return NULL;
    if (rc < 0)
        snprintf(buf, len, "x");     /* fails validation below */
    return buf;
}

void history_get(struct msg_state *st, struct http_req *req)
{
    char b[32], a[32], l[32];
    const char *err = NULL;
    struct msg_page page;
    int64_t room_id = http_param_id(req, 0);
    if (room_id <= 0) {
        http_respond_error(req, 400, "invalid room id");
        return;
    }
    if (msg_page_plan(query_value(req, "before", b, sizeof(b)),
                      query_value(req, "after", a, sizeof(a)),
                      query_value(req, "limit", l, sizeof(l)), &page, &err) < 0) {
        http_respond_error(req, 400, "%s", err);
        return;
    }
    if (st->draining) {
        http_respond_error(req, 503, "the server is shutting down");
        return;
    }
    struct history_ctx *h = calloc(1, sizeof(*h));
    if (!h) {
        http_respond_error(req, 503, "out of memory");
        return;
    }
    h->st = st;
    h->req = req;
    h->room_id = room_id;
    h->user_id = req->user.id;
    h->page = page;
    if (db_read(st->app->db, history_fn, history_after, h) < 0) {
        free(h);
        http_respond_error(req, 503, "the database is not available");
        return;
    }
    st->inflight++;
}
