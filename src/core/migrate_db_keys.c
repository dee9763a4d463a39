/* migrate_db_keys.c: the secrets a node keeps in data_dir on SQLite (the modules'
 * kept_keys: jwt.pem, vapid.pem) into chatd_keys, where db_key_keep finds them on
 * PostgreSQL, under the same names: the tokens the node signed and the browsers'
 * push subscriptions stay valid. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "chatd/db_pg.h"
#include "migrate_db.h"

#define MDB_KEY_MAX (64 * 1024)      /* a PEM key is a few kB */

/* The whole file, NUL-terminated; -ENOENT when it does not exist. */
static int read_key(const char *path, char **out, int64_t *mtime_ms, char *err,
                    size_t errlen)
{
    FILE *f = fopen(path, "rb");
    struct stat sb;
    char *buf = NULL;
    size_t n = 0;
    int rc = 0;

    if (!f) {
        int e = errno;
        if (e != ENOENT)
            snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    if (fstat(fileno(f), &sb) < 0 || sb.st_size > MDB_KEY_MAX) {
        snprintf(err, errlen, "%s: not a key file (larger than %d bytes)", path, MDB_KEY_MAX);
        rc = -EFBIG;
    } else if (!(buf = malloc((size_t)sb.st_size + 1))) {
        rc = -ENOMEM;
    } else if ((n = fread(buf, 1, (size_t)sb.st_size, f)) != (size_t)sb.st_size ||
               memchr(buf, '\0', n)) {
        snprintf(err, errlen, "%s: cannot read it whole, or it is not text", path);
        rc = -EIO;
    }
    fclose(f);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *mtime_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
    return 0;
}

static int insert_key(struct db_conn *pg, const char *name, const char *value,
                      int64_t created_at, char *err, size_t errlen)
{
    static const struct db_pg_stmt ins = { "mdb_key_insert",
        "INSERT INTO chatd_keys (name, value, created_at) VALUES ($1, $2, $3::bigint)", 3 };
    char b[DB_PG_I64_LEN];
    const char *v[] = { name, value, db_pg_p64(b, created_at) };
    PGresult *r = NULL;
    int rc = db_pg_run(pg, &ins, v, &r);

    if (rc < 0)
        snprintf(err, errlen, "key %s: %s", name, db_pg_errmsg(pg));
    PQclear(r);
    return rc;
}

int mdb_copy_keys(struct db_conn *pg, const char *data_dir, const char *const *names,
                  int *copied, char *err, size_t errlen)
{
    for (; names && *names; names++) {
        char path[CFG_PATH_MAX + MDB_NAME_MAX + 2], *value = NULL;
        int64_t mtime = 0;
        int rc;

        snprintf(path, sizeof path, "%s/%s", data_dir, *names);
        rc = read_key(path, &value, &mtime, err, errlen);
        if (rc == -ENOENT)
            continue;               /* never made (no push configured, a key_file) */
        if (rc == 0)
            rc = insert_key(pg, *names, value, mtime, err, errlen);
        free(value);
        if (rc < 0)
            return rc;
        (*copied)++;
    }
    return 0;
}
