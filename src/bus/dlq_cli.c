/* dlq_cli.c: `chatd dlq list | show ID | replay ID | replay --all | purge ID|--all`.
 * Works on the database only: replay marks rows, and the running server (or the
 * next one to start) delivers them within about a second. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "chatd/db_sqlite.h"
#include "bus_internal.h"

#define DLQ_USAGE "usage: chatd dlq list | show ID | replay ID | replay --all | " \
                  "purge ID | purge --all\n"

static void fmt_time(int64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (!gmtime_r(&t, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, n, "%lld", (long long)ms);
}

static int parse_id(const char *s, int64_t *id)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v <= 0)
        return -EINVAL;
    *id = v;
    return 0;
}

static const char *text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static int fail(sqlite3 *conn, const char *what)
{
    fprintf(stderr, "chatd dlq: %s: %s\n", what, sqlite3_errmsg(conn));
    return 1;
}

static int cmd_list(sqlite3 *conn)
{
    sqlite3_stmt *st = NULL;
    char when[32];
    int rc, n = 0;

    rc = sqlite3_prepare_v2(conn, "SELECT id, topic, consumer, attempts, last_failed_at,"
                            " error, replay_requested FROM dead_letters ORDER BY id",
                            -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++ == 0)
            printf("%-6s %-24s %-24s %-8s %-20s %s\n", "ID", "TOPIC", "CONSUMER", "ATTEMPTS",
                   "LAST FAILED", "ERROR");
        fmt_time(sqlite3_column_int64(st, 4), when, sizeof(when));
        printf("%-6lld %-24s %-24s %-8d %-20s %s%s\n", (long long)sqlite3_column_int64(st, 0),
               text(st, 1), text(st, 2), sqlite3_column_int(st, 3), when, text(st, 5),
               sqlite3_column_int(st, 6) ? " (replay requested)" : "");
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return fail(conn, "list");
    if (n == 0)
        printf("no dead letters\n");
    return 0;
}

static void print_payload(const char *json)
{
    cJSON *v = cJSON_Parse(json);
    char *pretty = v ? cJSON_Print(v) : NULL;

    printf("payload:\n%s\n", pretty ? pretty : json);
    free(pretty);
    cJSON_Delete(v);
}

static int cmd_show(sqlite3 *conn, int64_t id)
{
    sqlite3_stmt *st = NULL;
    char first[32], last[32];
    int rc;

    rc = sqlite3_prepare_v2(conn, "SELECT topic, consumer, attempts, error, first_failed_at,"
                            " last_failed_at, replay_requested, payload FROM dead_letters"
                            " WHERE id = ?", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW) {
        fmt_time(sqlite3_column_int64(st, 4), first, sizeof(first));
        fmt_time(sqlite3_column_int64(st, 5), last, sizeof(last));
        printf("id: %lld\ntopic: %s\nconsumer: %s\nattempts: %d\nerror: %s\n"
               "first_failed_at: %s\nlast_failed_at: %s\nreplay_requested: %s\n",
               (long long)id, text(st, 0), text(st, 1), sqlite3_column_int(st, 2),
               text(st, 3), first, last, sqlite3_column_int(st, 6) ? "yes" : "no");
        print_payload(text(st, 7));
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) {
        fprintf(stderr, "chatd dlq: no dead letter %lld\n", (long long)id);
        return 1;
    }
    return rc == SQLITE_ROW ? 0 : fail(conn, "show");
}

/* Runs one UPDATE/DELETE with an optional id; returns the rows changed or -1. */
static int change(sqlite3 *conn, const char *sql, int64_t id)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(conn, sql, -1, &st, NULL);

    if (rc == SQLITE_OK && id > 0)
        sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? sqlite3_changes(conn) : -1;
}

static int cmd_replay(sqlite3 *conn, int64_t id)
{
    int n = id > 0
        ? change(conn, "UPDATE dead_letters SET replay_requested = 1 WHERE id = ?", id)
        : change(conn, "UPDATE dead_letters SET replay_requested = 1", 0);

    if (n < 0)
        return fail(conn, "replay");
    if (n == 0 && id > 0) {
        fprintf(stderr, "chatd dlq: no dead letter %lld\n", (long long)id);
        return 1;
    }
    printf("%d dead letter%s marked for replay: a running server delivers %s within about a"
           " second; otherwise %s will be delivered when the server runs\n", n,
           n == 1 ? "" : "s", n == 1 ? "it" : "them", n == 1 ? "it" : "they");
    return 0;
}

static int cmd_purge(sqlite3 *conn, int64_t id)
{
    int n = id > 0 ? change(conn, "DELETE FROM dead_letters WHERE id = ?", id)
                   : change(conn, "DELETE FROM dead_letters", 0);

    if (n < 0)
        return fail(conn, "purge");
    if (n == 0 && id > 0) {
        fprintf(stderr, "chatd dlq: no dead letter %lld\n", (long long)id);
        return 1;
    }
    printf("%d dead letter%s purged\n", n, n == 1 ? "" : "s");
    return 0;
}

/* ID or, when all_ok, --all (id 0). */
static int target(int argc, char **argv, int all_ok, int64_t *id)
{
    if (argc != 3)
        return -EINVAL;
    if (all_ok && strcmp(argv[2], "--all") == 0) {
        *id = 0;
        return 0;
    }
    return parse_id(argv[2], id);
}

int bus_dlq_command(struct chatd *app, int argc, char **argv)
{
    const char *verb = argc > 1 ? argv[1] : "";
    sqlite3 *conn;
    int64_t id = 0;

    if (strcmp(verb, "list") != 0 && strcmp(verb, "show") != 0 &&
        strcmp(verb, "replay") != 0 && strcmp(verb, "purge") != 0) {
        fputs(DLQ_USAGE, stderr);
        return 2;
    }
    if ((strcmp(verb, "list") == 0 && argc != 2) ||
        (strcmp(verb, "show") == 0 && target(argc, argv, 0, &id) < 0) ||
        (strcmp(verb, "replay") == 0 && target(argc, argv, 1, &id) < 0) ||
        (strcmp(verb, "purge") == 0 && target(argc, argv, 1, &id) < 0)) {
        fputs(DLQ_USAGE, stderr);
        return 2;
    }
    if (!app->db || dlq_migrate(app->db) < 0 || !(conn = db_sqlite(db_conn_for_cli(app->db)))) {
        fprintf(stderr, "chatd dlq: cannot open the database\n");
        return 1;
    }
    if (strcmp(verb, "list") == 0)
        return cmd_list(conn);
    if (strcmp(verb, "show") == 0)
        return cmd_show(conn, id);
    if (strcmp(verb, "replay") == 0)
        return cmd_replay(conn, id);
    return cmd_purge(conn, id);
}
