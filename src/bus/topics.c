/* topics.c: the topics and their subscribers, in subscription order: subscribing,
 * and finding a topic or one consumer of it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "bus_internal.h"

static unsigned topic_hash(const char *s)
{
    unsigned h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h % BUS_TOPIC_BUCKETS;
}

struct bus_topic *bus_topic_find(struct bus *b, const char *name)
{
    for (struct bus_topic *t = b->topics[topic_hash(name)]; t; t = t->hnext)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

/* Topic names become label values: keep them to a tame alphabet. */
static int label_safe(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static struct bus_topic *topic_get(struct bus *b, const char *name)
{
    struct bus_topic *t = bus_topic_find(b, name);
    char labels[BUS_TOPIC_MAX + 16];

    if (t || b->ntopics >= BUS_TOPICS_MAX || !label_safe(name) || !(t = calloc(1, sizeof(*t))))
        return t;
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->type = ev_type_of_topic(name);
    snprintf(labels, sizeof(labels), "topic=\"%s\"", name);
    t->events_total = bus_counter(b, "chatd_bus_events_total", labels,
                                  "Events dispatched by the bus, by topic.", 0);
    unsigned h = topic_hash(name);
    t->hnext = b->topics[h];
    b->topics[h] = t;
    b->ntopics++;
    return t;
}

int bus_subscribe(struct bus *b, const char *topic, const struct bus_sub_opts *opts,
                  bus_handler_fn fn, void *ctx)
{
    struct bus_topic *t;
    struct bus_sub *s;

    if (!topic || !fn || strlen(topic) >= BUS_TOPIC_MAX)
        return -EINVAL;
    if (b->nsubs >= BUS_SUBS_MAX)
        return -ENOBUFS;
    if (!(t = topic_get(b, topic)))
        return b->ntopics >= BUS_TOPICS_MAX ? -ENOBUFS : -ENOMEM;
    if (!(s = calloc(1, sizeof(*s))))
        return -ENOMEM;
    snprintf(s->consumer, sizeof(s->consumer), "%s",
             opts && opts->consumer ? opts->consumer : topic);
    s->max_attempts = opts && opts->max_attempts > 0 ? opts->max_attempts : 0;
    s->retry_base_ms = opts && opts->retry_base_ms > 0 ? opts->retry_base_ms : 0;
    s->dead_letter = opts ? opts->dead_letter : NULL;
    s->fn = fn;
    s->ctx = ctx;
    s->topic = t;
    if (t->last)
        t->last->next = s;
    else
        t->subs = s;
    t->last = s;
    b->nsubs++;
    return 0;
}

int bus_topic_has_subs(struct bus *b, const char *topic)
{
    struct bus_topic *t = bus_topic_find(b, topic);
    return t && t->subs;
}

struct bus_sub *bus_find_sub(struct bus *b, const char *topic, const char *consumer)
{
    struct bus_topic *t = bus_topic_find(b, topic);

    for (struct bus_sub *s = t ? t->subs : NULL; s; s = s->next)
        if (strcmp(s->consumer, consumer) == 0)
            return s;
    return NULL;
}

void bus_topics_free(struct bus *b)
{
    for (int i = 0; i < BUS_TOPIC_BUCKETS; i++) {
        while (b->topics[i]) {
            struct bus_topic *t = b->topics[i];
            b->topics[i] = t->hnext;
            while (t->subs) {
                struct bus_sub *s = t->subs;
                t->subs = s->next;
                free(s);
            }
            free(t);
        }
    }
}
