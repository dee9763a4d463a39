/* Tests for text.c: UTF-8, the text rule of user-chosen strings, decimal_parse. */
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "test.h"
#include "chatd/text.h"

#define V(s) utf8_valid(s, sizeof(s) - 1)

TEST(text_utf8)
{
    ASSERT_EQ(V(""), 1);
    ASSERT_EQ(V("plain ascii"), 1);
    ASSERT_EQ(V("h\xc3\xa9llo"), 1);                 /* é */
    ASSERT_EQ(V("\xe2\x82\xac"), 1);                 /* € */
    ASSERT_EQ(V("\xf0\x9f\x98\x80"), 1);             /* U+1F600 */
    ASSERT_EQ(V("\xf4\x8f\xbf\xbf"), 1);             /* U+10FFFF */
    ASSERT_EQ(V("\xed\x9f\xbf"), 1);                 /* U+D7FF */
    ASSERT_EQ(V("\xee\x80\x80"), 1);                 /* U+E000 */
    ASSERT_EQ(utf8_valid("a\0b", 3), 1);             /* NUL is a character */
    ASSERT_EQ(V("\xc0\xaf"), 0);                     /* overlong '/' */
    ASSERT_EQ(V("\xc1\xbf"), 0);                     /* overlong */
    ASSERT_EQ(V("\xe0\x80\xaf"), 0);                 /* overlong 3 bytes */
    ASSERT_EQ(V("\xe0\x9f\xbf"), 0);                 /* overlong 3 bytes, top */
    ASSERT_EQ(V("\xf0\x80\x80\xaf"), 0);             /* overlong 4 bytes */
    ASSERT_EQ(V("\xf0\x8f\xbf\xbf"), 0);             /* overlong 4 bytes, top */
    ASSERT_EQ(V("\xed\xa0\x80"), 0);                 /* U+D800 surrogate */
    ASSERT_EQ(V("\xed\xbf\xbf"), 0);                 /* U+DFFF surrogate */
    ASSERT_EQ(V("\xf4\x90\x80\x80"), 0);             /* U+110000 */
    ASSERT_EQ(V("\xf5\x80\x80\x80"), 0);
    ASSERT_EQ(V("\xff"), 0);
    ASSERT_EQ(V("\x80"), 0);                         /* lone continuation */
    ASSERT_EQ(V("\xc3"), 0);                         /* truncated */
    ASSERT_EQ(V("\xe2\x82"), 0);                     /* truncated */
    ASSERT_EQ(V("\xf0\x9f\x98"), 0);                 /* truncated */
    ASSERT_EQ(V("\xc3\x28"), 0);                     /* bad continuation */
    ASSERT_EQ(V("\xe2\x28\xa1"), 0);
    ASSERT_EQ(V("\xf0\x9f\x98\x28"), 0);
    /* truncation inside the length given, though the bytes continue after it */
    ASSERT_EQ(utf8_valid("\xe2\x82\xac", 2), 0);
}

/* text_check: one row per case, at the edges of each refused range. */
TEST(text_check_table)
{
    static const struct { const char *s; unsigned flags; enum text_fault want; } rows[] = {
        { "team", 0, TEXT_OK },
        { "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 0, TEXT_OK }, /* é € U+1F600 */
        { "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", 0, TEXT_OK },           /* Hebrew: RTL text */
        { "\xe2\x80\x8f", 0, TEXT_OK },           /* U+200F RLM: a mark, not an override */
        { "\xe2\x80\xa7", 0, TEXT_OK },           /* U+2027, before U+2028 */
        { "\xe2\x80\xa8", 0, TEXT_CONTROL },      /* U+2028 LINE SEPARATOR */
        { "\xe2\x80\xa9", 0, TEXT_CONTROL },      /* U+2029 PARAGRAPH SEPARATOR */
        { "a\xe2\x80\xa8" "b\xe2\x80\xa9", TEXT_ALLOW_LINES, TEXT_OK },
        { "\xd8\x9c", 0, TEXT_OK },               /* U+061C ALM: a mark, as U+200F */
        { "\xef\xbb\xbf", 0, TEXT_OK },           /* U+FEFF */
        { "\xef\xbf\xbe", 0, TEXT_OK },           /* U+FFFE: a noncharacter is still text */
        { "\xe2\x80\xaf", 0, TEXT_OK },           /* U+202F, after U+202E */
        { "\xe2\x81\xa5", 0, TEXT_OK },           /* U+2065, before U+2066 */
        { "\xe2\x81\xaa", 0, TEXT_OK },           /* U+206A, after U+2069 */
        { "\xc2\xa0", 0, TEXT_OK },                /* U+00A0, after the C1 block */
        { "\x7e", 0, TEXT_OK },                     /* '~', before DEL */
        { " ", 0, TEXT_OK },
        { "a\x01", 0, TEXT_CONTROL },
        { "\x1f", 0, TEXT_CONTROL },
        { "a\nb", 0, TEXT_CONTROL },
        { "a\tb", 0, TEXT_CONTROL },
        { "a\rb", 0, TEXT_CONTROL },
        { "\x7f", 0, TEXT_CONTROL },                /* DEL */
        { "\x1b[2J", 0, TEXT_CONTROL },             /* ESC: terminal escapes */
        { "\xc2\x80", 0, TEXT_CONTROL },           /* U+0080 */
        { "x\xc2\x85y", 0, TEXT_CONTROL },         /* U+0085 NEL */
        { "\xc2\x9b", 0, TEXT_CONTROL },           /* U+009B CSI */
        { "\xc2\x9f", 0, TEXT_CONTROL },           /* U+009F */
        { "a\nb\tc", TEXT_ALLOW_LINES, TEXT_OK },
        { "a\r\nb", TEXT_ALLOW_LINES, TEXT_CONTROL },
        { "\x0b", TEXT_ALLOW_LINES, TEXT_CONTROL },   /* vertical tab */
        { "\xc2\x85", TEXT_ALLOW_LINES, TEXT_CONTROL },
        { "\xe2\x80\xaa", 0, TEXT_BIDI },          /* U+202A LRE */
        { "evil\xe2\x80\xae" "exe.txt", 0, TEXT_BIDI }, /* U+202E RLO */
        { "\xe2\x80\xac", TEXT_ALLOW_LINES, TEXT_BIDI }, /* U+202C PDF */
        { "\xe2\x81\xa6", 0, TEXT_BIDI },          /* U+2066 LRI */
        { "\xe2\x81\xa9", 0, TEXT_BIDI },          /* U+2069 PDI */
        { "\xc2", 0, TEXT_NOT_UTF8 },               /* truncated, not a C1 control */
        { "\xe2\x80", 0, TEXT_NOT_UTF8 },
        { "\xc0\x80", 0, TEXT_NOT_UTF8 },           /* overlong NUL */
        { "\xed\xa0\x80", 0, TEXT_NOT_UTF8 },       /* surrogate */
        { "\x80\x85", 0, TEXT_NOT_UTF8 },           /* C1 as raw bytes */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        enum text_fault got = text_check(rows[i].s, strlen(rows[i].s), rows[i].flags);
        if (got != rows[i].want)
            fprintf(stderr, "row %zu: got %d, want %d\n", i, (int)got, (int)rows[i].want);
        ASSERT_EQ(got, rows[i].want);
    }
    ASSERT_EQ(text_check("a\0b", 3, TEXT_ALLOW_LINES), TEXT_CONTROL);   /* NUL */
    ASSERT_EQ(text_check("", 0, 0), TEXT_OK);
}

TEST(text_decimal_parse)
{
    static const struct { const char *s; int ok; int64_t v; } rows[] = {
        { "0", 1, 0 }, { "7", 1, 7 }, { "10", 1, 10 }, { "9007199254740992", 1, JSON_INT_MAX },
        { "007", 0, 0 }, { "00", 0, 0 }, { "01", 0, 0 },                /* one spelling */
        { "0000000000000000000000000000000000000001", 0, 0 },
        { "9007199254740993", 0, 0 }, { "99999999999999999", 0, 0 },
        { "9223372036854775807", 0, 0 }, { "99999999999999999999999", 0, 0 },
        { "", 0, 0 }, { "-1", 0, 0 }, { "+1", 0, 0 }, { " 1", 0, 0 }, { "1 ", 0, 0 },
        { "1.5", 0, 0 }, { "1e3", 0, 0 }, { "0x10", 0, 0 }, { "abc", 0, 0 },
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int64_t v = -1;
        int rc = decimal_parse(rows[i].s, strlen(rows[i].s), &v);
        if ((rc == 0) != rows[i].ok)
            fprintf(stderr, "row %zu (%s): rc %d\n", i, rows[i].s, rc);
        ASSERT_EQ(rc == 0, rows[i].ok);
        if (rows[i].ok)
            ASSERT_EQ(v, rows[i].v);
    }
    int64_t v;
    ASSERT_EQ(decimal_parse("12,3", 2, &v), 0);        /* only the n bytes given */
    ASSERT_EQ(v, 12);
}

TEST(text_fault_messages)
{
    static const char *const m[] = TEXT_FAULT_MESSAGES("name", "");
    ASSERT(m[TEXT_OK] == NULL);
    ASSERT_STR_EQ(m[TEXT_NOT_UTF8], "name is not valid UTF-8");
    ASSERT_STR_EQ(m[TEXT_CONTROL], "name must not hold control characters");
    ASSERT(strstr(m[TEXT_BIDI], "U+202A..U+202E, U+2066..U+2069") != NULL);
}
