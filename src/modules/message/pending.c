/* pending.c: the HTTP posts whose message is on its way to the writer, by request
 * id. The answer arrives later as a message.stored / message.rejected event naming
 * the request in its origin. Open addressing, kept at most half full; deletion
 * shifts the following entries back so no tombstones pile up. */
#include <errno.h>
#include <stdlib.h>
#include "message_internal.h"

static size_t slot_of(const struct pending_table *t, uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 20) & (t->cap - 1);
}

int pending_init(struct pending_table *t, size_t max)
{
    t->max = max ? max : 1;
    t->cap = 16;
    while (t->cap < 2 * t->max)
        t->cap <<= 1;
    t->count = 0;
    t->slots = calloc(t->cap, sizeof(*t->slots));
    return t->slots ? 0 : -ENOMEM;
}

void pending_free(struct pending_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->count = 0;
}

int pending_put(struct pending_table *t, struct http_req *req)
{
    if (t->count >= t->max)
        return -ENOSPC;
    size_t i = slot_of(t, req->id);
    while (t->slots[i].req)
        i = (i + 1) & (t->cap - 1);
    t->slots[i].req_id = req->id;
    t->slots[i].req = req;
    t->count++;
    return 0;
}

struct http_req *pending_take(struct pending_table *t, uint64_t req_id)
{
    if (!t->slots)
        return NULL;
    size_t i = slot_of(t, req_id);
    while (t->slots[i].req && t->slots[i].req_id != req_id)
        i = (i + 1) & (t->cap - 1);
    struct http_req *req = t->slots[i].req;
    if (!req)
        return NULL;
    t->slots[i].req = NULL;
    t->count--;
    /* Backward shift: move later entries of the run into the hole when their home
     * slot is not between the hole and where they sit. */
    size_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & (t->cap - 1);
        if (!t->slots[j].req)
            break;
        size_t home = slot_of(t, t->slots[j].req_id);
        int between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (between)
            continue;
        t->slots[hole] = t->slots[j];
        t->slots[j].req = NULL;
        hole = j;
    }
    return req;
}
