/* The JSON frame decoder for every client frame type and bad input, the handshake
 * accept key, the registry map. */
#include "test.h"
#include "ws_test_util.h"

static int decode(const char *s, struct ws_client_frame *f, const char **err)
{
    *err = NULL;
    return ws_frame_decode(s, strlen(s), f, err);
}

TEST(ws_frames_send)
{
    struct ws_client_frame f;
    const char *err;

    ASSERT_EQ(decode("{\"type\":\"send\",\"room_id\":3,\"body\":\"hi\",\"client_msg_id\":\"c1\"}",
                     &f, &err), 0);
    ASSERT_EQ(f.type, WS_F_SEND);
    ASSERT_EQ(f.room_id, 3);
    ASSERT_STR_EQ(f.body, "hi");
    ASSERT_STR_EQ(f.client_msg_id, "c1");
    ws_frame_free(&f);
    ASSERT_EQ(decode("{\"type\":\"send\",\"room_id\":3,\"body\":\"hi\"}", &f, &err), 0);
    ASSERT(f.client_msg_id == NULL);
    ws_frame_free(&f);
}

TEST(ws_frames_send_bad)
{
    static const char *const bad[] = {
        "{\"type\":\"send\",\"body\":\"hi\"}",
        "{\"type\":\"send\",\"room_id\":\"3\",\"body\":\"hi\"}",
        "{\"type\":\"send\",\"room_id\":0,\"body\":\"hi\"}",
        "{\"type\":\"send\",\"room_id\":1.5,\"body\":\"hi\"}",
        "{\"type\":\"send\",\"room_id\":3}",
        "{\"type\":\"send\",\"room_id\":3,\"body\":7}",
        "{\"type\":\"send\",\"room_id\":3,\"body\":\"x\",\"client_msg_id\":5}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ws_client_frame f;
        const char *err;
        ASSERT_EQ(decode(bad[i], &f, &err), -EINVAL);
        ASSERT(err && *err);
        ws_frame_free(&f);
    }
}

TEST(ws_frames_typing_read_auth_ping)
{
    struct ws_client_frame f;
    const char *err;

    ASSERT_EQ(decode("{\"type\":\"typing\",\"room_id\":9}", &f, &err), 0);
    ASSERT_EQ(f.type, WS_F_TYPING);
    ASSERT_EQ(f.room_id, 9);
    ws_frame_free(&f);
    ASSERT_EQ(decode("{\"type\":\"read\",\"room_id\":9,\"seq\":12}", &f, &err), 0);
    ASSERT_EQ(f.type, WS_F_READ);
    ASSERT_EQ(f.seq, 12);
    ws_frame_free(&f);
    ASSERT_EQ(decode("{\"type\":\"read\",\"room_id\":9}", &f, &err), -EINVAL);
    ws_frame_free(&f);
    ASSERT_EQ(decode("{\"type\":\"read\",\"room_id\":9,\"seq\":-1}", &f, &err), -EINVAL);
    ws_frame_free(&f);
    ASSERT_EQ(decode("{\"type\":\"typing\"}", &f, &err), -EINVAL);
    ws_frame_free(&f);
    ASSERT_EQ(decode("{\"type\":\"auth\",\"access_token\":\"abc\"}", &f, &err), 0);
    ASSERT_EQ(f.type, WS_F_AUTH);
    ASSERT_STR_EQ(f.access_token, "abc");
    ws_frame_free(&f);
    ASSERT_EQ(decode("{\"type\":\"auth\",\"access_token\":\"\"}", &f, &err), -EINVAL);
    ws_frame_free(&f);
    ASSERT_EQ(decode("{\"type\":\"auth\"}", &f, &err), -EINVAL);
    ws_frame_free(&f);
    ASSERT_EQ(decode("{\"type\":\"ping\"}", &f, &err), 0);
    ASSERT_EQ(f.type, WS_F_PING);
    ws_frame_free(&f);
}

TEST(ws_frames_sync)
{
    struct ws_client_frame f;
    const char *err;

    ASSERT_EQ(decode("{\"type\":\"sync\",\"rooms\":{\"1\":0,\"22\":17}}", &f, &err), 0);
    ASSERT_EQ(f.type, WS_F_SYNC);
    ASSERT_EQ(cJSON_GetArraySize(f.rooms), 2);
    ws_frame_free(&f);
    ASSERT_EQ(decode("{\"type\":\"sync\",\"rooms\":{}}", &f, &err), 0);
    ws_frame_free(&f);
    static const char *const bad[] = {
        "{\"type\":\"sync\"}",
        "{\"type\":\"sync\",\"rooms\":[1,2]}",
        "{\"type\":\"sync\",\"rooms\":{\"x\":1}}",
        "{\"type\":\"sync\",\"rooms\":{\"0\":1}}",
        "{\"type\":\"sync\",\"rooms\":{\"1\":-1}}",
        "{\"type\":\"sync\",\"rooms\":{\"1\":1.5}}",
        "{\"type\":\"sync\",\"rooms\":{\"1\":\"3\"}}",
        /* A room named twice would be replayed twice. */
        "{\"type\":\"sync\",\"rooms\":{\"3\":5,\"4\":0,\"3\":0}}",
        "{\"type\":\"sync\",\"rooms\":{\"1\":0,\"01\":0}}",
        /* Past 2^53 the id would not survive the request to the message module. */
        "{\"type\":\"sync\",\"rooms\":{\"9007199254740993\":0}}",
        "{\"type\":\"sync\",\"rooms\":{\"99999999999999999999\":0}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ASSERT_EQ(decode(bad[i], &f, &err), -EINVAL);
        ws_frame_free(&f);
    }
}

TEST(ws_frames_bad_input)
{
    static const char *const bad[] = {
        "", "null", "[]", "\"send\"", "{", "{\"type\":1}", "{\"kind\":\"send\"}",
        "{\"type\":\"nope\"}", "{\"type\":\"send\"} trailing", "42",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ws_client_frame f;
        const char *err;
        ASSERT_EQ(decode(bad[i], &f, &err), -EINVAL);
        ASSERT(err != NULL);
        ws_frame_free(&f);
    }
}

TEST(ws_frames_deep_nesting_refused)
{
    char s[400];
    size_t n = 0;
    struct ws_client_frame f;
    const char *err;

    n += (size_t)snprintf(s, sizeof(s), "{\"type\":\"ping\",\"x\":");
    for (int i = 0; i < 100; i++)
        s[n++] = '[';
    for (int i = 0; i < 100; i++)
        s[n++] = ']';
    s[n++] = '}';
    s[n] = 0;
    ASSERT_EQ(decode(s, &f, &err), -EINVAL);
    ws_frame_free(&f);
}

TEST(ws_frames_server_json)
{
    size_t len;
    char *s = ws_json_error("rate_limited", "slow \"down\"", "c-9", &len);

    ASSERT(s);
    ASSERT_STR_EQ(s, "{\"type\":\"error\",\"code\":\"rate_limited\",\"message\":"
                     "\"slow \\\"down\\\"\",\"client_msg_id\":\"c-9\"}");
    ASSERT_EQ(len, strlen(s));
    free(s);
}

/* RFC 6455 section 1.3's example. */
TEST(ws_frames_accept_key)
{
    char out[32];

    ASSERT_EQ(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(ws_registry_users)
{
    struct ws_fixture fx;

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    struct ws_conn *a = wst_conn(&fx, 5), *b = wst_conn(&fx, 5), *c = wst_conn(&fx, 6);
    ASSERT(a && b && c);
    struct ws_user *u = ws_registry_user(fx.m, 5);
    ASSERT(u);
    ASSERT_EQ(u->nconns, 2);
    ASSERT(ws_registry_conn(fx.m, b->id) == b);
    wst_drop(b);
    ASSERT_EQ(ws_registry_user(fx.m, 5)->nconns, 1);
    wst_drop(a);
    ASSERT(ws_registry_user(fx.m, 5) == NULL);
    ASSERT_EQ(fx.m->nconns, 1);
    wst_free(&fx);
}

/* Leaving from the front, the middle and the end of a user's list keeps the rest. */
TEST(ws_registry_user_list_unlinks_anywhere)
{
    struct ws_fixture fx;
    struct ws_conn *c[5];
    int n = 0;

    ASSERT(wst_init(&fx, 0, 0, 0) == 0);
    for (int i = 0; i < 5; i++)
        ASSERT((c[i] = wst_conn(&fx, 7)) != NULL);
    wst_drop(c[4]);          /* the list's head: the newest */
    wst_drop(c[2]);
    wst_drop(c[0]);          /* its tail */
    struct ws_user *u = ws_registry_user(fx.m, 7);
    ASSERT(u && u->nconns == 2);
    for (struct ws_conn *k = u->conns; k; k = k->user_next) {
        ASSERT(k == c[1] || k == c[3]);
        ASSERT(k->user_next == NULL || k->user_next->user_prev == k);
        n++;
    }
    ASSERT_EQ(n, 2);
    ASSERT(u->conns->user_prev == NULL);
    wst_free(&fx);
}
