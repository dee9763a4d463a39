/* db_pg_keys.c: secrets kept in the database (db_key_keep), in core's chatd_keys
 * table. Every node of one database must sign with the same key, so the first node
 * to start makes it and the others read it: the insert is ON CONFLICT DO NOTHING and
 * the row is read back in the same transaction, so when two nodes start at once the
 * second one's insert waits for the first's and then yields to it, and both return
 * the winner's value. Start-up only: it runs on the writer's connection. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "chatd/chatd.h"
#include "chatd/log.h"
#include "db_pg_engine.h"

static const struct db_pg_stmt key_get = {
    "core_key_get", "SELECT value FROM chatd_keys WHERE name = $1", 1 };
static const struct db_pg_stmt key_put = {
    "core_key_put", "INSERT INTO chatd_keys (name, value, created_at)"
    " VALUES ($1, $2, $3::bigint) ON CONFLICT (name) DO NOTHING", 3 };

/* 0 and the value (malloc'ed), -ENOENT when there is none, or the error. */
static int key_read(struct db_conn *c, const char *name, char **value, size_t *len)
{
    const char *values[] = { name };
    PGresult *r = NULL;
    int rc = db_pg_run(c, &key_get, values, &r);

    if (rc < 0)
        return rc;
    rc = -ENOENT;
    if (PQntuples(r) == 1) {
        *len = (size_t)PQgetlength(r, 0, 0);
        *value = malloc(*len + 1);
        rc = *value ? 0 : -ENOMEM;
        if (*value) {
            memcpy(*value, PQgetvalue(r, 0, 0), *len);
            (*value)[*len] = '\0';
        }
    }
    PQclear(r);
    return rc;
}

/* Inserts made[0..made_len) unless a value is there, and reads back the one kept. */
static int key_insert(struct db_conn *c, const char *name, const char *made,
                      char **value, size_t *len)
{
    char b[DB_PG_I64_LEN];
    const char *values[] = { name, made, db_pg_p64(b, (int64_t)time(NULL) * 1000) };
    PGresult *r = NULL;
    int rc = db_pg_exec(c, "BEGIN");

    if (rc == 0 && (rc = db_pg_run(c, &key_put, values, &r)) == 0 &&
        (rc = key_read(c, name, value, len)) == 0 && (rc = db_pg_exec(c, "COMMIT")) < 0) {
        free(*value);
        *value = NULL;
    }
    PQclear(r);
    if (rc < 0 && !db_pg_conn_lost(db_pg_conn_of(c)))
        db_pg_exec(c, "ROLLBACK");
    return rc == -ENOENT ? -EIO : rc;
}

int db_key_keep(struct db *db, const char *name,
                int (*make)(void *arg, char **value, size_t *len), void *arg,
                char **value, size_t *len)
{
    char *made = NULL;
    size_t made_len = 0;
    int rc;

    *value = NULL;
    *len = 0;
    if (db->engine != DB_ENGINE_PG)
        return -ENOTSUP;
    pthread_mutex_lock(&db->conn_lock);
    struct db_conn *c = db_conn_of_pg(db->pg->w);
    rc = key_read(c, name, value, len);
    if (rc == -ENOENT && (rc = make(arg, &made, &made_len)) == 0) {
        if (!made || strlen(made) != made_len)
            rc = -EINVAL;            /* text only: a NUL inside would be cut */
        else
            rc = key_insert(c, name, made, value, len);
    }
    pthread_mutex_unlock(&db->conn_lock);
    if (rc < 0)
        LOG_ERROR(db->app, "db", "cannot keep a key in the database name=%s error=\"%s\"",
                  name, rc == -EINVAL ? "not text" : db_pg_errmsg(c));
    if (made) {
        explicit_bzero(made, made_len);   /* a private key: no copy left in the heap */
        free(made);
    }
    return rc;
}
