/* writer_jobs.c: what the message module keeps on the SQLite writer thread. Every
 * message costs a handful of statements inside the group transaction, so they are
 * prepared once per writer connection and reused; the writer is a single thread, so
 * the cache needs no lock, only to be touched from nowhere else. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/metrics.h"
#include "message_internal.h"

struct msg_wstmts {
    sqlite3 *conn;                   /* not owned: the writer's connection */
    sqlite3_stmt *s[WS__COUNT];      /* owned */
};

static const char *const wsql[WS__COUNT] = {
    [WS_MEMBERS] = "SELECT user_id FROM room_members WHERE room_id = ?1",
    [WS_ROOM] = "SELECT " ROOM_COLUMNS " FROM rooms r WHERE r.id = ?1",
    [WS_DEDUPE] = "SELECT " MSG_COLUMNS " FROM messages"
                  " WHERE sender_id = ?1 AND client_msg_id = ?2",
    [WS_LAST_SEQ] = "SELECT last_seq FROM rooms WHERE id = ?1",
    [WS_SET_SEQ] = "UPDATE rooms SET last_seq = ?2 WHERE id = ?1",
    [WS_INSERT_MSG] = "INSERT INTO messages (room_id, seq, sender_id, sender, body,"
                      " client_msg_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [WS_SELF_READ] = "UPDATE room_members SET read_seq = ?3"
                     " WHERE room_id = ?1 AND user_id = ?2 AND read_seq < ?3",
    [WS_ROOM_BY_KEY] = "SELECT " ROOM_COLUMNS " FROM rooms r WHERE r.dm_key = ?1",
    [WS_INSERT_ROOM] = "INSERT INTO rooms (name, kind, owner_id, dm_key, created_at)"
                       " VALUES (?1, ?2, ?3, ?4, ?5)",
    [WS_INSERT_MEMBER] = "INSERT OR IGNORE INTO room_members (room_id, user_id, username,"
                         " joined_at) VALUES (?1, ?2, ?3, ?4)",
    [WS_DELETE_MEMBER] = "DELETE FROM room_members WHERE room_id = ?1 AND user_id = ?2",
    [WS_IS_MEMBER] = "SELECT read_seq FROM room_members WHERE room_id = ?1 AND user_id = ?2",
    [WS_SET_OWNER] = "UPDATE rooms SET owner_id = ?2 WHERE id = ?1",
    [WS_NEXT_OWNER] = "SELECT user_id FROM room_members WHERE room_id = ?1"
                      " ORDER BY joined_at, user_id LIMIT 1",
    [WS_READ_MOVE] = "UPDATE room_members SET read_seq = ?3"
                     " WHERE room_id = ?1 AND user_id = ?2 AND read_seq < ?3",
    [WS_COUNT_MEMBERS] = "SELECT count(*) FROM room_members WHERE room_id = ?1",
    [WS_MEMBER_REFS] = "SELECT user_id, username FROM room_members WHERE room_id = ?1"
                       " ORDER BY user_id",
};

static void wstmts_clear(struct msg_wstmts *w)
{
    for (int i = 0; i < WS__COUNT; i++) {
        sqlite3_finalize(w->s[i]);
        w->s[i] = NULL;
    }
    w->conn = NULL;
}

sqlite3_stmt *wstmt(struct msg_state *st, sqlite3 *conn, enum msg_wstmt_id id)
{
    if (!st->wst) {
        st->wst = calloc(1, sizeof(*st->wst));
        if (!st->wst)
            return NULL;
    }
    struct msg_wstmts *w = st->wst;
    if (w->conn != conn) {
        /* Another connection (a reopened database, or a test's own): start over. */
        wstmts_clear(w);
        w->conn = conn;
    }
    if (!w->s[id] && sqlite3_prepare_v3(conn, wsql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                        &w->s[id], NULL) != SQLITE_OK) {
        w->s[id] = NULL;
        return NULL;
    }
    return w->s[id];
}

void wstmt_done(sqlite3_stmt *s)
{
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

void wstmts_free(struct msg_state *st)
{
    if (st->wst) {
        wstmts_clear(st->wst);
        free(st->wst);
        st->wst = NULL;
    }
}

int room_member_ids(struct msg_state *st, sqlite3 *conn, int64_t room_id,
                    int64_t **ids, int *n)
{
    sqlite3_stmt *s = wstmt(st, conn, WS_MEMBERS);
    if (!s)
        return -EIO;
    int cap = 16, cnt = 0, rc;
    int64_t *a = malloc((size_t)cap * sizeof(*a));
    if (!a)
        return -ENOMEM;
    sqlite3_bind_int64(s, 1, room_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            int64_t *b = realloc(a, (size_t)cap * 2 * sizeof(*a));
            if (!b) {
                rc = SQLITE_NOMEM;
                break;
            }
            a = b;
            cap *= 2;
        }
        a[cnt++] = sqlite3_column_int64(s, 0);
    }
    wstmt_done(s);
    if (rc != SQLITE_DONE) {
        free(a);
        return db_errno(rc);
    }
    *ids = a;
    *n = cnt;
    return 0;
}

/* last_seq of a room: 1 and *seq when the room exists, 0 when not, or negative. */
int room_last_seq(struct msg_state *st, sqlite3 *conn, int64_t room_id, int64_t *seq)
{
    sqlite3_stmt *s = wstmt(st, conn, WS_LAST_SEQ);
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, room_id);
    int rc = sqlite3_step(s);
    *seq = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    wstmt_done(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int room_set_last_seq(struct msg_state *st, sqlite3 *conn, int64_t room_id, int64_t seq)
{
    sqlite3_stmt *s = wstmt(st, conn, WS_SET_SEQ);
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, room_id);
    sqlite3_bind_int64(s, 2, seq);
    int rc = sqlite3_step(s);
    wstmt_done(s);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

/* Sending a message reads the room up to it: one's own messages are never unread. */
int room_self_read(struct msg_state *st, sqlite3 *conn, const struct msg_breader *r)
{
    sqlite3_stmt *s = wstmt(st, conn, WS_SELF_READ);
    if (!s)
        return -EIO;
    sqlite3_bind_int64(s, 1, r->room_id);
    sqlite3_bind_int64(s, 2, r->user_id);
    sqlite3_bind_int64(s, 3, r->seq);
    int rc = sqlite3_step(s);
    wstmt_done(s);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

/* ---------- finalizing the statements on their own thread ---------- */
struct finalize_job {
    struct db_job base;
    struct msg_state *st;
    void (*fn)(void *arg);
    void *arg;
};

static int finalize_apply(struct db_conn *conn, struct db_job *job)
{
    struct finalize_job *f = (struct finalize_job *)job;
    wstmts_free(f->st);
    return 0;
}

static void writer_call_after(struct db_job *job, int status)
{
    struct finalize_job *f = (struct finalize_job *)job;
    void (*fn)(void *arg) = f->fn;
    void *arg = f->arg;
    free(f);
    fn(arg);
}

static int fence_apply(struct db_conn *conn_, struct db_job *job)
{
    sqlite3 *conn = db_sqlite(conn_);
    (void)conn;
    (void)job;
    return 0;
}

static int writer_call(struct msg_state *st, int (*apply)(struct db_conn *, struct db_job *),
                       void (*fn)(void *arg), void *arg)
{
    struct finalize_job *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->base.apply = apply;
    f->base.after = writer_call_after;
    f->st = st;
    f->fn = fn;
    f->arg = arg;
    int rc = db_write(st->app->db, &f->base);
    if (rc < 0)
        free(f);
    return rc;
}

int writer_finalize(struct msg_state *st, void (*fn)(void *arg), void *arg)
{
    return writer_call(st, finalize_apply, fn, arg);
}

/* The loop runs the jobs' after() in the order they were queued: fn comes after the
 * results of every write queued before it, so after those of every commit a read
 * could have seen by then. */
int writer_fence(struct msg_state *st, void (*fn)(void *arg), void *arg)
{
    return writer_call(st, fence_apply, fn, arg);
}

/* ---------- error codes ---------- */
static const struct { int status; const char *code; } codes[] = {
    {400, "invalid_argument"}, {401, "unauthorized"}, {403, "forbidden"},
    {404, "not_found"}, {409, "conflict"}, {413, "payload_too_large"},
    {429, "rate_limited"}, {500, "internal"}, {503, "unavailable"},
};

int msg_status_of_code(const char *code)
{
    for (size_t i = 0; code && i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(codes[i].code, code) == 0)
            return codes[i].status;
    return 500;
}

const char *msg_code_of_status(int status)
{
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i].status == status)
            return codes[i].code;
    return "internal";
}
