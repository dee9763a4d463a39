/* The rules of the refresh-token sessions (refresh.c) on a real store: rotation,
 * reuse detection revoking the family, expiry, logout, a user gone, and a spend lost
 * to another writer between the look-up and the spend. */
#include <errno.h>
#include <string.h>

#include "auth_store_fixture.h"
#include "test.h"
#include "../../src/modules/auth/auth_internal.h"

#define TTL 3600

static int open_store(struct store_fx *s)
{
    return store_fx_open(s, &store_engines[0]);
}

static int64_t add_user(struct store_fx *s, const char *name, int64_t now)
{
    int64_t id = 0;
    return auth_store_user_insert(&s->store, s->conn, name, "h", now, &id) == 0 ? id : -1;
}

/* A session for user_id whose current token is returned in *sess. */
static void login(struct store_fx *s, int64_t user_id, int64_t now, struct auth_session *sess)
{
    memset(sess, 0, sizeof *sess);
    sess->user_id = user_id;
    ASSERT(auth_refresh_new(sess->new_token, sess->new_hash) == 0);
    ASSERT(auth_session_create(&s->store, s->conn, sess, now, TTL) == 0);
}

/* Presents token (its hash) and returns the result; *next gets the new token. */
static int rotate(struct store_fx *s, const uint8_t hash[32], int64_t now,
                  struct auth_session *next)
{
    memset(next, 0, sizeof *next);
    memcpy(next->old_hash, hash, 32);
    if (auth_refresh_new(next->new_token, next->new_hash) < 0 ||
        auth_session_rotate(&s->store, s->conn, next, now, TTL) < 0)
        return -1;
    return next->result;
}

TEST(auth_session_rotation_and_reuse)
{
    struct store_fx s;
    struct auth_session first, r1, r2, r3, other;
    int64_t now = 1700000000000;

    ASSERT_EQ(open_store(&s), 0);
    ASSERT_EQ(add_user(&s, "alice", now), 1);
    login(&s, 1, now, &first);
    login(&s, 1, now, &other);                   /* a second device: its own family */
    ASSERT_OK_SO_FAR();
    ASSERT(first.family_id != other.family_id);

    ASSERT_EQ(rotate(&s, first.new_hash, now + 1, &r1), AUTH_SESSION_OK);
    ASSERT_EQ(r1.user_id, 1);
    ASSERT_STR_EQ(r1.username, "alice");
    ASSERT_EQ(r1.family_id, first.family_id);
    ASSERT_EQ(rotate(&s, r1.new_hash, now + 2, &r2), AUTH_SESSION_OK);
    /* the first token again: reuse, the whole family dies */
    ASSERT_EQ(rotate(&s, first.new_hash, now + 3, &r3), AUTH_SESSION_REUSED);
    ASSERT_EQ(rotate(&s, r2.new_hash, now + 4, &r3), AUTH_SESSION_INVALID);
    ASSERT_EQ(rotate(&s, r1.new_hash, now + 5, &r3), AUTH_SESSION_INVALID);
    /* the other device is untouched */
    ASSERT_EQ(rotate(&s, other.new_hash, now + 6, &r3), AUTH_SESSION_OK);
    /* unknown token */
    uint8_t zero[32] = {0};
    ASSERT_EQ(rotate(&s, zero, now, &r3), AUTH_SESSION_INVALID);
    store_fx_close(&s);
}

TEST(auth_session_expiry_and_gc)
{
    struct store_fx s;
    struct auth_session first, r;
    int64_t now = 1700000000000;

    ASSERT_EQ(open_store(&s), 0);
    ASSERT_EQ(add_user(&s, "alice", now), 1);
    login(&s, 1, now, &first);
    ASSERT_OK_SO_FAR();
    ASSERT_EQ(rotate(&s, first.new_hash, now + TTL * 1000LL, &r), AUTH_SESSION_INVALID);
    ASSERT_EQ(rotate(&s, first.new_hash, now + TTL * 1000LL - 1, &r), AUTH_SESSION_OK);
    ASSERT_EQ(auth_store_gc(&s.store, s.conn, now + 2 * TTL * 1000LL), 0);
    ASSERT_EQ(fx_query_int(s.f.db_path, "SELECT (SELECT COUNT(*) FROM refresh_tokens) +"
                           " (SELECT COUNT(*) FROM refresh_families)"), 0);
    store_fx_close(&s);
}

TEST(auth_session_logout)
{
    struct store_fx s;
    struct auth_session first, r, out, r2;
    int64_t now = 1700000000000;

    ASSERT_EQ(open_store(&s), 0);
    ASSERT_EQ(add_user(&s, "alice", now), 1);
    ASSERT_EQ(add_user(&s, "mallory", now), 2);
    login(&s, 1, now, &first);
    ASSERT_OK_SO_FAR();
    ASSERT_EQ(rotate(&s, first.new_hash, now + 1, &r), AUTH_SESSION_OK);
    /* another user cannot end alice's session with her token */
    memset(&out, 0, sizeof out);
    out.user_id = 2;
    memcpy(out.old_hash, r.new_hash, 32);
    ASSERT_EQ(auth_session_revoke(&s.store, s.conn, &out, now + 2), 0);
    ASSERT_EQ(out.result, AUTH_SESSION_INVALID);
    out.user_id = 1;
    ASSERT_EQ(auth_session_revoke(&s.store, s.conn, &out, now + 2), 0);
    ASSERT_EQ(out.result, AUTH_SESSION_OK);
    ASSERT_EQ(rotate(&s, r.new_hash, now + 3, &r2), AUTH_SESSION_INVALID);
    store_fx_close(&s);
}

/* A token whose user has no row (an id the store never gave) rotates to nothing. */
TEST(auth_session_user_gone)
{
    struct store_fx s;
    struct auth_session first, r;
    struct auth_token_row t;
    int64_t now = 1700000000000;

    ASSERT_EQ(open_store(&s), 0);
    ASSERT_EQ(add_user(&s, "alice", now), 1);
    login(&s, 7, now, &first);
    ASSERT_OK_SO_FAR();
    ASSERT_EQ(auth_session_live(&s.store, s.conn, first.new_hash, now + 1, &t), 0);
    ASSERT_EQ(rotate(&s, first.new_hash, now + 1, &r), AUTH_SESSION_INVALID);
    store_fx_close(&s);
}

/* What the early signature asks: only a token a rotation would accept is live. */
TEST(auth_session_live_only_for_a_usable_token)
{
    struct store_fx s;
    struct auth_session first, r;
    struct auth_token_row t;
    int64_t now = 1700000000000;

    ASSERT_EQ(open_store(&s), 0);
    ASSERT_EQ(add_user(&s, "alice", now), 1);
    login(&s, 1, now, &first);
    ASSERT_OK_SO_FAR();
    memset(&t, 0, sizeof t);
    ASSERT_EQ(auth_session_live(&s.store, s.conn, first.new_hash, now + 1, &t), 1);
    ASSERT_EQ(t.user_id, 1);
    ASSERT_STR_EQ(t.username, "alice");
    ASSERT_EQ(auth_session_live(&s.store, s.conn, first.new_hash, now + TTL * 1000LL, &t), 0);
    ASSERT_EQ(rotate(&s, first.new_hash, now + 1, &r), AUTH_SESSION_OK);
    ASSERT_EQ(auth_session_live(&s.store, s.conn, first.new_hash, now + 2, &t), 0);  /* spent */
    ASSERT_EQ(auth_session_live(&s.store, s.conn, r.new_hash, now + 2, &t), 1);
    ASSERT_EQ(auth_store_family_revoke(&s.store, s.conn, r.family_id, now + 3), 0);
    ASSERT_EQ(auth_session_live(&s.store, s.conn, r.new_hash, now + 4, &t), 0);
    store_fx_close(&s);
}

/* A store whose spend is always beaten by another writer (as two connections of an
 * engine with concurrent writers may be): the token was found unspent, but this
 * rotation did not spend it. */
static struct auth_store_ops racing_ops;
static const struct auth_store_ops *real_ops;

static int spend_second(void *impl, struct db_conn *c, const uint8_t hash[32], int64_t now)
{
    int rc = real_ops->token_spend(impl, c, hash, now);          /* the other writer */
    return rc < 0 ? rc : real_ops->token_spend(impl, c, hash, now);
}

TEST(auth_session_spend_lost_to_another_writer_is_a_reuse)
{
    struct store_fx s;
    struct auth_session first, r;
    int64_t now = 1700000000000;

    ASSERT_EQ(open_store(&s), 0);
    ASSERT_EQ(add_user(&s, "alice", now), 1);
    login(&s, 1, now, &first);
    ASSERT_OK_SO_FAR();
    real_ops = s.store.ops;
    racing_ops = *real_ops;
    racing_ops.token_spend = spend_second;
    s.store.ops = &racing_ops;
    ASSERT_EQ(rotate(&s, first.new_hash, now + 1, &r), AUTH_SESSION_REUSED);
    s.store.ops = real_ops;
    /* the family is revoked, and the successor this rotation drew was never stored */
    ASSERT_EQ(rotate(&s, first.new_hash, now + 2, &first), AUTH_SESSION_INVALID);
    ASSERT_EQ(rotate(&s, r.new_hash, now + 2, &first), AUTH_SESSION_INVALID);
    store_fx_close(&s);
}
