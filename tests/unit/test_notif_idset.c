/* The bounded id set behind the online users and the subscribers of the notification
 * module: compared against a plain array under random puts and deletes. */
#include <stdlib.h>
#include "test.h"
#include "../../src/modules/notification/notification_internal.h"

TEST(notif_idset_random_against_array)
{
    enum { N = 3000 };
    static uint32_t ref[N];          /* 0 = absent, else value */
    struct idset s;
    ASSERT_EQ(idset_init(&s, 16, 1 << 16), 0);
    unsigned seed = 12345;
    for (int step = 0; step < 200000; step++) {
        seed = seed * 1103515245u + 12345u;
        int64_t id = 1 + (seed >> 8) % N;
        if ((seed >> 4) % 3) {
            ASSERT_EQ(idset_put(&s, id, (uint32_t)step + 1), 0);
            ref[id - 1] = (uint32_t)step + 1;
        } else {
            idset_del(&s, id);
            ref[id - 1] = 0;
        }
    }
    size_t count = 0;
    for (int64_t id = 1; id <= N; id++) {
        uint32_t v = 0;
        int has = idset_get(&s, id, &v);
        ASSERT_EQ(has, ref[id - 1] != 0);
        if (has) {
            ASSERT_EQ(v, ref[id - 1]);
            count++;
        }
    }
    ASSERT_EQ(i64map_count(&s.map), count);
    idset_free(&s);
}

TEST(notif_idset_bounded)
{
    struct idset s;
    ASSERT_EQ(idset_init(&s, 16, 64), 0);
    int64_t id = 1;
    while (idset_put(&s, id, 1) == 0)
        id++;
    ASSERT_EQ(id - 1, 48);           /* 3/4 of 64 */
    ASSERT(!idset_get(&s, id, NULL));
    ASSERT(idset_get(&s, 48, NULL));
    idset_del(&s, 3);
    ASSERT_EQ(idset_put(&s, id, 1), 0);
    ASSERT(idset_put(&s, 0, 1) < 0);
    idset_free(&s);
}
