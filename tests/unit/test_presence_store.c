/* The in-memory presence store: counts by connection id, idempotent adds and
 * removes, users online. */
#include <errno.h>
#include "test.h"
#include "../../src/modules/presence/presence_internal.h"

TEST(presence_store_devices)
{
    struct presence_store s;

    ASSERT_EQ(presence_store_mem_new(&s), 0);
    ASSERT_EQ(presence_store_count(&s, 7), 0);
    ASSERT_EQ(presence_store_add(&s, 7, 100), 1);      /* 0 -> 1: online */
    ASSERT_EQ(presence_store_add(&s, 7, 101), 2);
    ASSERT_EQ(presence_store_add(&s, 7, 101), 2);      /* repeated: no change */
    ASSERT_EQ(presence_store_add(&s, 8, 102), 1);
    ASSERT_EQ(presence_store_users_online(&s), 2);
    ASSERT_EQ(presence_store_remove(&s, 7, 100), 1);
    ASSERT_EQ(presence_store_remove(&s, 7, 100), -ENOENT);   /* unknown now */
    ASSERT_EQ(presence_store_remove(&s, 9, 1), -ENOENT);
    ASSERT_EQ(presence_store_remove(&s, 7, 101), 0);   /* 1 -> 0: offline */
    ASSERT_EQ(presence_store_count(&s, 7), 0);
    ASSERT_EQ(presence_store_users_online(&s), 1);
    presence_store_free(&s);
}

TEST(presence_store_many_users)
{
    struct presence_store s;

    ASSERT_EQ(presence_store_mem_new(&s), 0);
    for (int u = 1; u <= 3000; u++)
        for (int c = 0; c < 3; c++)
            ASSERT_EQ(presence_store_add(&s, u, (uint64_t)(u * 10 + c)), c + 1);
    ASSERT_EQ(presence_store_users_online(&s), 3000);
    for (int u = 1; u <= 3000; u += 2)
        for (int c = 2; c >= 0; c--)
            ASSERT_EQ(presence_store_remove(&s, u, (uint64_t)(u * 10 + c)), c);
    ASSERT_EQ(presence_store_users_online(&s), 1500);
    for (int u = 1; u <= 3000; u++)
        ASSERT_EQ(presence_store_count(&s, u), u % 2 ? 0 : 3);
    presence_store_free(&s);
}
