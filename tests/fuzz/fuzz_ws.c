/* fuzz_ws.c: the WebSocket frame path after the upgrade. Client bytes go into one
 * connection (wslay's frame parser, masking, fragmentation, control frames, the message
 * size limit, close codes), split into pieces at points the input chooses. Complete
 * text messages go through the frame decoder; the ones dispatch can take without a bus
 * (bad frames, which count towards the 1008 close, and pings) go through dispatch too.
 * With the first byte's top bit set the pieces go to two connections in turn, since
 * some of the receive state is the module's, shared by every connection. Every message
 * handed on must be valid UTF-8 (wslay checked it). The server's output is flushed
 * into a capture buffer and parsed back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/metrics.h"
#include "chatd/text.h"
#include "../../src/modules/websocket/ws_internal.h"
#include "../../src/modules/websocket/ws_settings.h"

static void on_text(struct ws_conn *c, const char *text, size_t len)
{
    struct ws_client_frame f;
    const char *err = NULL;
    int rc;

    if (!utf8_valid(text, len))
        abort();
    rc = ws_frame_decode(text, len, &f, &err);
    ws_frame_free(&f);
    if (rc < 0 || f.type == WS_F_PING)
        ws_dispatch_text(c, text, len);
}

/* The server's frames must parse: unmasked, lengths inside the buffer, final, of the
 * opcodes a server sends; a close frame has no 1-byte payload and, when the output is
 * one connection's, is the last. */
static void check_output(const struct strbuf *out, int one_conn)
{
    const uint8_t *p = (const uint8_t *)out->data;
    size_t n = out->len;
    int closed = 0;

    while (n) {
        size_t h = 2;
        uint64_t len;
        if (n < 2 || (p[1] & 0x80) || (closed && one_conn) || (p[0] & 0xf0) != 0x80)
            abort();
        closed = 0;
        switch (p[0] & 0x0f) {
        case WSLAY_TEXT_FRAME: case WSLAY_PING: case WSLAY_PONG: break;
        case WSLAY_CONNECTION_CLOSE: closed = 1; break;
        default: abort();
        }
        len = p[1] & 0x7f;
        if (len == 126) {
            if (n < 4)
                abort();
            len = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (len == 127) {
            if (n < 10)
                abort();
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | p[2 + i];
            h = 10;
        }
        if (n - h < len || (closed && len == 1))
            abort();
        p += h + len;
        n -= h + len;
    }
}

/* c when it is still open (a closed one may be freed already: found by address only). */
static struct ws_conn *alive(struct ws_module *m, struct ws_conn *c)
{
    for (struct ws_conn *x = m->all; x; x = x->next)
        if (x == c)
            return x->state == WS_OPEN ? x : NULL;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chatd app;
    struct chatd_config cfg;
    struct ws_module *m;
    struct strbuf out;
    struct http_user u;
    struct ws_conn *c[2] = { NULL, NULL };
    size_t piece;
    int nconns, turn = 0;

    if (size == 0)
        return 0;
    piece = data[0] & 0x7f;          /* bytes per read; 0: all at once */
    nconns = data[0] & 0x80 ? 2 : 1;
    data++;
    size--;
    memset(&app, 0, sizeof(app));
    config_defaults(&cfg);
    /* Small limits, so that short inputs reach them. */
    struct ws_settings *ws = config_module_settings(&cfg, &ws_settings_table);
    ws->max_message_bytes = 1024;
    ws->send_queue_bytes = 8192;
    app.cfg = &cfg;
    if (metrics_new(&app.metrics) < 0 || ws_module_new(&app, &m) < 0)
        abort();
    strbuf_init(&out, 16 << 20);
    m->capture = &out;
    m->on_text = on_text;
    memset(&u, 0, sizeof(u));
    snprintf(u.name, sizeof(u.name), "alice");
    for (int i = 0; i < nconns; i++) {
        u.id = 1 + i;
        if (ws_conn_new(m, NULL, &u, &c[i]) < 0)
            abort();
    }
    /* Without a socket a failed connection is freed at once: stop feeding it then. */
    for (size_t off = 0; off < size;) {
        size_t n = piece && piece < size - off ? piece : size - off;
        struct ws_conn *to = alive(m, c[turn]);
        if (!to && !(to = alive(m, c[turn ^ (nconns - 1)])))
            break;
        ws_conn_feed(to, data + off, n);
        off += n;
        turn = (turn + 1) % nconns;
    }
    ws_flush_all(m);
    check_output(&out, nconns == 1);
    ws_module_free(m);
    metrics_free(app.metrics);
    strbuf_free(&out);
    return 0;
}
