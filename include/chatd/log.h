/* log.h: one line per event, "level time module message key=value...", or a JSON
 * object per line when [log] format = json. Thread-safe: each line is one write(2). */
#ifndef CHATD_LOG_H
#define CHATD_LOG_H

#include "chatd/config.h"

struct chatd_log;

/* path NULL or "" logs to stderr. Returns 0 or a negative errno. */
int  log_open(struct chatd_log **out, int level, int json, const char *path);
int  log_reopen(struct chatd_log *log);          /* SIGHUP */
void log_close(struct chatd_log *log);
int  log_enabled(const struct chatd_log *log, int level);
/* fmt is the message; by convention "text key=value key=value". In JSON mode the
 * leading text becomes "msg" and each key=value a field. */
void log_write(struct chatd_log *log, int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define LOG_DEBUG(app, mod, ...) log_write((app)->log, CHATD_LOG_DEBUG, mod, __VA_ARGS__)
#define LOG_INFO(app, mod, ...)  log_write((app)->log, CHATD_LOG_INFO, mod, __VA_ARGS__)
#define LOG_WARN(app, mod, ...)  log_write((app)->log, CHATD_LOG_WARN, mod, __VA_ARGS__)
#define LOG_ERROR(app, mod, ...) log_write((app)->log, CHATD_LOG_ERROR, mod, __VA_ARGS__)

#endif
