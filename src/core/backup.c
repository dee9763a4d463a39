/* `chatd backup FILE`: an online, consistent copy of the whole database. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>

#include "chatd/backup.h"
#include "chatd/chatd.h"
#include "chatd/config.h"

static int copy_database(sqlite3 *src, sqlite3 *dst)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    int rc;

    if (b == NULL)
        return sqlite3_errcode(dst);
    do {
        rc = sqlite3_backup_step(b, 256);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            sqlite3_sleep(20);          /* the server holds a lock for a moment */
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    sqlite3_backup_finish(b);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int chatd_backup(struct chatd *app, const char *dest)
{
    char src_path[CFG_PATH_MAX + 16];
    sqlite3 *src = NULL, *dst = NULL;
    int fd, rc;

    /* A copy of a PostgreSQL database is the server's own tool's job. */
    if (app->cfg->database.url[0]) {
        fprintf(stderr, "chatd backup: [database] url is set: the data is in PostgreSQL, "
                "which chatd backup does not copy; use pg_dump (see docs/deploy.md, "
                "\"Running on PostgreSQL\")\n");
        return -ENOTSUP;
    }
    snprintf(src_path, sizeof(src_path), "%s/chatd.db", app->cfg->server.data_dir);
    if (access(src_path, R_OK) != 0) {
        fprintf(stderr, "chatd backup: cannot read %s\n", src_path);
        return -ENOENT;
    }
    fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        fprintf(stderr, "chatd backup: %s: %s\n", dest, strerror(errno));
        return rc;
    }
    close(fd);
    rc = sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_open_v2(dest, &dst, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(src, 5000);
        rc = copy_database(src, dst);
    }
    if (rc != SQLITE_OK) {
        fprintf(stderr, "chatd backup: %s\n", sqlite3_errstr(rc));
        unlink(dest);
    }
    sqlite3_close(src);
    sqlite3_close(dst);
    return rc == SQLITE_OK ? 0 : -EIO;
}
