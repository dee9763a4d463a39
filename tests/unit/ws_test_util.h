/* ws_test_util.h: helpers for the websocket unit tests: a module with no socket and
 * no bus (frames land in a capture buffer), client frame builders (masked, as a
 * browser sends them), and a parser for the server's unmasked frames. */
#ifndef CHATD_WS_TEST_UTIL_H
#define CHATD_WS_TEST_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/metrics.h"
#include "../../src/modules/websocket/ws_internal.h"
#include "../../src/modules/websocket/ws_settings.h"

struct ws_fixture {
    struct chatd app;
    struct chatd_config cfg;
    struct ws_module *m;
    struct strbuf out;               /* server bytes */
    struct strbuf texts;             /* text messages received, each + '\n' */
    int ntexts;
};

struct ws_sframe { int opcode; int fin; uint8_t *payload; size_t len; };

static inline void wst_on_text(struct ws_conn *c, const char *text, size_t len)
{
    struct ws_fixture *fx = (struct ws_fixture *)c->m->app->module_states;
    strbuf_append(&fx->texts, text, len);
    strbuf_append(&fx->texts, "\n", 1);
    fx->ntexts++;
}

/* dispatch: 1 = real frame dispatch (no bus: only frames that fail to decode). */
static inline int wst_init(struct ws_fixture *fx, int max_msg, size_t queue_bytes, int dispatch)
{
    memset(fx, 0, sizeof(*fx));
    config_defaults(&fx->cfg);
    struct ws_settings *ws = config_module_settings(&fx->cfg, &ws_settings_table);
    if (max_msg)
        ws->max_message_bytes = max_msg;
    if (queue_bytes)
        ws->send_queue_bytes = (int)queue_bytes;
    fx->app.cfg = &fx->cfg;
    if (metrics_new(&fx->app.metrics) < 0)
        return -1;
    fx->app.module_states = (void **)fx;   /* lets the text hook find the fixture */
    if (ws_module_new(&fx->app, &fx->m) < 0)
        return -1;
    strbuf_init(&fx->out, 64 << 20);
    strbuf_init(&fx->texts, 64 << 20);
    fx->m->capture = &fx->out;
    if (!dispatch)
        fx->m->on_text = wst_on_text;
    return 0;
}

static inline void wst_free(struct ws_fixture *fx)
{
    ws_module_free(fx->m);
    metrics_free(fx->app.metrics);
    strbuf_free(&fx->out);
    strbuf_free(&fx->texts);
}

static inline struct ws_conn *wst_conn(struct ws_fixture *fx, int64_t user_id)
{
    struct http_user u;
    struct ws_conn *c = NULL;

    memset(&u, 0, sizeof(u));
    u.id = user_id;
    snprintf(u.name, sizeof(u.name), "user%lld", (long long)user_id);
    u.token_exp = 0;
    if (ws_conn_new(fx->m, NULL, &u, &c) < 0)
        return NULL;
    return c;
}

/* A client frame: masked with key unless masked == 0. Returns its length in out. */
static inline size_t wst_frame(uint8_t *out, int fin, int opcode, const void *payload,
                               size_t len, int masked, const uint8_t key[4])
{
    size_t n = 0;
    out[n++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    uint8_t mbit = masked ? 0x80 : 0;
    if (len < 126) {
        out[n++] = (uint8_t)(mbit | len);
    } else if (len <= 0xffff) {
        out[n++] = mbit | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = mbit | 127;
        for (int i = 0; i < 8; i++)
            out[n++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    if (masked) {
        memcpy(out + n, key, 4);
        n += 4;
    }
    for (size_t i = 0; i < len; i++)
        out[n + i] = ((const uint8_t *)payload)[i] ^ (masked ? key[i % 4] : 0);
    return n + len;
}

static const uint8_t wst_key[4] = { 0x37, 0xfa, 0x21, 0x3d };

/* Parses the next server frame from *buf; 1 when one was read, 0 at the end, -1 bad. */
static inline int wst_next(const uint8_t **buf, size_t *left, struct ws_sframe *f)
{
    const uint8_t *p = *buf;
    size_t n = *left, h = 2;
    uint64_t len;

    if (n == 0)
        return 0;
    if (n < 2 || (p[1] & 0x80))
        return -1;   /* truncated, or masked (a server must not mask) */
    len = p[1] & 0x7f;
    if (len == 126) {
        if (n < 4) return -1;
        len = ((uint64_t)p[2] << 8) | p[3];
        h = 4;
    } else if (len == 127) {
        if (n < 10) return -1;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | p[2 + i];
        h = 10;
    }
    if (n < h + len)
        return -1;
    f->fin = (p[0] & 0x80) != 0;
    f->opcode = p[0] & 0x0f;
    f->payload = (uint8_t *)p + h;
    f->len = (size_t)len;
    *buf = p + h + len;
    *left = n - h - len;
    return 1;
}

/* Flushes and returns the close code in the server's output (0 when no close frame),
 * counting text frames holding needle in *matches (may be NULL). */
static inline int wst_scan(struct ws_fixture *fx, const char *needle, int *matches)
{
    const uint8_t *p;
    size_t left;
    struct ws_sframe f;
    int code = 0;

    ws_flush_all(fx->m);
    p = (const uint8_t *)fx->out.data;
    left = fx->out.len;
    if (matches)
        *matches = 0;
    while (wst_next(&p, &left, &f) == 1) {
        if (f.opcode == 8 && f.len >= 2)
            code = (f.payload[0] << 8) | f.payload[1];
        if (f.opcode == 1 && needle && matches &&
            memmem(f.payload, f.len, needle, strlen(needle)))
            (*matches)++;
    }
    return code;
}

#endif
