/* dlq_cli.c: `chatd dlq list | show ID | replay ID | replay --all | purge ID|--all`.
 * Works on the database only (whichever engine, through the dead-letter store):
 * replay marks rows, and a running server (or the next one to start) claims and
 * delivers them within about a second. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "chatd/bus.h"
#include "chatd/chatd.h"
#include "bus_internal.h"
#include "dlq_store.h"

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

static int fail(const struct dlq_store_ops *store, struct db_conn *conn, const char *what)
{
    fprintf(stderr, "chatd dlq: %s: %s\n", what, store->errmsg(conn));
    return 1;
}

static int not_found(int64_t id)
{
    fprintf(stderr, "chatd dlq: no dead letter %lld\n", (long long)id);
    return 1;
}

static int list_row(void *arg, const struct dlq_letter *l)
{
    int *n = arg;
    char when[32];

    if ((*n)++ == 0)
        printf("%-6s %-24s %-24s %-8s %-20s %s\n", "ID", "TOPIC", "CONSUMER", "ATTEMPTS",
               "LAST FAILED", "ERROR");
    fmt_time(l->last_failed_at, when, sizeof(when));
    printf("%-6lld %-24s %-24s %-8d %-20s %s%s\n", (long long)l->id, l->topic, l->consumer,
           l->attempts, when, l->error, l->replay_requested ? " (replay requested)" : "");
    return 0;
}

static int cmd_list(const struct dlq_store_ops *store, struct db_conn *conn)
{
    int n = 0;

    if (store->each(conn, 0, list_row, &n) < 0)
        return fail(store, conn, "list");
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

static int show_row(void *arg, const struct dlq_letter *l)
{
    char first[32], last[32];

    (void)arg;
    fmt_time(l->first_failed_at, first, sizeof(first));
    fmt_time(l->last_failed_at, last, sizeof(last));
    printf("id: %lld\ntopic: %s\nconsumer: %s\nattempts: %d\nerror: %s\n"
           "first_failed_at: %s\nlast_failed_at: %s\nreplay_requested: %s\n",
           (long long)l->id, l->topic, l->consumer, l->attempts, l->error, first, last,
           l->replay_requested ? "yes" : "no");
    print_payload(l->payload);
    return 0;
}

static int cmd_show(const struct dlq_store_ops *store, struct db_conn *conn, int64_t id)
{
    int n = store->each(conn, id, show_row, NULL);

    if (n < 0)
        return fail(store, conn, "show");
    return n == 0 ? not_found(id) : 0;
}

static int cmd_replay(const struct dlq_store_ops *store, struct db_conn *conn, int64_t id)
{
    int n = store->mark(conn, id);

    if (n < 0)
        return fail(store, conn, "replay");
    if (n == 0 && id > 0)
        return not_found(id);
    printf("%d dead letter%s marked for replay: a running server delivers %s within about a"
           " second; otherwise %s will be delivered when the server runs\n", n,
           n == 1 ? "" : "s", n == 1 ? "it" : "them", n == 1 ? "it" : "they");
    return 0;
}

static int cmd_purge(const struct dlq_store_ops *store, struct db_conn *conn, int64_t id)
{
    int n = store->purge(conn, id);

    if (n < 0)
        return fail(store, conn, "purge");
    if (n == 0 && id > 0)
        return not_found(id);
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
    const struct dlq_store_ops *store;
    struct db_conn *conn;
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
    if (!app->db || dlq_migrate(app->db) < 0 || !(conn = db_conn_for_cli(app->db))) {
        fprintf(stderr, "chatd dlq: cannot open the database\n");
        return 1;
    }
    store = dlq_store(app->db);
    if (strcmp(verb, "list") == 0)
        return cmd_list(store, conn);
    if (strcmp(verb, "show") == 0)
        return cmd_show(store, conn, id);
    if (strcmp(verb, "replay") == 0)
        return cmd_replay(store, conn, id);
    return cmd_purge(store, conn, id);
}
