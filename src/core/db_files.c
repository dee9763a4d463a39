/* db_files.c: the database's files on disk. They hold password hashes, refresh tokens
 * and every message, so they are the service user's alone whatever the umask: the
 * directories we create are 0700, and chatd.db is created 0600 before SQLite opens it
 * (SQLite gives a new -wal and -shm the database's own mode). Files of ours found
 * looser (an older version, a copy made with cp) are tightened; a data directory found
 * looser is only warned about, since the operator chose it and may share it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "chatd/chatd.h"
#include "chatd/log.h"
#include "db_internal.h"

#define DB_FILE_MODE 0600

/* mkdir -p for dir (cut into place and restored), each directory we create 0700. A
 * failure is logged with the directory that failed, which may be any part of dir. */
static int make_parent_dirs(struct db *db, char *dir)
{
    for (char *c = dir + 1; ; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        char saved = *c;
        *c = '\0';
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
            int rc = -errno;
            LOG_ERROR(db->app, "db", "cannot create the data directory path=%s error=\"%s\"",
                      dir, strerror(errno));
            return rc;
        }
        *c = saved;
        if (saved == '\0')
            return 0;
    }
}

static void check_dir_mode(struct db *db, const char *dir)
{
    struct stat st;

    if (stat(dir, &st) == 0 && (st.st_mode & 077))
        LOG_WARN(db->app, "db", "the data directory is open to other users (its files are "
                 "0600; chmod 0700 it unless it is shared on purpose) path=%s mode=%04o",
                 dir, (unsigned)(st.st_mode & 07777));
}

static void tighten(struct db *db, int fd, const char *path)
{
    struct stat st;

    if (fstat(fd, &st) < 0 || !(st.st_mode & 077))
        return;
    if (fchmod(fd, st.st_mode & 0700) < 0)
        LOG_WARN(db->app, "db", "cannot tighten a database file path=%s mode=%04o error=\"%s\"",
                 path, (unsigned)(st.st_mode & 07777), strerror(errno));
    else
        LOG_WARN(db->app, "db", "database file was open to other users, now 0600 path=%s "
                 "was=%04o", path, (unsigned)(st.st_mode & 07777));
}

/* The database file, created 0600 if missing; path-wal and path-shm only if present.
 * A failure names the file itself: a -wal the service cannot open (left by another
 * user) would otherwise read as a problem with chatd.db. */
static int prepare_file(struct db *db, const char *path, int create)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), DB_FILE_MODE);

    if (fd < 0) {
        if (errno == ENOENT && !create)
            return 0;
        int rc = -errno;
        LOG_ERROR(db->app, "db", "cannot open a database file path=%s error=\"%s\"", path,
                  strerror(errno));
        return rc;
    }
    tighten(db, fd, path);
    close(fd);
    return 0;
}

int db_prepare_dir(struct db *db, const char *dir)
{
    char *copy = strdup(dir);
    int rc;

    if (!copy) {
        LOG_ERROR(db->app, "db", "out of memory path=%s", dir);
        return -ENOMEM;
    }
    if ((rc = make_parent_dirs(db, copy)) == 0)
        check_dir_mode(db, copy);
    free(copy);
    return rc;
}

int db_prepare_files(struct db *db, const char *path)
{
    char side[CFG_PATH_MAX + 32];
    char *dir = strdup(path);
    int rc = 0;

    if (!dir) {
        LOG_ERROR(db->app, "db", "out of memory path=%s", path);
        return -ENOMEM;
    }
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if ((rc = make_parent_dirs(db, dir)) == 0)
            check_dir_mode(db, dir);
    }
    free(dir);
    if (rc < 0)
        return rc;
    if ((rc = prepare_file(db, path, 1)) < 0)
        return rc;
    static const char *const suffixes[] = { "-wal", "-shm" };
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]) && rc == 0; i++) {
        snprintf(side, sizeof(side), "%s%s", path, suffixes[i]);
        rc = prepare_file(db, side, 0);
    }
    return rc;
}
