/* settings.c: one chatd.conf value, read by the kind its row declares. Every key of
 * every owner goes through here, so each kind is checked one way with one set of
 * messages (tests and docs quote them). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chatd/settings.h"

/* "out of range (1 to 1000000)": the reader should not have to look the bounds up. */
static const char *range_reason(const struct setting *s, char *buf, size_t len)
{
    if (s->kind == SETTING_INT)
        snprintf(buf, len, "out of range (%lld to %lld)", (long long)s->min,
                 (long long)s->max);
    else
        snprintf(buf, len, "out of range (%g to %g)", s->min, s->max);
    return buf;
}

static const char *apply_int(const struct setting *s, int *field, const char *v, char *buf,
                             size_t buflen)
{
    char *end;

    if (*v == '\0')
        return "expected an integer";
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*end != '\0')
        return "expected an integer";
    if (errno == ERANGE || n < (long long)s->min || n > (long long)s->max)
        return range_reason(s, buf, buflen);
    *field = (int)n;
    return NULL;
}

static const char *apply_double(const struct setting *s, double *field, const char *v,
                                char *buf, size_t buflen)
{
    char *end;

    if (*v == '\0')
        return "expected a number";
    errno = 0;
    double d = strtod(v, &end);
    if (*end != '\0' || !isfinite(d))
        return "expected a number";
    if (d < s->min || d > s->max)
        return range_reason(s, buf, buflen);
    *field = d;
    return NULL;
}

/* "a, b or c": the names in table order. */
static void join_names(const struct setting_name *names, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (const struct setting_name *n = names; n->name && used < len; n++) {
        const char *sep = n == names ? "" : n[1].name ? ", " : " or ";
        int w = snprintf(buf + used, len - used, "%s%s", sep, n->name);
        if (w < 0)
            return;
        used += (size_t)w;
    }
}

static const char *apply_enum(const struct setting *s, int *field, const char *v, char *buf,
                              size_t buflen)
{
    for (const struct setting_name *n = s->names; n->name; n++)
        if (strcmp(v, n->name) == 0) {
            *field = n->value;
            return NULL;
        }
    size_t used = (size_t)snprintf(buf, buflen, "expected ");
    if (used < buflen)
        join_names(s->names, buf + used, buflen - used);
    return buf;
}

static const char *apply_text(const struct setting *s, char *field, const char *v)
{
    const char *why = s->check ? s->check(v) : NULL;

    if (why)
        return why;
    if (strlen(v) >= s->size)
        return "too long";
    strcpy(field, v);
    return NULL;
}

/* host:port, or [v6]:port: brackets are for IPv6 addresses only and an IPv6 address
 * needs them; the port is 0..65535 in at most 5 digits. */
static const char *apply_listen(const struct setting *s, char *base, const char *hostport)
{
    static const char *const bad = "expected host:port or [v6]:port";
    const char *host = hostport, *colon;
    size_t hostlen;

    if (hostport[0] == '[') {
        const char *close = strchr(hostport, ']');
        if (!close || close[1] != ':')
            return bad;
        host = hostport + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
        if (hostlen == 0 || memchr(host, ':', hostlen) == NULL)
            return bad;
    } else {
        colon = strrchr(hostport, ':');
        if (!colon)
            return bad;
        hostlen = (size_t)(colon - hostport);
        if (hostlen == 0 || memchr(hostport, ':', hostlen) != NULL)
            return bad;
    }
    if (hostlen >= s->size || strcspn(host, " \t[]") < hostlen)
        return bad;
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p))
        return bad;
    long port = strtol(p, NULL, 10);
    if (port > 65535)
        return bad;
    memcpy(base + s->offset, host, hostlen);
    base[s->offset + hostlen] = '\0';
    *(int *)(base + s->port_offset) = (int)port;
    return NULL;
}

const char *setting_apply(const struct setting *s, void *base, const char *v, char *buf,
                          size_t buflen)
{
    char *field = (char *)base + s->offset;

    switch (s->kind) {
    case SETTING_INT:
        return apply_int(s, (int *)field, v, buf, buflen);
    case SETTING_DOUBLE:
        return apply_double(s, (double *)field, v, buf, buflen);
    case SETTING_BOOL:
        if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
            return "expected yes or no";
        *(int *)field = v[0] == 'y';
        return NULL;
    case SETTING_ENUM:
        return apply_enum(s, (int *)field, v, buf, buflen);
    case SETTING_STRING:
    case SETTING_PATH:
    case SETTING_FILE:
    case SETTING_DIR:
        return apply_text(s, field, v);
    case SETTING_LISTEN:
        return apply_listen(s, base, v);
    }
    return "bad key kind";
}

void setting_describe(const struct setting *s, char *buf, size_t buflen)
{
    switch (s->kind) {
    case SETTING_INT:
        snprintf(buf, buflen, "integer, %lld to %lld", (long long)s->min, (long long)s->max);
        return;
    case SETTING_DOUBLE:
        snprintf(buf, buflen, "number, %g to %g", s->min, s->max);
        return;
    case SETTING_BOOL:
        snprintf(buf, buflen, "yes or no");
        return;
    case SETTING_ENUM:
        join_names(s->names, buf, buflen);
        return;
    case SETTING_STRING:
        snprintf(buf, buflen, "text, at most %zu bytes", s->size - 1);
        return;
    case SETTING_PATH:
        snprintf(buf, buflen, "path");
        return;
    case SETTING_FILE:
        snprintf(buf, buflen, "path of a file to read");
        return;
    case SETTING_DIR:
        snprintf(buf, buflen, "path of a directory to read");
        return;
    case SETTING_LISTEN:
        snprintf(buf, buflen, "host:port or [v6]:port");
        return;
    }
    snprintf(buf, buflen, "?");
}

const char *setting_check_nonempty(const char *v)
{
    return *v == '\0' ? "must not be empty" : NULL;
}
