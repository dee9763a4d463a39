/* routes_rooms.c: the HTTP routes of rooms and members. Writes become room jobs
 * (rooms.c, members.c); usernames are resolved by the auth module through the
 * users.lookup request; the reads (routes_rooms_read.c) run on the thread pool. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/text.h"
#include "chatd/util.h"
#include "message_internal.h"

/* ---------- users.lookup ---------- */
struct lookup {
    struct room_job *j;              /* owned until queued */
    char (*names)[40];               /* owned, folded, distinct */
    int n;
};

static void lookup_free(struct lookup *l)
{
    if (l) {
        free(l->names);
        free(l);
    }
}

static int64_t user_id_of(const struct ev_users_lookup_reply *r, const char *name)
{
    for (size_t i = 0; i < r->nusers; i++)
        if (strcmp(r->users[i].username, name) == 0)
            return r->users[i].id;
    return 0;
}

static void note_unknown(struct room_job *j, const char *name)
{
    size_t len = strlen(j->unknown);
    if (len + strlen(name) + 3 < sizeof(j->unknown))
        snprintf(j->unknown + len, sizeof(j->unknown) - len, "%s%s", len ? ", " : "", name);
}

static void lookup_cb(void *ctx, int status, const void *reply)
{
    struct lookup *l = ctx;
    struct room_job *j = l->j;
    struct msg_state *st = j->st;
    const struct ev_users_lookup_reply *users = reply;

    msg_inflight_done(st);
    if (status < 0 || !users) {
        http_respond_error(j->req, 503, "the user directory did not answer");
        room_job_free(j);
        goto out;
    }
    if (j->op == ROOM_OP_CREATE) {
        j->invitees = calloc((size_t)l->n, sizeof(*j->invitees));
        if (!j->invitees) {
            http_respond_error(j->req, 503, "out of memory");
            room_job_free(j);
            goto out;
        }
    }
    for (int i = 0; i < l->n; i++) {
        int64_t id = user_id_of(users, l->names[i]);
        if (!id) {
            note_unknown(j, l->names[i]);
            continue;
        }
        struct member_ref *m = j->op == ROOM_OP_CREATE ? &j->invitees[j->ninvitees++]
                                                       : &j->target;
        m->id = id;
        snprintf(m->username, sizeof(m->username), "%s", l->names[i]);
    }
    /* Adding a member checks the caller's rights first (in the job), so that a
     * non-member learns nothing about which usernames exist. */
    if (j->unknown[0] && j->op != ROOM_OP_ADD) {
        http_respond_error(j->req, 404, "unknown user: %s", j->unknown);
        room_job_free(j);
        goto out;
    }
    if (j->op == ROOM_OP_DM && j->target.id == j->actor_id) {
        http_respond_error(j->req, 400, "a direct room needs another user");
        room_job_free(j);
        goto out;
    }
    room_job_queue(j);
out:
    lookup_free(l);
}

/* Takes j and l; answers the request on failure. */
static void lookup_start(struct msg_state *st, struct lookup *l)
{
    const char *names[MSG_ROOM_MAX_MEMBERS];
    for (int i = 0; i < l->n; i++)
        names[i] = l->names[i];
    struct ev_users_lookup q = { .usernames = names, .nusernames = (size_t)l->n };
    int64_t id = bus_request_ev(st->app->bus, &EV_USERS_LOOKUP, &q, MSG_LOOKUP_TIMEOUT_MS,
                                lookup_cb, l);
    if (id < 0) {
        http_respond_error(l->j->req, 503, "the user directory is not available");
        room_job_free(l->j);
        lookup_free(l);
        return;
    }
    st->inflight++;
}

static struct lookup *lookup_new(struct room_job *j, int max)
{
    struct lookup *l = calloc(1, sizeof(*l));
    if (l && !(l->names = calloc((size_t)(max > 0 ? max : 1), sizeof(*l->names)))) {
        free(l);
        l = NULL;
    }
    if (l)
        l->j = j;
    return l;
}

/* Adds a folded username unless it is there already. 0, or -EINVAL (not a username). */
static int lookup_add(struct lookup *l, const char *name)
{
    char folded[40];
    if (username_fold(name, folded, sizeof(folded)) < 0)
        return -EINVAL;
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], folded) == 0)
            return 0;
    snprintf(l->names[l->n++], sizeof(l->names[0]), "%s", folded);
    return 0;
}

/* ---------- POST /v1/rooms ---------- */
static const char *check_room_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (!name)
        return "name must be a string";
    if (n == 0 || n > MSG_ROOM_NAME_MAX)
        return "name must be 1 to 100 bytes";
    static const char *const faults[] = TEXT_FAULT_MESSAGES("name", "");
    return faults[text_check(name, n, 0)];
}

static void route_create(struct http_req *req, void *ctx)
{
    struct msg_state *st = ctx;
    const char *name = NULL, *why;
    struct room_job *j = NULL;
    struct lookup *l = NULL;
    cJSON *body = http_json_body(req);
    if (!body)
        return;
    json_get_str(body, "name", &name);
    const cJSON *members = cJSON_GetObjectItemCaseSensitive(body, "members");
    if ((why = check_room_name(name))) {
        http_respond_error(req, 400, "%s", why);
        goto out;
    }
    if (members && !cJSON_IsArray(members) && !cJSON_IsNull(members)) {
        http_respond_error(req, 400, "members must be an array of usernames");
        goto out;
    }
    int n = cJSON_GetArraySize(members);
    if (n >= MSG_ROOM_MAX_MEMBERS) {
        http_respond_error(req, 400, "a room holds at most %d members", MSG_ROOM_MAX_MEMBERS);
        goto out;
    }
    if (!(j = room_job_new(st, ROOM_OP_CREATE, req)) || !(l = lookup_new(j, n))) {
        http_respond_error(req, 503, "out of memory");
        goto out;
    }
    snprintf(j->name, sizeof(j->name), "%s", name);
    const cJSON *m;
    cJSON_ArrayForEach(m, members) {
        if (!cJSON_IsString(m) || lookup_add(l, m->valuestring) < 0) {
            http_respond_error(req, 400, "members must be usernames");
            goto out;
        }
    }
    /* The owner is a member anyway. */
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], j->actor_name) == 0)
            memcpy(l->names[i], l->names[--l->n], sizeof(l->names[0]));
    if (l->n == 0) {
        l->j = NULL;                 /* nobody to look up: straight to the writer */
        room_job_queue(j);
    } else {
        lookup_start(st, l);
        l = NULL;
    }
    j = NULL;
out:
    if (l)
        l->j = NULL;
    lookup_free(l);
    room_job_free(j);
    cJSON_Delete(body);
}

/* ---------- POST /v1/dm and POST /v1/rooms/{id}/members ---------- */
static void by_username(struct http_req *req, struct msg_state *st, int op, int64_t room_id)
{
    const char *username = NULL;
    char folded[40];
    struct room_job *j = NULL;
    struct lookup *l = NULL;
    cJSON *body = http_json_body(req);
    if (!body)
        return;
    if (json_get_str(body, "username", &username) < 0 ||
        username_fold(username, folded, sizeof(folded)) < 0) {
        http_respond_error(req, 400, "username must be a username");
        goto out;
    }
    if (op == ROOM_OP_DM && strcmp(folded, req->user.name) == 0) {
        http_respond_error(req, 400, "a direct room needs another user");
        goto out;
    }
    if (!(j = room_job_new(st, op, req)) || !(l = lookup_new(j, 1))) {
        http_respond_error(req, 503, "out of memory");
        goto out;
    }
    j->room_id = room_id;
    lookup_add(l, folded);
    lookup_start(st, l);
    j = NULL;
    l = NULL;
out:
    lookup_free(l);
    room_job_free(j);
    cJSON_Delete(body);
}

static void route_dm(struct http_req *req, void *ctx)
{
    if (((struct msg_state *)ctx)->draining) {
        http_respond_error(req, 503, "the server is shutting down");
        return;
    }
    by_username(req, ctx, ROOM_OP_DM, 0);
}

static void route_add_member(struct http_req *req, void *ctx)
{
    int64_t room_id = http_param_id(req, 0);
    if (room_id <= 0) {
        http_respond_error(req, 400, "invalid room id");
        return;
    }
    if (((struct msg_state *)ctx)->draining) {
        http_respond_error(req, 503, "the server is shutting down");
        return;
    }
    by_username(req, ctx, ROOM_OP_ADD, room_id);
}

static void route_remove_member(struct http_req *req, void *ctx)
{
    struct msg_state *st = ctx;
    int64_t room_id = http_param_id(req, 0), user_id = http_param_id(req, 1);
    if (room_id <= 0) {
        http_respond_error(req, 400, "invalid room id");
        return;
    }
    if (user_id <= 0) {
        http_respond_error(req, 400, "invalid user id");
        return;
    }
    struct room_job *j = room_job_new(st, ROOM_OP_REMOVE, req);
    if (!j) {
        http_respond_error(req, 503, "out of memory");
        return;
    }
    j->room_id = room_id;
    j->target.id = user_id;
    room_job_queue(j);
}

static void route_create_checked(struct http_req *req, void *ctx)
{
    if (((struct msg_state *)ctx)->draining) {
        http_respond_error(req, 503, "the server is shutting down");
        return;
    }
    route_create(req, ctx);
}

int routes_rooms_add(struct msg_state *st)
{
    struct http_server *s = st->app->http;
    int rc = 0;
    rc |= http_route(s, HTTP_VERB_POST, "/v1/rooms", HTTP_ROUTE_AUTH, route_create_checked, st);
    rc |= http_route(s, HTTP_VERB_GET, "/v1/rooms", HTTP_ROUTE_AUTH, rooms_route_list, st);
    rc |= http_route(s, HTTP_VERB_GET, "/v1/rooms/{id}", HTTP_ROUTE_AUTH, rooms_route_show,
                     st);
    rc |= http_route(s, HTTP_VERB_POST, "/v1/rooms/{id}/members", HTTP_ROUTE_AUTH,
                     route_add_member, st);
    rc |= http_route(s, HTTP_VERB_DELETE, "/v1/rooms/{id}/members/{user_id}",
                     HTTP_ROUTE_AUTH, route_remove_member, st);
    rc |= http_route(s, HTTP_VERB_POST, "/v1/dm", HTTP_ROUTE_AUTH, route_dm, st);
    return rc ? -EINVAL : 0;
}
