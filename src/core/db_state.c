/* db_state.c: what the rest of the server may ask of the database at any time, from
 * any thread: its engine and whether it can take work. Apart from db.c, which opens
 * and closes, so that the writer and the read pool, which db.c starts, ask here and
 * not back into db.c. */
#include <stdatomic.h>
#include "db_internal.h"

enum db_engine db_engine(const struct db *db)
{
    return db->engine;
}

int db_available(const struct db *db)
{
    return atomic_load_explicit(&((struct db *)db)->available, memory_order_acquire);
}
