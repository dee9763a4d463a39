/* ws_buf.c: encoded server frames (header + payload), shared by reference among the
 * queues of every recipient: server frames are unmasked, so a broadcast is built once. */
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "chatd/ws_transport.h"

struct ws_buf *ws_buf_new(size_t payload_len, int opcode, uint8_t **payload)
{
    size_t hlen = payload_len < 126 ? 2 : payload_len <= 0xffff ? 4 : 10;
    struct ws_buf *b;

    if (payload_len > UINT32_MAX - 16)
        return NULL;
    b = malloc(sizeof(*b) + hlen + payload_len);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = (uint32_t)(hlen + payload_len);
    b->data[0] = (uint8_t)(0x80 | (opcode & 0x0f));       /* FIN, no mask */
    if (hlen == 2) {
        b->data[1] = (uint8_t)payload_len;
    } else if (hlen == 4) {
        b->data[1] = 126;
        b->data[2] = (uint8_t)(payload_len >> 8);
        b->data[3] = (uint8_t)payload_len;
    } else {
        b->data[1] = 127;
        for (int i = 0; i < 8; i++)
            b->data[2 + i] = (uint8_t)((uint64_t)payload_len >> (56 - 8 * i));
    }
    *payload = b->data + hlen;
    return b;
}

struct ws_buf *ws_buf_text(const char *text, size_t len)
{
    uint8_t *p;
    struct ws_buf *b = ws_buf_new(len, WSLAY_TEXT_FRAME, &p);

    if (b)
        memcpy(p, text, len);
    return b;
}

struct ws_buf *ws_buf_raw(const void *bytes, size_t len)
{
    struct ws_buf *b = malloc(sizeof(*b) + len);

    if (!b)
        return NULL;
    b->refs = 1;
    b->len = (uint32_t)len;
    memcpy(b->data, bytes, len);
    return b;
}

void ws_buf_unref(struct ws_buf *b)
{
    if (b && --b->refs == 0)
        free(b);
}

