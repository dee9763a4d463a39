/* sdnotify.h: the systemd notification protocol (sd_notify(3)) without libsystemd:
 * one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET. A no-op when the
 * variable is unset, so chatd behaves the same outside systemd. */
#ifndef CHATD_SDNOTIFY_H
#define CHATD_SDNOTIFY_H

#include <stdint.h>

/* Sends state ("READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=..."). 0 when sent or
 * when there is no socket to send to; a negative errno when the send failed. */
int sd_notify_send(const char *state);
/* The watchdog interval asked for by systemd ($WATCHDOG_USEC for this pid), in ms, or 0. */
uint64_t sd_watchdog_interval_ms(void);

#endif
