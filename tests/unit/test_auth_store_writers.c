/* The auth store under two writers on one database, as two nodes would be: two
 * struct db, each with its writer thread, running jobs at the same time. A refresh
 * token presented to both is spent by exactly one; users registered on both at once
 * all get distinct ids above every id before them. Where the engine lets the two
 * transactions overlap (PostgreSQL), the spend race is made to overlap for certain:
 * both jobs have found the token unspent before either spends it. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "auth_store_fixture.h"
#include "test.h"

#define NOW 1700000000000LL
#define ROUNDS 5
#define USERS_EACH 20
#define MEET_MS 5000

/* Two jobs wait here for each other, for at most MEET_MS. */
struct meeting {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int arrived;
};

/* 1 when both arrived, 0 when the other did not come in time. */
static int meet(struct meeting *m)
{
    struct timespec until;
    int both;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += MEET_MS / 1000;
    pthread_mutex_lock(&m->lock);
    m->arrived++;
    pthread_cond_broadcast(&m->cond);
    while (m->arrived < 2 &&
           pthread_cond_timedwait(&m->cond, &m->lock, &until) == 0)
        ;
    both = m->arrived >= 2;
    pthread_mutex_unlock(&m->lock);
    return both;
}

/* A writer of its own: another struct db on the fixture's database, with an app of its
 * own (metrics apart) on the same loop. Two of them race; the fixture's connection,
 * which no writer thread uses, sets up and checks. */
struct writer {
    struct chatd app;
    struct db *db;
};

static int writers_open(struct store_fx *s, const struct store_engine *e, struct writer *w)
{
    for (int i = 0; i < 2; i++) {
        w[i].app = s->f.app;
        w[i].db = NULL;
        if (metrics_new(&w[i].app.metrics) < 0)
            return -1;
        if (e->db_open(s, &w[i].app, &w[i].db) < 0 || db_start(w[i].db) < 0)
            return -1;
    }
    return 0;
}

static void writers_close(struct writer *w)
{
    for (int i = 0; i < 2; i++) {
        if (w[i].db)
            db_close(w[i].db);
        metrics_free(w[i].app.metrics);
    }
}

/* ---- one token presented to both writers ------------------------------------------ */

struct spend_job {
    struct db_job job;                 /* first: the job is the struct */
    const struct auth_store *st;
    const uint8_t *hash;
    struct meeting *meeting;           /* NULL: no waiting for the other */
    int found_unspent, met, won;
    int finished, status;
};

static int spend_apply(struct db_conn *c, struct db_job *job)
{
    struct spend_job *j = (struct spend_job *)job;
    struct auth_token_row t;
    int rc = auth_store_token_find(j->st, c, j->hash, &t);

    if (rc < 0)
        return rc;
    j->found_unspent = rc == 1 && !t.spent;
    if (j->meeting)
        j->met = meet(j->meeting);
    if ((rc = auth_store_token_spend(j->st, c, j->hash, NOW + 1)) < 0)
        return rc;
    j->won = rc;
    return 0;
}

static void job_after_spend(struct db_job *job, int status)
{
    struct spend_job *j = (struct spend_job *)job;
    j->status = status;
    j->finished = 1;
}

/* One token presented to both writers at once. */
struct spend_round {
    struct meeting meeting;
    uint8_t hash[AUTH_STORE_TOKEN_HASH];
    struct spend_job job[2];
};

static void spend_round_run(struct store_fx *s, const struct store_engine *e,
                            struct writer *w, struct spend_round *r, int64_t user, int64_t fam)
{
    struct auth_token_row t;

    ASSERT_EQ(auth_store_token_insert(&s->store, s->conn, r->hash, fam, user, NOW,
                                      NOW + 100000), 0);
    for (int i = 0; i < 2; i++)
        r->job[i] = (struct spend_job){
            .job = { .apply = spend_apply, .after = job_after_spend },
            .st = &s->store, .hash = r->hash,
            .meeting = e->concurrent_writers ? &r->meeting : NULL };
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(db_write(w[i].db, &r->job[i].job), 0);
    ASSERT(FX_RUN_UNTIL(&s->f, r->job[0].finished && r->job[1].finished, 20000));
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(r->job[i].status, 0);
    ASSERT_EQ(r->job[0].won + r->job[1].won, 1);        /* exactly one spend */
    if (e->concurrent_writers) {
        /* Both looked before either spent: the race really was one. */
        ASSERT_EQ(r->job[0].met && r->job[1].met, 1);
        ASSERT_EQ(r->job[0].found_unspent && r->job[1].found_unspent, 1);
    }
    ASSERT_EQ(auth_store_token_find(&s->store, s->conn, r->hash, &t), 1);
    ASSERT_EQ(t.spent, 1);
}

/* The rounds outlive an early return of a round: closing the writers waits for every
 * job they hold before the rounds go. */
static void spend_race_check(struct store_fx *s, const struct store_engine *e)
{
    struct spend_round rounds[ROUNDS];
    struct writer w[2];
    int64_t user = 0, fam = 0;

    memset(rounds, 0, sizeof rounds);
    memset(w, 0, sizeof w);
    for (int r = 0; r < ROUNDS; r++) {
        pthread_mutex_init(&rounds[r].meeting.lock, NULL);
        pthread_cond_init(&rounds[r].meeting.cond, NULL);
        rounds[r].hash[0] = (uint8_t)(r + 1);
        rounds[r].hash[1] = 0x5c;                 /* a backslash and a quote inside */
        rounds[r].hash[2] = 0x27;
    }
    ASSERT_EQ(auth_store_user_insert(&s->store, s->conn, "alice", "h", NOW, &user), 0);
    ASSERT_EQ(auth_store_family_create(&s->store, s->conn, user, NOW, &fam), 0);
    if (writers_open(s, e, w) < 0)
        test_fail(__FILE__, __LINE__, "two writers on one database");
    for (int r = 0; r < ROUNDS && !test_failed(); r++)
        spend_round_run(s, e, w, &rounds[r], user, fam);
    writers_close(w);
    for (int r = 0; r < ROUNDS; r++) {
        pthread_mutex_destroy(&rounds[r].meeting.lock);
        pthread_cond_destroy(&rounds[r].meeting.cond);
    }
}

TEST(auth_store_spend_race_two_writers)
{
    FOR_EACH_ENGINE(spend_race_check);
}

/* ---- users registered on both writers at once ------------------------------------- */

struct user_job {
    struct db_job job;
    const struct auth_store *st;
    char name[USERNAME_MAX + 1];
    int64_t id;
    int finished, status;
};

static int user_apply(struct db_conn *c, struct db_job *job)
{
    struct user_job *j = (struct user_job *)job;
    return auth_store_user_insert(j->st, c, j->name, "h", NOW, &j->id);
}

static void job_after_user(struct db_job *job, int status)
{
    struct user_job *j = (struct user_job *)job;
    j->status = status;
    j->finished = 1;
}

static int all_finished(const struct user_job *jobs, int n)
{
    for (int i = 0; i < n; i++)
        if (!jobs[i].finished)
            return 0;
    return 1;
}

static void users_run(struct store_fx *s, struct writer *w, struct user_job *jobs,
                      int64_t *max)
{
    for (int i = 0; i < 2 * USERS_EACH; i++) {
        jobs[i].job = (struct db_job){ .apply = user_apply, .after = job_after_user };
        jobs[i].st = &s->store;
        snprintf(jobs[i].name, sizeof jobs[i].name, "user%d", i);
    }
    for (int i = 0; i < USERS_EACH; i++) {
        ASSERT_EQ(db_write(w[0].db, &jobs[2 * i].job), 0);
        ASSERT_EQ(db_write(w[1].db, &jobs[2 * i + 1].job), 0);
    }
    ASSERT(FX_RUN_UNTIL(&s->f, all_finished(jobs, 2 * USERS_EACH), 20000));
    for (int i = 0; i < 2 * USERS_EACH; i++) {
        ASSERT_EQ(jobs[i].status, 0);
        ASSERT(jobs[i].id > 500);
        for (int k = 0; k < i; k++)
            ASSERT(jobs[k].id != jobs[i].id);
        if (jobs[i].id > *max)
            *max = jobs[i].id;
    }
}

/* Starts from a copied row with a high id (the engine's own counter is behind it),
 * so that both writers compete for the ids just above it. */
static void users_two_writers_check(struct store_fx *s, const struct store_engine *e)
{
    struct user_job jobs[2 * USERS_EACH];
    struct writer w[2];
    int64_t max = 0, later = 0;

    memset(jobs, 0, sizeof jobs);
    memset(w, 0, sizeof w);
    ASSERT_EQ(e->exec(s->conn, "INSERT INTO users(id, username, password_hash, created_at)"
                               " VALUES (500, 'copied', 'h', 1)"), 0);
    if (writers_open(s, e, w) < 0)
        test_fail(__FILE__, __LINE__, "two writers on one database");
    else
        users_run(s, w, jobs, &max);
    writers_close(w);
    ASSERT_OK_SO_FAR();
    ASSERT_EQ(auth_store_users_max_id(&s->store, s->conn, &later), 0);
    ASSERT_EQ(later, max);
    ASSERT_EQ(auth_store_user_insert(&s->store, s->conn, "last", "h", NOW, &later), 0);
    ASSERT(later > max);
}

TEST(auth_store_users_two_writers)
{
    FOR_EACH_ENGINE(users_two_writers_check);
}
