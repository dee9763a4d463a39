/* bus_event.c: bus events (struct bus_event): made, shared by reference count, and
 * freed with the struct they decoded to. */
#include <stdlib.h>
#include <string.h>
#include "chatd/bus.h"
#include "chatd/event_codec.h"
#include "chatd/util.h"
#include "bus_internal.h"

/* Event ids only need to be unique within the process: one counter for every bus. */
static atomic_uint_fast64_t next_event_id = 1;

struct bus_event *bus_event_new(const char *topic, cJSON *payload)
{
    struct bus_event *ev;
    size_t n = topic ? strlen(topic) : 0;

    if (n == 0 || n >= BUS_TOPIC_MAX || !(ev = calloc(1, sizeof(*ev)))) {
        cJSON_Delete(payload);
        return NULL;
    }
    if (!payload && !(payload = cJSON_CreateObject())) {
        free(ev);
        return NULL;
    }
    memcpy(ev->topic, topic, n + 1);
    ev->payload = payload;
    ev->id = atomic_fetch_add_explicit(&next_event_id, 1, memory_order_relaxed);
    ev->ts = now_ms();
    ev->refs = 1;
    return ev;
}

void bus_event_ref(struct bus_event *ev)
{
    __atomic_fetch_add(&ev->refs, 1, __ATOMIC_RELAXED);
}

void bus_event_unref(struct bus_event *ev)
{
    if (!ev || __atomic_sub_fetch(&ev->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    ev_free(ev->data);
    cJSON_Delete(ev->payload);
    free(ev);
}

