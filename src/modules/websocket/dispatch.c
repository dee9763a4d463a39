/* dispatch.c: what each client frame does. Nothing here touches the database or
 * another module: a send, typing or read becomes a bus event for the message module
 * (with an origin naming the connection, so the answer finds its way back), a sync a
 * bus request. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/log.h"
#include "ws_internal.h"

static void send_error(struct ws_conn *c, const char *code, const char *msg,
                       const char *client_msg_id)
{
    size_t len;

    ws_conn_send_frame(c, ws_json_error(code, msg, client_msg_id, &len), &len);
}

static void do_send(struct ws_conn *c, const struct ws_client_frame *f)
{
    struct ws_module *m = c->m;
    struct ev_origin o;
    struct ev_message_submitted ev = {
        .room_id = f->room_id, .sender_id = c->user_id, .sender = c->user->name,
        .body = f->body, .client_msg_id = f->client_msg_id, .origin = &o,
    };

    if (m->draining) {
        send_error(c, "unavailable", "the server is shutting down", f->client_msg_id);
        return;
    }
    /* The message rate per user is the message module's to enforce: one budget for
     * HTTP and WebSocket sends together. Past it the send comes back refused
     * (message.rejected, code rate_limited). */
    bus_origin_conn(m->app->bus, c->id, &o);
    /* The answer (message.stored or message.rejected) comes in a later dispatch. */
    c->pending_sends++;
    m->pending_sends++;
    if (bus_publish_ev(m->app->bus, &EV_MESSAGE_SUBMITTED, &ev) < 0) {
        c->pending_sends--;
        m->pending_sends--;
        send_error(c, "unavailable", "the message could not be submitted", f->client_msg_id);
    }
}

static void do_typing(struct ws_conn *c, const struct ws_client_frame *f)
{
    struct ws_module *m = c->m;
    double burst = m->typing_per_s > 1 ? m->typing_per_s : 1;
    struct ev_origin o;
    struct ev_typing_submitted ev = { .room_id = f->room_id, .user_id = c->user_id,
                                      .origin = &o };

    /* Excess typing frames are dropped silently: they are hints, not data. */
    if (token_bucket_take(&c->user->typing_bucket, m->typing_per_s, burst, mono_ms()) > 0)
        return;
    bus_origin_conn(m->app->bus, c->id, &o);
    bus_publish_ev(m->app->bus, &EV_TYPING_SUBMITTED, &ev);
}

static void do_read(struct ws_conn *c, const struct ws_client_frame *f)
{
    struct ev_origin o;
    struct ev_read_submitted ev = { .room_id = f->room_id, .user_id = c->user_id,
                                    .seq = f->seq, .origin = &o };

    bus_origin_conn(c->m->app->bus, c->id, &o);
    if (bus_publish_ev(c->m->app->bus, &EV_READ_SUBMITTED, &ev) < 0)
        send_error(c, "unavailable", "the read marker could not be submitted", NULL);
}

static void do_auth(struct ws_conn *c, const struct ws_client_frame *f)
{
    struct http_user u;
    const char *reason = "invalid";
    size_t len;

    memset(&u, 0, sizeof(u));
    if (http_verify_token(c->m->app->http, f->access_token, &u, &reason) < 0) {
        char msg[96];
        snprintf(msg, sizeof(msg), "the token was refused: %s", reason ? reason : "invalid");
        send_error(c, "unauthorized", msg, NULL);
        return;
    }
    if (u.id != c->user_id) {
        send_error(c, "forbidden", "the token belongs to another user", NULL);
        return;
    }
    c->token_exp = u.token_exp;
    ws_conn_send_frame(c, ws_json_printf(&len, "{\"type\":\"auth.ok\",\"expires_at\":%lld}",
                                         (long long)ws_exp_ms(u.token_exp)), &len);
}

static void do_ping(struct ws_conn *c)
{
    size_t len;

    ws_conn_send_frame(c, ws_json_printf(&len, "{\"type\":\"pong\",\"server_time\":%lld}",
                                         (long long)now_ms()), &len);
}

/* A bad client frame: error frame, and 1008 after too many. */
static void bad_frame(struct ws_conn *c, const char *code, const char *msg,
                      const char *client_msg_id)
{
    uint64_t now = mono_ms();

    if (now - c->bad_window_start > WS_BAD_WINDOW_MS || !c->bad_window_start) {
        c->bad_window_start = now;
        c->bad_count = 0;
    }
    send_error(c, code, msg, client_msg_id);
    if (++c->bad_count >= WS_BAD_FRAMES_MAX)
        ws_conn_close(c, 1008, "too many bad frames");
}

void ws_dispatch_text(struct ws_conn *c, const char *text, size_t len)
{
    struct ws_client_frame f;
    const char *err = NULL;

    if (ws_frame_decode(text, len, &f, &err) < 0) {
        bad_frame(c, "invalid_argument", err, f.client_msg_id);
        ws_frame_free(&f);
        return;
    }
    switch (f.type) {
    case WS_F_SEND:   do_send(c, &f); break;
    case WS_F_TYPING: do_typing(c, &f); break;
    case WS_F_READ:   do_read(c, &f); break;
    case WS_F_AUTH:   do_auth(c, &f); break;
    case WS_F_PING:   do_ping(c); break;
    case WS_F_SYNC:
        if (c->sync)
            send_error(c, "conflict", "a sync is already running on this connection", NULL);
        else if (ws_sync_begin(c, f.rooms) < 0)
            send_error(c, "unavailable", "sync is not available right now", NULL);
        break;
    }
    ws_frame_free(&f);
}
