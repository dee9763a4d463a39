/* WebSocket connection code driven by scripted bytes, without a network: frames
 * whole, fragmented, split at every byte boundary, with control frames between
 * fragments, and every kind of bad frame with the close code it earns. */
#include "test.h"
#include "ws_test_util.h"

static size_t text_frame(uint8_t *out, const char *s)
{
    return wst_frame(out, 1, 1, s, strlen(s), 1, wst_key);
}

TEST(ws_conn_hello_first)
{
    struct ws_fixture fx;
    int n = 0;

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 7);
    ASSERT(c);
    ASSERT_EQ(wst_scan(&fx, "\"type\":\"hello\"", &n), 0);
    ASSERT_EQ(n, 1);
    ASSERT(memmem(fx.out.data, fx.out.len, "\"username\":\"user7\"", 18));
    ASSERT_EQ(fx.m->nconns, 1);
    wst_free(&fx);
}

TEST(ws_conn_text_frame)
{
    struct ws_fixture fx;
    uint8_t buf[256];

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    size_t n = text_frame(buf, "{\"type\":\"ping\"}");
    wst_feed(c, buf, n);
    ASSERT_EQ(fx.ntexts, 1);
    ASSERT_STR_EQ(fx.texts.data, "{\"type\":\"ping\"}\n");
    wst_free(&fx);
}

/* Three fragments with a ping and a pong between them: one message, and the ping
 * answered with a pong carrying its payload. */
static size_t fragmented_script(uint8_t *buf)
{
    size_t n = 0;
    n += wst_frame(buf + n, 0, 1, "hello", 5, 1, wst_key);
    n += wst_frame(buf + n, 1, 9, "abc", 3, 1, wst_key);          /* ping */
    n += wst_frame(buf + n, 0, 0, ", ", 2, 1, wst_key);
    n += wst_frame(buf + n, 1, 10, "", 0, 1, wst_key);            /* unsolicited pong */
    n += wst_frame(buf + n, 1, 0, "world", 5, 1, wst_key);
    n += wst_frame(buf + n, 1, 1, "second", 6, 1, wst_key);
    return n;
}

static int count_pongs(struct ws_fixture *fx, const char *payload)
{
    const uint8_t *p;
    size_t left;
    struct ws_sframe f;
    int pongs = 0;

    wst_flush(fx);
    p = (const uint8_t *)fx->out.data;
    left = fx->out.len;
    while (wst_next(&p, &left, &f) == 1)
        if (f.opcode == 10 && f.len == strlen(payload) && !memcmp(f.payload, payload, f.len))
            pongs++;
    return pongs;
}

TEST(ws_conn_fragments_with_control_frames)
{
    struct ws_fixture fx;
    uint8_t buf[256];

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    size_t n = fragmented_script(buf);
    wst_feed(c, buf, n);
    ASSERT_EQ(fx.ntexts, 2);
    ASSERT_STR_EQ(fx.texts.data, "hello, world\nsecond\n");
    ASSERT_EQ(count_pongs(&fx, "abc"), 1);
    ASSERT_EQ(fx.m->nconns, 1);
    wst_free(&fx);
}

TEST(ws_conn_split_at_every_byte)
{
    uint8_t buf[256];
    size_t n = fragmented_script(buf);

    for (size_t cut = 0; cut <= n; cut++) {
        struct ws_fixture fx;
        ASSERT(wst_init(&fx, 0, 0, 0) == 0);
        struct ws_conn *c = wst_conn(&fx, 1);
        wst_feed(c, buf, cut);
        wst_feed(c, buf + cut, n - cut);
        ASSERT_EQ(fx.ntexts, 2);
        ASSERT_STR_EQ(fx.texts.data, "hello, world\nsecond\n");
        ASSERT_EQ(count_pongs(&fx, "abc"), 1);
        wst_free(&fx);
    }
}

TEST(ws_conn_one_byte_at_a_time)
{
    struct ws_fixture fx;
    uint8_t buf[70000];
    char *big = malloc(65000);

    ASSERT(big);
    memset(big, 'x', 65000);
    big[0] = '"';
    big[64999] = '"';
    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    size_t n = fragmented_script(buf);
    n += wst_frame(buf + n, 1, 1, big, 65000, 1, wst_key);   /* 16-bit length */
    for (size_t i = 0; i < n; i++)
        wst_feed(c, buf + i, 1);
    free(big);
    ASSERT_EQ(fx.ntexts, 3);
    ASSERT_EQ(fx.texts.len, strlen("hello, world\nsecond\n") + 65001);
    wst_free(&fx);
}

TEST(ws_conn_unmasked_client_frame_closes_1002)
{
    struct ws_fixture fx;
    uint8_t buf[64];

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    size_t n = wst_frame(buf, 1, 1, "{}", 2, 0, wst_key);
    wst_feed(c, buf, n);
    ASSERT_EQ(fx.ntexts, 0);
    ASSERT_EQ(wst_scan(&fx, NULL, NULL), 1002);
    ASSERT_EQ(fx.m->nconns, 0);
    /* The close is out and our side shut: it lingers for the client's close or EOF. */
    ASSERT_EQ(c->stream->state, WS_SHUT);
    ASSERT_EQ(wst_peer_eof(&fx, c), 0);
    ASSERT_EQ(fx.m->nalive, 0);
    wst_free(&fx);
}

TEST(ws_conn_binary_closes_1003)
{
    struct ws_fixture fx;
    uint8_t buf[64];

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    size_t n = wst_frame(buf, 1, 2, "\x01\x02", 2, 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT_EQ(fx.ntexts, 0);
    ASSERT_EQ(wst_scan(&fx, NULL, NULL), 1003);
    ASSERT_EQ(fx.m->nconns, 0);
    wst_free(&fx);
}

TEST(ws_conn_bad_utf8_closes_1007)
{
    struct ws_fixture fx;
    uint8_t buf[64];

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    size_t n = wst_frame(buf, 1, 1, "ab\xc3\x28", 4, 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT_EQ(fx.ntexts, 0);
    ASSERT_EQ(wst_scan(&fx, NULL, NULL), 1007);
    wst_free(&fx);
}

/* A frame masked with one key but announcing another decodes to garbage: here the
 * garbage is not UTF-8, so 1007, and nothing reaches the dispatcher. */
TEST(ws_conn_bad_mask)
{
    struct ws_fixture fx;
    uint8_t buf[64];
    static const uint8_t other[4] = { 0x80, 0x80, 0x80, 0x80 };

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    size_t n = wst_frame(buf, 1, 1, "{\"type\":\"ping\"}", 15, 1, wst_key);
    memcpy(buf + 2, other, 4);   /* the key sent is not the one used */
    wst_feed(c, buf, n);
    ASSERT_EQ(fx.ntexts, 0);
    ASSERT_EQ(wst_scan(&fx, NULL, NULL), 1007);
    wst_free(&fx);
}

TEST(ws_conn_oversized_closes_1009)
{
    struct ws_fixture fx;
    uint8_t buf[2048];
    char big[1000];

    memset(big, 'a', sizeof(big));
    ASSERT(wst_init(&fx, 256, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    size_t n = wst_frame(buf, 1, 1, big, sizeof(big), 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT_EQ(fx.ntexts, 0);
    ASSERT_EQ(wst_scan(&fx, NULL, NULL), 1009);
    wst_free(&fx);
}

/* The limit is on the message, not the frame: fragments adding up past it also go. */
TEST(ws_conn_oversized_fragments_close_1009)
{
    struct ws_fixture fx;
    uint8_t buf[2048];
    char part[200];
    size_t n = 0;

    memset(part, 'a', sizeof(part));
    ASSERT(wst_init(&fx, 256, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    n += wst_frame(buf + n, 0, 1, part, sizeof(part), 1, wst_key);
    n += wst_frame(buf + n, 1, 0, part, sizeof(part), 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT_EQ(fx.ntexts, 0);
    ASSERT_EQ(wst_scan(&fx, NULL, NULL), 1009);
    wst_free(&fx);
}

TEST(ws_conn_continuation_without_start_closes_1002)
{
    struct ws_fixture fx;
    uint8_t buf[64];

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    size_t n = wst_frame(buf, 1, 0, "x", 1, 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT_EQ(wst_scan(&fx, NULL, NULL), 1002);
    wst_free(&fx);
}

TEST(ws_conn_client_close_is_answered)
{
    struct ws_fixture fx;
    uint8_t buf[64];

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    size_t n = wst_frame(buf, 1, 8, "\x03\xe8" "bye", 5, 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT_EQ(wst_scan(&fx, NULL, NULL), 1000);
    ASSERT_EQ(fx.m->nconns, 0);
    ASSERT_EQ(fx.m->nalive, 0);
    wst_free(&fx);
}

TEST(ws_conn_repeated_bad_frames_close_1008)
{
    struct ws_fixture fx;
    uint8_t buf[64];
    int errors = 0;

    ASSERT(wst_init(&fx, 0, 0, 1) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    for (int i = 0; i < WS_BAD_FRAMES_MAX - 1; i++) {
        size_t n = text_frame(buf, "not json");
        wst_feed(c, buf, n);
    }
    ASSERT_EQ(wst_scan(&fx, "\"type\":\"error\"", &errors), 0);
    ASSERT_EQ(errors, WS_BAD_FRAMES_MAX - 1);
    ASSERT_EQ(fx.m->nconns, 1);   /* still open */
    size_t n = text_frame(buf, "{\"type\":\"nope\"}");
    wst_feed(c, buf, n);
    ASSERT_EQ(wst_scan(&fx, "unknown frame type", &errors), 1008);
    ASSERT_EQ(errors, 1);
    wst_free(&fx);
}

TEST(ws_conn_error_frame_keeps_client_msg_id)
{
    struct ws_fixture fx;
    uint8_t buf[128];
    int n1 = 0;

    ASSERT(wst_init(&fx, 0, 0, 1) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    size_t n = text_frame(buf, "{\"type\":\"send\",\"client_msg_id\":\"m-1\",\"body\":\"x\"}");
    wst_feed(c, buf, n);
    ASSERT_EQ(wst_scan(&fx, "\"client_msg_id\":\"m-1\"", &n1), 0);
    ASSERT_EQ(n1, 1);
    ASSERT_EQ(fx.m->nconns, 1);
    wst_free(&fx);
}

/* Nobody reads: the queue passes send_queue_bytes, the connection is closed with
 * 1013 and what was queued is freed at once. */
TEST(ws_conn_slow_consumer_1013)
{
    struct ws_fixture fx;
    char json[1000];

    ASSERT(wst_init(&fx, 0, 8192, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    memset(json, ' ', sizeof(json));
    json[0] = '{';
    json[sizeof(json) - 1] = '}';
    struct ws_buf *b = ws_buf_text(json, sizeof(json));
    int rc = 0, i;
    for (i = 0; i < 100 && rc == 0; i++)
        rc = ws_conn_queue(c, b, WS_PRIO_NORMAL);
    ASSERT_EQ(rc, -ENOBUFS);
    ASSERT(i < 10);
    ASSERT_EQ(b->refs, 1);            /* every queued reference dropped */
    ASSERT_EQ(fx.m->nconns, 0);
    ASSERT_EQ(wst_scan(&fx, NULL, NULL), 1013);
    ws_buf_unref(b);
    ASSERT_EQ(fx.t->queue_bytes, 0);
    wst_free(&fx);
}

TEST(ws_conn_typing_dropped_past_half)
{
    struct ws_fixture fx;
    char json[1000];

    ASSERT(wst_init(&fx, 0, 8192, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    memset(json, ' ', sizeof(json));
    struct ws_buf *b = ws_buf_text(json, sizeof(json));
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(ws_conn_queue(c, b, WS_PRIO_NORMAL), 0);
    ASSERT_EQ(ws_conn_queue(c, b, WS_PRIO_TYPING), -EAGAIN);
    ASSERT_EQ(fx.m->nconns, 1);
    ASSERT_EQ(ws_conn_queue(c, b, WS_PRIO_NORMAL), 0);
    ws_buf_unref(b);
    wst_free(&fx);
}

/* One encoded frame, shared by every recipient; after the writes only ours is left. */
TEST(ws_conn_shared_frame)
{
    struct ws_fixture fx;
    struct ws_conn *c[3];

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    for (int i = 0; i < 3; i++)
        ASSERT((c[i] = wst_conn(&fx, i + 1)));
    struct ws_buf *b = ws_buf_text("{\"type\":\"x\"}", 12);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(ws_conn_queue(c[i], b, WS_PRIO_NORMAL), 0);
    ASSERT_EQ(b->refs, 4);
    wst_flush(&fx);
    ASSERT_EQ(b->refs, 1);
    ws_buf_unref(b);
    int n = 0;
    wst_scan(&fx, "{\"type\":\"x\"}", &n);
    ASSERT_EQ(n, 3);
    wst_free(&fx);
}

TEST(ws_frame_header_lengths)
{
    size_t sizes[] = { 0, 125, 126, 65535, 65536, 70000 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *p;
        struct ws_buf *b = ws_buf_new(sizes[i], 1, &p);
        ASSERT(b);
        memset(p, 'a', sizes[i]);
        const uint8_t *q = b->data;
        size_t left = b->len;
        struct ws_sframe f;
        ASSERT_EQ(wst_next(&q, &left, &f), 1);
        ASSERT_EQ(f.len, sizes[i]);
        ASSERT_EQ(f.opcode, 1);
        ASSERT_EQ(f.fin, 1);
        ASSERT_EQ(left, 0);
        ws_buf_unref(b);
    }
}

/* An idle connection lends its wslay context back; mid-frame or mid-message it keeps
 * it (the split tests above check nothing is lost across the hand-backs). */
TEST(ws_conn_idle_context_pooled)
{
    struct ws_fixture fx;
    uint8_t buf[256];

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    ASSERT(c->stream->wslay == NULL);
    size_t n = text_frame(buf, "{\"type\":\"ping\"}");
    wst_feed(c, buf, n);
    ASSERT(c->stream->wslay == NULL);
    ASSERT_EQ(fx.t->npool, 1);
    wst_feed(c, buf, 3);                 /* half a frame */
    ASSERT(c->stream->wslay != NULL);
    ASSERT_EQ(fx.t->npool, 0);
    wst_feed(c, buf + 3, n - 3);
    ASSERT(c->stream->wslay == NULL);
    n = wst_frame(buf, 0, 1, "ab", 2, 1, wst_key);   /* a message left open */
    wst_feed(c, buf, n);
    ASSERT(c->stream->wslay != NULL);
    n = wst_frame(buf, 1, 0, "cd", 2, 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT(c->stream->wslay == NULL);
    ASSERT_EQ(fx.ntexts, 3);
    n = wst_frame(buf, 1, 9, "p", 1, 1, wst_key);    /* a ping: pong goes out first */
    wst_feed(c, buf, n);
    ASSERT(c->stream->wslay == NULL);
    wst_free(&fx);
}
