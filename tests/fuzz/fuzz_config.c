/* fuzz_config.c: the config file parser. Any text either parses into values inside
 * the documented ranges, or fails with a message; it never crashes or reads past the
 * text (the text is not NUL-terminated here, as a file read into memory need not be). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/config.h"
#include "../../src/modules/websocket/ws_settings.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chatd_config cfg;
    char err[256];
    char *text = malloc(size ? size : 1);     /* exact size: ASan sees any overread */
    int rc;

    if (!text)
        return 0;
    memcpy(text, data, size);
    config_defaults(&cfg);
    err[0] = '\0';
    rc = config_parse(&cfg, "fuzz.conf", text, size, err, sizeof(err));
    if (rc < 0) {
        CHECK(err[0] && memchr(err, '\0', sizeof(err)));
    } else {
        CHECK(rc == 0);
        CHECK(memchr(cfg.server.listen_host, '\0', sizeof(cfg.server.listen_host)));
        CHECK(memchr(cfg.server.data_dir, '\0', sizeof(cfg.server.data_dir)));
        CHECK(cfg.server.listen_port >= 0 && cfg.server.listen_port <= 65535);
        CHECK(cfg.server.max_connections > 0);
        CHECK(cfg.server.max_body_bytes > 0 && cfg.server.max_header_bytes > 0);
        CHECK(ws_settings(&cfg)->max_message_bytes > 0);
        CHECK(ws_settings(&cfg)->send_queue_bytes > 0);
    }
    free(text);
    return 0;
}
