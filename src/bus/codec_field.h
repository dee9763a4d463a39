/* codec_field.h: what the two halves of the event codec share (codec_decode.c,
 * codec_encode.c): the nesting bound and the address of a field in a struct. */
#ifndef CHATD_CODEC_FIELD_H
#define CHATD_CODEC_FIELD_H

#include <stdint.h>

#define EV_DEPTH_MAX 8                  /* nesting of our shapes is 3 at most */

static inline void *field_at(const void *base, uint16_t off)
{
    return (char *)base + off;
}

#endif
