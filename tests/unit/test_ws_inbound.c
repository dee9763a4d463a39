/* Incoming messages gathered by core's ws_stream_rx.c: what a partial frame holds, messages put
 * together from pieces, and which bytes count as progress for the stall check. */
#include "test.h"
#include "ws_test_util.h"

TEST(ws_inbound_partial_frame_holds_what_arrived)
{
    struct ws_fixture fx;
    static uint8_t buf[70000];
    char *text = malloc(60000);

    ASSERT(text);
    memset(text, ' ', 60000);
    text[0] = '{';
    text[59999] = '}';
    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    size_t n = wst_frame(buf, 1, 1, text, 60000, 1, wst_key);
    wst_feed(c, buf, 8 + 10);              /* header (64-bit length), mask, 10 bytes */
    ASSERT(c->stream->wslay != NULL);
    ASSERT(c->stream->rx_cap <= 1024);                 /* not the 60000 announced */
    ASSERT_EQ(c->stream->rx_len, 10);
    wst_feed(c, buf + 18, n - 18);
    ASSERT_EQ(fx.ntexts, 1);
    ASSERT_EQ(fx.texts.len, 60001);
    ASSERT(memcmp(fx.texts.data, text, 60000) == 0);
    ASSERT(c->stream->rx == NULL);                     /* freed with the message */
    ASSERT(c->stream->wslay == NULL);
    free(text);
    wst_free(&fx);
}

TEST(ws_inbound_idle_is_never_stalled)
{
    struct ws_fixture fx;
    uint8_t buf[64];

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    ASSERT_EQ(ws_rx_stalled(c->stream, mono_ms() + 100000, 1000), 0);
    size_t n = wst_frame(buf, 1, 1, "{}", 2, 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT_EQ(ws_rx_stalled(c->stream, mono_ms() + 100000, 1000), 0);
    wst_free(&fx);
}

TEST(ws_inbound_partial_frame_stalls)
{
    struct ws_fixture fx;
    uint8_t buf[64];

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    size_t n = wst_frame(buf, 1, 1, "{\"type\":\"ping\"}", 15, 1, wst_key);
    wst_feed(c, buf, 3);                   /* part of the header */
    ASSERT_EQ(ws_rx_stalled(c->stream, c->stream->rx_progress_ms + 999, 1000), 0);
    ASSERT_EQ(ws_rx_stalled(c->stream, c->stream->rx_progress_ms + 1000, 1000), 1);
    c->stream->rx_progress_ms -= 5000;
    wst_feed(c, buf + 3, 5);               /* more of the lone frame: progress */
    ASSERT_EQ(c->stream->rx_progress_ms, c->stream->last_rx_ms);
    wst_feed(c, buf + 8, n - 8);
    ASSERT_EQ(fx.ntexts, 1);
    ASSERT_EQ(ws_rx_stalled(c->stream, mono_ms() + 100000, 1000), 0);
    wst_free(&fx);
}

/* Inside a fragmented message a ping is no progress, a data fragment is. */
TEST(ws_inbound_pings_between_fragments_are_no_progress)
{
    struct ws_fixture fx;
    uint8_t buf[64];
    size_t n;

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    n = wst_frame(buf, 0, 1, "{\"ty", 4, 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT(c->stream->wslay->in_message);
    c->stream->rx_progress_ms -= 5000;
    uint64_t mark = c->stream->rx_progress_ms;
    n = wst_frame(buf, 1, 9, "hb", 2, 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT_EQ(c->stream->rx_progress_ms, mark);
    ASSERT_EQ(ws_rx_stalled(c->stream, c->stream->last_rx_ms, 1000), 1);
    n = wst_frame(buf, 0, 0, "pe\":", 4, 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT_EQ(c->stream->rx_progress_ms, c->stream->last_rx_ms);
    n = wst_frame(buf, 1, 0, "\"x\"}", 4, 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT_EQ(fx.ntexts, 1);
    ASSERT_STR_EQ(fx.texts.data, "{\"type\":\"x\"}\n");
    wst_free(&fx);
}

/* A connection that starts closing gives up the message it was receiving at once,
 * whichever way the close came: a broken stream, or a close wslay queued. */
TEST(ws_inbound_closing_frees_the_open_message)
{
    static const uint8_t ping126[] = { 0x89, 0xfe, 0x00, 0x7e };   /* a ping over 125 */
    static const uint8_t bad_utf8[] = { 0xc3, 0x28 };

    for (int how = 0; how < 2; how++) {
        struct ws_fixture fx;
        uint8_t buf[64];
        size_t n;

        ASSERT(wst_init(&fx, 0, 0, 0) == 0);
        struct ws_conn *c = wst_conn(&fx, 1);
        n = wst_frame(buf, 0, 1, "{\"type\":", 8, 1, wst_key);
        wst_feed(c, buf, n);
        ASSERT(c->stream->rx != NULL);
        if (how == 0) {
            wst_feed(c, ping126, sizeof(ping126));
        } else {
            n = wst_frame(buf, 1, 0, bad_utf8, sizeof(bad_utf8), 1, wst_key);
            wst_feed(c, buf, n);
        }
        ASSERT(c->stream->state != WS_OPEN);
        ASSERT(c->stream->rx == NULL);
        ASSERT_EQ(wst_scan(&fx, NULL, NULL), how == 0 ? 1002 : 1007);
        wst_free(&fx);
    }
}

/* The frame-start state that lets a whole frame be handed on from wslay's buffer is
 * the module's, not the connection's: it holds because wslay starts a frame only with
 * its first payload bytes, in the same read. A frame header from another connection
 * between two reads of one frame must not make the second read pass for the whole
 * message (its first bytes would be lost, and the rest could start mid-character). */
TEST(ws_inbound_frame_start_of_another_connection)
{
    struct ws_fixture fx;
    static uint8_t a[64], b[128];
    const char *msg = "{\"type\":\"x\",\"body\":\"\xe2\x82\xac 0123456789\"}";
    size_t len = strlen(msg), split = 21;   /* inside the euro sign */

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c1 = wst_conn(&fx, 1), *c2 = wst_conn(&fx, 2);
    size_t nb = wst_frame(b, 1, 1, msg, len, 1, wst_key);
    /* c2's next frame announces as many bytes as c1 has still to send */
    size_t na = wst_frame(a, 1, 1, msg + split, len - split, 1, wst_key);
    size_t hb = nb - len, ha = na - (len - split);

    wst_feed(c1, b, hb + split);          /* c1: header and the first bytes */
    ASSERT_EQ(c1->stream->rx_len, split);
    wst_feed(c2, a, ha);                  /* c2: a frame header only */
    wst_feed(c1, b + hb + split, nb - hb - split);   /* c1: the rest */
    ASSERT_EQ(fx.ntexts, 1);
    ASSERT_EQ(fx.texts.len, len + 1);
    ASSERT(memcmp(fx.texts.data, msg, len) == 0);
    wst_feed(c2, a + ha, na - ha);        /* c2's own frame is whole, and refused */
    wst_free(&fx);
}

/* A frame refused for bad UTF-8 in its first bytes is started without a first chunk:
 * what was noted of its start must not be taken for the next frame's, another
 * connection's, whose last read then announced the same length. */
TEST(ws_inbound_refused_frame_start_is_forgotten)
{
    struct ws_fixture fx;
    static uint8_t b[128], bad[64];
    const char *msg = "{\"type\":\"x\",\"body\":\"\xe2\x82\xac 0123456789\"}";
    size_t len = strlen(msg), split = 21;   /* inside the euro sign */
    char junk[64];

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *c1 = wst_conn(&fx, 1), *c2 = wst_conn(&fx, 2);
    size_t nb = wst_frame(b, 1, 1, msg, len, 1, wst_key), hb = nb - len;
    memset(junk, 'a', sizeof(junk));
    junk[0] = (char)0xff;                     /* never in UTF-8 */
    size_t nbad = wst_frame(bad, 1, 1, junk, len - split, 1, wst_key);

    wst_feed(c1, b, hb + split);          /* c1: header and the first bytes */
    wst_feed(c2, bad, nbad);              /* c2: refused, 1007 */
    ASSERT(c2->stream->state != WS_OPEN);
    wst_feed(c1, b + hb + split, nb - hb - split);   /* c1: the rest */
    ASSERT_EQ(fx.ntexts, 1);
    ASSERT_EQ(fx.texts.len, len + 1);
    ASSERT(memcmp(fx.texts.data, msg, len) == 0);
    wst_free(&fx);
}

/* max_message_bytes bounds messages, not control frames: below 125 bytes it still lets
 * a ping of 125 through (RFC 6455 allows it), while a text frame one byte past it gets
 * 1009. */
TEST(ws_inbound_small_limit_still_takes_full_pings)
{
    struct ws_fixture fx;
    static uint8_t buf[256], payload[125];
    const uint8_t *p;
    size_t left;
    struct ws_sframe f;
    int pongs = 0;

    memset(payload, 'p', sizeof(payload));
    ASSERT(wst_init(&fx, 64, 0, 0) == 0);
    struct ws_conn *c = wst_conn(&fx, 1);
    size_t n = wst_frame(buf, 1, 9, payload, sizeof(payload), 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT_EQ(c->stream->state, WS_OPEN);
    wst_flush(&fx);
    p = (const uint8_t *)fx.out.data;
    left = fx.out.len;
    while (wst_next(&p, &left, &f) == 1)
        pongs += f.opcode == 10 && f.len == sizeof(payload);
    ASSERT_EQ(pongs, 1);
    n = wst_frame(buf, 1, 1, payload, 65, 1, wst_key);
    wst_feed(c, buf, n);
    ASSERT_EQ(wst_scan(&fx, NULL, NULL), 1009);
    ASSERT_EQ(fx.ntexts, 0);
    wst_free(&fx);
}
