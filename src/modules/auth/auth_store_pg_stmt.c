/* auth_store_pg_stmt.c: the statement helper every PostgreSQL file of the auth store
 * uses: running one whose first parameter is a token hash, sent as binary bytea. */
#include <errno.h>

#include "auth_store_pg.h"

#define PARAMS_MAX 8                   /* the most any statement of the store takes */

int auth_pg_run_hash(struct db_conn *c, const struct db_pg_stmt *st,
                     const uint8_t hash[AUTH_STORE_TOKEN_HASH], const char *const *values,
                     PGresult **res)
{
    const char *v[PARAMS_MAX];
    int len[PARAMS_MAX] = { AUTH_STORE_TOKEN_HASH }, fmt[PARAMS_MAX] = { 1 };

    if (st->nparams < 1 || st->nparams > PARAMS_MAX)
        return -EINVAL;
    v[0] = (const char *)hash;
    for (int i = 1; i < st->nparams; i++)
        v[i] = values[i - 1];
    return db_pg_run_bin(c, st, v, len, fmt, res);
}
