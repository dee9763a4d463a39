/* db_pg_values.c: reading text results and writing text parameters for the
 * PostgreSQL stores (chatd/db_pg.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/db_pg.h"
#include "chatd/util.h"

int64_t db_pg_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

const char *db_pg_str(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col);
}

int db_pg_null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col);
}

int db_pg_bytea(const PGresult *r, int row, int col, uint8_t *out, size_t cap)
{
    const char *s = PQgetvalue(r, row, col);
    size_t len = (size_t)PQgetlength(r, row, col);
    if (len < 2 || s[0] != '\\' || s[1] != 'x' || len % 2)
        return -EINVAL;              /* bytea_output = hex is the server's default */
    size_t n = (len - 2) / 2;
    if (n > cap)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(s[2 + 2 * i]), lo = hex_digit(s[3 + 2 * i]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (int)n;
}

const char *db_pg_p64(char buf[DB_PG_I64_LEN], int64_t v)
{
    snprintf(buf, DB_PG_I64_LEN, "%" PRId64, v);
    return buf;
}

char *db_pg_array64(const int64_t *v, size_t n)
{
    size_t cap = 3 + n * 21, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%" PRId64, i ? "," : "", v[i]);
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

/* Each element double-quoted, with " and \ escaped by a backslash (array input
 * syntax); NULL elements as the unquoted word NULL. */
char *db_pg_array_text(const char *const *v, size_t n)
{
    size_t cap = 3;
    for (size_t i = 0; i < n; i++)
        cap += v[i] ? 2 * strlen(v[i]) + 3 : 5;
    char *s = malloc(cap), *p = s;
    if (!s)
        return NULL;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        if (!v[i]) {
            memcpy(p, "NULL", 4);
            p += 4;
            continue;
        }
        *p++ = '"';
        for (const char *q = v[i]; *q; q++) {
            if (*q == '"' || *q == '\\')
                *p++ = '\\';
            *p++ = *q;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return s;
}
