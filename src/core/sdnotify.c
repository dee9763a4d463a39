/* sd_notify(3) in a few lines: systemd's Type=notify needs READY=1 once the listener
 * is up, STOPPING=1 when draining starts and WATCHDOG=1 at half the watchdog period. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "chatd/sdnotify.h"

static int notify_address(struct sockaddr_un *sa, socklen_t *len)
{
    const char *path = getenv("NOTIFY_SOCKET");
    size_t n;

    if (path == NULL || path[0] == '\0')
        return -ENOENT;
    n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa->sun_path))
        return -EINVAL;
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, n);
    if (path[0] == '@')                     /* abstract namespace */
        sa->sun_path[0] = '\0';
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    return 0;
}

int sd_notify_send(const char *state)
{
    struct sockaddr_un sa;
    socklen_t len;
    ssize_t sent;
    int fd, rc = notify_address(&sa, &len);

    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    rc = sent < 0 ? -errno : 0;
    close(fd);
    return rc;
}

uint64_t sd_watchdog_interval_ms(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");
    char *end;
    unsigned long long v;

    if (usec == NULL)
        return 0;
    if (pid != NULL && strtol(pid, NULL, 10) != (long)getpid())
        return 0;
    v = strtoull(usec, &end, 10);
    if (*end != '\0' || v == 0)
        return 0;
    return v / 1000;
}
