/* http_client.h: core's HTTP/1.1 client, on the loop thread.
 *
 * Nothing blocks: DNS on the thread pool (uv_getaddrinfo), TCP through libuv, TLS
 * through OpenSSL with two memory BIOs (OpenSSL never touches the socket), the
 * response through llhttp. Certificates are checked against the system bundle plus an
 * extra CA file, with SNI and the host name (or IP address) checked.
 *
 * Connections are kept alive and reused per origin (scheme, host, port and address
 * policy), within bounds: at most max_idle_per_origin idle connections to one origin
 * and max_idle in all, each closed after idle_timeout_ms. A request that fails on a
 * reused connection before any byte of its answer is sent once more on a fresh one,
 * if nothing of it had been written yet (the server closed the connection as it was
 * taken) or it is replayable: a GET, HEAD or OPTIONS without a body, or marked so by
 * its caller (the receiver dedupes it, or a second copy does no harm). Any other
 * request may have been acted upon: its failure is the answer.
 *
 * At most max_conns_per_origin connections are open to one origin (connecting,
 * exchanging or idle): a request for an origin at its bound waits, in order per origin,
 * until one of them finishes its exchange (and takes it over) or closes (and opens a
 * new one); requests to other origins go on meanwhile. An origin here includes the
 * address hook, as for reuse: one host reached with and without a hook has two bounds.
 *
 * Bounds: max_inflight requests on a connection (connecting or exchanging), max_queued
 * waiting for one (for a slot or for their origin); past that http_client_send says
 * -EAGAIN. The connect and response deadlines start once a request has its connection:
 * time spent waiting does not count, and a wait is bounded by the deadlines of the
 * requests ahead of it. Responses are bounded
 * (max_head_bytes, max_body_bytes); a response past a bound fails with -EMSGSIZE.
 *
 * The client knows nothing of its callers' policies: which addresses may be connected
 * to is a hook (http_client_addr_pick) run on the resolved addresses, and the address
 * it returns is the one connected to. */
#ifndef CHATD_HTTP_CLIENT_H
#define CHATD_HTTP_CLIENT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_client;
struct addrinfo;

struct http_client_opts {
    const char *ca_file;        /* extra PEM bundle, or "" / NULL */
    int max_inflight;           /* requests connecting or exchanging */
    int max_queued;             /* waiting for a slot or their origin; beyond: -EAGAIN */
    int max_conns_per_origin;   /* open connections to one origin; 0: no bound */
    int connect_timeout_ms;     /* DNS + TCP + TLS handshake */
    int response_timeout_ms;    /* from the request's first byte to the answer's last */
    int max_idle_per_origin;    /* idle connections kept per origin; 0: none (no reuse) */
    int max_idle;               /* idle connections kept in all */
    int idle_timeout_ms;        /* an idle connection is closed after this */
    size_t max_head_bytes;      /* status line + headers of an answer */
    size_t max_body_bytes;      /* body of an answer (kept for the callback) */
};

/* The outcome of one request. status: the HTTP status (> 0), or a negative error with
 * error a short text. body (body_len bytes, NUL-terminated) lives until the callback
 * returns. */
struct http_client_result {
    int status;
    const char *error;
    const char *body;
    size_t body_len;
};

/* Runs on the loop, exactly once per accepted request, never from inside send. */
typedef void (*http_client_cb)(void *arg, const struct http_client_result *res);

/* The address policy: returns the entry of res (a resolution of host) to connect to,
 * or NULL with why filled; the request then fails with HTTP_CLIENT_REFUSED and why as
 * its error. Connections are reused only by requests with the same hook. */
typedef const struct addrinfo *(*http_client_addr_pick)(const struct addrinfo *res,
                                                        const char *host, char *why,
                                                        size_t whylen);
/* An error no socket call gives (connect may fail with EACCES or EPERM itself). */
#define HTTP_CLIENT_REFUSED (-ENONET)

struct http_client_request {
    const char *method;
    const char *url;            /* http:// or https://, checked (http_client_parse_url) */
    const char *headers;        /* "Name: value\r\n"...; Host, Content-Length added */
    const void *body;
    size_t body_len;
    http_client_addr_pick pick; /* NULL: the first address resolved */
    int replayable;             /* safe to send twice (see the retry above) */
};

/* Counters for tests and metrics. */
struct http_client_stats {
    uint64_t connections;       /* opened (TCP connect started) */
    uint64_t reused;            /* requests sent on a kept-alive connection */
    uint64_t retried;           /* requests sent again after a reused connection failed */
    int idle;                   /* idle connections now */
};

struct chatd;
/* Blocking (reads the CA bundles): start-up only. Runs on app's loop and logs to its
 * log. 0, or -ENOMEM / -EINVAL with err. */
int  http_client_new(struct http_client **out, struct chatd *app,
                     const struct http_client_opts *opts, char *err, size_t errlen);
/* Copies everything. 0 (cb will run), -EAGAIN (queue full), -EINVAL (bad URL),
 * -ENOMEM, -ECANCELED (closing). */
int  http_client_send(struct http_client *c, const struct http_client_request *req,
                      http_client_cb cb, void *arg);
int  http_client_pending(const struct http_client *c);   /* in flight + queued */
void http_client_stats(const struct http_client *c, struct http_client_stats *out);
/* Fails every request with -ECANCELED, closes every connection; done(arg) once every
 * handle is closed (from inside this call when none was open). */
void http_client_close(struct http_client *c, void (*done)(void *arg), void *arg);
/* After close's done (or when nothing was ever sent). */
void http_client_free(struct http_client *c);

/* Where a URL goes: 0 or -EINVAL. http or https, a host, an optional numeric port, no
 * user info, no spaces or control characters. */
struct http_client_origin {
    char host[256];             /* without brackets for IPv6 */
    char port[8];
    int  tls, host_is_ip;
};
int  http_client_parse_url(struct http_client_origin *o, const char *url);

/* Loads path as the extra CA file would be (opts.ca_file): 0, or -EINVAL with
 * "path: cannot load PEM certificates" in err (-ENOMEM). For check-config. */
int  http_client_check_ca_file(const char *path, char *err, size_t errlen);

#endif
