/* fanout.c: who gets a notification for a stored message.
 *
 * Our read model of presence: the set of users with an open WebSocket, fed by
 * presence.changed (the presence module's word, not ours to compute).
 *
 * For each message.stored (not a duplicate), every member other than the sender who
 * is not online gets one notification.requested per push subscription and, when a
 * webhook is configured, one for the webhook. The delivery itself happens in the
 * consumers of notification.requested (push.c, webhook.c), each retried and
 * dead-lettered on its own by the bus.
 *
 * Finding a recipient's subscriptions needs the database, so it runs on the thread
 * pool (db_read), for the recipients that may have one: the set n->subscribers holds
 * every user who subscribed (loaded at start, added to on each subscribe) and loses a
 * user only when a lookup finds nothing for it and nobody subscribed meanwhile (the
 * generation check). Most messages to users without subscriptions cost no lookup.
 *
 * This handler is itself a bus consumer with retries: when too many lookups are in
 * flight, or a lookup fails, the event comes back later instead of being lost. Events
 * are published only once the lookup succeeded, so a retry does not double them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/db.h"
#include "chatd/event_codec.h"
#include "chatd/events.h"
#include "chatd/log.h"
#include "chatd/util.h"
#include "notification_internal.h"

int notif_on_presence(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    const struct ev_presence_changed *m = ev->data;
    struct notif *n = ctx;
    (void)d;
    if (m->status == EV_ONLINE) {
        /* At the bound the user counts as offline: one push too many, never one lost. */
        if (idset_put(&n->online, m->user_id, 1) < 0)
            LOG_WARN(n->app, NOTIF_MOD, "online set full user_id=%lld",
                     (long long)m->user_id);
    } else {
        idset_del(&n->online, m->user_id);
    }
    return 0;
}

size_t notif_utf8_cut(const char *s, size_t len, size_t max_chars)
{
    size_t i = 0, chars = 0;
    while (i < len && chars < max_chars) {
        unsigned char c = (unsigned char)s[i];
        size_t step = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (i + step > len)
            break;                    /* a truncated sequence: stop before it */
        i += step;
        chars++;
    }
    return i;
}

static int publish(struct notif *n, enum ev_channel channel, int64_t recipient,
                   int64_t sub_id, struct ev_msg *msg)
{
    struct ev_notification_requested r = {
        .channel = channel, .recipient_id = recipient, .subscription_id = sub_id,
        .message = msg,
    };
    return bus_publish_ev(n->app->bus, &EV_NOTIFICATION_REQUESTED, &r);
}

struct lookup {
    struct notif *n;
    struct bus_delivery *d;
    struct ev_msg *msg;              /* the event's: it lives until bus_complete(d) */
    int64_t *ids;                    /* owned: offline recipients */
    uint32_t *gens;                  /* owned: their generation in n->subscribers */
    size_t nids, nlook;              /* all of them; the first nlook are looked up */
    struct subs_row *rows;           /* owned, filled on the pool thread */
    size_t nrows, caprows;
};

static void lookup_free(struct lookup *l)
{
    free(l->ids);
    free(l->gens);
    free(l->rows);
    free(l);
}

static int lookup_row(void *arg, const struct subs_row *r)
{
    struct lookup *l = arg;
    if (l->nrows == l->caprows) {
        size_t ncap = l->caprows ? l->caprows * 2 : 16;
        struct subs_row *p = realloc(l->rows, ncap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        l->rows = p;
        l->caprows = ncap;
    }
    l->rows[l->nrows++] = *r;
    return 0;
}

/* Pool thread: the subscriptions of the first nlook recipients. */
static int lookup_fn(struct db_conn *conn, void *arg)
{
    struct lookup *l = arg;
    int rc = notif_store_subs_of_users(&l->n->store, conn, l->ids, l->nlook, lookup_row, l);
    if (rc < 0)
        l->nrows = 0;                /* nothing half read is published */
    return rc;
}

/* Publishes everything for one message. Webhooks for all offline recipients, pushes
 * for the rows found. Returns 0 or the first publish error. */
static int publish_all(struct notif *n, struct lookup *l)
{
    int rc = 0, r;
    if (notif_settings(n->app->cfg)->webhook_url[0])
        for (size_t i = 0; i < l->nids; i++)
            if ((r = publish(n, EV_CHANNEL_WEBHOOK, l->ids[i], 0, l->msg)) < 0 && !rc)
                rc = r;
    for (size_t i = 0; i < l->nrows; i++)
        if ((r = publish(n, EV_CHANNEL_PUSH, l->rows[i].user_id, l->rows[i].id,
                         l->msg)) < 0 && !rc)
            rc = r;
    return rc;
}

/* A looked-up user with no rows leaves n->subscribers, unless it subscribed since. */
static void forget_unsubscribed(struct notif *n, struct lookup *l)
{
    size_t r = 0;
    for (size_t i = 0; i < l->nlook; i++) {
        int found = 0;
        for (r = 0; r < l->nrows && !found; r++)
            found = l->rows[r].user_id == l->ids[i];
        uint32_t gen;
        if (!found && idset_get(&n->subscribers, l->ids[i], &gen) && gen == l->gens[i])
            idset_del(&n->subscribers, l->ids[i]);
    }
}

static void lookup_after(void *arg, int status)
{
    struct lookup *l = arg;
    struct notif *n = l->n;
    n->lookups--;
    if (status < 0) {
        bus_complete(l->d, status, "push subscription lookup failed");
    } else {
        if (!n->subscribers_overflow)
            forget_unsubscribed(n, l);
        int rc = publish_all(n, l);
        bus_complete(l->d, rc, rc < 0 ? "cannot publish notification.requested" : NULL);
    }
    lookup_free(l);
    notif_work_done(n);
}

/* Splits the members into offline recipients; the ones that may have subscriptions
 * come first (l->nlook of them). */
static int collect(struct notif *n, struct lookup *l, const struct ev_ids *members,
                   int64_t sender)
{
    size_t cap = members->n, look = 0;
    l->ids = malloc((cap ? cap : 1) * sizeof(*l->ids));
    l->gens = malloc((cap ? cap : 1) * sizeof(*l->gens));
    if (!l->ids || !l->gens)
        return -ENOMEM;
    int webhook = notif_settings(n->app->cfg)->webhook_url[0] != 0;
    for (size_t i = 0; i < members->n; i++) {
        int64_t id = members->v[i];
        uint32_t gen = 0;
        if (id <= 0 || id == sender || idset_get(&n->online, id, NULL))
            continue;
        int maybe = n->subscribers_overflow || idset_get(&n->subscribers, id, &gen);
        if (!maybe && !webhook)
            continue;
        if (maybe) {                  /* keep looked-up ids in front */
            l->ids[l->nids] = l->ids[look];
            l->gens[l->nids] = l->gens[look];
            l->ids[look] = id;
            l->gens[look] = gen;
            look++;
        } else {
            l->ids[l->nids] = id;
        }
        l->nids++;
    }
    l->nlook = look;
    return 0;
}

int notif_on_message_stored(struct bus_delivery *d, struct bus_event *ev, void *ctx)
{
    struct ev_message_stored *m = ev->data;
    struct notif *n = ctx;
    if (m->duplicate)
        return 0;
    if (n->closed) {
        bus_delivery_set_error(d, "notifications are shut down");
        return -ECANCELED;
    }

    struct lookup *l = calloc(1, sizeof(*l));
    int rc = -ENOMEM;
    if (!l || collect(n, l, &m->member_ids, m->message->sender_id) < 0)
        goto fail;
    if (l->nids == 0) {               /* every recipient is online: nothing to send */
        lookup_free(l);
        return 0;
    }
    l->msg = m->message;
    if (l->nlook == 0) {              /* nobody to look up: publish now */
        rc = publish_all(n, l);
        lookup_free(l);
        if (rc < 0)
            bus_delivery_set_error(d, "cannot publish notification.requested");
        return rc;
    }
    if (n->lookups >= NOTIF_MAX_LOOKUPS) {
        rc = -EAGAIN;
        bus_delivery_set_error(d, "too many subscription lookups in flight");
        goto fail;
    }
    l->n = n;
    l->d = d;
    if ((rc = db_read(n->app->db, lookup_fn, lookup_after, l)) < 0) {
        bus_delivery_set_error(d, "cannot start a subscription lookup");
        goto fail;
    }
    n->lookups++;
    return BUS_ASYNC;
fail:
    if (l)
        lookup_free(l);
    return rc;
}
