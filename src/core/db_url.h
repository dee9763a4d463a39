/* db_url.h: how the PostgreSQL URL is named in what core says of it: "[database] url"
 * for the server and most commands, "--to" for migrate-db, whose target comes from
 * its command line. Set once, before the database is opened (db.c). */
#ifndef CHATD_DB_URL_H
#define CHATD_DB_URL_H

void db_url_name_set(const char *name);   /* a static string */
const char *db_url_name(void);

#endif
