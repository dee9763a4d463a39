/* test.h: a tiny unit test framework. TEST(name) registers a function at load time;
 * the ASSERT macros record the first failure and return from the test.
 * Run ./unit_tests [prefix...] to run only tests whose name starts with a prefix. */
#ifndef CHATD_TEST_H
#define CHATD_TEST_H

#include <stdio.h>
#include <string.h>
#include <inttypes.h>

void test_register(const char *name, void (*fn)(void));
void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 1 once the running test has failed: ASSERTs in helpers can be checked with it. */
int  test_failed(void);

#define TEST(name)                                                            \
    static void test_fn_##name(void);                                         \
    __attribute__((constructor)) static void test_reg_##name(void)            \
    { test_register(#name, test_fn_##name); }                                 \
    static void test_fn_##name(void)

#define ASSERT(expr) do {                                                     \
        if (!(expr)) { test_fail(__FILE__, __LINE__, "%s", #expr); return; } \
    } while (0)

#define ASSERT_EQ(a, b) do {                                                  \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (a_ != b_) {                                                       \
            test_fail(__FILE__, __LINE__, "%s == %s (%lld != %lld)",          \
                      #a, #b, a_, b_);                                        \
            return;                                                           \
        }                                                                     \
    } while (0)

#define ASSERT_STR_EQ(a, b) do {                                              \
        const char *a_ = (a), *b_ = (b);                                      \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                              \
            test_fail(__FILE__, __LINE__, "%s == %s (\"%s\" != \"%s\")",      \
                      #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");        \
            return;                                                           \
        }                                                                     \
    } while (0)

/* Returns from the test when a helper called with it has failed. */
#define ASSERT_OK_SO_FAR() do { if (test_failed()) return; } while (0)

#endif
