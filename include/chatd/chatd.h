/* chatd.h: the one application object. Everything the process owns hangs off one
 * struct chatd, passed down to every module, so tests can run two servers in one
 * process and gdb shows the whole state from a single pointer. */
#ifndef CHATD_CHATD_H
#define CHATD_CHATD_H

#include <stdint.h>
#include <uv.h>

#define CHATD_VERSION "0.1.0"

struct chatd_config;
struct chatd_log;
struct metrics;
struct bus;
struct db;
struct http_server;

struct chatd {
    uv_loop_t *loop;                /* not owned: main's loop */
    struct chatd_config *cfg;       /* owned; read-only after start */
    struct chatd_log *log;          /* owned; thread-safe */
    struct metrics *metrics;        /* owned */
    struct bus *bus;                /* owned */
    struct db *db;                  /* owned */
    struct http_server *http;       /* owned */
    void **module_states;           /* owned array, one slot per chatd_modules[] entry */
    int draining;                   /* 1 once SIGTERM/SIGINT arrived: /readyz answers 503 */
    int64_t started_at;             /* ms since the epoch */
};

#endif
