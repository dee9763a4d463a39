/* backup.h: an online copy of the database (SQLite's backup API), safe while the
 * server runs: readers never block the writer in WAL mode. */
#ifndef CHATD_BACKUP_H
#define CHATD_BACKUP_H

struct chatd;

/* Copies <data_dir>/chatd.db to dest (mode 0600; dest must not exist). 0 or a
 * negative errno; message on stderr. */
int chatd_backup(struct chatd *app, const char *dest);

#endif
