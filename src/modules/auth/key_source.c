/* key_source.c: where the signing key comes from at start. A key file named by
 * [auth] key_file is used as it is, on either engine. Without one, a single node on
 * SQLite keeps <data_dir>/jwt.pem, made on its first start; on PostgreSQL every node
 * of one database must sign with the same key (a token from one is accepted by all),
 * so the key is kept in the database under that same name: the first node to start
 * makes it, the others read it (db_key_keep settles two first starts at once). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "chatd/config.h"
#include "chatd/log.h"
#include "auth_internal.h"

/* The key named by key_file must exist; the default one is made on first start. */
static int load_key_file(struct auth *a)
{
    const struct chatd_config *cfg = a->app->cfg;
    char path[CFG_PATH_MAX + 16], err[512];
    struct stat st;
    int rc;

    if ((rc = auth_key_path(cfg, path, sizeof path)) < 0)
        return rc;
    if (!auth_settings(cfg)->key_file[0] && access(path, F_OK) != 0) {
        if ((rc = auth_key_generate(path, AUTH_KEY_BITS, err, sizeof err)) < 0 &&
            rc != -EEXIST) {
            LOG_ERROR(a->app, AUTH_MOD, "cannot create the signing key: %s", err);
            return rc;
        }
        LOG_INFO(a->app, AUTH_MOD, "created a signing key path=%s bits=%d", path,
                 AUTH_KEY_BITS);
    }
    if ((rc = auth_key_load(&a->key, path, err, sizeof err)) < 0) {
        LOG_ERROR(a->app, AUTH_MOD, "cannot load the signing key: %s%s", err,
                  rc == -ENOENT ? " (make one with: chatd keygen FILE)" : "");
        return rc;
    }
    if (stat(path, &st) == 0 && (st.st_mode & 077))
        LOG_WARN(a->app, AUTH_MOD, "signing key is readable by others path=%s mode=%03o",
                 path, (unsigned)(st.st_mode & 0777));
    LOG_INFO(a->app, AUTH_MOD, "signing key path=%s bits=%d kid=%s", path, a->key.bits,
             a->key.kid);
    return 0;
}

/* What a start made, to tell afterwards whether its key was the one kept (two first
 * starts at once both make one; the database keeps one of them). */
struct made_key {
    struct auth *a;
    int made;
    uint8_t sha[SHA256_DIGEST_LENGTH];
};

/* db_key_keep's make: called only when the database has no key yet. */
static int make_key(void *arg, char **pem, size_t *len)
{
    struct made_key *m = arg;
    char err[512];
    int rc = auth_key_generate_pem(AUTH_KEY_BITS, pem, len, err, sizeof err);

    if (rc < 0) {
        LOG_ERROR(m->a->app, AUTH_MOD, "cannot create the signing key: %s", err);
        return rc;
    }
    SHA256((const unsigned char *)*pem, *len, m->sha);
    m->made = 1;
    return 0;
}

static void log_kept_key(struct made_key *m, const char *pem, size_t len)
{
    uint8_t sha[SHA256_DIGEST_LENGTH];
    struct auth *a = m->a;

    SHA256((const unsigned char *)pem, len, sha);
    if (m->made && memcmp(sha, m->sha, sizeof sha) == 0)
        LOG_INFO(a->app, AUTH_MOD, "created a signing key name=%s bits=%d (in the database)",
                 AUTH_KEY_KEPT_NAME, AUTH_KEY_BITS);
    else if (m->made)
        LOG_INFO(a->app, AUTH_MOD, "another node created the signing key first: using that one");
    LOG_INFO(a->app, AUTH_MOD, "signing key name=%s (in the database) bits=%d kid=%s",
             AUTH_KEY_KEPT_NAME, a->key.bits, a->key.kid);
}

static int load_key_kept(struct auth *a)
{
    struct made_key m = { .a = a };
    char *pem = NULL, err[512];
    size_t len = 0;
    int rc = db_key_keep(a->app->db, AUTH_KEY_KEPT_NAME, make_key, &m, &pem, &len);

    if (rc < 0) {
        LOG_ERROR(a->app, AUTH_MOD, "cannot read or store the signing key %s in the database"
                  " err=%d", AUTH_KEY_KEPT_NAME, rc);
        return rc;
    }
    rc = auth_key_from_pem(&a->key, pem, len, err, sizeof err);
    if (rc < 0)
        LOG_ERROR(a->app, AUTH_MOD, "the signing key %s kept in the database is unusable: %s",
                  AUTH_KEY_KEPT_NAME, err);
    else
        log_kept_key(&m, pem, len);
    OPENSSL_cleanse(pem, len);
    free(pem);
    return rc;
}

int auth_signing_key_load(struct auth *a)
{
    if (db_engine(a->app->db) == DB_ENGINE_PG && !auth_settings(a->app->cfg)->key_file[0])
        return load_key_kept(a);
    return load_key_file(a);
}
