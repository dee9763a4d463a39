/* The outbound side without a network: flushes cut into slices keep every
 * connection's frames in order and lose none, the flush list is first in first out,
 * a connection freed while it waits leaves the list intact; and the edges of the
 * connection's life (a destroy in the middle of a feed, an absurd token exp). */
#include <errno.h>
#include <stdio.h>
#include <stdint.h>

#include <unistd.h>

#include "test.h"
#include "ws_test_util.h"

/* A frame only this connection gets: {"c":id,"k":k}. */
static int queue_own(struct ws_conn *c, int k)
{
    char json[64];
    int n = snprintf(json, sizeof(json), "{\"c\":%llu,\"k\":%d}", (unsigned long long)c->id, k);
    return ws_conn_send_json(c, json, (size_t)n);
}

/* Reads the captured output: per connection id (< max), the k of each own frame must
 * follow the previous one by exactly 1 (no loss, no reordering). Returns the number of
 * own frames, -1 on a gap. shared counts the other text frames. */
static int check_order(struct ws_fixture *fx, int *last, int max, int *shared)
{
    const uint8_t *p = (const uint8_t *)fx->out.data;
    size_t left = fx->out.len;
    struct ws_sframe f;
    int own = 0;

    *shared = 0;
    while (wst_next(&p, &left, &f) == 1) {
        unsigned long long id;
        int k;
        char text[128];
        if (f.opcode != 1 || f.len >= sizeof(text))
            continue;
        memcpy(text, f.payload, f.len);
        text[f.len] = '\0';
        if (sscanf(text, "{\"c\":%llu,\"k\":%d}", &id, &k) != 2) {
            if (strstr(text, "\"shared\""))
                (*shared)++;
            continue;
        }
        if (id >= (unsigned long long)max || k != last[id] + 1)
            return -1;
        last[id] = k;
        own++;
    }
    return own;
}

/* 300 connections, 5 rounds: each round queues an own frame on every connection and
 * one shared frame, then writes a single slice (budget 0: one clock check's worth of
 * connections). The backlog grows across rounds and frames of later rounds join the
 * queues of connections still waiting. In the end everything arrives, in order. */
TEST(ws_fanout_slices_keep_order)
{
    enum { N = 300, ROUNDS = 5 };
    struct ws_fixture fx;
    struct ws_conn *c[N];
    int last[N + 1];

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    for (int i = 0; i < N; i++)
        ASSERT((c[i] = wst_conn(&fx, i + 1)));
    ASSERT(c[N - 1]->id <= N);
    wst_flush(&fx);                       /* the hellos */
    fx.out.len = 0;
    struct ws_buf *b = ws_buf_text("{\"type\":\"shared\"}", 17);
    ASSERT(b);
    for (int r = 1; r <= ROUNDS; r++) {
        for (int i = 0; i < N; i++) {
            ASSERT_EQ(queue_own(c[i], r), 0);
            ASSERT_EQ(ws_conn_queue(c[i], b, WS_PRIO_NORMAL), 0);
        }
        ASSERT_EQ(ws_transport_flush(fx.t, 0), 1);
    }
    ASSERT(b->refs > 1);                  /* still queued somewhere */
    int guard = 0;
    while (ws_transport_flush(fx.t, 0) && ++guard < 10 * N)
        ;
    ASSERT(fx.t->dirty == NULL && fx.t->dirty_tail == NULL);
    ASSERT_EQ(b->refs, 1);
    ASSERT_EQ(fx.t->queue_bytes, 0);
    ws_buf_unref(b);
    wst_read(&fx);
    for (int i = 0; i <= N; i++)
        last[i] = 0;
    int shared = 0;
    ASSERT_EQ(check_order(&fx, last, N + 1, &shared), N * ROUNDS);
    ASSERT_EQ(shared, N * ROUNDS);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(last[c[i]->id], ROUNDS);
    wst_free(&fx);
}

/* The first connection given something to write is the first written, whatever was
 * queued after it (the ack to a sender goes out before its broadcast). */
TEST(ws_fanout_flush_list_is_fifo)
{
    enum { N = 40 };
    struct ws_fixture fx;
    struct ws_conn *c[N];

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    for (int i = 0; i < N; i++)
        ASSERT((c[i] = wst_conn(&fx, i + 1)));
    wst_flush(&fx);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(queue_own(c[i], 1), 0);
    ws_transport_flush(fx.t, 0);
    /* One slice: the first WS_FLUSH_CHECK_EVERY connections, and no more. */
    for (int i = 0; i < N; i++) {
        char want[64], got[256];
        int n = snprintf(want, sizeof(want), "{\"c\":%llu,\"k\":1}",
                         (unsigned long long)c[i]->id);
        ssize_t r = read(wst_peer(c[i]), got, sizeof(got));
        if (i >= WS_FLUSH_CHECK_EVERY) {
            ASSERT(r < 0 && errno == EAGAIN);
            continue;
        }
        ASSERT_EQ(r, n + 2);
        ASSERT(memcmp(got + 2, want, (size_t)n) == 0);
    }
    ws_flush_all(fx.m);
    wst_free(&fx);
}

/* Connections freed while they wait on the flush list (first, last, middle) leave
 * it, and the others are still all written. */
TEST(ws_fanout_freed_while_waiting)
{
    enum { N = 30 };
    struct ws_fixture fx;
    struct ws_conn *c[N];
    int last[N + 1];

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    for (int i = 0; i < N; i++)
        ASSERT((c[i] = wst_conn(&fx, i + 1)));
    wst_flush(&fx);
    fx.out.len = 0;
    for (int i = 0; i < N; i++)
        ASSERT_EQ(queue_own(c[i], 1), 0);
    wst_drop(c[0]);
    wst_drop(c[N - 1]);
    wst_drop(c[N / 2]);
    wst_run(&fx);
    ASSERT_EQ(fx.m->nalive, N - 3);
    ws_flush_all(fx.m);
    ASSERT(fx.t->dirty == NULL && fx.t->dirty_tail == NULL);
    wst_read(&fx);
    for (int i = 0; i <= N; i++)
        last[i] = 0;
    int shared;
    ASSERT_EQ(check_order(&fx, last, N + 1, &shared), N - 3);
    wst_free(&fx);
}

/* A stream ended by a callback in the middle of a feed (here the text hook) outlives
 * the rest of that feed (it is freed from its socket's close callback), and the frames
 * after it in the same read are dropped. */
static void destroy_on_text(struct ws_conn *c, const char *text, size_t len)
{
    wst_on_text(c, text, len);
    wst_drop(c);
}

TEST(ws_conn_destroyed_inside_feed)
{
    struct ws_fixture fx;
    uint8_t buf[256];
    size_t n = 0;

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    fx.on_text = destroy_on_text;
    struct ws_conn *c = wst_conn(&fx, 1);
    ASSERT(c);
    n += wst_frame(buf + n, 1, 1, "{\"a\":1}", 7, 1, wst_key);
    n += wst_frame(buf + n, 1, 9, "p", 1, 1, wst_key);       /* a ping to answer */
    n += wst_frame(buf + n, 1, 1, "{\"a\":2}", 7, 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT_EQ(fx.ntexts, 1);
    ASSERT_EQ(fx.m->nconns, 0);
    ASSERT_EQ(fx.m->nalive, 1);
    wst_run(&fx);
    ASSERT_EQ(fx.m->nalive, 0);
    wst_free(&fx);
}

/* exp far in the future (or far in the past) is clamped before it is multiplied:
 * under UBSan an overflow here fails the run. */
TEST(ws_token_exp_clamped)
{
    ASSERT_EQ(ws_exp_ms(1700000000), 1700000000000LL);
    ASSERT_EQ(ws_exp_ms(0), 0);
    ASSERT_EQ(ws_exp_ms(INT64_MAX), WS_EXP_MAX_S * 1000);
    ASSERT_EQ(ws_exp_ms(INT64_MAX / 1000 + 1), WS_EXP_MAX_S * 1000);
    ASSERT_EQ(ws_exp_ms(INT64_MIN), -WS_EXP_MAX_S * 1000);
    /* The sweep's sum with the grace period stays in range too. */
    ASSERT(ws_exp_ms(INT64_MAX) + WS_AUTH_GRACE_MS > 0);
}

/* The ack and the broadcast frame are one print of the message wrapped twice. */
TEST(ws_buf_wrap_frames)
{
    struct ev_msg msg = { .id = 5, .room_id = 1, .seq = 2, .sender_id = 3, .created_at = 4,
                          .sender = "al", .body = "hi", .client_msg_id = "c\"1" };
    struct strbuf b;

    strbuf_init(&b, SIZE_MAX);
    ASSERT_EQ(ws_json_put_msg(&b, &msg), 0);
    struct ws_buf *ack = ws_buf_wrap("ack", "message", b.data, b.len, "c\"1");
    struct ws_buf *all = ws_buf_wrap("message", "message", b.data, b.len, NULL);
    ASSERT(ack && all);
    const char *m = "{\"id\":5,\"room_id\":1,\"seq\":2,\"sender_id\":3,\"sender\":\"al\","
                    "\"body\":\"hi\",\"client_msg_id\":\"c\\\"1\",\"created_at\":4}";
    char want[512];
    const uint8_t *p = ack->data;
    size_t left = ack->len;
    struct ws_sframe f;
    ASSERT_EQ(wst_next(&p, &left, &f), 1);
    ASSERT_EQ(f.opcode, 1);
    snprintf(want, sizeof(want), "{\"type\":\"ack\",\"client_msg_id\":\"c\\\"1\",\"message\":%s}", m);
    ASSERT_EQ(f.len, strlen(want));
    ASSERT(memcmp(f.payload, want, f.len) == 0);
    p = all->data;
    left = all->len;
    ASSERT_EQ(wst_next(&p, &left, &f), 1);
    snprintf(want, sizeof(want), "{\"type\":\"message\",\"message\":%s}", m);
    ASSERT_EQ(f.len, strlen(want));
    ASSERT(memcmp(f.payload, want, f.len) == 0);
    ws_buf_unref(ack);
    ws_buf_unref(all);
    strbuf_free(&b);
}

/* A sync replay ends with 1013 for a stall only when its client takes nothing. A slow
 * reader whose socket took a frame between two checks while more bytes were queued
 * behind it (typing, presence, pongs) left its unsent bytes no smaller, and still
 * made progress. */
TEST(ws_sync_stall_counts_the_bytes_taken)
{
    struct ws_fixture fx;
    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    ASSERT(wst_use_test_transport(&fx) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    ASSERT(c != NULL);
    ws_flush_all(fx.m);                       /* the hello */
    struct ws_sync *s = calloc(1, sizeof(*s));
    ASSERT(s != NULL);
    uint64_t t0 = mono_ms(), stall = fx.m->sync_stall_ms;
    s->progress_ms = t0;
    c->sync = s;
    ASSERT_EQ(queue_own(c, 1), 0);
    ws_sync_check_stall(c, t0 + 1);
    /* The kernel took that frame; then a larger one waits behind it, the unsent bytes
     * no smaller than before. */
    wstt_of(c->stream)->unsent = 10;
    ASSERT_EQ(queue_own(c, 1000000), 0);
    wstt_of(c->stream)->unsent = 1000;
    ws_sync_check_stall(c, t0 + stall);
    ASSERT(c->open);
    /* Nothing taken for a whole stall period after that: closed. */
    ws_sync_check_stall(c, t0 + 2 * stall + 1);
    ASSERT_EQ(c->close_code, 1013);
    ASSERT(c->sync == NULL);
    wst_free(&fx);
}
