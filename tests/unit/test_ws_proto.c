/* Protocol errors that wslay's frame layer catches (it answers them with a negative
 * return, after which the context is unusable), the close frames they earn, and the
 * order of control replies among data replies. */
#include "test.h"
#include "ws_test_util.h"

/* Feeds raw bytes to a fresh connection and returns the close code written (0: none),
 * or -1 when the output is not a sequence of well-formed frames. */
static int close_code_for(const uint8_t *bytes, size_t len)
{
    struct ws_fixture fx;
    int code;

    if (wst_init(&fx, 0, 0, 0) != 0)
        return -1;
    struct ws_conn *c = wst_conn(&fx, 1);
    if (!c)
        return -1;
    wst_feed(c, bytes, len);
    code = wst_scan(&fx, NULL, NULL);
    if (fx.m->nconns != 0)
        code = -2;   /* still open */
    wst_free(&fx);
    return code;
}

/* A masked client frame header with the payload length written as given (len7 is the
 * 7-bit field; ext the bytes of the extended length), then payload bytes. */
static size_t raw_frame(uint8_t *out, uint8_t b0, uint8_t len7, const uint8_t *ext,
                        size_t next, size_t payload)
{
    size_t n = 0;
    out[n++] = b0;
    out[n++] = (uint8_t)(0x80 | len7);
    if (next)
        memcpy(out + n, ext, next);
    n += next;
    memcpy(out + n, wst_key, 4);
    n += 4;
    memset(out + n, 'a' ^ wst_key[0], payload);
    return n + payload;
}

TEST(ws_proto_ping_126_bytes_closes_1002)
{
    uint8_t buf[256];
    static const uint8_t ext[2] = { 0, 126 };
    size_t n = raw_frame(buf, 0x89, 126, ext, 2, 126);
    ASSERT_EQ(close_code_for(buf, n), 1002);
}

TEST(ws_proto_close_reason_126_bytes_closes_1002)
{
    uint8_t buf[256];
    static const uint8_t ext[2] = { 0, 126 };
    size_t n = raw_frame(buf, 0x88, 126, ext, 2, 126);
    buf[8] = 0x03 ^ wst_key[0];   /* status 1000, then 124 bytes of reason */
    buf[9] = 0xe8 ^ wst_key[1];
    ASSERT_EQ(close_code_for(buf, n), 1002);
}

TEST(ws_proto_fragmented_ping_closes_1002)
{
    uint8_t buf[64];
    size_t n = raw_frame(buf, 0x09, 1, NULL, 0, 1);       /* ping without FIN */
    ASSERT_EQ(close_code_for(buf, n), 1002);
    n = raw_frame(buf, 0x0a, 1, NULL, 0, 1);              /* pong without FIN */
    ASSERT_EQ(close_code_for(buf, n), 1002);
}

TEST(ws_proto_length_top_bit_closes_1002)
{
    uint8_t buf[64];
    static const uint8_t ext[8] = { 0x80, 0, 0, 0, 0, 0, 0, 5 };
    size_t n = raw_frame(buf, 0x81, 127, ext, 8, 0);
    ASSERT_EQ(close_code_for(buf, n), 1002);
}

TEST(ws_proto_non_minimal_lengths_close_1002)
{
    uint8_t buf[256];
    static const uint8_t ext16[2] = { 0, 5 };                        /* 5 in 16 bits */
    static const uint8_t ext64[8] = { 0, 0, 0, 0, 0, 0, 0x01, 0 };   /* 256 in 64 bits */
    size_t n = raw_frame(buf, 0x81, 126, ext16, 2, 5);
    ASSERT_EQ(close_code_for(buf, n), 1002);
    n = raw_frame(buf, 0x81, 127, ext64, 8, 0);
    ASSERT_EQ(close_code_for(buf, n), 1002);
}

TEST(ws_proto_one_byte_close_payload_closes_1002)
{
    uint8_t buf[64];
    size_t n = wst_frame(buf, 1, 8, "\x03", 1, 1, wst_key);
    ASSERT_EQ(close_code_for(buf, n), 1002);
}

/* After a protocol error nothing more of the stream is read: a valid frame behind the
 * bad one is not dispatched, and exactly one close frame goes out. */
TEST(ws_proto_error_stops_reading)
{
    struct ws_fixture fx;
    uint8_t buf[256];
    static const uint8_t ext[2] = { 0, 126 };
    const uint8_t *p;
    size_t n, left;
    struct ws_sframe f;
    int closes = 0;

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    n = raw_frame(buf, 0x89, 126, ext, 2, 126);
    n += wst_frame(buf + n, 1, 1, "{}", 2, 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT_EQ(fx.ntexts, 0);
    wst_flush(&fx);
    p = (const uint8_t *)fx.out.data;
    left = fx.out.len;
    while (wst_next(&p, &left, &f) == 1)
        closes += f.opcode == 8;
    ASSERT_EQ(left, 0);
    ASSERT_EQ(closes, 1);
    ASSERT_EQ(wst_peer_eof(&fx, c), 0);   /* input dropped until the client's EOF */
    wst_free(&fx);
}

/* A ping between two fragments of a message, and the message's reply: the pong
 * answers something that came first, so it is written first. */
static void reply_to_text(struct ws_conn *c, const char *text, size_t len)
{
    (void)text;
    (void)len;
    ws_conn_send_json(c, "{\"type\":\"reply\"}", 16);
}

TEST(ws_proto_pong_before_later_replies)
{
    struct ws_fixture fx;
    uint8_t buf[256];
    const uint8_t *p;
    size_t n = 0, left;
    struct ws_sframe f;
    int order[8], nf = 0, pongs = 0;

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    fx.on_text = reply_to_text;
    struct ws_conn *c = wst_conn(&fx, 1);
    wst_flush(&fx);
    fx.out.len = 0;                                       /* the hello */
    n += wst_frame(buf + n, 0, 1, "{\"ty", 4, 1, wst_key);
    n += wst_frame(buf + n, 1, 9, "p1", 2, 1, wst_key);
    n += wst_frame(buf + n, 1, 0, "pe\":\"x\"}", 8, 1, wst_key);
    n += wst_frame(buf + n, 1, 9, "p2", 2, 1, wst_key);
    wst_feed(c, buf, n);
    wst_flush(&fx);
    p = (const uint8_t *)fx.out.data;
    left = fx.out.len;
    while (nf < 8 && wst_next(&p, &left, &f) == 1) {
        order[nf++] = f.opcode;
        pongs += f.opcode == 10;
    }
    ASSERT_EQ(nf, 3);
    ASSERT_EQ(pongs, 2);                                  /* one each, no duplicate */
    ASSERT_EQ(order[0], 10);
    ASSERT_EQ(order[1], 1);
    ASSERT_EQ(order[2], 10);
    ASSERT_EQ(fx.m->nconns, 1);
    wst_free(&fx);
}

/* A close already decided (a binary frame: 1003) and still inside wslay when a later
 * frame of the same read breaks the stream: that close goes out, once. */
TEST(ws_proto_error_after_close_keeps_first_code)
{
    struct ws_fixture fx;
    uint8_t buf[256];
    static const uint8_t ext[2] = { 0, 126 };
    const uint8_t *p;
    size_t n, left;
    struct ws_sframe f;
    int closes = 0, code = 0;

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    n = wst_frame(buf, 1, 2, "\x01", 1, 1, wst_key);
    n += raw_frame(buf + n, 0x89, 126, ext, 2, 126);
    wst_feed(c, buf, n);
    wst_flush(&fx);
    p = (const uint8_t *)fx.out.data;
    left = fx.out.len;
    while (wst_next(&p, &left, &f) == 1) {
        if (f.opcode == 8 && f.len >= 2) {
            closes++;
            code = (f.payload[0] << 8) | f.payload[1];
        }
    }
    ASSERT_EQ(closes, 1);
    ASSERT_EQ(code, 1003);
    ASSERT_EQ(wst_peer_eof(&fx, c), 0);
    wst_free(&fx);
}
