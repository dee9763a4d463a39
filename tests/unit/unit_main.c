/* unit_main.c: the unit test runner. Tests register themselves through TEST() before
 * main runs; main runs those matching the filters, one line per test. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include "test.h"

#define TEST_MAX 2048

struct test_case {
    const char *name;
    void (*fn)(void);
};

/* Registration runs from constructors before main, so the table has to be static. */
static struct test_case tests[TEST_MAX];
static int ntests;
static int failed_now;
static char fail_msg[1024];

void test_register(const char *name, void (*fn)(void))
{
    if (ntests == TEST_MAX) {
        fprintf(stderr, "too many tests (max %d): %s not registered\n", TEST_MAX, name);
        abort();
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
    if (failed_now)
        return; /* keep the first failure: later ones are usually consequences */
    failed_now = 1;
    int n = snprintf(fail_msg, sizeof(fail_msg), "%s:%d: ", file, line);
    if (n < 0 || (size_t)n >= sizeof(fail_msg))
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fail_msg + n, sizeof(fail_msg) - (size_t)n, fmt, ap);
    va_end(ap);
}

int test_failed(void)
{
    return failed_now;
}

static int by_name(const void *a, const void *b)
{
    const struct test_case *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static int selected(const char *name, int nfilters, char **filters)
{
    if (nfilters == 0)
        return 1;
    for (int i = 0; i < nfilters; i++)
        if (strncmp(name, filters[i], strlen(filters[i])) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;

    /* Tests write to closed sockets on purpose; EPIPE is the expected outcome. */
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    qsort(tests, (size_t)ntests, sizeof(tests[0]), by_name);
    for (int i = 0; i < ntests; i++) {
        if (!selected(tests[i].name, argc - 1, argv + 1))
            continue;
        failed_now = 0;
        fail_msg[0] = '\0';
        tests[i].fn();
        if (failed_now) {
            printf("FAIL %s: %s\n", tests[i].name, fail_msg);
            failed++;
        } else {
            printf("ok %s\n", tests[i].name);
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return (failed > 0 || passed + failed == 0) ? 1 : 0;
}
