/* What a queued call carries at the bus's end. A call (bus_call_on_loop) hands its
 * argument to the loop; only running it there releases the argument, since the bus
 * cannot know what it is. So bus_close, which runs every queued call, must come before
 * bus_free (and before the modules that posted them are destroyed); bus_free on a bus
 * never closed would drop the calls and leak what they carry, and refuses to. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "bus_fixture.h"
#include "test.h"

#define CALLS 100

struct carried {
    int *released;
};

static void release(void *arg)
{
    struct carried *c = arg;
    (*c->released)++;
    free(c);
}

static int post_calls(struct bus *b, int *released, int n)
{
    for (int i = 0; i < n; i++) {
        struct carried *c = malloc(sizeof *c);
        if (!c)
            return -1;
        c->released = released;
        if (bus_call_on_loop_wait(b, release, c) < 0) {
            free(c);
            return -1;
        }
    }
    return 0;
}

struct poster {
    struct bus *b;
    int *released;
    int rc;
};

static void *post_thread(void *arg)
{
    struct poster *p = arg;
    p->rc = post_calls(p->b, p->released, CALLS);
    return NULL;
}

/* Calls posted from another thread and never reached by the loop: bus_close runs each
 * one, so each argument is released (LeakSanitizer checks there is nothing left). */
TEST(bus_close_runs_every_queued_call)
{
    struct fx f;
    static int released;
    pthread_t th;
    struct poster p = { .released = &released };

    released = 0;
    ASSERT_EQ(fx_init(&f), 0);
    ASSERT_EQ(fx_start(&f, 0), 0);
    p.b = f.app.bus;
    ASSERT_EQ(pthread_create(&th, NULL, post_thread, &p), 0);
    pthread_join(th, NULL);
    ASSERT_EQ(p.rc, 0);
    ASSERT_EQ(released, 0);          /* the loop has not turned */
    bus_close(f.app.bus);
    ASSERT_EQ(released, CALLS);
    fx_stop(&f);
}

/* In a child, so that its abort is only looked at: bus_free on a bus never closed,
 * with calls queued, stops the process naming bus_close instead of leaking them. */
static void free_unclosed_bus(int err_fd)
{
    struct fx f;
    int released = 0;

    dup2(err_fd, STDERR_FILENO);
    if (fx_init(&f) < 0 || fx_start(&f, 0) < 0 || post_calls(f.app.bus, &released, 3) < 0)
        _exit(2);
    bus_free(f.app.bus);
    _exit(released == 3 ? 0 : 1);    /* only reached when bus_free went on */
}

TEST(bus_free_before_close_is_refused)
{
    int fds[2], status = 0;
    char err[512] = "";
    ssize_t n, got = 0;
    pid_t pid;

    ASSERT_EQ(pipe(fds), 0);
    fflush(NULL);
    pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        free_unclosed_bus(fds[1]);
    }
    close(fds[1]);
    while ((n = read(fds[0], err + got, sizeof err - 1 - (size_t)got)) > 0)
        got += n;
    close(fds[0]);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status))
        printf("  the child exited with status %d: %s\n", WEXITSTATUS(status), err);
    ASSERT(WIFSIGNALED(status));
    ASSERT_EQ(WTERMSIG(status), SIGABRT);
    ASSERT(strstr(err, "bus_close") != NULL);
}
