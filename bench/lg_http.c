/* Blocking HTTP/1.1. lg_http: one connection per request (Connection: close), answer
 * read to EOF, for set-up. lg_http_ka: one kept-alive connection per thread, for the
 * auth scenario (as a real client refreshes, and without a connect per refresh on the
 * generator's core). Both return the status code or a negative errno; the body
 * (NUL-terminated, truncated to outcap) goes to out. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include "lg.h"

static int dial(const char *host, int port)
{
    struct sockaddr_in sa;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &sa.sin_addr);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int lg_http(const char *host, int port, const char *method, const char *path,
            const char *token, const char *body, char *out, size_t outcap)
{
    char head[1024], *resp, *b;
    size_t len = 0, cap = 1 << 16, blen = body ? strlen(body) : 0;
    int fd = dial(host, port), status = -EPROTO;

    if (fd < 0)
        return fd;
    snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n"
             "%s%s%sContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             method, path, host, port, token ? "Authorization: Bearer " : "",
             token ? token : "", token ? "\r\n" : "", blen);
    resp = malloc(cap + 1);
    if (resp == NULL || write_all(fd, head, strlen(head)) < 0 ||
        (blen && write_all(fd, body, blen) < 0))
        goto out;
    for (;;) {
        ssize_t r;
        if (len == cap) {
            char *n = realloc(resp, cap * 2 + 1);
            if (n == NULL)
                goto out;
            resp = n;
            cap *= 2;
        }
        r = read(fd, resp + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    resp[len] = '\0';
    if (len > 12 && sscanf(resp, "HTTP/1.%*d %d", &status) == 1) {
        b = strstr(resp, "\r\n\r\n");
        if (out && outcap) {
            snprintf(out, outcap, "%s", b ? b + 4 : "");
        }
    }
out:
    free(resp);
    close(fd);
    return status;
}

/* ---- kept-alive connections: the answer is read by its Content-Length ---- */

void lg_http_ka_init(struct lg_http_ka *k, const char *host, int port)
{
    memset(k, 0, sizeof(*k));
    k->host = host;
    k->port = port;
    k->fd = -1;
}

void lg_http_ka_close(struct lg_http_ka *k)
{
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    free(k->buf);
    k->buf = NULL;
    k->len = k->cap = 0;
}

/* Reads until buf holds one whole answer; returns its length, 0 if the peer closed
 * before one arrived, or a negative errno. *body gets the offset of the body. */
static long ka_read_answer(struct lg_http_ka *k, size_t *body, int *close_after)
{
    for (;;) {
        char *end = k->len ? memmem(k->buf, k->len, "\r\n\r\n", 4) : NULL;
        ssize_t r;

        if (end != NULL) {
            const char *cl = memmem(k->buf, (size_t)(end - k->buf), "\r\nContent-Length:", 17);
            size_t head = (size_t)(end + 4 - k->buf), blen = 0;
            if (cl == NULL)
                cl = memmem(k->buf, (size_t)(end - k->buf), "\r\ncontent-length:", 17);
            if (cl != NULL)
                blen = strtoul(cl + 17, NULL, 10);
            *close_after = memmem(k->buf, head, "Connection: close", 17) != NULL ||
                           memmem(k->buf, head, "connection: close", 17) != NULL;
            if (k->len >= head + blen) {
                *body = head;
                return (long)(head + blen);
            }
        }
        if (k->len == k->cap) {
            size_t cap = k->cap ? k->cap * 2 : 16384;
            char *n = realloc(k->buf, cap + 1);
            if (n == NULL)
                return -ENOMEM;
            k->buf = n;
            k->cap = cap;
        }
        r = read(k->fd, k->buf + k->len, k->cap - k->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? 0 : -errno;
        k->len += (size_t)r;
    }
}

int lg_http_ka(struct lg_http_ka *k, const char *method, const char *path,
               const char *token, const char *body, char *out, size_t outcap)
{
    char head[1024];
    size_t blen = body ? strlen(body) : 0, boff = 0;
    int status = -EPROTO, close_after = 0, tries;
    long n = 0;

    /* A kept-alive connection the server has closed meanwhile fails on first use:
     * then once more on a new one. */
    for (tries = 0; tries < 2; tries++) {
        if (k->fd < 0) {
            if ((k->fd = dial(k->host, k->port)) < 0)
                return k->fd;
            k->connects++;
            k->len = 0;
        }
        snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: %s:%d\r\n"
                 "%s%s%sContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                 method, path, k->host, k->port, token ? "Authorization: Bearer " : "",
                 token ? token : "", token ? "\r\n" : "", blen);
        if (write_all(k->fd, head, strlen(head)) == 0 &&
            (blen == 0 || write_all(k->fd, body, blen) == 0) &&
            (n = ka_read_answer(k, &boff, &close_after)) > 0)
            break;
        close(k->fd);
        k->fd = -1;
    }
    if (n <= 0)
        return n < 0 ? (int)n : -ECONNRESET;
    if (sscanf(k->buf, "HTTP/1.%*d %d", &status) != 1)
        status = -EPROTO;
    if (out && outcap) {
        size_t bl = (size_t)n - boff < outcap - 1 ? (size_t)n - boff : outcap - 1;
        memcpy(out, k->buf + boff, bl);
        out[bl] = '\0';
    }
    memmove(k->buf, k->buf + n, k->len - (size_t)n);
    k->len -= (size_t)n;
    if (close_after) {
        close(k->fd);
        k->fd = -1;
    }
    return status;
}
