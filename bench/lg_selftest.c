/* loadgen --self-test: the in-place parsers against canned server output, fed whole
 * and cut at every position (a frame or reply split across reads is the case that
 * keeps a tail), so a figure never rests on a parser that drops or repeats messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include "lg.h"
#include "lg_run.h"

#define MAX_SEEN 16

struct seen { int n; size_t len[MAX_SEEN]; char head[MAX_SEEN][16]; };

static void record(struct lg_conn *c, const uint8_t *p, size_t n, uint64_t now)
{
    struct seen *s = c->user;
    (void)now;
    if (s->n < MAX_SEEN) {
        s->len[s->n] = n;
        snprintf(s->head[s->n], sizeof(s->head[0]), "%.*s", (int)(n < 15 ? n : 15), (const char *)p);
    }
    s->n++;
}

/* An unmasked server frame of n bytes of 'x' after a prefix; returns its length. */
static size_t ws_frame(uint8_t *out, int fin, int op, const char *prefix, size_t n)
{
    size_t hl = n < 126 ? 2 : n < 65536 ? 4 : 10, plen = strlen(prefix);
    out[0] = (uint8_t)((fin ? 0x80 : 0) | op);
    if (hl == 2) {
        out[1] = (uint8_t)n;
    } else if (hl == 4) {
        out[1] = 126;
        out[2] = (uint8_t)(n >> 8);
        out[3] = (uint8_t)n;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
    memset(out + hl, 'x', n);
    memcpy(out + hl, prefix, plen < n ? plen : n);
    return hl + n;
}

/* Feeds in to a fresh connection in pieces of `step` bytes (0: whole) and compares. */
static int feed(uv_loop_t *loop, int kind, const uint8_t *in, size_t len, size_t step,
                const struct seen *want, const char *what)
{
    struct lg_conn c;
    struct seen got;

    memset(&c, 0, sizeof(c));
    memset(&got, 0, sizeof(got));
    c.tcp.loop = loop;
    c.kind = kind;
    c.handshake_done = 1;
    c.user = &got;
    c.on_frame = record;
    for (size_t off = 0; off < len;) {
        size_t n = step == 0 || len - off < step ? len - off : step;
        lg_conn_feed(&c, in + off, n, 0);
        off += n;
    }
    free(c.in);
    free(c.msg);
    if (got.n != want->n)
        goto fail;
    for (int i = 0; i < got.n && i < MAX_SEEN; i++)
        if (got.len[i] != want->len[i] || strcmp(got.head[i], want->head[i]) != 0)
            goto fail;
    return 0;
fail:
    fprintf(stderr, "loadgen: self-test %s (pieces of %zu): %d messages, want %d\n",
            what, step, got.n, want->n);
    for (int i = 0; i < got.n && i < MAX_SEEN; i++)
        fprintf(stderr, "  %zu %s\n", got.len[i], got.head[i]);
    return -1;
}

static int test_ws(uv_loop_t *loop)
{
    size_t cap = 80000, len = 0;
    uint8_t *buf = malloc(cap);
    struct seen want = {4, {20, 300, 70000, 10}, {"{\"type\":\"ack\"}x", "{\"type\":\"messag", "{\"type\":\"big\"xx", "fragmented"}};
    int rc = 0;

    if (buf == NULL)
        return -1;
    len += ws_frame(buf + len, 1, 1, "{\"type\":\"ack\"}", 20);
    len += ws_frame(buf + len, 1, 9, "", 0);                       /* a ping: answered, not counted */
    len += ws_frame(buf + len, 1, 1, "{\"type\":\"message\"", 300);
    len += ws_frame(buf + len, 1, 1, "{\"type\":\"big\"", 70000);
    len += ws_frame(buf + len, 0, 1, "frag", 4);                   /* a fragmented message */
    len += ws_frame(buf + len, 1, 0, "mented", 6);
    for (size_t step = 0; step <= 23 && rc == 0; step++)
        rc = feed(loop, CONN_WS, buf, len, step, &want, "websocket");
    if (rc == 0)
        rc = feed(loop, CONN_WS, buf, len, 4096, &want, "websocket");
    free(buf);
    return rc;
}

static int test_resp(uv_loop_t *loop)
{
    char in[512];
    struct seen want = {3, {1, 12, 2}, {"1", "t=123;xxxxxx", "OK"}};
    int len = snprintf(in, sizeof(in), "*3\r\n$9\r\nsubscribe\r\n$5\r\nbench\r\n:1\r\n"
                       "*3\r\n$7\r\nmessage\r\n$5\r\nbench\r\n$12\r\nt=123;xxxxxx\r\n+OK\r\n");
    int rc = 0;

    for (size_t step = 0; step <= 40 && rc == 0; step++)
        rc = feed(loop, CONN_RESP, (const uint8_t *)in, (size_t)len, step, &want, "resp");
    return rc;
}

static int test_body_ts(void)
{
    const char *f = "{\"type\":\"message\",\"room_id\":1,\"body\":\"t=1234567890123;xxx\"}";
    if (lg_body_ts((const uint8_t *)f, strlen(f)) == 1234567890123ull)
        return 0;
    fprintf(stderr, "loadgen: self-test: body timestamp\n");
    return -1;
}

/* What parsing costs per message in user space, for each protocol: a read of 64
 * messages, each timed into a histogram as in a run. The rest of the generator's cost
 * per delivery is the kernel's. */
struct bench_sink { struct hist h; uint64_t n; };

static void sink_ws(struct lg_conn *c, const uint8_t *p, size_t n, uint64_t now)
{
    struct bench_sink *s = c->user;
    uint64_t ts = lg_body_ts(p, n);
    hist_add(&s->h, now > ts ? now - ts : 0);
    s->n++;
}

static void sink_resp(struct lg_conn *c, const uint8_t *p, size_t n, uint64_t now)
{
    struct bench_sink *s = c->user;
    uint64_t ts = 0;
    for (size_t i = 2; i < n && p[i] >= '0' && p[i] <= '9'; i++)
        ts = ts * 10 + (uint64_t)(p[i] - '0');
    hist_add(&s->h, now > ts ? now - ts : 0);
    s->n++;
}

static double parse_ns(uv_loop_t *loop, int kind)
{
    enum { PER_READ = 64, READS = 20000 };
    static uint8_t buf[PER_READ * 400];
    struct bench_sink *sink = calloc(1, sizeof(*sink));
    struct lg_conn c;
    size_t len = 0;
    uint64_t t0;
    double ns;

    if (sink == NULL)
        return -1;
    for (int i = 0; i < PER_READ; i++) {
        char body[160], msg[400];
        int n = snprintf(body, sizeof(body), "t=%llu;", 1000000ull + (unsigned long long)i);
        while (n < 100)
            body[n++] = 'x';
        body[n] = '\0';
        if (kind == CONN_WS) {
            n = snprintf(msg, sizeof(msg), "{\"type\":\"message\",\"room_id\":1,\"seq\":%d,"
                         "\"id\":%d,\"sender_id\":2,\"body\":\"%s\",\"ts\":1764200000000}", i, i, body);
            len += ws_frame(buf + len, 1, 1, "", (size_t)n);
            memcpy(buf + len - (size_t)n, msg, (size_t)n);
        } else {
            n = snprintf(msg, sizeof(msg), "*3\r\n$7\r\nmessage\r\n$5\r\nbench\r\n$%zu\r\n%s\r\n",
                         strlen(body), body);
            memcpy(buf + len, msg, (size_t)n);
            len += (size_t)n;
        }
    }
    memset(&c, 0, sizeof(c));
    c.tcp.loop = loop;
    c.kind = kind;
    c.handshake_done = 1;
    c.user = sink;
    c.on_frame = kind == CONN_WS ? sink_ws : sink_resp;
    t0 = lg_now_ns();
    for (int r = 0; r < READS; r++)
        lg_conn_feed(&c, buf, len, lg_now_ns());
    ns = (double)(lg_now_ns() - t0) / (double)sink->n;
    if (sink->n != (uint64_t)PER_READ * READS)
        ns = -1;
    free(sink);
    return ns;
}

static void burn_cpu(double secs)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    double until = (double)t.tv_sec + (double)t.tv_nsec / 1e9 + secs;
    for (;;) {
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        if ((double)t.tv_sec + (double)t.tv_nsec / 1e9 >= until)
            return;
    }
}

/* The database's CPU (--db-pid) counts its children: a live one, and one that has
 * exited and been reaped. Each child burns 0.2 s; ticks are 10 ms. */
static int test_tree_cpu(void)
{
    int up[2], down[2];     /* child -> parent: "burnt"; parent -> child: "exit" */
    double before = lg_tree_cpu_s(getpid()), live, reaped;
    pid_t child;
    char c;

    if (pipe(up) < 0 || pipe(down) < 0 || (child = fork()) < 0)
        return 1;
    if (child == 0) {
        burn_cpu(0.2);
        if (write(up[1], "x", 1) != 1 || read(down[0], &c, 1) != 1)
            _exit(1);
        _exit(0);
    }
    if (read(up[0], &c, 1) != 1)
        return 1;
    live = lg_tree_cpu_s(getpid()) - before;        /* the child still runs */
    if (write(down[1], "y", 1) != 1 || waitpid(child, NULL, 0) != child)
        return 1;
    reaped = lg_tree_cpu_s(getpid()) - before;
    for (int i = 0; i < 2; i++) {
        close(up[i]);
        close(down[i]);
    }
    if (live < 0.15 || reaped < 0.15) {
        fprintf(stderr, "selftest: tree cpu: live child %.2f s, reaped %.2f s, want >= 0.15\n",
                live, reaped);
        return 1;
    }
    return 0;
}

int lg_self_test(void)
{
    uv_loop_t loop;
    int rc;

    uv_loop_init(&loop);
    loop.data = calloc(1, sizeof(struct lg_io));    /* plain reads: no ring for this */
    if (loop.data == NULL)
        return 1;
    rc = test_ws(&loop) | test_resp(&loop) | test_body_ts() | test_tree_cpu();
    printf("selftest=%s\n", rc == 0 ? "ok" : "FAILED");
    printf("parse_ns_per_msg_websocket=%.0f\nparse_ns_per_msg_resp=%.0f\n",
           parse_ns(&loop, CONN_WS), parse_ns(&loop, CONN_RESP));
    return rc == 0 ? 0 : 1;
}
