/* heap.c: a binary min-heap of nodes embedded in their owners (retries, requests).
 * One uv_timer per heap, armed for the top node, replaces a timer per waiting item:
 * ten thousand waiting retries cost one timer and a pointer each. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include "bus_internal.h"

void heap_init(struct heap *h, size_t max)
{
    h->v = NULL;
    h->len = h->cap = 0;
    h->max = max;
    h->seq = 0;
}

void heap_free(struct heap *h)
{
    free(h->v);
    h->v = NULL;
    h->len = h->cap = 0;
}

static int before(const struct heap_node *a, const struct heap_node *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void place(struct heap *h, size_t i, struct heap_node *n)
{
    h->v[i] = n;
    n->idx = i;
}

static void sift_up(struct heap *h, size_t i)
{
    struct heap_node *n = h->v[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(n, h->v[parent]))
            break;
        place(h, i, h->v[parent]);
        i = parent;
    }
    place(h, i, n);
}

static void sift_down(struct heap *h, size_t i)
{
    struct heap_node *n = h->v[i];

    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct heap_node *best = n;
        if (l < h->len && before(h->v[l], best)) {
            m = l;
            best = h->v[l];
        }
        if (r < h->len && before(h->v[r], best))
            m = r;
        if (m == i)
            break;
        place(h, i, h->v[m]);
        i = m;
    }
    place(h, i, n);
}

int heap_push(struct heap *h, struct heap_node *n)
{
    if (h->len >= h->max)
        return -ENOBUFS;
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct heap_node **v = realloc(h->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    n->seq = h->seq++;
    place(h, h->len++, n);
    sift_up(h, n->idx);
    return 0;
}

struct heap_node *heap_top(const struct heap *h)
{
    return h->len ? h->v[0] : NULL;
}

void heap_remove(struct heap *h, struct heap_node *n)
{
    size_t i = n->idx;

    if (i >= h->len || h->v[i] != n)
        return;
    n->idx = SIZE_MAX;
    if (i == --h->len)
        return;
    place(h, i, h->v[h->len]);
    sift_down(h, i);
    sift_up(h, h->v[i]->idx);
}
