/* codec_decode.c: the table-driven engine behind event_codec.h, its decoding half: a
 * JSON wire form back to its struct, guided by the descriptor's field list, and
 * ev_free. Encoding is codec_encode.c's.
 *
 * A decoded struct and everything it points to (nested structs, arrays) come from
 * one list of blocks whose head sits just before the struct, so ev_free needs no
 * descriptor and a failed decode frees what it made in one go. */
#include <errno.h>
#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/event_codec.h"
#include "codec_field.h"

#define EV_INT_MAX 9007199254740992.0   /* 2^53: a JSON number holds integers exactly to here */

struct ev_block {
    struct ev_block *next;
    alignas(max_align_t) unsigned char data[];
};

struct ev_decoder {
    struct ev_block *blocks;
    char *why;
    size_t whylen;
    int depth;
};

static void *dec_alloc(struct ev_decoder *dc, size_t size)
{
    struct ev_block *b = calloc(1, sizeof(*b) + (size ? size : 1));

    if (!b)
        return NULL;
    b->next = dc->blocks;
    dc->blocks = b;
    return b->data;
}

static void blocks_free(struct ev_block *b)
{
    while (b) {
        struct ev_block *next = b->next;
        free(b);
        b = next;
    }
}

static int refuse(struct ev_decoder *dc, const char *shape, const struct ev_field *f,
                  const char *fmt, ...)
{
    char what[96];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (dc->why && dc->whylen)
        snprintf(dc->why, dc->whylen, "%s.%s: %s", shape, f ? f->name : "", what);
    return -EPROTO;
}

/* --- decoding ------------------------------------------------------------------------ */

static int decode_obj(struct ev_decoder *dc, const struct ev_type *t, const cJSON *j,
                      void *out);

static int decode_int(struct ev_decoder *dc, const struct ev_type *t,
                      const struct ev_field *f, const cJSON *v, int64_t *out)
{
    double d;

    if (!cJSON_IsNumber(v))
        return refuse(dc, t->name, f, "not a number");
    d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > EV_INT_MAX)
        return refuse(dc, t->name, f, "not an integer");
    if ((f->flags & EVF_POS) && d <= 0)
        return refuse(dc, t->name, f, "not positive");
    *out = (int64_t)d;
    return 0;
}

static int decode_enum(struct ev_decoder *dc, const struct ev_type *t,
                       const struct ev_field *f, const cJSON *v, int *out)
{
    if (!cJSON_IsString(v))
        return refuse(dc, t->name, f, "not a string");
    for (int i = 0; f->names[i]; i++)
        if (strcmp(f->names[i], v->valuestring) == 0) {
            *out = i;
            return 0;
        }
    return refuse(dc, t->name, f, "not a known value");
}

static int decode_ids(struct ev_decoder *dc, const struct ev_type *t,
                      const struct ev_field *f, const cJSON *v, struct ev_ids *out)
{
    size_t n = 0;
    int64_t *ids;
    const cJSON *e;
    int rc;

    if (!cJSON_IsArray(v))
        return refuse(dc, t->name, f, "not an array");
    n = (size_t)cJSON_GetArraySize(v);
    if (!(ids = dec_alloc(dc, n * sizeof(*ids))))
        return -ENOMEM;
    out->v = ids;
    out->n = 0;
    cJSON_ArrayForEach(e, v) {
        if ((rc = decode_int(dc, t, f, e, &ids[out->n])) < 0)
            return rc;
        out->n++;
    }
    return 0;
}

static int decode_strs(struct ev_decoder *dc, const struct ev_type *t,
                       const struct ev_field *f, const cJSON *v, void *base)
{
    size_t n, i = 0;
    const char **strs;
    const cJSON *e;

    if (!cJSON_IsArray(v))
        return refuse(dc, t->name, f, "not an array");
    n = (size_t)cJSON_GetArraySize(v);
    if (!(strs = dec_alloc(dc, n * sizeof(*strs))))
        return -ENOMEM;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsString(e))
            return refuse(dc, t->name, f, "element %zu is not a string", i);
        strs[i++] = e->valuestring;
    }
    *(const char ***)field_at(base, f->off) = strs;
    *(size_t *)field_at(base, f->count_off) = i;
    return 0;
}

static int decode_objs(struct ev_decoder *dc, const struct ev_type *t,
                       const struct ev_field *f, const cJSON *v, void *base)
{
    size_t n, i = 0;
    char *elems;
    const cJSON *e;
    int rc;

    if (!cJSON_IsArray(v))
        return refuse(dc, t->name, f, "not an array");
    n = (size_t)cJSON_GetArraySize(v);
    if (!(elems = dec_alloc(dc, n * f->sub->size)))
        return -ENOMEM;
    *(void **)field_at(base, f->off) = elems;
    cJSON_ArrayForEach(e, v) {
        if ((rc = decode_obj(dc, f->sub, e, elems + i * f->sub->size)) < 0)
            return rc;
        i++;
    }
    *(size_t *)field_at(base, f->count_off) = i;
    return 0;
}

static int decode_field(struct ev_decoder *dc, const struct ev_type *t,
                        const struct ev_field *f, const cJSON *v, void *base)
{
    void *at = field_at(base, f->off);
    void *sub;
    int rc;

    switch (f->kind) {
    case EVK_I64:
        return decode_int(dc, t, f, v, at);
    case EVK_BOOL:
        if (!cJSON_IsBool(v))
            return refuse(dc, t->name, f, "not a boolean");
        *(int *)at = cJSON_IsTrue(v);
        return 0;
    case EVK_STR:
        if ((f->flags & EVF_NULL) && cJSON_IsNull(v))
            return 0;
        if (!cJSON_IsString(v))
            return refuse(dc, t->name, f, "not a string");
        *(const char **)at = v->valuestring;
        return 0;
    case EVK_ENUM:
        return decode_enum(dc, t, f, v, at);
    case EVK_OBJ:
        if (!(sub = dec_alloc(dc, f->sub->size)))
            return -ENOMEM;
        if ((rc = decode_obj(dc, f->sub, v, sub)) < 0)
            return rc;
        *(void **)at = sub;
        return 0;
    case EVK_IDS:
        return decode_ids(dc, t, f, v, at);
    case EVK_STRS:
        return decode_strs(dc, t, f, v, base);
    case EVK_OBJS:
        return decode_objs(dc, t, f, v, base);
    }
    return refuse(dc, t->name, f, "unknown kind");
}

static int decode_obj(struct ev_decoder *dc, const struct ev_type *t, const cJSON *j,
                      void *out)
{
    int rc = 0;

    if (!cJSON_IsObject(j))
        return refuse(dc, t->name, NULL, "not an object");
    if (++dc->depth > EV_DEPTH_MAX)
        return refuse(dc, t->name, NULL, "nested too deep");
    for (size_t i = 0; rc == 0 && i < t->nfields; i++) {
        const struct ev_field *f = &t->fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, f->name);
        int absent = !v || (cJSON_IsNull(v) && !(f->flags & EVF_NULL));

        if (absent)
            rc = (f->flags & (EVF_OPT | EVF_NULL | EVF_LAX)) ? 0
                 : refuse(dc, t->name, f, "missing");
        else
            rc = decode_field(dc, t, f, v, out);
    }
    dc->depth--;
    return rc;
}

static int check_version(struct ev_decoder *dc, const struct ev_type *t, const cJSON *j)
{
    const cJSON *v = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "v") : NULL;

    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble != floor(v->valuedouble))
        return refuse(dc, t->name, NULL, "\"v\" is not a version");
    if (v->valuedouble > t->version)
        return refuse(dc, t->name, NULL, "version %.0f is newer than %d", v->valuedouble,
                      t->version);
    return 0;
}

int ev_decode(const struct ev_type *t, const cJSON *json, void **out, char *why,
              size_t whylen)
{
    struct ev_decoder dc = { NULL, why, whylen, 0 };
    void *data;
    int rc;

    *out = NULL;
    if (why && whylen)
        why[0] = '\0';
    if ((rc = check_version(&dc, t, json)) < 0)
        return rc;
    if (!(data = dec_alloc(&dc, t->size)))
        return -ENOMEM;
    if ((rc = decode_obj(&dc, t, json, data)) < 0) {
        blocks_free(dc.blocks);
        return rc;
    }
    /* The struct's own block is the first allocated, so the last in the list: move
     * the list's head into it so that ev_free finds every block from the struct. */
    struct ev_block *root = (struct ev_block *)((char *)data - offsetof(struct ev_block, data));
    if (root != dc.blocks) {
        struct ev_block *p = dc.blocks;
        while (p->next != root)
            p = p->next;
        p->next = NULL;
        root->next = dc.blocks;
    }
    *out = data;
    return 0;
}

void ev_free(void *data)
{
    if (data)
        blocks_free((struct ev_block *)((char *)data - offsetof(struct ev_block, data)));
}
