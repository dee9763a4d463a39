/* Tests for db.c, db_writer.c and db_read.c: migrations, the group-commit writer and
 * the read pool. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "chatd/db_sqlite.h"
#include "bus_fixture.h"
#include "test.h"

static const struct db_migration test_migrations[] = {
    { 1, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)" },
    { 2, "ALTER TABLE t ADD COLUMN n INTEGER NOT NULL DEFAULT 0" },
};

static int exec_sql(sqlite3 *c, const char *sql)
{
    return sqlite3_exec(c, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int open_db(struct fx *f)
{
    if (fx_init(f) < 0 || db_open(&f->app.db, &f->app, f->db_path) < 0)
        return -1;
    return db_migrate(f->app.db, "test", test_migrations, 2);
}

TEST(db_migrate_idempotent)
{
    struct fx f;

    ASSERT_EQ(open_db(&f), 0);
    /* Again: nothing re-runs (CREATE TABLE would fail). With only the first, the
     * database is newer than the migrations: refused (test_db_pg.c has the rest). */
    ASSERT_EQ(db_migrate(f.app.db, "test", test_migrations, 2), 0);
    ASSERT_EQ(db_migrate(f.app.db, "test", test_migrations, 1), -EPROTO);
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT version FROM schema_versions WHERE owner='test'"), 2);
    db_close(f.app.db);
    f.app.db = NULL;
    /* A reopen keeps the version; a broken migration fails and records nothing. */
    ASSERT_EQ(db_open(&f.app.db, &f.app, f.db_path), 0);
    ASSERT_EQ(db_migrate(f.app.db, "test", test_migrations, 2), 0);
    static const struct db_migration bad[] = { { 3, "CREATE TABLE t (x)" } };
    ASSERT(db_migrate(f.app.db, "test", bad, 1) < 0);
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT version FROM schema_versions WHERE owner='test'"), 2);
    fx_stop(&f);
}

TEST(db_open_settings)
{
    struct fx f;
    struct stat st;

    ASSERT_EQ(open_db(&f), 0);
    sqlite3 *c = db_sqlite(db_conn_for_cli(f.app.db));
    sqlite3_stmt *s = NULL;
    ASSERT_EQ(sqlite3_prepare_v2(c, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
    ASSERT_STR_EQ((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    ASSERT_EQ(sqlite3_prepare_v2(c, "PRAGMA foreign_keys", -1, &s, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
    ASSERT_EQ(sqlite3_column_int(s, 0), 1);
    sqlite3_finalize(s);
    ASSERT_EQ(stat(f.cfg.server.data_dir, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0700);
    fx_stop(&f);
}

struct ins_job {
    struct db_job job;
    struct fx *f;
    int n;             /* the value inserted */
    int fail;          /* insert, then report an error: the savepoint must undo it */
    int *order;        /* done() appends n here */
    int *norder;
    int status;
    long long visible; /* rows with v = n seen from another connection in done() */
};

static int ins_apply(struct db_conn *conn_, struct db_job *job)
{
    sqlite3 *conn = db_sqlite(conn_);
    struct ins_job *j = (struct ins_job *)job;
    char sql[96];

    snprintf(sql, sizeof(sql), "INSERT INTO t (v) VALUES ('v%d')", j->n);
    int rc = sqlite3_exec(conn, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_errno(rc);
    return j->fail ? -EINVAL : 0;
}

static void ins_done(struct db_job *job, int status)
{
    struct ins_job *j = (struct ins_job *)job;
    char sql[96];

    j->order[(*j->norder)++] = j->n;
    if (j->n < 8) {   /* a few only: each opens a connection */
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM t WHERE v = 'v%d'", j->n);
        j->visible = fx_query_int(j->f->db_path, sql);
    }
    __atomic_store_n(&j->status, status, __ATOMIC_RELEASE);   /* last: the test waits on it */
}

static int commits;
static int count_commit(void *arg)
{
    (void)arg;
    __atomic_fetch_add(&commits, 1, __ATOMIC_RELAXED);
    return 0;
}

static int done_count(struct ins_job *jobs, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += __atomic_load_n(&jobs[i].status, __ATOMIC_ACQUIRE) != 1;
    return c;
}

/* Jobs queued before the writer starts go in one transaction; a failing job is
 * undone alone; done() runs after COMMIT, in queue order. */
TEST(db_group_commit)
{
    enum { N = 1000 };
    struct fx f;
    static struct ins_job jobs[N];
    static int order[N];
    int norder = 0;

    ASSERT_EQ(open_db(&f), 0);
    commits = 0;
    sqlite3_commit_hook(db_sqlite(db_conn_for_cli(f.app.db)), count_commit, NULL);
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct ins_job){ .f = &f, .n = i, .fail = i == 3, .order = order,
                                    .norder = &norder, .status = 1, .visible = -2 };
        jobs[i].job.apply = ins_apply;
        jobs[i].job.done = ins_done;
        ASSERT_EQ(db_write(f.app.db, &jobs[i].job), 0);
    }
    ASSERT_EQ(db_write_depth(f.app.db), N);
    ASSERT_EQ(db_start(f.app.db), 0);
    ASSERT(FX_RUN_UNTIL(&f, done_count(jobs, N) == N, 10000));
    ASSERT_EQ(__atomic_load_n(&commits, __ATOMIC_RELAXED), 1);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(order[i], i);
        ASSERT_EQ(jobs[i].status, i == 3 ? -EINVAL : 0);
    }
    ASSERT_EQ(jobs[0].visible, 1);     /* committed before done() */
    ASSERT_EQ(jobs[3].visible, 0);     /* rolled back */
    ASSERT_EQ(jobs[4].visible, 1);
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT count(*) FROM t"), N - 1);
    ASSERT_EQ(db_write_depth(f.app.db), 0);
    fx_stop(&f);
}

/* Jobs from a running writer: many jobs, fewer transactions; a constraint error
 * comes back as -ECONSTRAINT for that job only. */
TEST(db_group_commit_running)
{
    enum { N = 5000 };
    struct fx f;
    static struct ins_job jobs[N + 1];
    static int order[N + 1];
    int norder = 0;

    ASSERT_EQ(open_db(&f), 0);
    commits = 0;
    sqlite3_commit_hook(db_sqlite(db_conn_for_cli(f.app.db)), count_commit, NULL);
    ASSERT_EQ(db_start(f.app.db), 0);
    for (int i = 0; i <= N; i++) {
        jobs[i] = (struct ins_job){ .f = &f, .n = i == N ? 10 : i, .order = order,
                                    .norder = &norder, .status = 1 };
        jobs[i].job.apply = ins_apply;
        jobs[i].job.done = ins_done;
        ASSERT_EQ(db_write(f.app.db, &jobs[i].job), 0);
    }
    ASSERT(FX_RUN_UNTIL(&f, done_count(jobs, N + 1) == N + 1, 20000));
    ASSERT(__atomic_load_n(&commits, __ATOMIC_RELAXED) < N / 2);
    ASSERT_EQ(jobs[N].status, -ECONSTRAINT);
    ASSERT_EQ(jobs[10].status, 0);
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT count(*) FROM t"), N);
    fx_stop(&f);
}

/* A job without a savepoint: when it fails, the whole group is undone and every job
 * of it gets its error; when it succeeds it commits with the others. */
TEST(db_unguarded_job_fails_its_group)
{
    enum { N = 6 };
    struct fx f;
    static struct ins_job jobs[N];
    static int order[N];
    int norder = 0;

    ASSERT_EQ(open_db(&f), 0);
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct ins_job){ .f = &f, .n = i, .fail = i == 2 || i == 5, .order = order,
                                    .norder = &norder, .status = 1, .visible = -2 };
        jobs[i].job.apply = ins_apply;
        jobs[i].job.flags = i == 2 || i == 4 ? DB_JOB_UNGUARDED : 0;
        jobs[i].job.done = ins_done;
    }
    /* One group (queued before the writer starts): 2 fails after its insert. */
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(db_write(f.app.db, &jobs[i].job), 0);
    ASSERT_EQ(db_start(f.app.db), 0);
    ASSERT(FX_RUN_UNTIL(&f, done_count(jobs, 3) == 3, 10000));
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(jobs[i].status, -EINVAL);
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT count(*) FROM t"), 0);
    /* Then: 4 (unguarded) succeeds; 5 (with its savepoint) fails alone. */
    for (int i = 3; i < N; i++)
        ASSERT_EQ(db_write(f.app.db, &jobs[i].job), 0);
    ASSERT(FX_RUN_UNTIL(&f, done_count(jobs, N) == N, 10000));
    ASSERT_EQ(jobs[3].status, 0);
    ASSERT_EQ(jobs[4].status, 0);
    ASSERT_EQ(jobs[5].status, -EINVAL);
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT count(*) FROM t"), 2);
    fx_stop(&f);
}

static void nop_done(struct db_job *job, int status)
{
    (*(int *)((char *)job + sizeof(struct db_job)))++;
}

/* The queue is bounded: past DB_WRITE_QUEUE_MAX, -EAGAIN. Jobs queued when the
 * writer never started still run at close. */
TEST(db_write_queue_full)
{
    struct fx f;
    struct cjob { struct db_job job; int done; } *jobs;

    ASSERT_EQ(open_db(&f), 0);
    jobs = calloc(DB_WRITE_QUEUE_MAX + 1, sizeof(*jobs));
    ASSERT(jobs != NULL);
    for (int i = 0; i <= DB_WRITE_QUEUE_MAX; i++) {
        jobs[i].job.done = nop_done;
        int rc = db_write(f.app.db, &jobs[i].job);
        if (i < DB_WRITE_QUEUE_MAX)
            ASSERT_EQ(rc, 0);
        else
            ASSERT_EQ(rc, -EAGAIN);
    }
    db_close(f.app.db);
    f.app.db = NULL;
    for (int i = 0; i < DB_WRITE_QUEUE_MAX; i++)
        ASSERT_EQ(jobs[i].done, 1);
    ASSERT_EQ(jobs[DB_WRITE_QUEUE_MAX].done, 0);
    free(jobs);
    fx_stop(&f);
}

struct rd {
    uv_thread_t loop_thread;
    int on_pool;       /* fn did not run on the loop thread */
    int on_loop;       /* after did */
    long long count;
    int status;
    int finished;
};

static int rd_fn(struct db_conn *conn_, void *arg)
{
    sqlite3 *conn = db_sqlite(conn_);
    struct rd *r = arg;
    sqlite3_stmt *st = NULL;
    uv_thread_t self = uv_thread_self();

    r->on_pool = !uv_thread_equal(&self, &r->loop_thread);
    if (sqlite3_prepare_v2(conn, "SELECT count(*) FROM t", -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    if (sqlite3_step(st) == SQLITE_ROW)
        r->count = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    /* The pool's connections are for reading only. */
    return sqlite3_exec(conn, "INSERT INTO t (v) VALUES ('x')", NULL, NULL, NULL) == SQLITE_OK
           ? -EINVAL : -EROFS;
}

static void rd_after(void *arg, int status)
{
    struct rd *r = arg;
    uv_thread_t self = uv_thread_self();

    r->on_loop = uv_thread_equal(&self, &r->loop_thread);
    r->status = status;
    r->finished = 1;
}

TEST(db_read_pool)
{
    struct fx f;
    struct rd r[8];

    ASSERT_EQ(open_db(&f), 0);
    ASSERT_EQ(exec_sql(db_sqlite(db_conn_for_cli(f.app.db)), "INSERT INTO t (v) VALUES ('a'), ('b')"), 0);
    ASSERT_EQ(db_start(f.app.db), 0);
    for (int i = 0; i < 8; i++) {
        r[i] = (struct rd){ .loop_thread = uv_thread_self(), .count = -1 };
        ASSERT_EQ(db_read(f.app.db, rd_fn, rd_after, &r[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        ASSERT(FX_RUN_UNTIL(&f, r[i].finished, 5000));
        ASSERT(r[i].on_pool);
        ASSERT(r[i].on_loop);
        ASSERT_EQ(r[i].count, 2);
        ASSERT_EQ(r[i].status, -EROFS);
    }
    fx_stop(&f);
}

TEST(db_errno_mapping)
{
    ASSERT_EQ(db_errno(SQLITE_OK), 0);
    ASSERT_EQ(db_errno(SQLITE_DONE), 0);
    ASSERT_EQ(db_errno(SQLITE_FULL), -ENOSPC);
    ASSERT_EQ(db_errno(SQLITE_READONLY), -EROFS);
    ASSERT_EQ(db_errno(SQLITE_BUSY), -EBUSY);
    ASSERT_EQ(db_errno(SQLITE_CONSTRAINT_UNIQUE), -ECONSTRAINT);
    ASSERT_EQ(db_errno(SQLITE_IOERR_WRITE), -EIO);
}

static int fill_apply(struct db_conn *conn_, struct db_job *job)
{
    sqlite3 *conn = db_sqlite(conn_);
    char sql[96];
    for (int i = 0; i < 64; i++) {
        snprintf(sql, sizeof(sql), "INSERT INTO t (v) VALUES (hex(randomblob(2000)))");
        int rc = sqlite3_exec(conn, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return db_errno(rc);
    }
    return 0;
}

static void fill_done(struct db_job *job, int status)
{
    __atomic_store_n((int *)((char *)job + sizeof(struct db_job)), status, __ATOMIC_RELEASE);
}

/* A full disk fails the jobs with -ENOSPC and the writer keeps going. */
TEST(db_disk_full)
{
    struct fx f;
    struct fjob { struct db_job job; int status; } a = { .status = 1 }, b = { .status = 1 };

    ASSERT_EQ(open_db(&f), 0);
    sqlite3 *c = db_sqlite(db_conn_for_cli(f.app.db));
    sqlite3_stmt *st = NULL;
    ASSERT_EQ(sqlite3_prepare_v2(c, "PRAGMA page_count", -1, &st, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%d", sqlite3_column_int(st, 0) + 8);
    sqlite3_finalize(st);
    ASSERT_EQ(exec_sql(c, sql), 0);
    ASSERT_EQ(db_start(f.app.db), 0);
    a.job.apply = fill_apply;
    a.job.done = fill_done;
    ASSERT_EQ(db_write(f.app.db, &a.job), 0);
    ASSERT(FX_RUN_UNTIL(&f, __atomic_load_n(&a.status, __ATOMIC_ACQUIRE) != 1, 5000));
    ASSERT_EQ(a.status, -ENOSPC);
    b.job.apply = NULL;   /* an empty job still commits */
    b.job.done = fill_done;
    ASSERT_EQ(db_write(f.app.db, &b.job), 0);
    ASSERT(FX_RUN_UNTIL(&f, __atomic_load_n(&b.status, __ATOMIC_ACQUIRE) != 1, 5000));
    ASSERT_EQ(b.status, 0);
    fx_stop(&f);
}

struct ajob {
    struct db_job job;
    uv_thread_t loop_thread;
    int n, *order, *norder;
    int done_seen, on_loop, status, finished;
};

static void a_done(struct db_job *job, int status)
{
    ((struct ajob *)job)->done_seen = 1;
}

static void a_after(struct db_job *job, int status)
{
    struct ajob *j = (struct ajob *)job;
    uv_thread_t self = uv_thread_self();
    j->on_loop = uv_thread_equal(&self, &j->loop_thread) && j->done_seen;
    j->order[(*j->norder)++] = j->n;
    j->status = status;
    j->finished = 1;
}

/* after() runs on the loop, after done(), in queue order, with the job's status; the
 * jobs still waiting when the database closes get theirs at close. */
TEST(db_write_after_on_the_loop_in_order)
{
    enum { N = 300 };
    struct fx f;
    static struct ajob jobs[N];
    static int order[N];
    int norder = 0;

    ASSERT_EQ(open_db(&f), 0);
    ASSERT_EQ(db_start(f.app.db), 0);
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct ajob){ .loop_thread = uv_thread_self(), .n = i, .order = order,
                                 .norder = &norder };
        jobs[i].job.apply = i == 7 ? fill_apply : NULL;
        jobs[i].job.done = a_done;
        jobs[i].job.after = a_after;
        ASSERT_EQ(db_write(f.app.db, &jobs[i].job), 0);
    }
    ASSERT_EQ(jobs[N - 1].finished, 0);       /* not before the loop turns */
    ASSERT(FX_RUN_UNTIL(&f, norder == N, 10000));
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(order[i], i);
        ASSERT(jobs[i].on_loop);
        ASSERT_EQ(jobs[i].status, 0);
    }
    ASSERT_EQ(fx_query_int(f.db_path, "SELECT count(*) FROM t"), 64);
    db_close(f.app.db);
    f.app.db = NULL;
    fx_stop(&f);

    /* A writer that never started: the afters run at close, on the calling thread. */
    norder = 0;
    ASSERT_EQ(open_db(&f), 0);
    for (int i = 0; i < 3; i++) {
        jobs[i] = (struct ajob){ .loop_thread = uv_thread_self(), .n = i, .order = order,
                                 .norder = &norder };
        jobs[i].job.done = a_done;
        jobs[i].job.after = a_after;
        ASSERT_EQ(db_write(f.app.db, &jobs[i].job), 0);
    }
    db_close(f.app.db);
    f.app.db = NULL;
    ASSERT_EQ(norder, 3);
    for (int i = 0; i < 3; i++)
        ASSERT(jobs[i].on_loop);
    fx_stop(&f);
}
