/* http_ops.c: the routes every chatd answers whatever modules are loaded: /healthz,
 * /readyz, /metrics, and the web client's files (embedded in the binary by
 * scripts/embed-web.sh, or read from [server] web_dir while developing it). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chatd/chatd.h"
#include "chatd/config.h"
#include "chatd/db.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "http_internal.h"

struct web_asset { const char *path; const char *type; const unsigned char *data; size_t len; };
extern const struct web_asset web_assets[];

#define STATIC_MAX_FILE (16u << 20)

static const char csp_headers[] =
    "Content-Security-Policy: default-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n";

static void on_healthz(struct http_req *r, void *ctx)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    http_respond_json_str(r, 200, ok, sizeof(ok) - 1);
}

static void on_readyz(struct http_req *r, void *ctx)
{
    static const char ready[] = "{\"status\":\"ready\"}";
    struct http_server *s = ctx;
    static const char no_db[] = "{\"status\":\"unavailable\",\"database\":\"unreachable\"}";
    if (s->app->draining || s->closing) {
        http_respond_error(r, 503, "draining: the server is shutting down");
        return;
    }
    /* PostgreSQL lost: writes and reads would answer 503 until the writer reconnects. */
    if (s->app->db && !db_available(s->app->db)) {
        http_respond_json_str(r, 503, no_db, sizeof(no_db) - 1);
        return;
    }
    http_respond_json_str(r, 200, ready, sizeof(ready) - 1);
}

static void on_metrics(struct http_req *r, void *ctx)
{
    struct http_server *s = ctx;
    struct strbuf b;
    strbuf_init(&b, 64u << 20);
    if (!s->app->metrics || metrics_render(s->app->metrics, &b) < 0) {
        strbuf_free(&b);
        http_respond_error(r, 500, "cannot render metrics");
        return;
    }
    http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "",
                 b.len, NULL);
    strbuf_free(&b);
}

int http_ops_register(struct http_server *s)
{
    s->static_route.pattern = (char *)"static";
    int rc = http_route(s, HTTP_VERB_GET, "/healthz", 0, on_healthz, s);
    if (rc == 0)
        rc = http_route(s, HTTP_VERB_GET, "/readyz", 0, on_readyz, s);
    if (rc == 0)
        rc = http_route(s, HTTP_VERB_GET, "/metrics", 0, on_metrics, s);
    return rc;
}

/* ---- the web client ---- */

static const char *type_for(const char *path)
{
    static const struct { const char *ext, *type; } types[] = {
        { ".html", "text/html; charset=utf-8" }, { ".js", "text/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" }, { ".svg", "image/svg+xml" },
        { ".png", "image/png" }, { ".json", "application/manifest+json" },
        { ".webmanifest", "application/manifest+json" }, { ".ico", "image/x-icon" },
        { ".txt", "text/plain; charset=utf-8" },
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* A path we may serve: "/" then segments of [A-Za-z0-9._-], none starting with '.'
 * (no "..", no hidden files), and never the API's namespace. */
static int static_path_ok(const char *path)
{
    if (path[0] != '/' || strncmp(path, "/v1/", 4) == 0 || strcmp(path, "/v1") == 0)
        return 0;
    const char *p = path + 1;
    if (*p == '\0')
        return 1;
    int seg_start = 1;
    for (; *p; p++) {
        char ch = *p;
        if (ch == '/') {
            if (seg_start)
                return 0;
            seg_start = 1;
            continue;
        }
        if (seg_start && ch == '.')
            return 0;
        seg_start = 0;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return !seg_start;
}

static const char *static_name(const char *path)
{
    return strcmp(path, "/") == 0 ? "/index.html" : path;
}

static int asset_index(const char *name)
{
    for (int i = 0; web_assets[i].path; i++)
        if (strcmp(web_assets[i].path, name) == 0)
            return i;
    return -1;
}

static const char *asset_etag(struct http_server *s, int idx)
{
    if (!s->asset_etags) {
        int n = 0;
        while (web_assets[n].path)
            n++;
        s->asset_etags = calloc((size_t)n + 1, sizeof(char *));
        if (!s->asset_etags)
            return NULL;
    }
    if (!s->asset_etags[idx]) {
        uint64_t h = 1469598103934665603ULL;   /* FNV-1a: a cache key, not a security one */
        for (size_t i = 0; i < web_assets[idx].len; i++)
            h = (h ^ web_assets[idx].data[i]) * 1099511628211ULL;
        char buf[32];
        snprintf(buf, sizeof(buf), "\"%016llx\"", (unsigned long long)h);
        s->asset_etags[idx] = strdup(buf);
    }
    return s->asset_etags[idx];
}

static int etag_matches(struct http_req *r, const char *etag)
{
    const char *inm = http_header(r, "If-None-Match");
    if (!inm || !etag)
        return 0;
    return strcmp(inm, "*") == 0 || strstr(inm, etag) != NULL;
}

static void send_file(struct http_req *r, const char *name, const char *type,
                      const void *data, size_t len, const char *etag)
{
    char extra[1024];
    ((struct http_req_priv *)r)->route_ent = &r->server->static_route;
    r->route = r->server->static_route.pattern;
    /* no-cache means "revalidate": a 304 costs little, and after an upgrade the
     * browser never runs an old script against a new page. */
    snprintf(extra, sizeof(extra), "Cache-Control: %s\r\n%s%s%s%s", "no-cache",
             etag ? "ETag: " : "", etag ? etag : "", etag ? "\r\n" : "", csp_headers);
    if (etag_matches(r, etag)) {
        http_respond(r, 304, NULL, NULL, 0, extra);
        return;
    }
    http_respond(r, 200, type, data, len, extra);
}

/* Reads web_dir + name; returns the malloc'ed bytes or NULL. It is a development
 * setting with small files, so a synchronous read is acceptable. */
static char *read_web_file(const char *dir, const char *name, size_t *len, char *etag,
                           size_t etaglen)
{
    char full[CFG_PATH_MAX + 512];
    if ((size_t)snprintf(full, sizeof(full), "%s%s", dir, name) >= sizeof(full))
        return NULL;
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > STATIC_MAX_FILE)
        goto out;
    buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0) {
            free(buf);
            buf = NULL;
            break;
        }
        got += (size_t)n;
    }
    *len = got;
    snprintf(etag, etaglen, "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
                 (unsigned long long)st.st_mtim.tv_nsec);
out:
    close(fd);
    return buf;
}

int http_static_exists(struct http_server *s, const char *path)
{
    if (!static_path_ok(path))
        return 0;
    const char *dir = s->app->cfg->server.web_dir;
    if (dir[0]) {
        char full[CFG_PATH_MAX + 512];
        struct stat st;
        snprintf(full, sizeof(full), "%s%s", dir, static_name(path));
        return stat(full, &st) == 0 && S_ISREG(st.st_mode);
    }
    return asset_index(static_name(path)) >= 0;
}

int http_static_try(struct http_req *r)
{
    struct http_server *s = r->server;
    if (!static_path_ok(r->path))
        return 0;
    const char *name = static_name(r->path);
    const char *dir = s->app->cfg->server.web_dir;
    if (dir[0]) {
        size_t len = 0;
        char etag[64];
        char *data = read_web_file(dir, name, &len, etag, sizeof(etag));
        if (!data)
            return 0;
        send_file(r, name, type_for(name), data, len, etag);
        free(data);
        return 1;
    }
    int idx = asset_index(name);
    if (idx < 0)
        return 0;
    send_file(r, name, web_assets[idx].type, web_assets[idx].data, web_assets[idx].len,
              asset_etag(s, idx));
    return 1;
}

void http_ops_free(struct http_server *s)
{
    if (s->asset_etags) {
        for (int i = 0; web_assets[i].path; i++)
            free(s->asset_etags[i]);
        free(s->asset_etags);
    }
}
