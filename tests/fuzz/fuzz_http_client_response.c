/* fuzz_http_client_response.c: an answer to the HTTP client, from a hostile server, read
 * by http_client_response.c in two pieces (the first byte of the input says where it is
 * cut). Whatever the bytes, the reader ends in one of its three outcomes, never keeps a
 * body past its bound, never counts more bytes as the answer's than it was given, and
 * a complete answer has a final status. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../src/core/http_client_impl.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)
#define MAX_HEAD 512
#define MAX_BODY 256

static int feed_piece(struct hc_response *r, const char *p, size_t n)
{
    size_t used = n;
    int rc = hc_response_feed(r, p, n, &used);
    CHECK(rc == 0 || rc == 1 || rc == -EPROTO || rc == -EMSGSIZE || rc == -ENOMEM);
    CHECK(used <= n);
    CHECK(r->body_len <= MAX_BODY);
    if (rc == 1)
        CHECK(r->status >= 200 && r->status <= 999);
    if (rc < 0)
        CHECK(r->error != NULL);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hc_response r;
    if (size < 1)
        return 0;
    size_t cut = data[0] % size;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    cut = cut > len ? len : cut;
    hc_response_init(&r, MAX_HEAD, MAX_BODY);
    int rc = feed_piece(&r, text, cut);
    if (rc == 0)
        rc = feed_piece(&r, text + cut, len - cut);
    if (rc == 0 && hc_response_eof(&r))
        CHECK(!r.keep_alive && r.status >= 200);
    size_t blen;
    char *body = hc_response_take_body(&r, &blen);
    CHECK(blen <= MAX_BODY && (!body || body[blen] == '\0'));
    free(body);
    hc_response_free(&r);
    return 0;
}
