/* `chatd dlq` on every engine (dlq_store_fixture.h): what list, show, replay and purge
 * print and answer, usage errors and unknown ids included, and edits of the table by
 * hand (as an operator fixing a payload) keeping the sizes and totals right. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include "test.h"
#include "dlq_store_fixture.h"

static char out[8192];

/* Runs `chatd dlq a1 [a2]` on the fixture's database; its stdout and stderr in out. */
static int dlq(struct dlq_fx *s, const char *a1, const char *a2)
{
    char *argv[] = { "dlq", (char *)a1, (char *)a2, NULL };
    char path[192];
    int fd, saved_out, saved_err, rc;
    ssize_t n;

    snprintf(path, sizeof path, "%s/out.txt", s->f.dir);
    if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) < 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    saved_out = dup(1);
    saved_err = dup(2);
    dup2(fd, 1);
    dup2(fd, 2);
    rc = bus_dlq_command(&s->f.app, a2 ? 3 : 2, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    n = pread(fd, out, sizeof out - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    return rc;
}

static int add(struct dlq_fx *s, const char *topic, const char *payload)
{
    int64_t evicted;
    struct dlq_letter l = { .topic = topic, .consumer = "test.cli", .error = "it broke",
                            .payload = payload, .attempts = 2,
                            .first_failed_at = INT64_C(1764200000000),
                            .last_failed_at = INT64_C(1764200001000) };
    return s->store->insert(s->conn, &l, 1000, INT64_C(1) << 40, &evicted);
}

static void case_verbs(struct dlq_fx *s, const struct dlq_engine *e)
{
    char id[32], other[32];
    (void)e;
    ASSERT_EQ(dlq(s, "list", NULL), 0);
    ASSERT(strstr(out, "no dead letters"));
    ASSERT_EQ(add(s, "t.cli", "{\"n\":1,\"text\":\"it's \\\"quoted\\\"\"}"), 0);
    ASSERT_EQ(add(s, "t.cli", "not json at all"), 0);
    struct dlq_claim none[1];
    ASSERT_EQ(s->store->claim(s->conn, 1, 0, 1, 1, none), 0);  /* nothing marked yet */

    ASSERT_EQ(dlq(s, "list", NULL), 0);
    ASSERT(strstr(out, "ATTEMPTS"));
    ASSERT(strstr(out, "t.cli"));
    ASSERT(strstr(out, "2025-11-26T23:33:21Z"));
    ASSERT(!strstr(out, "(replay requested)"));
    long long first = atoll(strchr(out, '\n') + 1);
    ASSERT(first > 0);
    snprintf(id, sizeof id, "%lld", first);
    snprintf(other, sizeof other, "%lld", first + 1);

    ASSERT_EQ(dlq(s, "show", id), 0);
    ASSERT(strstr(out, "consumer: test.cli"));
    ASSERT(strstr(out, "attempts: 2"));
    ASSERT(strstr(out, "error: it broke"));
    ASSERT(strstr(out, "replay_requested: no"));
    ASSERT(strstr(out, "\"quoted\\\""));         /* the payload, pretty-printed */
    ASSERT_EQ(dlq(s, "show", other), 0);
    ASSERT(strstr(out, "payload:\nnot json at all"));
    ASSERT_EQ(dlq(s, "show", "999999"), 1);
    ASSERT(strstr(out, "no dead letter 999999"));

    ASSERT_EQ(dlq(s, "replay", id), 0);
    ASSERT(strstr(out, "1 dead letter marked for replay"));
    ASSERT_EQ(dlq(s, "list", NULL), 0);
    ASSERT(strstr(out, "(replay requested)"));
    ASSERT_EQ(dlq(s, "replay", "--all"), 0);
    ASSERT(strstr(out, "2 dead letters marked for replay"));
    ASSERT_EQ(dlq(s, "replay", "999999"), 1);

    ASSERT_EQ(dlq(s, "purge", id), 0);
    ASSERT(strstr(out, "1 dead letter purged"));
    ASSERT_EQ(dlq(s, "purge", id), 1);
    ASSERT_EQ(dlq(s, "purge", "--all"), 0);
    ASSERT(strstr(out, "1 dead letter purged"));
    ASSERT_EQ(dlq(s, "purge", "--all"), 0);
    ASSERT(strstr(out, "0 dead letters purged"));
}

TEST(bus_dlq_cli_verbs)
{
    dlq_each_engine(case_verbs);
}

/* Wrong words answer 2 with the usage and touch nothing. */
static void case_usage(struct dlq_fx *s, const struct dlq_engine *e)
{
    static const char *const bad[][2] = {
        { "", NULL }, { "bogus", NULL }, { "list", "extra" }, { "show", NULL },
        { "show", "--all" }, { "show", "0" }, { "show", "-3" }, { "show", "12x" },
        { "replay", "" }, { "purge", "99999999999999999999999" }, { "purge", "1 OR 1=1" },
    };
    (void)e;
    ASSERT_EQ(add(s, "t.cli", "{}"), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_EQ(dlq(s, bad[i][0], bad[i][1]), 2);
        ASSERT(strstr(out, "usage: chatd dlq"));
    }
    ASSERT_EQ(dlq(s, "list", NULL), 0);
    ASSERT(strstr(out, "t.cli"));
}

TEST(bus_dlq_cli_usage)
{
    dlq_each_engine(case_usage);
}
