/* Tests for log.c: line formats, levels, reopen after rotation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "chatd/log.h"
#include "test.h"

static void read_file(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(out, 1, n - 1, f) : 0;
    out[got] = '\0';
    if (f)
        fclose(f);
}

static void temp_path(char *out, size_t n, const char *tag)
{
    snprintf(out, n, "/tmp/chatd-test-log-%d-%s", (int)getpid(), tag);
    unlink(out);
}

TEST(log_text_format)
{
    struct chatd_log *log;
    char path[128], buf[4096];
    temp_path(path, sizeof(path), "text");
    ASSERT_EQ(log_open(&log, CHATD_LOG_INFO, 0, path), 0);
    log_write(log, CHATD_LOG_DEBUG, "core", "hidden");
    log_write(log, CHATD_LOG_INFO, "core", "listening addr=%s", "127.0.0.1:8080");
    log_write(log, CHATD_LOG_ERROR, "db", "bad\nline x=1");
    ASSERT_EQ(log_enabled(log, CHATD_LOG_DEBUG), 0);
    ASSERT_EQ(log_enabled(log, CHATD_LOG_WARN), 1);
    log_close(log);
    read_file(path, buf, sizeof(buf));
    unlink(path);
    ASSERT(strstr(buf, "hidden") == NULL);
    ASSERT(strncmp(buf, "info 20", 7) == 0);
    /* info 2026-11-26T23:40:01.123Z core listening addr=127.0.0.1:8080 */
    ASSERT_EQ(buf[9], '-');
    ASSERT_EQ(buf[15], 'T');
    ASSERT_EQ(buf[28], 'Z');
    ASSERT(strncmp(buf + 29, " core listening addr=127.0.0.1:8080\n", 36) == 0);
    /* the newline inside the message does not start a new line */
    ASSERT(strstr(buf, " db bad line x=1\n") != NULL);
    int lines = 0;
    for (char *p = buf; *p; p++)
        lines += *p == '\n';
    ASSERT_EQ(lines, 2);
}

TEST(log_json_format)
{
    struct chatd_log *log;
    char path[128], buf[4096];
    temp_path(path, sizeof(path), "json");
    ASSERT_EQ(log_open(&log, CHATD_LOG_DEBUG, 1, path), 0);
    log_write(log, CHATD_LOG_WARN, "auth", "login failed user=%s ip=%s reason=\"%s\"",
              "a\"b", "::1", "bad password");
    log_close(log);
    read_file(path, buf, sizeof(buf));
    unlink(path);
    cJSON *v = cJSON_Parse(buf);
    ASSERT(v != NULL);
    const char *level = cJSON_GetStringValue(cJSON_GetObjectItem(v, "level"));
    const char *module = cJSON_GetStringValue(cJSON_GetObjectItem(v, "module"));
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(v, "msg"));
    const char *user = cJSON_GetStringValue(cJSON_GetObjectItem(v, "user"));
    const char *ip = cJSON_GetStringValue(cJSON_GetObjectItem(v, "ip"));
    const char *reason = cJSON_GetStringValue(cJSON_GetObjectItem(v, "reason"));
    const char *tm = cJSON_GetStringValue(cJSON_GetObjectItem(v, "time"));
    int ok = level && strcmp(level, "warn") == 0 && module && strcmp(module, "auth") == 0 &&
             msg && strcmp(msg, "login failed") == 0 && user && strcmp(user, "a\"b") == 0 &&
             ip && strcmp(ip, "::1") == 0 && reason && strcmp(reason, "bad password") == 0 &&
             tm && strlen(tm) == 24;
    cJSON_Delete(v);
    ASSERT(ok);
}

TEST(log_reopen_after_rename)
{
    struct chatd_log *log;
    char path[128], moved[160], buf[4096];
    temp_path(path, sizeof(path), "rot");
    snprintf(moved, sizeof(moved), "%s.1", path);
    unlink(moved);
    ASSERT_EQ(log_open(&log, CHATD_LOG_INFO, 0, path), 0);
    log_write(log, CHATD_LOG_INFO, "core", "before");
    ASSERT_EQ(rename(path, moved), 0);
    ASSERT_EQ(log_reopen(log), 0);
    log_write(log, CHATD_LOG_INFO, "core", "after");
    log_close(log);
    read_file(path, buf, sizeof(buf));
    int after_in_new = strstr(buf, "after") != NULL && strstr(buf, "before") == NULL;
    read_file(moved, buf, sizeof(buf));
    int before_in_old = strstr(buf, "before") != NULL && strstr(buf, "after") == NULL;
    unlink(path);
    unlink(moved);
    ASSERT(after_in_new);
    ASSERT(before_in_old);
}

TEST(log_open_fails_on_bad_path)
{
    struct chatd_log *log;
    ASSERT(log_open(&log, CHATD_LOG_INFO, 0, "/nonexistent-dir/x.log") < 0);
}
