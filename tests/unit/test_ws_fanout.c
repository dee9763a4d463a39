/* The edges of a connection's life: a destroy in the middle of a feed, an absurd
 * token exp. */
#include <errno.h>
#include <stdio.h>
#include <stdint.h>

#include "test.h"
#include "ws_test_util.h"

/* Without a socket the free is immediate: a connection destroyed by a callback in the
 * middle of a feed (here the text hook) must outlive the rest of that feed, and the
 * frames after it in the same read are dropped. */
static void destroy_on_text(struct ws_conn *c, const char *text, size_t len)
{
    wst_on_text(c, text, len);
    ws_conn_destroy(c);
}

TEST(ws_conn_destroyed_inside_feed)
{
    struct ws_fixture fx;
    uint8_t buf[256];
    size_t n = 0;

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    fx.m->on_text = destroy_on_text;
    struct ws_conn *c = wst_conn(&fx, 1);
    ASSERT(c);
    n += wst_frame(buf + n, 1, 1, "{\"a\":1}", 7, 1, wst_key);
    n += wst_frame(buf + n, 1, 9, "p", 1, 1, wst_key);       /* a ping to answer */
    n += wst_frame(buf + n, 1, 1, "{\"a\":2}", 7, 1, wst_key);
    ws_conn_feed(c, buf, n);
    ASSERT_EQ(fx.ntexts, 1);
    ASSERT_EQ(fx.m->nalive, 0);
    ASSERT_EQ(fx.m->nconns, 0);
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
