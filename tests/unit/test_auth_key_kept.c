/* Where the signing key comes from (key_source.c) on PostgreSQL: without [auth]
 * key_file it is kept in the database, so two nodes on one database sign with the
 * same key, whether they start one after the other or at the same moment; with
 * key_file set, that file is the key, as on SQLite; a kept value that is no key is
 * refused with an error, not replaced. The cases skip without CHATD_TEST_PG_URL. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "bus_fixture.h"
#include "pg_fixture.h"
#include "chatd/db_pg.h"
#include "test.h"
#include "../../src/modules/auth/auth_internal.h"

/* One node's view: an app on the shared database, and the auth state that loads the
 * key. */
struct node {
    struct fx f;
    struct auth a;
    int rc;
};

static int node_open(struct node *n, const char *url)
{
    memset(n, 0, sizeof *n);
    if (fx_init(&n->f) < 0 || db_open_url(&n->f.app.db, &n->f.app, url) < 0)
        return -1;
    n->a.app = &n->f.app;
    return 0;
}

static void node_close(struct node *n)
{
    auth_key_free(&n->a.key);
    fx_stop(&n->f);
}

static void *node_load(void *arg)
{
    struct node *n = arg;
    n->rc = auth_signing_key_load(&n->a);
    return NULL;
}

static int fresh_db(char url[PG_TEST_URL_MAX], char name[64])
{
    return pg_test_db_new(url, name);
}

TEST(auth_key_kept_one_key_for_two_nodes)
{
    char url[PG_TEST_URL_MAX], name[64];
    struct node one, two, three;

    if (!pg_test_server())
        return;
    ASSERT_EQ(fresh_db(url, name), 0);
    ASSERT_EQ(node_open(&one, url), 0);
    ASSERT_EQ(node_open(&two, url), 0);
    ASSERT_EQ(auth_signing_key_load(&one.a), 0);       /* the first start makes it */
    ASSERT_EQ(auth_signing_key_load(&two.a), 0);       /* the second reads it */
    ASSERT(one.a.key.kid[0] != '\0');
    ASSERT_STR_EQ(one.a.key.kid, two.a.key.kid);
    ASSERT(one.a.key.bits >= AUTH_KEY_BITS);
    node_close(&two);
    /* A restart keeps it, and nothing of it went to data_dir. */
    ASSERT_EQ(node_open(&three, url), 0);
    ASSERT_EQ(auth_signing_key_load(&three.a), 0);
    ASSERT_STR_EQ(one.a.key.kid, three.a.key.kid);
    {
        char path[CFG_PATH_MAX + 16];
        ASSERT_EQ(auth_key_path(three.f.app.cfg, path, sizeof path), 0);
        ASSERT(access(path, F_OK) != 0);
    }
    node_close(&three);
    node_close(&one);
    pg_test_db_drop(name);
}

TEST(auth_key_kept_two_first_starts_at_once)
{
    char url[PG_TEST_URL_MAX], name[64];
    struct node n[2];
    pthread_t t[2];

    if (!pg_test_server())
        return;
    ASSERT_EQ(fresh_db(url, name), 0);
    ASSERT_EQ(node_open(&n[0], url), 0);
    ASSERT_EQ(node_open(&n[1], url), 0);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, node_load, &n[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ASSERT_EQ(n[0].rc, 0);
    ASSERT_EQ(n[1].rc, 0);
    ASSERT_STR_EQ(n[0].a.key.kid, n[1].a.key.kid);
    node_close(&n[1]);
    node_close(&n[0]);
    pg_test_db_drop(name);
}

TEST(auth_key_kept_key_file_wins)
{
    char url[PG_TEST_URL_MAX], name[64], err[512];
    struct auth_settings *as;
    struct auth_key file_key;
    struct node n;

    if (!pg_test_server())
        return;
    ASSERT_EQ(fresh_db(url, name), 0);
    ASSERT_EQ(node_open(&n, url), 0);
    as = config_module_settings(&n.f.cfg, &auth_settings_table);
    ASSERT(as != NULL);
    snprintf(as->key_file, sizeof as->key_file, "%s/own.pem", n.f.dir);
    ASSERT_EQ(auth_key_generate(as->key_file, AUTH_KEY_BITS, err, sizeof err), 0);
    ASSERT_EQ(auth_key_load(&file_key, as->key_file, err, sizeof err), 0);
    ASSERT_EQ(auth_signing_key_load(&n.a), 0);
    ASSERT_STR_EQ(n.a.key.kid, file_key.kid);
    auth_key_free(&file_key);
    /* A key_file that is missing is an error, not a key made in the database. */
    auth_key_free(&n.a.key);
    snprintf(as->key_file, sizeof as->key_file, "%s/missing.pem", n.f.dir);
    ASSERT_EQ(auth_signing_key_load(&n.a), -ENOENT);
    node_close(&n);
    pg_test_db_drop(name);
}

/* A kept value that is no key: start-up fails, and the value is left as it is rather
 * than replaced behind the operator's back (every other node's tokens hang on it). */
TEST(auth_key_kept_bad_value_refused)
{
    char url[PG_TEST_URL_MAX], name[64];
    struct node n;

    if (!pg_test_server())
        return;
    ASSERT_EQ(fresh_db(url, name), 0);
    ASSERT_EQ(node_open(&n, url), 0);
    ASSERT_EQ(db_pg_exec(db_conn_for_cli(n.f.app.db),
                         "INSERT INTO chatd_keys (name, value, created_at)"
                         " VALUES ('jwt.pem', '-----BEGIN PRIVATE KEY-----\nAAAA\n', 1)"), 0);
    ASSERT_EQ(auth_signing_key_load(&n.a), -EINVAL);
    ASSERT_EQ(n.a.key.pkey == NULL, 1);
    ASSERT_EQ(auth_signing_key_load(&n.a), -EINVAL);     /* still there, still refused */
    node_close(&n);
    pg_test_db_drop(name);
}
