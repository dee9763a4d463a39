/* presence_seen.c: the jobs on last_seen_at, the one durable piece of presence (the
 * rows are the seen store's, presence_seen_store.h). Written through the writer
 * thread (fire and forget: a lost write costs a slightly older last_seen_at, never a
 * wrong online status), read on the thread pool. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/db.h"
#include "chatd/log.h"
#include "presence_internal.h"

/* The seen store of the database's engine. */
static int seen_store_new(struct db *db, struct presence_seen_store *out)
{
    return db_engine(db) == DB_ENGINE_PG ? presence_seen_store_pg_new(out)
                                         : presence_seen_store_sqlite_new(out);
}

/* Init: picks the seen store's engine and brings its table up to date. */
int presence_seen_open(struct presence *p)
{
    int rc = seen_store_new(p->app->db, &p->seen);
    return rc < 0 ? rc : presence_seen_migrate(&p->seen, p->app->db);
}

int presence_migrate_tables(struct chatd *app)
{
    struct presence_seen_store s = {0};
    int rc = seen_store_new(app->db, &s);
    if (rc == 0)
        rc = presence_seen_migrate(&s, app->db);
    presence_seen_store_free(&s);
    return rc;
}

struct seen_job {
    struct db_job base;              /* first */
    const struct presence_seen_store *store;
    size_t n;
    struct pres_seen rows[];
};

static int seen_apply(struct db_conn *conn, struct db_job *job)
{
    struct seen_job *j = (struct seen_job *)job;
    return presence_seen_record(j->store, conn, j->rows, j->n);
}

static void seen_done(struct db_job *job, int status)
{
    (void)status;
    free(job);
}

void presence_seen_write(struct presence *p, const struct pres_seen *rows, size_t n)
{
    struct seen_job *j;
    int rc;

    if (!n)
        return;
    j = calloc(1, sizeof(*j) + n * sizeof(rows[0]));
    if (!j)
        return;
    j->base.apply = seen_apply;
    j->base.done = seen_done;
    j->store = &p->seen;
    j->n = n;
    memcpy(j->rows, rows, n * sizeof(rows[0]));
    rc = db_write(p->app->db, &j->base);
    if (rc < 0) {
        LOG_WARN(p->app, "presence", "last_seen_at not stored users=%zu err=%d", n, rc);
        free(j);
    }
}

struct seen_read {
    const struct presence_seen_store *store;
    const int64_t *ids;
    int n;
    int64_t *out;
    void (*after)(void *arg, int status);
    void *arg;
};

static int read_fn(struct db_conn *conn, void *arg)
{
    struct seen_read *r = arg;
    return presence_seen_read(r->store, conn, r->ids, (size_t)r->n, r->out);
}

static void read_after(void *arg, int status)
{
    struct seen_read *r = arg;
    void (*after)(void *, int) = r->after;
    void *a = r->arg;

    free(r);
    after(a, status);
}

int presence_seen_fetch(struct presence *p, const int64_t *ids, int n, int64_t *out,
                     void (*after)(void *arg, int status), void *arg)
{
    struct seen_read *r = calloc(1, sizeof(*r));
    int rc;

    if (!r)
        return -ENOMEM;
    *r = (struct seen_read){ &p->seen, ids, n, out, after, arg };
    rc = db_read(p->app->db, read_fn, read_after, r);
    if (rc < 0)
        free(r);
    return rc;
}
