/* message_store_pg_batch.c: a batch of messages in one round trip on PostgreSQL.
 *
 * Op by op, a batch would cost a round trip per message to the server; the server
 * function message_post_batch (message_store_pg_schema.c) does the whole batch
 * in one call instead: the batch's columns go in as six arrays, and out comes one
 * row per message (k, its index in the batch, with its status, id, seq and
 * created_at, or a repeat's first message) and one row per room of the batch that
 * exists (k = -1, its members by id), as the commit will leave them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "message_store_pg.h"

static const struct db_pg_stmt post_batch = {
    "msg_post_batch", "SELECT r_k, r_status, r_id, r_room, r_seq, r_created, r_sender,"
    " r_body, r_cmid, r_members FROM message_post_batch($1::bigint[], $2::bigint[],"
    " $3::text[], $4::text[], $5::text[], $6::bigint[])", 6
};

enum { COL_K, COL_STATUS, COL_ID, COL_ROOM, COL_SEQ, COL_CREATED, COL_SENDER, COL_BODY,
       COL_CMID, COL_MEMBERS };

/* The six parameter arrays of the batch, malloc'ed into v (NULL where memory ran
 * out: the caller checks and frees all six). */
static void make_arrays(const struct msg_post *p, int n, char *v[6])
{
    int64_t *num = malloc((size_t)n * sizeof(*num));
    const char **str = malloc((size_t)n * sizeof(*str));
    memset(v, 0, 6 * sizeof(*v));
    if (!num || !str)
        goto out;
    for (int i = 0; i < n; i++)
        num[i] = p[i].room_id;
    v[0] = db_pg_array64(num, (size_t)n);
    for (int i = 0; i < n; i++)
        num[i] = p[i].sender_id;
    v[1] = db_pg_array64(num, (size_t)n);
    for (int i = 0; i < n; i++)
        num[i] = p[i].created_at;
    v[5] = db_pg_array64(num, (size_t)n);
    for (int i = 0; i < n; i++)
        str[i] = p[i].sender;
    v[2] = db_pg_array_text(str, (size_t)n);
    for (int i = 0; i < n; i++)
        str[i] = p[i].body;
    v[3] = db_pg_array_text(str, (size_t)n);
    for (int i = 0; i < n; i++)
        str[i] = p[i].client_msg_id;
    v[4] = db_pg_array_text(str, (size_t)n);
out:
    free(num);
    free(str);
}

/* One message's row of the result into p. 0 or negative. */
static int take_message(const PGresult *r, int row, struct msg_post *p)
{
    int status = (int)db_pg_i64(r, row, COL_STATUS);
    p->status = status;
    if (status == 201) {
        p->row = (struct msg_row){
            .id = db_pg_i64(r, row, COL_ID), .room_id = p->room_id,
            .seq = db_pg_i64(r, row, COL_SEQ), .sender_id = p->sender_id,
            .created_at = p->created_at, .sender = p->sender, .body = p->body,
            .client_msg_id = p->client_msg_id,
        };
    } else if (status == 200 || status == 409) {
        p->row = (struct msg_row){
            .id = db_pg_i64(r, row, COL_ID), .room_id = db_pg_i64(r, row, COL_ROOM),
            .seq = db_pg_i64(r, row, COL_SEQ), .sender_id = p->sender_id,
            .created_at = db_pg_i64(r, row, COL_CREATED),
            .sender = db_pg_str(r, row, COL_SENDER), .body = db_pg_str(r, row, COL_BODY),
            .client_msg_id = db_pg_str(r, row, COL_CMID),
        };
        return mpg_copy_strings(&p->row, &p->copy);
    } else if (status != 403 && status != 404 && status != 500) {
        return -EIO;
    }
    return 0;
}

static int by_room_id(const void *a, const void *b)
{
    int64_t x = ((const struct msg_post_room *)a)->room_id;
    int64_t y = ((const struct msg_post_room *)b)->room_id;
    return x < y ? -1 : x > y;
}

/* The index of room_id in rooms[0..n) (sorted), or -1. */
static int find_room(const struct msg_post_room *rooms, int n, int64_t room_id)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (rooms[mid].room_id == room_id)
            return mid;
        if (rooms[mid].room_id < room_id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static void drop_results(struct msg_post *p, int n, struct msg_post_room *rooms, int nrooms)
{
    for (int i = 0; i < n; i++) {
        free(p[i].copy);
        p[i].copy = NULL;
        p[i].status = 0;
    }
    for (int i = 0; i < nrooms; i++) {
        free(rooms[i].ids);
        rooms[i].ids = NULL;
    }
}

/* The result's rows into p and rooms. 0 or negative (what was taken is freed). */
static int take_results(const PGresult *r, struct msg_post *p, int n,
                        struct msg_post_room *rooms, int *nrooms)
{
    int rows = PQntuples(r), nr = 0, rc = 0;
    for (int row = 0; row < rows && rc == 0; row++) {
        int64_t k = db_pg_i64(r, row, COL_K);
        if (k == -1 && nr < n) {
            rooms[nr].room_id = db_pg_i64(r, row, COL_ROOM);
            rc = mpg_parse_ids(db_pg_str(r, row, COL_MEMBERS), &rooms[nr].ids, &rooms[nr].n);
            nr += rc == 0;
        } else if (k >= 0 && k < n && p[k].status == 0) {
            rc = take_message(r, row, &p[k]);
        } else {
            rc = -EIO;               /* not a result of this batch */
        }
    }
    for (int i = 0; i < n && rc == 0; i++)
        if (p[i].status == 0)
            rc = -EIO;               /* a message without its result */
    if (rc < 0) {
        drop_results(p, n, rooms, nr);
        return rc;
    }
    qsort(rooms, (size_t)nr, sizeof(*rooms), by_room_id);
    for (int i = 0; i < n; i++)
        p[i].room = p[i].status == 404 ? -1 : find_room(rooms, nr, p[i].room_id);
    *nrooms = nr;
    return 0;
}

int mpg_post_batch(void *impl, struct db_conn *c, struct msg_post *p, int n,
                   struct msg_post_room *rooms, int *nrooms)
{
    char *v[6];
    PGresult *r = NULL;
    int rc = -ENOMEM;

    *nrooms = 0;
    for (int i = 0; i < n; i++) {
        p[i].status = 0;
        p[i].copy = NULL;
        p[i].room = -1;
    }
    if (n <= 0)
        return 0;
    make_arrays(p, n, v);
    if (v[0] && v[1] && v[2] && v[3] && v[4] && v[5] &&
        (rc = db_pg_run(c, &post_batch, (const char *const *)v, &r)) == 0) {
        rc = take_results(r, p, n, rooms, nrooms);
        PQclear(r);
    }
    for (int i = 0; i < 6; i++)
        free(v[i]);
    return rc;
}
