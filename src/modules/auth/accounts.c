/* accounts.c: the users table, name rules, and the users.lookup request other
 * modules use to turn usernames into ids. Users are never deleted through the API,
 * and SQLite gives a new row max(id) + 1, so the ids 1..max_user_id are exactly the
 * users that exist: that one number is what the bearer check keeps in memory to bind
 * a token to an existing user. A user made by `chatd user add` while the server runs
 * becomes known at its first login (the login reads the row). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/bus.h"
#include "chatd/events.h"
#include "chatd/log.h"
#include "chatd/util.h"
#include "auth_internal.h"

#define LOOKUP_MAX 1000               /* usernames per users.lookup request */

const struct db_migration auth_migrations[] = {
    { 1,
      "CREATE TABLE users ("
      "  id INTEGER PRIMARY KEY,"
      "  username TEXT NOT NULL UNIQUE,"
      "  password_hash TEXT NOT NULL,"
      "  created_at INTEGER NOT NULL);"
      "CREATE TABLE refresh_families ("
      "  id INTEGER PRIMARY KEY,"
      "  user_id INTEGER NOT NULL,"
      "  created_at INTEGER NOT NULL,"
      "  revoked_at INTEGER);"
      "CREATE TABLE refresh_tokens ("
      "  hash BLOB PRIMARY KEY,"
      "  family_id INTEGER NOT NULL,"
      "  user_id INTEGER NOT NULL,"
      "  created_at INTEGER NOT NULL,"
      "  expires_at INTEGER NOT NULL,"
      "  spent_at INTEGER) WITHOUT ROWID;"
      "CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);"
      "CREATE INDEX refresh_tokens_expiry ON refresh_tokens(expires_at);" },
};

const int auth_migration_count = (int)(sizeof auth_migrations / sizeof auth_migrations[0]);

int auth_db_migrate(struct db *db)
{
    return db_migrate(db, "auth", auth_migrations, auth_migration_count);
}

int auth_username_normalize(const char *in, char *out, const char **why)
{
    *why = "username must be 3 to 32 characters of a-z, 0-9, '_', '.' and '-'";
    if (username_fold(in, out, AUTH_USERNAME_MAX + 1) < 0)
        return -EINVAL;
    *why = NULL;
    return 0;
}

int auth_password_check(const char *pw, size_t len, const char **why)
{
    *why = NULL;
    if (len < AUTH_PASSWORD_MIN || len > AUTH_PASSWORD_MAX) {
        *why = "password must be 8 to 1024 bytes";
        return -EINVAL;
    }
    if (memchr(pw, '\0', len)) {
        *why = "password must not contain NUL characters";
        return -EINVAL;
    }
    return 0;
}

int64_t auth_user_insert(sqlite3 *conn, const char *username, const char *hash, int64_t now_ms)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(conn,
        "INSERT INTO users(username, password_hash, created_at) VALUES (?1, ?2, ?3)",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_errno(rc);
    sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return -ECONSTRAINT;
    if (rc != SQLITE_DONE)
        return db_errno(rc);
    return sqlite3_last_insert_rowid(conn);
}

/* Start-up only (blocking, before the loop runs). */
int auth_load_max_user_id(struct auth *a)
{
    sqlite3 *conn = db_sqlite(db_conn_for_cli(a->app->db));
    sqlite3_stmt *st;
    int rc;

    if (!conn)
        return -EIO;
    rc = sqlite3_prepare_v2(conn, "SELECT COALESCE(MAX(id), 0) FROM users", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_errno(rc);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        a->max_user_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : db_errno(rc);
}

void auth_note_user(struct auth *a, int64_t id)
{
    if (id > a->max_user_id) {
        a->max_user_id = id;
        auth_gateway_publish_users(a);
    }
}

/* --- users.lookup ------------------------------------------------------------------ */

struct lookup {
    struct auth *a;
    struct bus_event *request;         /* one reference, held until the reply */
    char (*names)[AUTH_USERNAME_MAX + 1];   /* owned; normalized, valid ones only */
    int n;
    cJSON *users;                      /* built on the pool thread; owned until replied */
};

static int lookup_read(struct db_conn *conn_, void *arg)
{
    sqlite3 *conn = db_sqlite(conn_);
    struct lookup *l = arg;
    sqlite3_stmt *st;
    int i, rc = sqlite3_prepare_v2(conn, "SELECT id, username FROM users WHERE username = ?1",
                                   -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_errno(rc);
    for (i = 0; i < l->n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, l->names[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            cJSON *u = cJSON_CreateObject();
            if (!u)
                break;
            cJSON_AddItemToArray(l->users, u);
            cJSON_AddNumberToObject(u, "id", (double)sqlite3_column_int64(st, 0));
            cJSON_AddStringToObject(u, "username", (const char *)sqlite3_column_text(st, 1));
        } else if (rc != SQLITE_DONE) {
            sqlite3_finalize(st);
            return db_errno(rc);
        }
    }
    sqlite3_finalize(st);
    return 0;
}

static void lookup_free(struct lookup *l)
{
    bus_event_unref(l->request);
    cJSON_Delete(l->users);
    free(l->names);
    free(l);
}

static void lookup_after(void *arg, int status)
{
    struct lookup *l = arg;
    struct auth *a = l->a;
    cJSON *reply = cJSON_CreateObject();

    if (status < 0 || !reply) {
        LOG_WARN(a->app, AUTH_MOD, "users.lookup failed err=%d", status);
        if (reply) {
            cJSON_AddStringToObject(reply, "code", "internal");
            cJSON_AddStringToObject(reply, "message", "user lookup failed");
        }
        bus_reply(a->app->bus, l->request, status < 0 ? status : -ENOMEM, reply);
    } else {
        cJSON_AddItemToObject(reply, "users", l->users);
        l->users = NULL;
        bus_reply(a->app->bus, l->request, 0, reply);
    }
    lookup_free(l);
    auth_inflight_end(a);
}

static int on_lookup(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct auth *a = ctx;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(ev->payload, "usernames"), *it;
    struct lookup *l = calloc(1, sizeof *l);
    const char *why;
    int cap, rc;

    cap = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    if (cap > LOOKUP_MAX)
        cap = LOOKUP_MAX;
    if (!l || !(l->users = cJSON_CreateArray()) ||
        !(l->names = calloc((size_t)(cap ? cap : 1), sizeof *l->names))) {
        if (l) {
            cJSON_Delete(l->users);
            free(l);
        }
        bus_reply(a->app->bus, ev, -ENOMEM, NULL);
        return 0;
    }
    l->a = a;
    cJSON_ArrayForEach(it, arr) {
        if (l->n >= cap)
            break;
        if (cJSON_IsString(it) &&
            auth_username_normalize(it->valuestring, l->names[l->n], &why) == 0)
            l->n++;
    }
    bus_event_ref(ev);
    l->request = ev;
    auth_inflight_begin(a);
    rc = db_read(a->app->db, lookup_read, lookup_after, l);
    if (rc < 0)
        lookup_after(l, rc);
    return 0;
}

int auth_users_start(struct auth *a)
{
    static const struct bus_sub_opts opts = { .consumer = "auth.users_lookup" };
    return bus_subscribe(a->app->bus, TOPIC_USERS_LOOKUP, &opts, on_lookup, a);
}
