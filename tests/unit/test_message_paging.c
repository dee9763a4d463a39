/* History paging: query strings -> row bounds, direction, limit and has_more. */
#include <errno.h>
#include <stdint.h>
#include "test.h"
#include "../../src/modules/message/message_internal.h"

static int plan(const char *b, const char *a, const char *l, struct msg_page *p)
{
    const char *err = NULL;
    int rc = msg_page_plan(b, a, l, p, &err);
    if (rc < 0 && !err)
        return -1000;                /* an error must say why */
    return rc;
}

TEST(message_paging_default_is_newest_page)
{
    struct msg_page p;
    ASSERT_EQ(plan(NULL, NULL, NULL, &p), 0);
    ASSERT_EQ(p.lo, 0);
    ASSERT(p.hi == INT64_MAX);
    ASSERT_EQ(p.desc, 1);
    ASSERT_EQ(p.limit, 50);
}

TEST(message_paging_before_pages_back)
{
    struct msg_page p;
    ASSERT_EQ(plan("101", NULL, "20", &p), 0);
    ASSERT_EQ(p.lo, 0);
    ASSERT_EQ(p.hi, 101);            /* seq < 101 */
    ASSERT_EQ(p.desc, 1);
    ASSERT_EQ(p.limit, 20);
}

TEST(message_paging_after_pages_forward)
{
    struct msg_page p;
    ASSERT_EQ(plan(NULL, "0", NULL, &p), 0);
    ASSERT_EQ(p.lo, 0);
    ASSERT_EQ(p.desc, 0);
    ASSERT_EQ(plan(NULL, "42", "200", &p), 0);
    ASSERT_EQ(p.lo, 42);
    ASSERT(p.hi == INT64_MAX);
    ASSERT_EQ(p.desc, 0);
    ASSERT_EQ(p.limit, 200);
}

TEST(message_paging_range_reads_forward_inside_both_bounds)
{
    struct msg_page p;
    ASSERT_EQ(plan("20", "10", "5", &p), 0);
    ASSERT_EQ(p.lo, 10);
    ASSERT_EQ(p.hi, 20);
    ASSERT_EQ(p.desc, 0);
    /* An empty range is a valid question with an empty answer. */
    ASSERT_EQ(plan("5", "10", NULL, &p), 0);
}

TEST(message_paging_rejects_bad_values)
{
    struct msg_page p;
    const char *bad_limits[] = { "0", "201", "abc", "", "-1", "+5", "1.5", "5x", " 5",
                                 "99999999999999999999" };
    for (size_t i = 0; i < sizeof(bad_limits) / sizeof(bad_limits[0]); i++)
        ASSERT_EQ(plan(NULL, NULL, bad_limits[i], &p), -EINVAL);
    ASSERT_EQ(plan("0", NULL, NULL, &p), -EINVAL);   /* nothing is below seq 1 */
    ASSERT_EQ(plan("abc", NULL, NULL, &p), -EINVAL);
    ASSERT_EQ(plan("-3", NULL, NULL, &p), -EINVAL);
    ASSERT_EQ(plan(NULL, "x", NULL, &p), -EINVAL);
    ASSERT_EQ(plan(NULL, "-1", NULL, &p), -EINVAL);
    ASSERT_EQ(plan(NULL, NULL, "1", &p), 0);
    ASSERT_EQ(plan(NULL, NULL, "200", &p), 0);
}

TEST(message_paging_has_more_from_the_extra_row)
{
    struct msg_page p;
    int more;
    ASSERT_EQ(plan(NULL, NULL, "10", &p), 0);
    ASSERT_EQ(msg_page_keep(&p, 11, &more), 10);     /* asked limit + 1, got it */
    ASSERT_EQ(more, 1);
    ASSERT_EQ(msg_page_keep(&p, 10, &more), 10);
    ASSERT_EQ(more, 0);
    ASSERT_EQ(msg_page_keep(&p, 3, &more), 3);
    ASSERT_EQ(more, 0);
    ASSERT_EQ(msg_page_keep(&p, 0, &more), 0);
    ASSERT_EQ(more, 0);
}

TEST(message_paging_strict_numbers)
{
    int64_t v;
    ASSERT_EQ(msg_parse_u64("0", &v), 0);
    ASSERT_EQ(v, 0);
    ASSERT_EQ(msg_parse_u64("9007199254740992", &v), 0);     /* 2^53, as in JSON bodies */
    ASSERT_EQ(v, 9007199254740992LL);
    ASSERT_EQ(msg_parse_u64("9007199254740993", &v), -EINVAL);
    ASSERT_EQ(msg_parse_u64("123456789012345678", &v), -EINVAL);
    ASSERT_EQ(msg_parse_u64(NULL, &v), -EINVAL);
    ASSERT_EQ(msg_parse_u64("1e3", &v), -EINVAL);
}
