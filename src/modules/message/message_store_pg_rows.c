/* message_store_pg_rows.c: what every PostgreSQL op file of the message store uses:
 * running a statement of int64 parameters, decoding rows (text results) and
 * collecting them into arrays. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "message_store_pg.h"

int mpg_run64(struct db_conn *c, const struct db_pg_stmt *st, int64_t a, int64_t b,
              int64_t d, PGresult **res)
{
    char buf[3][DB_PG_I64_LEN];
    const char *v[3] = { db_pg_p64(buf[0], a), db_pg_p64(buf[1], b), db_pg_p64(buf[2], d) };
    return db_pg_run(c, st, v, res);
}

int mpg_exec64(struct db_conn *c, const struct db_pg_stmt *st, int64_t a, int64_t b)
{
    return mpg_run64(c, st, a, b, 0, NULL);
}

void mpg_msg_row(const PGresult *r, int row, int c, struct msg_row *m)
{
    m->id = db_pg_i64(r, row, c + 0);
    m->room_id = db_pg_i64(r, row, c + 1);
    m->seq = db_pg_i64(r, row, c + 2);
    m->sender_id = db_pg_i64(r, row, c + 3);
    m->sender = db_pg_str(r, row, c + 4);
    m->body = db_pg_str(r, row, c + 5);
    m->client_msg_id = db_pg_null(r, row, c + 6) ? NULL : db_pg_str(r, row, c + 6);
    m->created_at = db_pg_i64(r, row, c + 7);
}

void mpg_room_row(const PGresult *r, int row, int c, struct room_row *out)
{
    out->id = db_pg_i64(r, row, c + 0);
    snprintf(out->name, sizeof(out->name), "%s", db_pg_str(r, row, c + 1));
    snprintf(out->kind, sizeof(out->kind), "%s",
             db_pg_null(r, row, c + 2) ? "group" : db_pg_str(r, row, c + 2));
    out->owner_id = db_pg_i64(r, row, c + 3);
    out->created_at = db_pg_i64(r, row, c + 4);
    out->last_seq = db_pg_i64(r, row, c + 5);
}

int mpg_collect_ids(const PGresult *r, int64_t **ids, int *n)
{
    int rows = PQntuples(r);
    int64_t *a = malloc((size_t)(rows > 0 ? rows : 1) * sizeof(*a));
    if (!a)
        return -ENOMEM;
    for (int i = 0; i < rows; i++)
        a[i] = db_pg_i64(r, i, 0);
    *ids = a;
    *n = rows;
    return 0;
}

int mpg_collect_refs(const PGresult *r, struct member_ref **refs, int *n)
{
    int rows = PQntuples(r);
    struct member_ref *a = malloc((size_t)(rows > 0 ? rows : 1) * sizeof(*a));
    if (!a)
        return -ENOMEM;
    for (int i = 0; i < rows; i++) {
        a[i].id = db_pg_i64(r, i, 0);
        snprintf(a[i].username, sizeof(a[i].username), "%s", db_pg_str(r, i, 1));
    }
    *refs = a;
    *n = rows;
    return 0;
}

/* One decimal element of an array literal at *p (moved past it). 0 or -EINVAL. */
static int parse_element(const char **p, int64_t *out)
{
    const char *s = *p;
    int neg = *s == '-';
    uint64_t v = 0;
    s += neg;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    while (*s >= '0' && *s <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(*s++ - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return -EINVAL;
    *out = neg ? -(int64_t)v : (int64_t)v;
    *p = s;
    return 0;
}

int mpg_parse_ids(const char *text, int64_t **ids, int *n)
{
    size_t len = strlen(text), cap = 1;
    if (len < 2 || text[0] != '{' || text[len - 1] != '}')
        return -EINVAL;
    for (size_t i = 0; i < len; i++)
        cap += text[i] == ',';
    int64_t *a = malloc(cap * sizeof(*a));
    if (!a)
        return -ENOMEM;
    const char *p = text + 1;
    int cnt = 0;
    while (*p != '}') {
        if (parse_element(&p, &a[cnt]) < 0 || (*p != ',' && *p != '}') ||
            (*p == ',' && p[1] == '}')) {
            free(a);
            return -EINVAL;
        }
        cnt++;
        p += *p == ',';
    }
    if (p[1] != '\0') {
        free(a);
        return -EINVAL;
    }
    *ids = a;
    *n = cnt;
    return 0;
}

static size_t len_or_0(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

int mpg_copy_strings(struct msg_row *m, char **copy)
{
    size_t ls = len_or_0(m->sender), lb = len_or_0(m->body), lc = len_or_0(m->client_msg_id);
    char *p = malloc(ls + lb + lc + 1);
    if (!p)
        return -ENOMEM;
    m->sender = ls ? memcpy(p, m->sender, ls) : NULL;
    m->body = lb ? memcpy(p + ls, m->body, lb) : NULL;
    m->client_msg_id = lc ? memcpy(p + ls + lb, m->client_msg_id, lc) : NULL;
    *copy = p;
    return 0;
}
