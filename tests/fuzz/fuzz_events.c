/* fuzz_events.c: every payload decoder (event_codec.h). The first byte picks the
 * descriptor (topics, replies and the shapes inside them), the rest is the JSON. A
 * payload that decodes must encode again, and the encoded form must decode to the
 * same encoding: what a handler gets is always something a publisher could send. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/event_codec.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static const struct ev_type *pick(uint8_t b)
{
    static const struct ev_type *const shapes[] = {
        &EV_ORIGIN, &EV_MSG, &EV_ROOM, &EV_USER, &EV_JWK, &EV_MSG_REF, &EV_SYNC_ROOM_ASK,
        &EV_SYNC_ROOM_PAGE, &EV_ERROR,
    };
    size_t ntopics = 0, nshapes = sizeof(shapes) / sizeof(shapes[0]);

    while (ev_all_types[ntopics])
        ntopics++;
    b %= (uint8_t)(ntopics + nshapes);
    return b < ntopics ? ev_all_types[b] : shapes[b - ntopics];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const struct ev_type *t = pick(data[0]);
    cJSON *j = cJSON_ParseWithLength((const char *)data + 1, size - 1);
    void *out = NULL, *again = NULL;
    char why[160];

    if (!j)
        return 0;
    int rc = ev_decode(t, j, &out, why, sizeof(why));
    CHECK(rc == 0 || (out == NULL && why[0] != '\0'));
    if (rc == 0) {
        cJSON *e1 = ev_encode(t, out);
        CHECK(e1 != NULL);
        CHECK(ev_decode(t, e1, &again, why, sizeof(why)) == 0);
        cJSON *e2 = ev_encode(t, again);
        CHECK(e2 != NULL && cJSON_Compare(e1, e2, 1));
        cJSON_Delete(e2);
        cJSON_Delete(e1);
        ev_free(again);
    }
    ev_free(out);
    cJSON_Delete(j);
    return 0;
}
