/*
 * sdnotify: systemd notify protocol without libsystemd, modelled on HAProxy src/systemd.c.
 * The wire format is the stable interface (sd_notify(3)); linking libsystemd into a
 * TLS-terminating process only for this is the dependency the XZ incident warned about.
 */
/* SOCK_CLOEXEC, MSG_NOSIGNAL and clock_gettime whatever -std= the Makefile picks. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "sdnotify.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/*
 * Parses a whole decimal unsigned string into *out. Rejects empty strings, signs, spaces,
 * trailing garbage and overflow (strtoull alone accepts "-1" and " 5").
 */
static int sdnotify_parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int sdnotify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun;
    socklen_t addrlen;
    size_t pathlen, statelen;
    ssize_t sent;
    int fd = -1, saved;

    if (path == NULL || *path == '\0')
        return 0;
    if (state == NULL) {
        errno = EINVAL;
        return -1;
    }
    statelen = strlen(state);
    pathlen = strlen(path);
    /* Only absolute paths and abstract names; sun_path need not be NUL-terminated. */
    if ((path[0] != '/' && path[0] != '@') || pathlen < 2 || pathlen > sizeof(sun.sun_path) ||
        statelen == 0 || statelen > SDNOTIFY_MAX_STATE) {
        errno = EINVAL;
        return -1;
    }

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, pathlen);
    if (path[0] == '@')
        sun.sun_path[0] = '\0';
    addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pathlen);

    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    do {
        sent = sendto(fd, state, statelen, MSG_NOSIGNAL, (struct sockaddr *)&sun, addrlen);
    } while (sent < 0 && errno == EINTR);
    saved = errno;
    close(fd);
    if (sent < 0 || (size_t)sent != statelen) {
        errno = sent < 0 ? saved : EMSGSIZE;
        return -1;
    }
    return 0;
}

int sdnotify_reloading(void)
{
    struct timespec ts;
    char msg[64];
    uint64_t usec;
    int n;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return -1;
    usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    n = snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, usec);
    if (n < 0 || (size_t)n >= sizeof(msg)) {
        errno = EOVERFLOW;
        return -1;
    }
    return sdnotify(msg);
}

uint64_t sdnotify_watchdog_usec(void)
{
    const char *pid_s = getenv("WATCHDOG_PID");
    uint64_t usec, pid;

    if (sdnotify_parse_u64(getenv("WATCHDOG_USEC"), &usec) != 0 || usec == 0)
        return 0;
    /* WATCHDOG_PID names the process the watchdog is meant for; a child must not ping. */
    if (pid_s != NULL) {
        if (sdnotify_parse_u64(pid_s, &pid) != 0 || pid != (uint64_t)getpid())
            return 0;
    }
    return usec;
}
