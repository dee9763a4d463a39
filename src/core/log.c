/* log.c: one line per event, written with a single write(2) so lines from several
 * threads never interleave. Text: "level time module message key=value...".
 * JSON: {"level","time","module","msg", key: "value"...}: the message's leading
 * words become "msg" and each following key=value a string field. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "chatd/log.h"
#include "chatd/text.h"
#include "chatd/util.h"

#define LOG_LINE_MAX 8192

struct chatd_log {
    int  fd;                    /* owned unless it is stderr */
    int  level;
    int  json;
    char path[CFG_PATH_MAX];    /* "" = stderr */
};

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static int open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    return fd < 0 ? -errno : fd;
}

int log_open(struct chatd_log **out, int level, int json, const char *path)
{
    struct chatd_log *log = calloc(1, sizeof(*log));

    if (!log)
        return -ENOMEM;
    log->level = level;
    log->json = json;
    log->fd = STDERR_FILENO;
    if (path && path[0]) {
        if (strlen(path) >= sizeof(log->path)) {
            free(log);
            return -ENAMETOOLONG;
        }
        strcpy(log->path, path);
        int fd = open_file(path);
        if (fd < 0) {
            free(log);
            return fd;
        }
        log->fd = fd;
    }
    *out = log;
    return 0;
}

/* dup2 swaps the file under the same descriptor number atomically, so writers on other
 * threads never see a closed descriptor and need no lock. */
int log_reopen(struct chatd_log *log)
{
    if (!log || log->path[0] == '\0')
        return 0;
    int fd = open_file(log->path);
    if (fd < 0)
        return fd;
    int rc = dup2(fd, log->fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

void log_close(struct chatd_log *log)
{
    if (!log)
        return;
    if (log->fd != STDERR_FILENO)
        close(log->fd);
    free(log);
}

int log_enabled(const struct chatd_log *log, int level)
{
    return level >= (log ? log->level : CHATD_LOG_INFO);
}

static void format_time(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t len = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + len, n - len, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
}

/* A line is one event: control characters (a newline in a user-supplied value) are
 * replaced so nobody can forge a second line. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

static void json_str(struct strbuf *b, const char *s, size_t n)
{
    strbuf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };
            strbuf_append(b, esc, 2);
        } else if (c < 0x20) {
            strbuf_printf(b, "\\u%04x", c);
        } else {
            strbuf_append(b, &s[i], 1);
        }
    }
    strbuf_append(b, "\"", 1);
}

/* "key=" with key [A-Za-z0-9_.-]+ starts a field. */
static size_t field_key_len(const char *s)
{
    size_t n = 0;
    while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
           (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '.' || s[n] == '-')
        n++;
    return n > 0 && s[n] == '=' ? n : 0;
}

/* Finds the first " key=" word: the end of the message text. */
static const char *first_field(const char *msg)
{
    for (const char *p = msg; *p; p++)
        if ((p == msg || p[-1] == ' ') && field_key_len(p))
            return p;
    return NULL;
}

/* A value runs to the next " key=" (so values may hold spaces), or is "quoted". */
static const char *value_end(const char *v, const char **next)
{
    if (*v == '"') {
        const char *p = v + 1;
        while (*p && *p != '"')
            p += (p[0] == '\\' && p[1]) ? 2 : 1;
        *next = *p ? p + 1 : p;
        return p;
    }
    const char *p = v;
    while (*p && !(*p == ' ' && field_key_len(p + 1)))
        p++;
    *next = p;
    return p;
}

static void format_json(struct strbuf *b, const char *level, const char *ts,
                        const char *module, const char *msg)
{
    const char *fields = first_field(msg);
    size_t msglen = fields ? (size_t)(fields - msg) : strlen(msg);

    while (msglen > 0 && msg[msglen - 1] == ' ')
        msglen--;
    strbuf_printf(b, "{\"level\":\"%s\",\"time\":\"%s\",\"module\":", level, ts);
    json_str(b, module, strlen(module));
    strbuf_append(b, ",\"msg\":", 7);
    json_str(b, msg, msglen);
    for (const char *p = fields; p && *p;) {
        while (*p == ' ')
            p++;
        size_t klen = field_key_len(p);
        if (!klen)
            break;
        const char *v = p + klen + 1, *next;
        const char *end = value_end(v, &next);
        strbuf_append(b, ",", 1);
        json_str(b, p, klen);
        strbuf_append(b, ":", 1);
        if (*v == '"')
            json_str(b, v + 1, (size_t)(end - v - 1));
        else
            json_str(b, v, (size_t)(end - v));
        p = next;
    }
    strbuf_append(b, "}\n", 2);
}

void log_write(struct chatd_log *log, int level, const char *module, const char *fmt, ...)
{
    char msg[LOG_LINE_MAX], ts[40];
    struct strbuf b;
    va_list ap;

    if (!log_enabled(log, level))
        return;
    if (level < CHATD_LOG_DEBUG || level > CHATD_LOG_ERROR)
        level = CHATD_LOG_ERROR;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sanitize(msg);
    /* JSON must be valid UTF-8; text lines are left as they are. */
    if (log && log->json && !utf8_valid(msg, strlen(msg)))
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
    format_time(ts, sizeof(ts));

    strbuf_init(&b, LOG_LINE_MAX * 2);
    if (log && log->json)
        format_json(&b, level_names[level], ts, module, msg);
    else
        strbuf_printf(&b, "%s %s %s %s\n", level_names[level], ts, module, msg);
    if (b.len > 0) {
        int fd = log ? log->fd : STDERR_FILENO;
        ssize_t w;
        do {
            w = write(fd, b.data, b.len);
        } while (w < 0 && errno == EINTR);
    }
    strbuf_free(&b);
}
