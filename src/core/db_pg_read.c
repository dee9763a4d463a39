/* db_pg_read.c: a read on one of the PostgreSQL pool's connections, on a libuv pool
 * thread. A connection found lost is renewed here, before the read, on the thread
 * that was going to wait for the server anyway; a read that loses its connection
 * fails (-ENOTCONN) rather than run again, since fn may have kept part of what it
 * read, and tells the writer to look at its own connection. */
#include <errno.h>
#include "chatd/chatd.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "db_pg_engine.h"

static void wake_writer_probe(struct db *db)
{
    atomic_store(&db->pg->probe_wanted, 1);
    pthread_mutex_lock(&db->q_lock);
    pthread_cond_signal(&db->q_cond);
    pthread_mutex_unlock(&db->q_lock);
}

int db_pg_read(struct db *db, int i, int (*fn)(struct db_conn *conn, void *arg), void *arg)
{
    struct db_pg_conn *c = db->pg->r[i];
    unsigned epoch = atomic_load(&db->pg->epoch);

    if (db_pg_conn_lost(c) || db->pg->r_epoch[i] != epoch) {
        if (db_pg_conn_renew(c, 1) < 0) {
            wake_writer_probe(db);
            return -ENOTCONN;
        }
        db->pg->r_epoch[i] = epoch;
        if (db->reconnects)
            METRIC_INC(db->reconnects);
    }
    int rc = fn(db_conn_of_pg(c), arg);
    if (db_pg_conn_lost(c)) {
        wake_writer_probe(db);
        return rc < 0 ? rc : -ENOTCONN;
    }
    /* A read that left a transaction open would hold its snapshot (and locks). */
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        db_pg_exec(db_conn_of_pg(c), "ROLLBACK");
    return rc;
}
