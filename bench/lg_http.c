/* Blocking HTTP/1.1 for set-up and for the auth scenario: one connection per request
 * (Connection: close), answer read to EOF. Returns the status code or a negative errno;
 * the body (NUL-terminated, truncated to outcap) goes to out. */
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
