/* codec_encode.c: the encoding half of the engine behind event_codec.h: a struct to
 * its JSON wire form, guided by the descriptor's field list. Decoding is
 * codec_decode.c's. */
#include <errno.h>
#include <stdlib.h>
#include "chatd/event_codec.h"
#include "codec_field.h"

static cJSON *encode_obj(const struct ev_type *t, const void *data, int depth);

static cJSON *encode_ids(const struct ev_ids *ids)
{
    cJSON *a = cJSON_CreateArray();

    for (size_t i = 0; a && i < ids->n; i++) {
        cJSON *n = cJSON_CreateNumber((double)ids->v[i]);
        if (!n) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddItemToArray(a, n);
    }
    return a;
}

static cJSON *encode_array(const struct ev_field *f, const void *base, int depth)
{
    size_t n = *(const size_t *)field_at(base, f->count_off);
    const void *v = *(void *const *)field_at(base, f->off);
    cJSON *a = cJSON_CreateArray();

    for (size_t i = 0; a && i < n; i++) {
        cJSON *e = f->kind == EVK_STRS
                   ? cJSON_CreateString(((const char *const *)v)[i])
                   : encode_obj(f->sub, (const char *)v + i * f->sub->size, depth + 1);
        if (!e) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddItemToArray(a, e);
    }
    return a;
}

/* *out: the value, or NULL for one left out (optional and empty). -EINVAL for a
 * required field that is empty, -ENOMEM. */
static int encode_field(const struct ev_field *f, const void *base, int depth, cJSON **out)
{
    const void *at = field_at(base, f->off);
    int opt = (f->flags & EVF_OPT) != 0;
    const void *p;

    *out = NULL;
    switch (f->kind) {
    case EVK_I64:
        if (opt && *(const int64_t *)at == 0)
            return 0;
        *out = cJSON_CreateNumber((double)*(const int64_t *)at);
        break;
    case EVK_BOOL:
        *out = cJSON_CreateBool(*(const int *)at);
        break;
    case EVK_ENUM: {
        int v = *(const int *)at, n = 0;
        while (f->names[n])
            n++;
        if (v < 0 || v >= n)
            return -EINVAL;   /* not one of the names: refused, not read past them */
        *out = cJSON_CreateString(f->names[v]);
        break;
    }
    case EVK_IDS:
        *out = encode_ids(at);
        break;
    case EVK_STRS:
    case EVK_OBJS:
        *out = encode_array(f, base, depth);
        break;
    case EVK_STR:
    case EVK_OBJ:
        if (!(p = *(const void *const *)at)) {
            if (f->flags & EVF_NULL)
                *out = cJSON_CreateNull();
            else
                return opt ? 0 : -EINVAL;
        } else {
            *out = f->kind == EVK_STR ? cJSON_CreateString(p)
                                      : encode_obj(f->sub, p, depth + 1);
        }
        break;
    default:
        return -EINVAL;
    }
    return *out ? 0 : -ENOMEM;
}

static cJSON *encode_obj(const struct ev_type *t, const void *data, int depth)
{
    cJSON *o = depth > EV_DEPTH_MAX ? NULL : cJSON_CreateObject();

    for (size_t i = 0; o && i < t->nfields; i++) {
        cJSON *v;

        if (encode_field(&t->fields[i], data, depth, &v) < 0) {
            cJSON_Delete(o);
            return NULL;
        }
        if (v)
            cJSON_AddItemToObjectCS(o, t->fields[i].name, v);
    }
    return o;
}

cJSON *ev_encode(const struct ev_type *t, const void *data)
{
    cJSON *o = data ? encode_obj(t, data, 0) : NULL;
    cJSON *v = o ? cJSON_CreateNumber(t->version) : NULL;

    if (!v) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddItemToObjectCS(o, "v", v);
    return o;
}
