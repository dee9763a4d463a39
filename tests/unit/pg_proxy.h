/* pg_proxy.h: a TCP relay between chatd's PostgreSQL connections and the test server,
 * on a thread of its own, that can lose a COMMIT on purpose: armed, the next simple
 * query "COMMIT" a client sends is either passed on and its answer thrown away
 * (PG_PROXY_CUT_AFTER: the server committed, the client never hears it) or thrown
 * away itself (PG_PROXY_CUT_BEFORE: the server sees the client go mid-transaction and
 * rolls back); then both sides of that connection are closed. PG_PROXY_HOLD throws
 * the COMMIT away and closes the client's side only: the server's session stays, idle
 * in its transaction, until the server ends it. Set down, it cuts every connection
 * and refuses new ones (the server unreachable) until cleared; set hang, it leaves
 * new connections unanswered in the listen queue (a server that does not answer). */
#ifndef CHATD_TEST_PG_PROXY_H
#define CHATD_TEST_PG_PROXY_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PG_PROXY_PAIRS 16
enum { PG_PROXY_PASS, PG_PROXY_CUT_AFTER, PG_PROXY_CUT_BEFORE, PG_PROXY_HOLD };

struct pg_proxy {
    int lfd, port, target_port;
    pthread_t thread;
    atomic_int stop, mode, cuts, down, hang;
    atomic_int hang_after_cut;        /* a COMMIT lost: hang from then on */
    int cfd[PG_PROXY_PAIRS], sfd[PG_PROXY_PAIRS];
    int swallow[PG_PROXY_PAIRS];      /* the COMMIT went through: drop the answer, cut */
};

static inline int pg_proxy_connect(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static inline void pg_proxy_cut(struct pg_proxy *p, int i)
{
    close(p->cfd[i]);
    close(p->sfd[i]);
    p->cfd[i] = p->sfd[i] = -1;
    p->swallow[i] = 0;
}

static inline int pg_proxy_is_commit(const char *b, ssize_t n)
{
    static const char q[] = "Q\0\0\0\x0b" "COMMIT";   /* with its NUL: 12 bytes */
    return n == (ssize_t)sizeof q && memcmp(b, q, sizeof q) == 0;
}

/* Client to server on pair i: a COMMIT may be lost here. */
static inline void pg_proxy_up(struct pg_proxy *p, int i, const char *b, ssize_t n)
{
    int mode = atomic_load(&p->mode);
    if (mode != PG_PROXY_PASS && pg_proxy_is_commit(b, n)) {
        atomic_store(&p->mode, PG_PROXY_PASS);
        if (mode == PG_PROXY_HOLD) {     /* the server's side stays open */
            close(p->cfd[i]);
            p->cfd[i] = -1;
            atomic_fetch_add(&p->cuts, 1);
            return;
        }
        if (mode == PG_PROXY_CUT_BEFORE) {
            pg_proxy_cut(p, i);
            atomic_fetch_add(&p->cuts, 1);
            return;
        }
        p->swallow[i] = 1;
    }
    if (write(p->sfd[i], b, (size_t)n) != n)
        pg_proxy_cut(p, i);
}

static inline void pg_proxy_accept(struct pg_proxy *p)
{
    int c = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
    for (int i = 0; c >= 0 && !atomic_load(&p->down) && i < PG_PROXY_PAIRS; i++) {
        if (p->cfd[i] < 0 && p->sfd[i] < 0) {
            p->cfd[i] = c;
            if ((p->sfd[i] = pg_proxy_connect(p->target_port)) < 0)
                pg_proxy_cut(p, i);
            return;
        }
    }
    if (c >= 0)
        close(c);
}

static inline void *pg_proxy_main(void *arg)
{
    struct pg_proxy *p = arg;
    char b[65536];

    while (!atomic_load(&p->stop)) {
        struct pollfd fds[1 + 2 * PG_PROXY_PAIRS];
        int n = 0;
        fds[n++] = (struct pollfd){ .fd = atomic_load(&p->hang) ? -1 : p->lfd,
                                    .events = POLLIN };
        for (int i = 0; i < PG_PROXY_PAIRS; i++) {
            fds[n++] = (struct pollfd){ .fd = p->cfd[i], .events = POLLIN };
            fds[n++] = (struct pollfd){ .fd = p->sfd[i], .events = POLLIN };
        }
        if (atomic_load(&p->down))
            for (int i = 0; i < PG_PROXY_PAIRS; i++)
                if (p->cfd[i] >= 0)
                    pg_proxy_cut(p, i);
        if (poll(fds, (nfds_t)n, 20) <= 0)
            continue;
        if (fds[0].revents)
            pg_proxy_accept(p);
        for (int i = 0; i < PG_PROXY_PAIRS; i++) {
            if (p->cfd[i] >= 0 && fds[1 + 2 * i].revents) {
                ssize_t r = read(p->cfd[i], b, sizeof b);
                if (r <= 0)
                    pg_proxy_cut(p, i);
                else
                    pg_proxy_up(p, i, b, r);
            }
            if (p->sfd[i] >= 0 && fds[2 + 2 * i].revents) {
                ssize_t r = read(p->sfd[i], b, sizeof b);
                if (r > 0 && p->swallow[i]) {    /* the server has committed */
                    if (atomic_load(&p->hang_after_cut))
                        atomic_store(&p->hang, 1);
                    pg_proxy_cut(p, i);
                    atomic_fetch_add(&p->cuts, 1);
                } else if (r <= 0 || write(p->cfd[i], b, (size_t)r) != r) {
                    pg_proxy_cut(p, i);
                }
            }
        }
    }
    return NULL;
}

/* Listens on a free loopback port, relaying to target_port. 0 or -1. */
static inline int pg_proxy_start(struct pg_proxy *p, int target_port)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof a;

    memset(p, 0, sizeof(*p));
    for (int i = 0; i < PG_PROXY_PAIRS; i++)
        p->cfd[i] = p->sfd[i] = -1;
    p->target_port = target_port;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(p->lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(p->lfd, 16) < 0 ||
        getsockname(p->lfd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    p->port = ntohs(a.sin_port);
    return pthread_create(&p->thread, NULL, pg_proxy_main, p) == 0 ? 0 : -1;
}

static inline void pg_proxy_stop(struct pg_proxy *p)
{
    atomic_store(&p->stop, 1);
    pthread_join(p->thread, NULL);
    for (int i = 0; i < PG_PROXY_PAIRS; i++)
        if (p->cfd[i] >= 0 || p->sfd[i] >= 0)
            pg_proxy_cut(p, i);
    close(p->lfd);
}

#endif
