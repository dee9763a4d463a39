/* The auth store's ops, driven directly on a fresh database, once per engine
 * (auth_store_fixture.h): users (ids, a taken name, finding by name, the rehash, the
 * highest id) and refresh tokens (a spend happens once, a family's revocation reaches
 * all its tokens and no other family's, expired tokens go). Nothing here knows the
 * engine: these are what every engine must do. */
#include <errno.h>
#include <string.h>

#include "auth_store_fixture.h"
#include "test.h"

#define NOW 1700000000000LL

static void hash_of(uint8_t h[AUTH_STORE_TOKEN_HASH], int n)
{
    memset(h, 0, AUTH_STORE_TOKEN_HASH);
    h[0] = (uint8_t)n;
    h[31] = 0xa5;
}

static void users_check(struct store_fx *s, const struct store_engine *e)
{
    const struct auth_store *st = &s->store;
    struct auth_user_row row;
    struct auth_user_name found[3];
    const char names[3][USERNAME_MAX + 1] = { "carol", "nobody", "alice" };
    int64_t alice = 0, bob = 0, carol = 0, again = 0, max = -1;

    ASSERT_EQ(auth_store_users_max_id(st, s->conn, &max), 0);
    ASSERT_EQ(max, 0);
    ASSERT_EQ(auth_store_user_insert(st, s->conn, "alice", "$scrypt$a", NOW, &alice), 0);
    ASSERT_EQ(auth_store_user_insert(st, s->conn, "bob", "$scrypt$b", NOW, &bob), 0);
    ASSERT(alice > 0);
    ASSERT(bob > alice);
    /* A taken name: refused, and nothing of the first user changes (below). */
    ASSERT_EQ(auth_store_user_insert(st, s->conn, "alice", "$scrypt$x", NOW + 1, &again),
              -ECONSTRAINT);
    ASSERT_EQ(auth_store_user_insert(st, s->conn, "carol", "$scrypt$c", NOW, &carol), 0);
    ASSERT(carol > bob);                     /* ids only grow, even after a refusal */
    ASSERT_EQ(auth_store_users_max_id(st, s->conn, &max), 0);
    ASSERT_EQ(max, carol);

    ASSERT_EQ(auth_store_user_find(st, s->conn, "alice", &row), 1);
    ASSERT_EQ(row.id, alice);
    ASSERT_STR_EQ(row.password_hash, "$scrypt$a");
    ASSERT_EQ(auth_store_user_find(st, s->conn, "nobody", &row), 0);
    ASSERT_EQ(auth_store_user_set_hash(st, s->conn, alice, "$scrypt$new"), 0);
    ASSERT_EQ(auth_store_user_find(st, s->conn, "alice", &row), 1);
    ASSERT_STR_EQ(row.password_hash, "$scrypt$new");
    ASSERT_EQ(auth_store_user_find(st, s->conn, "bob", &row), 1);
    ASSERT_STR_EQ(row.password_hash, "$scrypt$b");

    ASSERT_EQ(auth_store_users_find(st, s->conn, names, 3, found), 2);
    ASSERT_EQ(found[0].id, carol);
    ASSERT_STR_EQ(found[0].username, "carol");
    ASSERT_EQ(found[1].id, alice);
    ASSERT_STR_EQ(found[1].username, "alice");
    ASSERT_EQ(auth_store_users_find(st, s->conn, names, 0, found), 0);
}

TEST(auth_store_users)
{
    FOR_EACH_ENGINE(users_check);
}

static void rotation_check(struct store_fx *s, const struct store_engine *e)
{
    const struct auth_store *st = &s->store;
    struct auth_token_row t;
    uint8_t h1[32], h2[32], none[32];
    int64_t user = 0, fam = 0, fam2 = 0;

    hash_of(h1, 1);
    hash_of(h2, 2);
    hash_of(none, 9);
    ASSERT_EQ(auth_store_user_insert(st, s->conn, "alice", "h", NOW, &user), 0);
    ASSERT_EQ(auth_store_family_create(st, s->conn, user, NOW, &fam), 0);
    ASSERT_EQ(auth_store_family_create(st, s->conn, user, NOW, &fam2), 0);
    ASSERT(fam > 0);
    ASSERT(fam2 != fam);
    ASSERT_EQ(auth_store_token_insert(st, s->conn, h1, fam, user, NOW, NOW + 1000), 0);
    /* A hash is a token's identity: the same one twice is refused. */
    ASSERT_EQ(auth_store_token_insert(st, s->conn, h1, fam2, user, NOW, NOW + 1000),
              -ECONSTRAINT);

    memset(&t, 0, sizeof t);
    ASSERT_EQ(auth_store_token_find(st, s->conn, h1, &t), 1);
    ASSERT_EQ(t.family_id, fam);
    ASSERT_EQ(t.user_id, user);
    ASSERT_EQ(t.expires_at, NOW + 1000);
    ASSERT_EQ(t.spent, 0);
    ASSERT_EQ(t.revoked, 0);
    ASSERT_EQ(t.user_exists, 1);
    ASSERT_STR_EQ(t.username, "alice");
    ASSERT_EQ(auth_store_token_find(st, s->conn, none, &t), 0);

    /* The rotation: spent once, and only once; its successor in the same family. */
    ASSERT_EQ(auth_store_token_spend(st, s->conn, h1, NOW + 1), 1);
    ASSERT_EQ(auth_store_token_spend(st, s->conn, h1, NOW + 2), 0);
    ASSERT_EQ(auth_store_token_spend(st, s->conn, none, NOW + 2), 0);
    ASSERT_EQ(auth_store_token_insert(st, s->conn, h2, fam, user, NOW + 1, NOW + 1001), 0);
    ASSERT_EQ(auth_store_token_find(st, s->conn, h1, &t), 1);
    ASSERT_EQ(t.spent, 1);
    ASSERT_EQ(auth_store_token_find(st, s->conn, h2, &t), 1);
    ASSERT_EQ(t.spent, 0);
    ASSERT_EQ(t.family_id, fam);
}

TEST(auth_store_refresh_rotation)
{
    FOR_EACH_ENGINE(rotation_check);
}

static void revocation_check(struct store_fx *s, const struct store_engine *e)
{
    const struct auth_store *st = &s->store;
    struct auth_token_row t;
    uint8_t a1[32], a2[32], b1[32], orphan[32];
    int64_t user = 0, fam = 0, other = 0;

    hash_of(a1, 1);
    hash_of(a2, 2);
    hash_of(b1, 3);
    hash_of(orphan, 4);
    ASSERT_EQ(auth_store_user_insert(st, s->conn, "alice", "h", NOW, &user), 0);
    ASSERT_EQ(auth_store_family_create(st, s->conn, user, NOW, &fam), 0);
    ASSERT_EQ(auth_store_family_create(st, s->conn, user, NOW, &other), 0);
    ASSERT_EQ(auth_store_token_insert(st, s->conn, a1, fam, user, NOW, NOW + 1000), 0);
    ASSERT_EQ(auth_store_token_insert(st, s->conn, a2, fam, user, NOW, NOW + 1000), 0);
    ASSERT_EQ(auth_store_token_insert(st, s->conn, b1, other, user, NOW, NOW + 1000), 0);

    ASSERT_EQ(auth_store_family_revoke(st, s->conn, fam, NOW + 5), 0);
    ASSERT_EQ(auth_store_family_revoke(st, s->conn, fam, NOW + 6), 0);   /* again: fine */
    ASSERT_EQ(auth_store_token_find(st, s->conn, a1, &t), 1);
    ASSERT_EQ(t.revoked, 1);
    ASSERT_EQ(auth_store_token_find(st, s->conn, a2, &t), 1);
    ASSERT_EQ(t.revoked, 1);
    ASSERT_EQ(auth_store_token_find(st, s->conn, b1, &t), 1);
    ASSERT_EQ(t.revoked, 0);

    /* A token whose user has no row: found, and says so. */
    ASSERT_EQ(auth_store_token_insert(st, s->conn, orphan, other, user + 100, NOW, NOW + 1000),
              0);
    ASSERT_EQ(auth_store_token_find(st, s->conn, orphan, &t), 1);
    ASSERT_EQ(t.user_exists, 0);
    ASSERT_STR_EQ(t.username, "");
}

TEST(auth_store_family_revocation)
{
    FOR_EACH_ENGINE(revocation_check);
}

static void gc_check(struct store_fx *s, const struct store_engine *e)
{
    const struct auth_store *st = &s->store;
    struct auth_token_row t;
    uint8_t old[32], spent[32], live[32];
    int64_t user = 0, fam = 0, fam2 = 0;

    hash_of(old, 1);
    hash_of(spent, 2);
    hash_of(live, 3);
    ASSERT_EQ(auth_store_user_insert(st, s->conn, "alice", "h", NOW, &user), 0);
    ASSERT_EQ(auth_store_family_create(st, s->conn, user, NOW, &fam), 0);
    ASSERT_EQ(auth_store_family_create(st, s->conn, user, NOW, &fam2), 0);
    ASSERT_EQ(auth_store_token_insert(st, s->conn, old, fam, user, NOW, NOW + 10), 0);
    ASSERT_EQ(auth_store_token_insert(st, s->conn, spent, fam2, user, NOW, NOW + 100), 0);
    ASSERT_EQ(auth_store_token_spend(st, s->conn, spent, NOW + 1), 1);
    ASSERT_EQ(auth_store_token_insert(st, s->conn, live, fam2, user, NOW, NOW + 100), 0);

    ASSERT_EQ(auth_store_gc(st, s->conn, NOW + 10), 0);   /* expiry is exclusive */
    ASSERT_EQ(auth_store_token_find(st, s->conn, old, &t), 0);
    /* A spent token stays until it expires, so that its reuse is still seen. */
    ASSERT_EQ(auth_store_token_find(st, s->conn, spent, &t), 1);
    ASSERT_EQ(t.spent, 1);
    ASSERT_EQ(auth_store_token_find(st, s->conn, live, &t), 1);
    ASSERT_EQ(auth_store_gc(st, s->conn, NOW + 100), 0);
    ASSERT_EQ(auth_store_token_find(st, s->conn, spent, &t), 0);
    ASSERT_EQ(auth_store_token_find(st, s->conn, live, &t), 0);
}

TEST(auth_store_gc)
{
    FOR_EACH_ENGINE(gc_check);
}

/* Rows copied in with their ids (as `chatd migrate-db` copies a SQLite database) sit
 * above what the engine would give next: a new user still gets an id above every one
 * of them, so that users_max_id keeps bounding the ids in use. */
static void ids_above_check(struct store_fx *s, const struct store_engine *e)
{
    const struct auth_store *st = &s->store;
    int64_t first = 0, next = 0, again = 0, max = 0;

    ASSERT_EQ(auth_store_user_insert(st, s->conn, "alice", "h", NOW, &first), 0);
    ASSERT_EQ(e->exec(s->conn, "INSERT INTO users(id, username, password_hash, created_at)"
                               " VALUES (1000, 'copied', 'h', 1)"), 0);
    ASSERT_EQ(auth_store_users_max_id(st, s->conn, &max), 0);
    ASSERT_EQ(max, 1000);
    ASSERT_EQ(auth_store_user_insert(st, s->conn, "bob", "h", NOW, &next), 0);
    ASSERT(next > 1000);
    /* A refused name on the way changes nothing of that. */
    ASSERT_EQ(auth_store_user_insert(st, s->conn, "copied", "h", NOW, &again), -ECONSTRAINT);
    ASSERT_EQ(auth_store_user_insert(st, s->conn, "carol", "h", NOW, &again), 0);
    ASSERT(again > next);
    ASSERT_EQ(auth_store_users_max_id(st, s->conn, &max), 0);
    ASSERT_EQ(max, again);
}

TEST(auth_store_ids_above_copied_rows)
{
    FOR_EACH_ENGINE(ids_above_check);
}
