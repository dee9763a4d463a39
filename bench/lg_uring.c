/* The receive path on io_uring: one multishot recv per connection, buffers from a
 * ring the kernel picks from, completions reaped from the loop through a uv_poll on
 * the ring's fd. Why: with epoll and read(2) every delivery to a subscriber costs a
 * wake-up and a system call, which on this VM (costly syscalls) was most of the
 * generator's core at 100k deliveries/s; here a batch of deliveries costs one
 * epoll wake-up and no read(2) at all. Raw system calls (no liburing): the kernel's
 * header is all it needs. If the kernel refuses a ring, lg_uring_new returns NULL and
 * the connections read through libuv as before. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/io_uring.h>
#include "lg.h"

#define SQ_ENTRIES 1024
#define CQ_ENTRIES 32768
#define NBUF 8192                /* power of two; the ring's tail is 16 bits */
#define BUFSZ 4096
#define TAG_CANCEL 1ull          /* user_data of cancel requests (connections are aligned) */

struct lg_uring {
    int fd, efd;                 /* the ring; the eventfd it signals when work is pending */
    uv_poll_t poll;
    void *ring; size_t ring_len;
    struct io_uring_sqe *sqes; size_t sqes_len;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_cqe *cqes;
    struct io_uring_buf_ring *br; size_t br_len;
    uint8_t *bufs;
    unsigned br_tail;
    lg_uring_data_fn on_data;
};

static int sys_setup(unsigned entries, struct io_uring_params *p)
{
    return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned submit, unsigned wait, unsigned flags)
{
    return (int)syscall(__NR_io_uring_enter, fd, submit, wait, flags, NULL, 0);
}

static int sys_register(int fd, unsigned op, void *arg, unsigned n)
{
    return (int)syscall(__NR_io_uring_register, fd, op, arg, n);
}

static void buf_put(struct lg_uring *u, unsigned bid)
{
    struct io_uring_buf *b = &u->br->bufs[u->br_tail & (NBUF - 1)];
    /* field by field: the ring's tail lives in bufs[0].resv */
    b->addr = (uint64_t)(uintptr_t)(u->bufs + (size_t)bid * BUFSZ);
    b->len = BUFSZ;
    b->bid = (uint16_t)bid;
    u->br_tail++;
}

static void buf_publish(struct lg_uring *u)
{
    __atomic_store_n(&u->br->tail, (uint16_t)u->br_tail, __ATOMIC_RELEASE);
}

static struct io_uring_sqe *sqe_get(struct lg_uring *u)
{
    unsigned tail = *u->sq_tail, head = __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE);
    struct io_uring_sqe *s;

    if (tail - head >= SQ_ENTRIES)
        return NULL;
    s = &u->sqes[tail & *u->sq_mask];
    memset(s, 0, sizeof(*s));
    u->sq_array[tail & *u->sq_mask] = tail & *u->sq_mask;
    __atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
    return s;
}

static int submit(struct lg_uring *u)
{
    int rc = sys_enter(u->fd, 1, 0, 0);
    return rc < 0 ? -errno : 0;
}

int lg_uring_recv(struct lg_uring *u, struct lg_conn *c)
{
    struct io_uring_sqe *s = sqe_get(u);
    uv_os_fd_t fd;

    if (s == NULL || uv_fileno((uv_handle_t *)&c->tcp, &fd) < 0)
        return -EBUSY;
    s->opcode = IORING_OP_RECV;
    s->fd = fd;
    s->ioprio = IORING_RECV_MULTISHOT;
    s->flags = IOSQE_BUFFER_SELECT;
    s->buf_group = 0;
    s->user_data = (uint64_t)(uintptr_t)c;
    if (submit(u) < 0)
        return -EIO;
    c->uring_armed = 1;
    return 0;
}

int lg_uring_cancel(struct lg_uring *u, struct lg_conn *c)
{
    struct io_uring_sqe *s = sqe_get(u);

    if (s == NULL)
        return -EBUSY;
    s->opcode = IORING_OP_ASYNC_CANCEL;
    s->fd = -1;
    s->addr = (uint64_t)(uintptr_t)c;
    s->user_data = TAG_CANCEL;
    return submit(u);
}

/* One completion of a connection's recv: data, end of stream or error. A completion
 * without IORING_CQE_F_MORE ends the multishot request. */
static void complete(struct lg_uring *u, const struct io_uring_cqe *cqe, uint64_t now)
{
    struct lg_conn *c = (struct lg_conn *)(uintptr_t)cqe->user_data;
    int more = (cqe->flags & IORING_CQE_F_MORE) != 0, was_closing = c->closing;

    if (!more)
        c->uring_armed = 0;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (cqe->res > 0 && !c->closing)
            u->on_data(c, u->bufs + (size_t)bid * BUFSZ, (size_t)cqe->res, now);
        buf_put(u, bid);
    }
    if (c->closing) {
        /* Closed before this completion: this may be the last one, then the socket is
         * ours to close. Closed by on_data just now: lg_conn_close has done it, or
         * cancelled the request and waits for its last completion. */
        if (was_closing && !c->uring_armed)
            lg_conn_finish_close(c);
        return;
    }
    if (cqe->res == -EINVAL || cqe->res == -EOPNOTSUPP) {
        lg_conn_read_plain(c);      /* a kernel without multishot recv: read(2) then */
    } else if (cqe->res == 0 || (cqe->res < 0 && cqe->res != -ENOBUFS)) {
        lg_conn_close(c);           /* end of stream or error: the request is over */
    } else if (!more && (buf_publish(u), lg_uring_recv(u, c) < 0)) {
        lg_conn_close(c);           /* ran out of buffers (or was cut short): again */
    }
}

/* DEFER_TASKRUN: completions are only made when the issuer asks (io_uring_enter with
 * GETEVENTS), so a burst of deliveries costs one wake-up of the generator and one
 * system call, instead of one interruption per delivery. */
static void on_ring(uv_poll_t *p, int status, int events)
{
    struct lg_uring *u = p->data;
    uint64_t v;
    (void)status;
    (void)events;
    if (read(u->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return;
    sys_enter(u->fd, 0, 0, IORING_ENTER_GETEVENTS);
    for (;;) {
        unsigned head = *u->cq_head, tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
        uint64_t now = lg_now_ns();
        if (head == tail)
            break;
        for (unsigned n = 0; head != tail; head++, n++) {
            const struct io_uring_cqe *cqe = &u->cqes[head & *u->cq_mask];
            if ((n & 31) == 31)
                now = lg_now_ns();  /* the clock once per batch of reads, not per message */
            if (cqe->user_data != TAG_CANCEL)
                complete(u, cqe, now);
        }
        __atomic_store_n(u->cq_head, head, __ATOMIC_RELEASE);
        buf_publish(u);
    }
}

static int map_rings(struct lg_uring *u, const struct io_uring_params *p)
{
    size_t sq_len = p->sq_off.array + p->sq_entries * sizeof(unsigned);
    size_t cq_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
    uint8_t *r;

    if (!(p->features & IORING_FEAT_SINGLE_MMAP))
        return -ENOTSUP;
    u->ring_len = sq_len > cq_len ? sq_len : cq_len;
    u->ring = mmap(NULL, u->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                   u->fd, IORING_OFF_SQ_RING);
    if (u->ring == MAP_FAILED)
        return -errno;
    u->sqes_len = p->sq_entries * sizeof(struct io_uring_sqe);
    u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                   u->fd, IORING_OFF_SQES);
    if (u->sqes == MAP_FAILED)
        return -errno;
    r = u->ring;
    u->sq_head = (unsigned *)(r + p->sq_off.head);
    u->sq_tail = (unsigned *)(r + p->sq_off.tail);
    u->sq_mask = (unsigned *)(r + p->sq_off.ring_mask);
    u->sq_array = (unsigned *)(r + p->sq_off.array);
    u->cq_head = (unsigned *)(r + p->cq_off.head);
    u->cq_tail = (unsigned *)(r + p->cq_off.tail);
    u->cq_mask = (unsigned *)(r + p->cq_off.ring_mask);
    u->cqes = (struct io_uring_cqe *)(r + p->cq_off.cqes);
    return 0;
}

static int setup_buffers(struct lg_uring *u)
{
    struct io_uring_buf_reg reg;

    u->br_len = NBUF * sizeof(struct io_uring_buf);
    u->br = mmap(NULL, u->br_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (u->br == MAP_FAILED)
        return -errno;
    u->bufs = malloc((size_t)NBUF * BUFSZ);
    if (u->bufs == NULL)
        return -ENOMEM;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)u->br;
    reg.ring_entries = NBUF;
    reg.bgid = 0;
    if (sys_register(u->fd, IORING_REGISTER_PBUF_RING, &reg, 1) < 0)
        return -errno;
    for (unsigned i = 0; i < NBUF; i++)
        buf_put(u, i);
    buf_publish(u);
    return 0;
}

struct lg_uring *lg_uring_new(uv_loop_t *loop, lg_uring_data_fn on_data)
{
    struct io_uring_params p;
    struct lg_uring *u = calloc(1, sizeof(*u));

    if (u == NULL)
        return NULL;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    p.cq_entries = CQ_ENTRIES;
    u->on_data = on_data;
    u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    u->fd = sys_setup(SQ_ENTRIES, &p);
    if (u->fd < 0 || u->efd < 0 || map_rings(u, &p) < 0 || setup_buffers(u) < 0 ||
        sys_register(u->fd, IORING_REGISTER_EVENTFD, &u->efd, 1) < 0 ||
        uv_poll_init(loop, &u->poll, u->efd) < 0) {
        fprintf(stderr, "loadgen: no io_uring (%s): reading with epoll\n", strerror(errno));
        if (u->fd >= 0)
            close(u->fd);
        free(u->bufs);
        free(u);                    /* the mappings go with the process */
        return NULL;
    }
    u->poll.data = u;
    uv_poll_start(&u->poll, UV_READABLE, on_ring);
    uv_unref((uv_handle_t *)&u->poll);   /* not a reason on its own to keep the loop running */
    return u;
}
