/*
 * Unit tests for proxy/sdnotify.c: a real unix datagram socket stands in for systemd's
 * notify socket, and every test reads back the exact bytes that would reach PID 1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../proxy/sdnotify.c"

/* One fake notify socket: bound path or abstract name, plus its temp dir. */
struct fake_notify {
    int fd;
    char dir[PATH_MAX];
    char env[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
};

/* Binds a non-blocking SOCK_DGRAM socket at <tmpdir>/notify (or an abstract name). */
static void fake_notify_open(struct fake_notify *f, int abstract)
{
    struct sockaddr_un sun;
    socklen_t len;
    const char *tmp = getenv("TMPDIR");
    int n;

    memset(f, 0, sizeof(*f));
    n = snprintf(f->dir, sizeof(f->dir), "%s/sdnotify-test.XXXXXX", tmp ? tmp : "/tmp");
    assert_true(n > 0 && (size_t)n < sizeof(f->dir));
    assert_non_null(mkdtemp(f->dir));

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (abstract) {
        /* Unique per process and per temp dir so parallel runs never collide. */
        n = snprintf(f->env, sizeof(f->env), "@crmgate-test/%d/%s", (int)getpid(),
                     strrchr(f->dir, '.') + 1);
        assert_true(n > 0 && (size_t)n < sizeof(f->env));
        memcpy(sun.sun_path, f->env, (size_t)n);
        sun.sun_path[0] = '\0';
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n);
    } else {
        n = snprintf(f->env, sizeof(f->env), "%s/notify", f->dir);
        assert_true(n > 0 && (size_t)n < sizeof(f->env));
        memcpy(sun.sun_path, f->env, (size_t)n);
        len = (socklen_t)sizeof(sun);
    }
    f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(f->fd >= 0);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&sun, len), 0);
}

static void fake_notify_close(struct fake_notify *f)
{
    char path[PATH_MAX + 16];

    close(f->fd);
    f->fd = -1;
    if (f->env[0] == '/')
        unlink(f->env);
    snprintf(path, sizeof(path), "%s", f->dir);
    rmdir(path);
    unsetenv("NOTIFY_SOCKET");
}

/* Receives one datagram into buf (NUL-terminated); returns its length or -1 if none queued. */
static ssize_t fake_notify_recv(struct fake_notify *f, char *buf, size_t cap)
{
    ssize_t n = recv(f->fd, buf, cap - 1, MSG_DONTWAIT);

    if (n >= 0)
        buf[n] = '\0';
    return n;
}

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void test_unset_is_noop(void **state)
{
    struct fake_notify f;
    char buf[256];
    (void)state;

    fake_notify_open(&f, 0);
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(sdnotify("READY=1"), 0);
    assert_int_equal(sdnotify_reloading(), 0);
    assert_int_equal(fake_notify_recv(&f, buf, sizeof(buf)), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    /* An empty value is treated as unset, as libsystemd does. */
    assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
    assert_int_equal(sdnotify("READY=1"), 0);
    assert_int_equal(fake_notify_recv(&f, buf, sizeof(buf)), -1);
    fake_notify_close(&f);
}

static void test_path_socket_ready(void **state)
{
    struct fake_notify f;
    char buf[256];
    int before;
    (void)state;

    fake_notify_open(&f, 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", f.env, 1), 0);
    before = count_open_fds();
    assert_int_equal(sdnotify("READY=1"), 0);
    assert_int_equal(count_open_fds(), before); /* the sending socket is closed again */
    assert_int_equal(fake_notify_recv(&f, buf, sizeof(buf)), 7);
    assert_string_equal(buf, "READY=1");
    /* Exactly one datagram per call. */
    assert_int_equal(fake_notify_recv(&f, buf, sizeof(buf)), -1);
    fake_notify_close(&f);
}

static void test_multiline_is_one_datagram(void **state)
{
    struct fake_notify f;
    char buf[256];
    const char *msg = "STATUS=serving 2 workers\nREADY=1";
    (void)state;

    fake_notify_open(&f, 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", f.env, 1), 0);
    assert_int_equal(sdnotify(msg), 0);
    assert_int_equal(sdnotify("STOPPING=1"), 0);
    assert_int_equal(fake_notify_recv(&f, buf, sizeof(buf)), (ssize_t)strlen(msg));
    assert_string_equal(buf, msg);
    assert_int_equal(fake_notify_recv(&f, buf, sizeof(buf)), 10);
    assert_string_equal(buf, "STOPPING=1");
    fake_notify_close(&f);
}

static void test_abstract_socket(void **state)
{
    struct fake_notify f;
    char buf[256];
    (void)state;

    fake_notify_open(&f, 1);
    assert_true(f.env[0] == '@');
    assert_int_equal(setenv("NOTIFY_SOCKET", f.env, 1), 0);
    assert_int_equal(sdnotify("WATCHDOG=1"), 0);
    assert_int_equal(fake_notify_recv(&f, buf, sizeof(buf)), 10);
    assert_string_equal(buf, "WATCHDOG=1");
    fake_notify_close(&f);
}

static void test_reloading_has_monotonic_usec(void **state)
{
    struct fake_notify f;
    struct timespec ts;
    char buf[256];
    const char *prefix = "RELOADING=1\nMONOTONIC_USEC=";
    uint64_t before, after, got;
    char *end = NULL;
    (void)state;

    fake_notify_open(&f, 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", f.env, 1), 0);
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    before = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    assert_int_equal(sdnotify_reloading(), 0);
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    after = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;

    assert_true(fake_notify_recv(&f, buf, sizeof(buf)) > (ssize_t)strlen(prefix));
    assert_memory_equal(buf, prefix, strlen(prefix));
    errno = 0;
    got = strtoull(buf + strlen(prefix), &end, 10);
    assert_int_equal(errno, 0);
    assert_true(*end == '\0'); /* no trailing newline or junk */
    assert_true(got >= before && got <= after);
    fake_notify_close(&f);
}

static void test_errors(void **state)
{
    struct fake_notify f;
    char big[SDNOTIFY_MAX_STATE + 2];
    char path[PATH_MAX + 32];
    (void)state;

    /* Relative paths are not a notify socket. */
    assert_int_equal(setenv("NOTIFY_SOCKET", "relative/notify", 1), 0);
    errno = 0;
    assert_int_equal(sdnotify("READY=1"), -1);
    assert_int_equal(errno, EINVAL);

    /* A lone "@" names nothing. */
    assert_int_equal(setenv("NOTIFY_SOCKET", "@", 1), 0);
    assert_int_equal(sdnotify("READY=1"), -1);

    /* Longer than sun_path. */
    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(struct sockaddr_un) - offsetof(struct sockaddr_un, sun_path) + 1] = '\0';
    assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
    assert_int_equal(sdnotify("READY=1"), -1);

    /* Nobody listening at the path. */
    fake_notify_open(&f, 0);
    snprintf(path, sizeof(path), "%s/absent", f.dir);
    assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
    errno = 0;
    assert_int_equal(sdnotify("READY=1"), -1);
    assert_true(errno == ENOENT || errno == ECONNREFUSED);

    /* Empty, NULL and oversized states. */
    assert_int_equal(setenv("NOTIFY_SOCKET", f.env, 1), 0);
    assert_int_equal(sdnotify(""), -1);
    assert_int_equal(sdnotify(NULL), -1);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(sdnotify(big), -1);
    big[SDNOTIFY_MAX_STATE] = '\0'; /* exactly the maximum is fine */
    assert_int_equal(sdnotify(big), 0);
    fake_notify_close(&f);
}

static void test_watchdog_usec(void **state)
{
    char pid[32];
    (void)state;

    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    assert_int_equal(sdnotify_watchdog_usec(), 0);

    assert_int_equal(setenv("WATCHDOG_USEC", "30000000", 1), 0);
    assert_int_equal(sdnotify_watchdog_usec(), 30000000u);

    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
    assert_int_equal(sdnotify_watchdog_usec(), 30000000u);

    /* Meant for another process (e.g. we are a forked child). */
    snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
    assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
    assert_int_equal(sdnotify_watchdog_usec(), 0);
    assert_int_equal(setenv("WATCHDOG_PID", "notapid", 1), 0);
    assert_int_equal(sdnotify_watchdog_usec(), 0);
    unsetenv("WATCHDOG_PID");

    /* Malformed or zero intervals mean "disabled", never a garbage interval. */
    const char *bad[] = {"0", "", "-1", " 5", "+5", "12x", "abc", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(setenv("WATCHDOG_USEC", bad[i], 1), 0);
        assert_int_equal(sdnotify_watchdog_usec(), 0);
    }
    unsetenv("WATCHDOG_USEC");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unset_is_noop),
        cmocka_unit_test(test_path_socket_ready),
        cmocka_unit_test(test_multiline_is_one_datagram),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_reloading_has_monotonic_usec),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_watchdog_usec),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
