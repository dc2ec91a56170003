/*
 * sdnotify: the systemd notify and watchdog protocol, hand-written (no libsystemd).
 *
 * One datagram per message to $NOTIFY_SOCKET, newline-separated KEY=VALUE lines
 * (sd_notify(3)). Without $NOTIFY_SOCKET every call is a successful no-op, so the
 * same binary runs under systemd, under a shell and in tests.
 */
#ifndef CRMGATE_SDNOTIFY_H
#define CRMGATE_SDNOTIFY_H

#include <stdint.h>

/* Longest state string sdnotify() sends; longer ones are refused with -1. */
#define SDNOTIFY_MAX_STATE 4096

/* Sends state (e.g. "READY=1") to $NOTIFY_SOCKET; 0 if sent or unset, -1 on error (errno set). */
int sdnotify(const char *state);

/* Sends "RELOADING=1\nMONOTONIC_USEC=<now>" (SIGHUP start); 0 / -1 as sdnotify(). */
int sdnotify_reloading(void);

/* Watchdog interval from $WATCHDOG_USEC when $WATCHDOG_PID is unset or ours; 0 if disabled. */
uint64_t sdnotify_watchdog_usec(void);

#endif /* CRMGATE_SDNOTIFY_H */
