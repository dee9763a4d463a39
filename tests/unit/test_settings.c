/* Tests for settings.c: every kind of key read from text into a struct of its own, each
 * range at both ends, every refusal with its message, and the kinds described. */
#include <float.h>
#include <stdio.h>
#include <string.h>
#include "chatd/settings.h"
#include "test.h"

struct sample {
    int    count;
    double rate;
    int    flag;
    int    mode;
    char   name[8];
    char   dir[16];
    char   host[16];
    int    port;
};

static const struct setting_name mode_names[] = {
    { "slow", 7 }, { "fast", 9 }, { "off", -1 }, { NULL, 0 },
};

static const char *no_x(const char *v)
{
    return strchr(v, 'x') ? "must not hold an x" : NULL;
}

#define S struct sample
static const struct setting rows[] = {
    SETTING_INT_ROW("t", "count", S, count, -5, 100, "3", "a count"),
    SETTING_DOUBLE_ROW("t", "rate", S, rate, 0.5, 2.5, "1", "a rate"),
    SETTING_BOOL_ROW("t", "flag", S, flag, "no", "a flag"),
    SETTING_ENUM_ROW("t", "mode", S, mode, mode_names, "slow", "a mode"),
    SETTING_TEXT_ROW("t", "name", SETTING_STRING, S, name, no_x, "n", "a name"),
    SETTING_TEXT_ROW("t", "dir", SETTING_PATH, S, dir, setting_check_nonempty, ".", "a dir"),
    { .section = "t", .key = "listen", .kind = SETTING_LISTEN, SETTING_FIELD_(S, host),
      .port_offset = offsetof(S, port), .def = "a:1", .help = "an address" },
};
enum { COUNT, RATE, FLAG, MODE, NAME, DIR, LISTEN };

/* Applies v to row i of a zeroed sample; returns the reason or NULL. */
static const char *apply(struct sample *s, int i, const char *v)
{
    static char buf[96];
    return setting_apply(&rows[i], s, v, buf, sizeof buf);
}

#define ASSERT_REFUSED(i, v, msg) do {                                    \
        struct sample s_ = { 0 };                                         \
        ASSERT_STR_EQ(apply(&s_, i, v), msg);                             \
    } while (0)

TEST(settings_int_range_both_ends)
{
    struct sample s = { 0 };
    ASSERT(apply(&s, COUNT, "-5") == NULL);
    ASSERT_EQ(s.count, -5);
    ASSERT(apply(&s, COUNT, "100") == NULL);
    ASSERT_EQ(s.count, 100);
    ASSERT(apply(&s, COUNT, "+7") == NULL);
    ASSERT_EQ(s.count, 7);
    ASSERT_REFUSED(COUNT, "-6", "out of range (-5 to 100)");
    ASSERT_REFUSED(COUNT, "101", "out of range (-5 to 100)");
    ASSERT_REFUSED(COUNT, "99999999999999999999999", "out of range (-5 to 100)");
    ASSERT_REFUSED(COUNT, "-99999999999999999999999", "out of range (-5 to 100)");
    ASSERT_REFUSED(COUNT, "", "expected an integer");
    ASSERT_REFUSED(COUNT, "1.5", "expected an integer");
    ASSERT_REFUSED(COUNT, "0x10", "expected an integer");
    ASSERT_REFUSED(COUNT, "7 apples", "expected an integer");
    /* a refusal leaves the old value */
    ASSERT(apply(&s, COUNT, "200") != NULL);
    ASSERT_EQ(s.count, 7);
}

TEST(settings_double_range_both_ends)
{
    struct sample s = { 0 };
    ASSERT(apply(&s, RATE, "0.5") == NULL);
    ASSERT(s.rate == 0.5);
    ASSERT(apply(&s, RATE, "2.5") == NULL);
    ASSERT(s.rate == 2.5);
    ASSERT(apply(&s, RATE, "1e0") == NULL);
    ASSERT(s.rate == 1);
    ASSERT_REFUSED(RATE, "0.49", "out of range (0.5 to 2.5)");
    ASSERT_REFUSED(RATE, "2.51", "out of range (0.5 to 2.5)");
    ASSERT_REFUSED(RATE, "1e400", "expected a number");
    ASSERT_REFUSED(RATE, "-1e400", "expected a number");
    ASSERT_REFUSED(RATE, "inf", "expected a number");
    ASSERT_REFUSED(RATE, "nan", "expected a number");
    ASSERT_REFUSED(RATE, "", "expected a number");
    ASSERT_REFUSED(RATE, "1.0.0", "expected a number");
}

TEST(settings_bool_and_enum)
{
    struct sample s = { 0 };
    ASSERT(apply(&s, FLAG, "yes") == NULL);
    ASSERT_EQ(s.flag, 1);
    ASSERT(apply(&s, FLAG, "no") == NULL);
    ASSERT_EQ(s.flag, 0);
    ASSERT_REFUSED(FLAG, "Yes", "expected yes or no");
    ASSERT_REFUSED(FLAG, "1", "expected yes or no");
    ASSERT_REFUSED(FLAG, "", "expected yes or no");
    ASSERT(apply(&s, MODE, "fast") == NULL);
    ASSERT_EQ(s.mode, 9);
    ASSERT(apply(&s, MODE, "off") == NULL);
    ASSERT_EQ(s.mode, -1);
    ASSERT_REFUSED(MODE, "FAST", "expected slow, fast or off");
    ASSERT_REFUSED(MODE, "", "expected slow, fast or off");
}

TEST(settings_strings_and_paths)
{
    struct sample s = { 0 };
    ASSERT(apply(&s, NAME, "1234567") == NULL);
    ASSERT_STR_EQ(s.name, "1234567");
    ASSERT(apply(&s, NAME, "") == NULL);
    ASSERT_STR_EQ(s.name, "");
    ASSERT_REFUSED(NAME, "12345678", "too long");
    ASSERT_REFUSED(NAME, "x", "must not hold an x");
    /* the rule comes before the length */
    ASSERT_REFUSED(NAME, "xxxxxxxxxxxx", "must not hold an x");
    ASSERT(apply(&s, DIR, "/var/lib/chatd") == NULL);
    ASSERT_STR_EQ(s.dir, "/var/lib/chatd");
    ASSERT_REFUSED(DIR, "", "must not be empty");
    ASSERT_REFUSED(DIR, "/a/very/long/path/name", "too long");
}

TEST(settings_listen)
{
    struct sample s = { 0 };
    ASSERT(apply(&s, LISTEN, "[::1]:0") == NULL);
    ASSERT_STR_EQ(s.host, "::1");
    ASSERT_EQ(s.port, 0);
    ASSERT(apply(&s, LISTEN, "host:65535") == NULL);
    ASSERT_STR_EQ(s.host, "host");
    ASSERT_EQ(s.port, 65535);
    static const char *const bad[] = {
        "host", "host:", ":80", "host:65536", "host:000080", "host:-1", "host:8a",
        "[::1]", "[::1]80", "[]:80", "[1.2.3.4]:80", "::1:80", "a b:80", "a]:80",
        "a-host-name-longer-than-the-field:80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT_REFUSED(LISTEN, bad[i], "expected host:port or [v6]:port");
    /* a refusal leaves the old value */
    ASSERT(apply(&s, LISTEN, "other:1") == NULL);
    ASSERT(apply(&s, LISTEN, "other:99999") != NULL);
    ASSERT_STR_EQ(s.host, "other");
    ASSERT_EQ(s.port, 1);
}

TEST(settings_defaults_of_the_sample_parse)
{
    struct sample s = { 0 };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        ASSERT(apply(&s, (int)i, rows[i].def) == NULL);
    ASSERT_EQ(s.count, 3);
    ASSERT_EQ(s.mode, 7);
    ASSERT_STR_EQ(s.host, "a");
}

TEST(settings_describe_each_kind)
{
    static const char *const want[] = {
        "integer, -5 to 100", "number, 0.5 to 2.5", "yes or no", "slow, fast or off",
        "text, at most 7 bytes", "path", "host:port or [v6]:port",
    };
    char buf[96];
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        setting_describe(&rows[i], buf, sizeof buf);
        ASSERT_STR_EQ(buf, want[i]);
    }
    /* a short buffer is cut, never overrun */
    char tiny[6];
    setting_describe(&rows[MODE], tiny, sizeof tiny);
    ASSERT_STR_EQ(tiny, "slow,");
}

TEST(settings_table_macro_counts_rows)
{
    static const struct setting_table t = SETTING_TABLE(rows, struct sample);
    ASSERT_EQ(t.count, 7);
    ASSERT_EQ(t.size, sizeof(struct sample));
}
