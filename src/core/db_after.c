/* db_after.c: the writer's results back on the loop. A job with an after() is done
 * on the writer thread, then queued here; one uv_async wake-up carries a whole group
 * to the loop, which runs the afters in commit order. So a module never hands its own
 * results over (and the loop frees what the loop allocated). The wake-up keeps the
 * loop alive only while some after() is due, as libuv's thread pool does for db_read. */
#include <errno.h>
#include <stdlib.h>
#include "chatd/chatd.h"
#include "chatd/db.h"
#include "db_internal.h"

static void run_afters(struct db *db)
{
    pthread_mutex_lock(&db->d_lock);
    struct db_job *job = db->d_head;
    db->d_head = db->d_tail = NULL;
    pthread_mutex_unlock(&db->d_lock);
    while (job) {
        struct db_job *next = job->next;   /* after() may free or queue the job again */
        if (db->d_async && --db->afters_pending == 0)
            uv_unref((uv_handle_t *)db->d_async);
        job->after(job, job->status);
        job = next;
    }
}

static void on_afters(uv_async_t *h)
{
    run_afters(h->data);
}

int db_after_ready(struct db *db)
{
    if (db->d_async || !db->app || !db->app->loop)
        return 0;                    /* no loop: the writer runs after() itself */
    uv_async_t *h = malloc(sizeof(*h));
    if (!h)
        return -ENOMEM;
    int rc = uv_async_init(db->app->loop, h, on_afters);
    if (rc < 0) {
        free(h);
        return rc;
    }
    h->data = db;
    uv_unref((uv_handle_t *)h);
    db->d_async = h;
    return 0;
}

void db_after_count(struct db *db)
{
    if (db->d_async && db->afters_pending++ == 0)
        uv_ref((uv_handle_t *)db->d_async);
}

void db_after_post(struct db *db, struct db_job *head, struct db_job *tail)
{
    if (!db->d_async) {              /* set before the job was queued (q_lock) */
        for (struct db_job *job = head, *next; job; job = next) {
            next = job->next;
            job->after(job, job->status);
        }
        return;
    }
    pthread_mutex_lock(&db->d_lock);
    if (db->d_tail)
        db->d_tail->next = head;
    else
        db->d_head = head;
    db->d_tail = tail;
    pthread_mutex_unlock(&db->d_lock);
    uv_async_send(db->d_async);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

void db_afters_close(struct db *db)
{
    run_afters(db);
    if (db->d_async) {
        uv_close((uv_handle_t *)db->d_async, free_handle);
        db->d_async = NULL;
    }
}
