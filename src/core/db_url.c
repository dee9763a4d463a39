/* db_url.c: the name the PostgreSQL URL goes by in what core says of it (db_url.h). */
#include "db_url.h"

static const char *url_name = "[database] url";

void db_url_name_set(const char *name)
{
    url_name = name;
}

const char *db_url_name(void)
{
    return url_name;
}
