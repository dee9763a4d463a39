/* The dead-letter store of every engine (dlq_store_fixture.h): rows in and out, the
 * totals the triggers keep, the bounds, and the claims of replays: oldest first, each
 * row to one claimer even with two connections claiming at once, a claim that ends
 * unless renewed, an outcome written only under the claim it was replayed with. */
#include <errno.h>
#include <pthread.h>
#include "test.h"
#include "dlq_store_fixture.h"

#define RUN_A 111
#define RUN_B 222
#define FAR (INT64_C(1) << 40)       /* bounds nobody reaches */

static int add(struct dlq_fx *s, const char *topic, const char *payload, int64_t *evicted)
{
    struct dlq_letter l = { .topic = topic, .consumer = "test.c", .error = "boom",
                            .payload = payload, .attempts = 3, .first_failed_at = 10,
                            .last_failed_at = 20 };
    int64_t ev = 0;
    int rc = s->store->insert(s->conn, &l, FAR, FAR, evicted ? evicted : &ev);
    return rc;
}

struct seen {
    int n;
    int64_t ids[64];
    int attempts[64];
    int marked[64];
    char topic[64][64];
    char error[64][128];
    char payload[64][128];
};

static int collect(void *arg, const struct dlq_letter *l)
{
    struct seen *s = arg;
    if (s->n >= 64)
        return -ENOBUFS;
    s->ids[s->n] = l->id;
    s->attempts[s->n] = l->attempts;
    s->marked[s->n] = l->replay_requested;
    snprintf(s->topic[s->n], 64, "%s", l->topic);
    snprintf(s->error[s->n], 128, "%s", l->error);
    snprintf(s->payload[s->n], 128, "%s", l->payload);
    s->n++;
    return 0;
}

static int stop_at_first(void *arg, const struct dlq_letter *l)
{
    (void)arg;
    (void)l;
    return -ECANCELED;
}

/* Rows come back as they went in, hostile text included; the totals follow every
 * insert and purge; purge and mark of a missing id change nothing. */
static void case_rows_and_totals(struct dlq_fx *s, const struct dlq_engine *engine)
{
    static const char hostile[] = "t.'; DROP TABLE dead_letters; --";
    (void)engine;
    struct seen seen = { 0 };
    int64_t rows = -1, bytes = -1;
    int claimable = -1;
    ASSERT_EQ(s->store->poll(s->conn, 1000, &rows, &bytes, &claimable), 0);
    ASSERT_EQ(rows, 0);
    ASSERT_EQ(bytes, 0);
    ASSERT_EQ(claimable, 0);
    ASSERT_EQ(add(s, "t.one", "{\"n\":1}", NULL), 0);
    ASSERT_EQ(add(s, hostile, "{\"b\":\"\u00e9t\u00e9\"}", NULL), 0);
    ASSERT_EQ(s->store->each(s->conn, 0, collect, &seen), 2);
    ASSERT(seen.ids[0] < seen.ids[1]);
    ASSERT_STR_EQ(seen.topic[0], "t.one");
    ASSERT_STR_EQ(seen.topic[1], hostile);
    ASSERT_STR_EQ(seen.payload[1], "{\"b\":\"\u00e9t\u00e9\"}");
    ASSERT_STR_EQ(seen.error[0], "boom");
    ASSERT_EQ(seen.attempts[0], 3);
    ASSERT_EQ(seen.marked[0], 0);
    ASSERT_EQ(s->store->poll(s->conn, 1000, &rows, &bytes, &claimable), 0);
    ASSERT_EQ(rows, 2);
    /* bytes of topic + payload + consumer + error; each é is two */
    ASSERT_EQ(bytes, (5 + 7 + 6 + 4) + ((int)strlen(hostile) + 13 + 6 + 4));
    ASSERT_EQ(s->store->each(s->conn, seen.ids[1], stop_at_first, NULL), -ECANCELED);
    ASSERT_EQ(s->store->each(s->conn, 999999, collect, &seen), 0);
    ASSERT_EQ(s->store->mark(s->conn, 999999), 0);
    ASSERT_EQ(s->store->purge(s->conn, 999999), 0);
    ASSERT_EQ(s->store->purge(s->conn, seen.ids[0]), 1);
    ASSERT_EQ(s->store->poll(s->conn, 1000, &rows, &bytes, &claimable), 0);
    ASSERT_EQ(rows, 1);
    ASSERT_EQ(bytes, (int)strlen(hostile) + 13 + 6 + 4);
    ASSERT_EQ(s->store->purge(s->conn, 0), 1);
    ASSERT_EQ(s->store->poll(s->conn, 1000, &rows, &bytes, &claimable), 0);
    ASSERT_EQ(rows + bytes, 0);
}

TEST(bus_dlq_store_rows_and_totals)
{
    dlq_each_engine(case_rows_and_totals);
}

/* After each insert the oldest rows go until the bounds hold; the newest stays even
 * alone over the byte bound. */
static void case_bounds(struct dlq_fx *s, const struct dlq_engine *engine)
{
    (void)engine;
    struct dlq_letter l = { .topic = "t.b", .consumer = "c", .error = "",
                            .payload = "{\"n\":1}", .first_failed_at = 1,
                            .last_failed_at = 1 };
    int64_t evicted = -1, rows, bytes;
    int claimable;
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(s->store->insert(s->conn, &l, 3, FAR, &evicted), 0);
    ASSERT_EQ(evicted, 1);
    ASSERT_EQ(s->store->poll(s->conn, 0, &rows, &bytes, &claimable), 0);
    ASSERT_EQ(rows, 3);
    ASSERT_EQ(bytes, 3 * (3 + 7 + 1));
    ASSERT_EQ(s->store->insert(s->conn, &l, FAR, 2 * 11, &evicted), 0);  /* 4 rows: 2 go */
    ASSERT_EQ(evicted, 2);
    ASSERT_EQ(s->store->insert(s->conn, &l, FAR, 5, &evicted), 0);       /* over alone */
    ASSERT_EQ(evicted, 2);
    struct seen seen = { 0 };
    ASSERT_EQ(s->store->each(s->conn, 0, collect, &seen), 1);
}

TEST(bus_dlq_store_bounds)
{
    dlq_each_engine(case_bounds);
}

/* An operator may edit rows by hand (a payload fixed before its replay) or delete
 * them: each row's size and the totals follow whatever changed. */
static void case_edits_by_hand(struct dlq_fx *s, const struct dlq_engine *e)
{
    const char *size_of = e->pg
        ? "octet_length(topic) + octet_length(payload) + octet_length(consumer) +"
          " octet_length(error)"
        : "length(CAST(topic AS BLOB)) + length(CAST(payload AS BLOB)) +"
          " length(CAST(consumer AS BLOB)) + length(CAST(error AS BLOB))";
    char sql[512];
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(add(s, "t.edit", "{\"n\":1}", NULL), 0);
    ASSERT_EQ(dlq_fx_exec(s, e, "UPDATE dead_letters SET payload = '{\"n\":\"\u00e9\u00e9\"}'"
                          " WHERE id = (SELECT min(id) FROM dead_letters)"), 0);
    ASSERT_EQ(dlq_fx_exec(s, e, "UPDATE dead_letters SET error = error || ' and more'"
                          " WHERE id = (SELECT min(id) + 1 FROM dead_letters)"), 0);
    ASSERT_EQ(dlq_fx_exec(s, e, "UPDATE dead_letters SET topic = 't.other', consumer = 'x',"
                          " size = 0 WHERE id = (SELECT min(id) + 2 FROM dead_letters)"), 0);
    ASSERT_EQ(dlq_fx_exec(s, e, "DELETE FROM dead_letters"
                          " WHERE id = (SELECT max(id) FROM dead_letters)"), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM dead_letters WHERE size != %s", size_of);
    ASSERT_EQ(dlq_fx_int(s, e, sql), 0);
    ASSERT_EQ(dlq_fx_int(s, e, "SELECT rows FROM dead_letter_totals"), 3);
    snprintf(sql, sizeof sql, "SELECT sum(%s) FROM dead_letters", size_of);
    long long bytes = dlq_fx_int(s, e, sql);
    ASSERT(bytes > 3 * 20);
    ASSERT_EQ(dlq_fx_int(s, e, "SELECT bytes FROM dead_letter_totals"), bytes);
    if (e->pg) {
        ASSERT_EQ(dlq_fx_exec(s, e, "TRUNCATE dead_letters"), 0);
        ASSERT_EQ(dlq_fx_int(s, e, "SELECT rows + bytes FROM dead_letter_totals"), 0);
    }
}

TEST(bus_dlq_store_edits_by_hand)
{
    dlq_each_engine(case_edits_by_hand);
}

static int64_t id_of(struct dlq_fx *s, int i)
{
    struct seen seen = { 0 };
    s->store->each(s->conn, 0, collect, &seen);
    return i < seen.n ? seen.ids[i] : -1;
}

/* Marked rows only, oldest first, at most max; a claimed row is nobody else's until
 * its claim ends; a renewed claim lasts; an ended one is claimed again. */
static void case_claims(struct dlq_fx *s, const struct dlq_engine *engine)
{
    (void)engine;
    struct dlq_claim got[8] = { 0 };
    int64_t rows, bytes;
    int claimable;
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(add(s, "t.c", "{}", NULL), 0);
    int64_t first = id_of(s, 0);
    ASSERT_EQ(s->store->claim(s->conn, RUN_A, 1000, 2000, 8, got), 0);  /* none marked */
    ASSERT_EQ(s->store->mark(s->conn, first + 3), 1);
    ASSERT_EQ(s->store->mark(s->conn, 0), 4);
    ASSERT_EQ(s->store->poll(s->conn, 1000, &rows, &bytes, &claimable), 0);
    ASSERT_EQ(claimable, 1);
    ASSERT_EQ(s->store->claim(s->conn, RUN_A, 1000, 2000, 2, got), 2);
    ASSERT_EQ(got[0].id, first);
    ASSERT_EQ(got[1].id, first + 1);
    ASSERT_STR_EQ(got[0].topic, "t.c");
    ASSERT_STR_EQ(got[0].consumer, "test.c");
    ASSERT_STR_EQ(got[0].payload, "{}");
    dlq_claims_free(got, 2);
    ASSERT_EQ(s->store->claim(s->conn, RUN_B, 1500, 2500, 8, got), 2);
    ASSERT_EQ(got[0].id, first + 2);
    dlq_claims_free(got, 2);
    ASSERT_EQ(s->store->claim(s->conn, RUN_B, 1500, 2500, 8, got), 0);
    ASSERT_EQ(s->store->poll(s->conn, 1500, &rows, &bytes, &claimable), 0);
    ASSERT_EQ(claimable, 0);
    /* A renews its first row only; B's renewal of A's row changes nothing. */
    int64_t mine[2] = { first, first + 1 };
    ASSERT_EQ(s->store->renew(s->conn, RUN_A, mine, 1, 9000), 0);
    ASSERT_EQ(s->store->renew(s->conn, RUN_B, mine + 1, 1, 9000), 0);
    /* At 2100 A's second claim has ended: B takes it, not the renewed one. */
    ASSERT_EQ(s->store->claim(s->conn, RUN_B, 2100, 3000, 8, got), 1);
    ASSERT_EQ(got[0].id, first + 1);
    dlq_claims_free(got, 1);
    /* The rows are still marked: list them so. */
    struct seen seen = { 0 };
    ASSERT_EQ(s->store->each(s->conn, 0, collect, &seen), 4);
    ASSERT_EQ(seen.marked[0] + seen.marked[3], 2);
}

TEST(bus_dlq_store_claims)
{
    dlq_each_engine(case_claims);
}

/* The outcome of a replay counts only under the claim it ran with. */
static void case_outcome_under_claim(struct dlq_fx *s, const struct dlq_engine *engine)
{
    (void)engine;
    struct dlq_claim got[2] = { 0 };
    struct seen seen = { 0 };
    int64_t rows, bytes;
    int claimable;
    ASSERT_EQ(add(s, "t.o", "{}", NULL), 0);
    int64_t id = id_of(s, 0);
    ASSERT_EQ(s->store->mark(s->conn, id), 1);
    ASSERT_EQ(s->store->claim(s->conn, RUN_A, 1000, 2000, 2, got), 1);
    dlq_claims_free(got, 1);
    ASSERT_EQ(s->store->failed_again(s->conn, id, RUN_B, "not mine", 5, 1100), 0);
    ASSERT_EQ(s->store->each(s->conn, id, collect, &seen), 1);
    ASSERT_STR_EQ(seen.error[0], "boom");
    ASSERT_EQ(seen.attempts[0], 3);
    ASSERT_EQ(s->store->failed_again(s->conn, id, RUN_A, "failed again, longer", 2, 1200), 0);
    seen.n = 0;
    ASSERT_EQ(s->store->each(s->conn, id, collect, &seen), 1);
    ASSERT_STR_EQ(seen.error[0], "failed again, longer");
    ASSERT_EQ(seen.attempts[0], 5);
    ASSERT_EQ(seen.marked[0], 0);
    /* The claim went with the mark: a new mark is claimable at once. */
    ASSERT_EQ(s->store->mark(s->conn, id), 1);
    ASSERT_EQ(s->store->claim(s->conn, RUN_B, 1300, 2300, 2, got), 1);
    dlq_claims_free(got, 1);
    /* The size followed the new error. */
    ASSERT_EQ(s->store->poll(s->conn, 1300, &rows, &bytes, &claimable), 0);
    ASSERT_EQ(bytes, 3 + 2 + 6 + 20);
    ASSERT_EQ(s->store->remove(s->conn, id), 0);
    ASSERT_EQ(s->store->poll(s->conn, 1300, &rows, &bytes, &claimable), 0);
    ASSERT_EQ(rows + bytes, 0);
}

TEST(bus_dlq_store_outcome_under_claim)
{
    dlq_each_engine(case_outcome_under_claim);
}

/* Two connections (two processes) claiming the same marked rows at once, in small
 * bites until none is left: every row claimed exactly once. */
#define RACE_ROWS 200

struct claimer {
    const struct dlq_store_ops *store;
    struct db_conn *conn;
    int64_t run;
    int n, err;
    int64_t ids[RACE_ROWS];
};

static void *claim_all(void *arg)
{
    struct claimer *c = arg;
    struct dlq_claim got[7];
    int n;
    while ((n = c->store->claim(c->conn, c->run, 1000, 5000, 7, got)) > 0) {
        for (int i = 0; i < n && c->n < RACE_ROWS; i++)
            c->ids[c->n++] = got[i].id;
        dlq_claims_free(got, n);
    }
    c->err = n;
    return NULL;
}

static void case_concurrent_claims(struct dlq_fx *s, const struct dlq_engine *engine)
{
    (void)engine;
    struct db *other = NULL;
    for (int i = 0; i < RACE_ROWS; i++)
        ASSERT_EQ(add(s, "t.race", "{}", NULL), 0);
    ASSERT_EQ(s->store->mark(s->conn, 0), RACE_ROWS);
    ASSERT_EQ(dlq_fx_open_db(s, engine, &s->f.app, &other), 0);
    struct claimer a = { s->store, s->conn, RUN_A, 0, 0, { 0 } };
    struct claimer b = { s->store, db_conn_for_cli(other), RUN_B, 0, 0, { 0 } };
    pthread_t ta, tb;
    ASSERT_EQ(pthread_create(&ta, NULL, claim_all, &a), 0);
    ASSERT_EQ(pthread_create(&tb, NULL, claim_all, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    db_close(other);
    ASSERT_EQ(a.err, 0);
    ASSERT_EQ(b.err, 0);
    ASSERT_EQ(a.n + b.n, RACE_ROWS);
    static char hit[RACE_ROWS];
    memset(hit, 0, sizeof hit);
    int64_t first = id_of(s, 0);
    for (int i = 0; i < a.n; i++)
        hit[a.ids[i] - first]++;
    for (int i = 0; i < b.n; i++)
        hit[b.ids[i] - first]++;
    for (int i = 0; i < RACE_ROWS; i++)
        ASSERT_EQ(hit[i], 1);
}

TEST(bus_dlq_store_concurrent_claims)
{
    dlq_each_engine(case_concurrent_claims);
}

/* Two connections adding rows at once under a row bound: the bound holds at the end,
 * and the totals are those of the rows left. */
#define ADDS 150
#define ADD_BOUND 40

struct adder {
    const struct dlq_store_ops *store;
    struct db_conn *conn;
    int err;
    int64_t evicted;
};

static void *add_many(void *arg)
{
    struct adder *a = arg;
    struct dlq_letter l = { .topic = "t.many", .consumer = "c", .error = "e",
                            .payload = "{\"some\":\"payload\"}", .first_failed_at = 1,
                            .last_failed_at = 1 };
    for (int i = 0; i < ADDS && a->err == 0; i++) {
        int64_t ev = 0;
        a->err = a->store->insert(a->conn, &l, ADD_BOUND, INT64_C(1) << 40, &ev);
        a->evicted += ev;
    }
    return NULL;
}

static void case_concurrent_adds(struct dlq_fx *s, const struct dlq_engine *engine)
{
    struct db *other = NULL;
    int64_t rows, bytes;
    int claimable;
    ASSERT_EQ(dlq_fx_open_db(s, engine, &s->f.app, &other), 0);
    struct adder a = { s->store, s->conn, 0, 0 }, b = { s->store, db_conn_for_cli(other), 0, 0 };
    pthread_t ta, tb;
    ASSERT_EQ(pthread_create(&ta, NULL, add_many, &a), 0);
    ASSERT_EQ(pthread_create(&tb, NULL, add_many, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    db_close(other);
    ASSERT_EQ(a.err, 0);
    ASSERT_EQ(b.err, 0);
    ASSERT_EQ(a.evicted + b.evicted, 2 * ADDS - ADD_BOUND);
    ASSERT_EQ(s->store->poll(s->conn, 0, &rows, &bytes, &claimable), 0);
    ASSERT_EQ(rows, ADD_BOUND);
    ASSERT_EQ(dlq_fx_int(s, engine, "SELECT count(*) FROM dead_letters"), ADD_BOUND);
    ASSERT_EQ(dlq_fx_int(s, engine, "SELECT sum(size) FROM dead_letters"), bytes);
}

TEST(bus_dlq_store_concurrent_adds)
{
    dlq_each_engine(case_concurrent_adds);
}
