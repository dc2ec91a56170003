/*
 * tunnel_load.c - the bench's load driver for what wrk cannot do: HTTPS
 * through an explicit proxy (CONNECT, then TLS inside the tunnel), and new
 * connections per request (handshake rate). Also plain HTTP and direct TLS,
 * so the same driver measures every target it is compared against.
 *
 *   tunnel_load --target HOST:PORT [--proxy HOST:PORT] [--tls] [--host NAME | --host-pattern P]
 *               [--path P] [--header 'Name: value']... [--method M] [--body TEXT]
 *               [--new-conn] [--connections N] [--threads N] [--seconds S] [--max-requests N]
 *               [--expect-status N] [--expect-body-bytes N] [--cafile FILE]
 *
 * --proxy sends "CONNECT host:443" to the proxy first (host from --host, or
 * --host-pattern with %u replaced by a fresh number per connection: distinct
 * hosts for a cold certificate cache). --tls runs a TLS handshake (SNI =
 * host unless it is an IP address) on the target or in the tunnel.
 * --new-conn: one request per connection (connect, CONNECT, handshake,
 * request, close with RST so no TIME_WAIT piles up); otherwise every
 * connection is kept alive and sends requests one after another, as wrk.
 * --cafile verifies the chain and the host name (the pre-flight does; the
 * load runs leave verification to the pre-flight, as a warm client would).
 *
 * One epoll loop per thread, non-blocking sockets and OpenSSL, edge-triggered:
 * the driver spends a few microseconds per request of its own, measured and
 * printed as cpu_us so a reader can see it is not the limit.
 *
 * Bounded: --seconds (at most 300) and --max-requests. Prints one line:
 *   BENCH requests=N duration_us=N errors=N bad=N p50_us=N p90_us=N p99_us=N max_us=N
 *         cpu_us=N first_error="..."
 * A response counts only if its status and body length are the expected
 * ones; anything else is "bad". Exit 0 if requests > 0 and errors + bad = 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TL_MAX_CONNS   4096
#define TL_MAX_THREADS 16
#define TL_MAX_SECONDS 300
#define TL_BUF         65536
#define TL_HIST_US     1000000 /* 1 µs buckets up to 1 s; slower ones land in the last */
#define TL_MAX_HEADERS 16
#define TL_REQ_MAX     8192

enum tl_state {
    TL_CONNECTING,
    TL_SEND_CONNECT,
    TL_READ_CONNECT,
    TL_HANDSHAKE,
    TL_SEND_REQ,
    TL_READ_RESP,
};

struct tl_conn {
    int fd;
    SSL *ssl;
    enum tl_state state;
    char host[300];
    char out[TL_REQ_MAX];
    size_t out_len, out_off;
    char in[TL_BUF];
    size_t in_len;
    uint64_t t_start; /* request (or, with --new-conn, connection) start, ns */
};

struct tl_thread {
    pthread_t tid;
    int id, epfd, nconns;
    struct tl_conn *conns;
    uint32_t *hist;
    uint64_t requests, errors, bad, max_us;
    char first_error[200];
};

static struct {
    struct sockaddr_storage target, proxy;
    socklen_t target_len, proxy_len;
    int use_proxy, use_tls, new_conn, verify;
    const char *host, *host_pattern, *path, *method, *body, *cafile;
    const char *headers[TL_MAX_HEADERS];
    int nheaders;
    int connections, threads, seconds;
    uint64_t max_requests;
    int expect_status;
    long expect_body;
    SSL_CTX *ctx;
    uint64_t deadline_ns;
} g = {.path = "/",
       .method = "GET",
       .connections = 64,
       .threads = 2,
       .seconds = 10,
       .expect_status = 200,
       .expect_body = -1};

static atomic_uint_fast64_t g_total; /* requests done, all threads (for --max-requests) */
static atomic_uint g_host_seq;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(s, ':');
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai;

    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    /* Numeric only: the driver never resolves a name, so it cannot reach past loopback by DNS. */
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
        return -1;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static void tl_error(struct tl_thread *t, const char *what)
{
    t->errors++;
    if (t->first_error[0] == '\0') {
        unsigned long e = ERR_peek_last_error();
        char reason[120] = "";
        if (e != 0)
            ERR_error_string_n(e, reason, sizeof(reason));
        snprintf(t->first_error, sizeof(t->first_error), "%s%s%s", what, reason[0] ? ": " : "",
                 reason);
    }
    ERR_clear_error();
}

static void tl_close(struct tl_thread *t, struct tl_conn *c, int rst)
{
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        if (rst) {
            struct linger l = {1, 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
        epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
}

static int tl_done(void)
{
    return now_ns() >= g.deadline_ns ||
           (g.max_requests > 0 && atomic_load(&g_total) >= g.max_requests);
}

static void tl_build_request(struct tl_conn *c)
{
    int n = snprintf(c->out, sizeof(c->out), "%s %s HTTP/1.1\r\nHost: %s\r\n", g.method, g.path,
                     c->host);
    for (int i = 0; i < g.nheaders; i++)
        n += snprintf(c->out + n, sizeof(c->out) - (size_t)n, "%s\r\n", g.headers[i]);
    if (g.body != NULL)
        n += snprintf(c->out + n, sizeof(c->out) - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      strlen(g.body), g.body);
    else
        n += snprintf(c->out + n, sizeof(c->out) - (size_t)n, "\r\n");
    c->out_len = (size_t)n;
    c->out_off = 0;
}

/* A new connection (TCP connect started). 0 or -1. */
static int tl_open(struct tl_thread *t, struct tl_conn *c)
{
    const struct sockaddr_storage *to = g.use_proxy ? &g.proxy : &g.target;
    socklen_t tolen = g.use_proxy ? g.proxy_len : g.target_len;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    int one = 1;

    if (g.host_pattern != NULL)
        snprintf(c->host, sizeof(c->host), g.host_pattern, atomic_fetch_add(&g_host_seq, 1));
    c->fd = socket(to->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        tl_error(t, "socket");
        return -1;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->in_len = 0;
    c->in[0] = '\0';
    c->t_start = now_ns();
    if (connect(c->fd, (const struct sockaddr *)to, tolen) != 0 && errno != EINPROGRESS) {
        tl_error(t, "connect");
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->state = TL_CONNECTING;
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        tl_error(t, "epoll_ctl");
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

/* 1: progress, 0: would block, -1: error (counted). */
static int tl_write(struct tl_thread *t, struct tl_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n;
        if (c->ssl != NULL) {
            int r = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                    return 0;
                tl_error(t, "SSL_write");
                return -1;
            }
            n = r;
        } else {
            n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
            if (n < 0) {
                if (errno == EAGAIN)
                    return 0;
                tl_error(t, "write");
                return -1;
            }
        }
        c->out_off += (size_t)n;
    }
    return 1;
}

/* Read what is there into c->in. 1: got bytes, 0: would block, -1: error or EOF (counted). */
static int tl_read(struct tl_thread *t, struct tl_conn *c)
{
    int got = 0;

    for (;;) {
        size_t want = sizeof(c->in) - 1 - c->in_len;
        ssize_t n;
        if (c->in_len >= sizeof(c->in) - 1) {
            tl_error(t, "response larger than the read buffer");
            return -1;
        }
        if (c->ssl != NULL) {
            int r = SSL_read(c->ssl, c->in + c->in_len, (int)(sizeof(c->in) - 1 - c->in_len));
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    return got;
                tl_error(t, e == SSL_ERROR_ZERO_RETURN ? "TLS closed by the server" : "SSL_read");
                return -1;
            }
            n = r;
        } else {
            n = read(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len);
            if (n == 0) {
                tl_error(t, "connection closed by the server");
                return -1;
            }
            if (n < 0) {
                if (errno == EAGAIN)
                    return got;
                tl_error(t, "read");
                return -1;
            }
        }
        c->in_len += (size_t)n;
        c->in[c->in_len] = '\0';
        got = 1;
        /* A short plain read emptied the socket: skip the read that would say EAGAIN. */
        if (c->ssl == NULL && c->in_len < sizeof(c->in) - 1 && (size_t)n < want)
            return got;
    }
}

/* A complete response in c->in? 1 yes (status and body length out), 0 not yet, -1 unusable. */
static int tl_response(struct tl_conn *c, int *status, long *body_len, size_t *total)
{
    char *end = strstr(c->in, "\r\n\r\n"), *p;
    long cl = -1;

    if (end == NULL)
        return 0;
    if (strncmp(c->in, "HTTP/1.1 ", 9) != 0 && strncmp(c->in, "HTTP/1.0 ", 9) != 0)
        return -1;
    *status = (int)strtol(c->in + 9, NULL, 10);
    for (p = strstr(c->in, "\r\n"); p != NULL && p < end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "content-length:", 15) == 0)
            cl = strtol(p + 17, NULL, 10);
        else if (strncasecmp(p + 2, "transfer-encoding:", 18) == 0)
            return -1; /* the targets all answer with a length */
    }
    if (cl < 0)
        return -1;
    if (c->in_len < (size_t)(end + 4 - c->in) + (size_t)cl)
        return 0;
    *body_len = cl;
    *total = (size_t)(end + 4 - c->in) + (size_t)cl;
    return 1;
}

static void tl_record(struct tl_thread *t, uint64_t t0)
{
    uint64_t us = (now_ns() - t0) / 1000;

    t->hist[us < TL_HIST_US ? us : TL_HIST_US - 1]++;
    if (us > t->max_us)
        t->max_us = us;
    t->requests++;
    atomic_fetch_add(&g_total, 1);
}

/* Run c's state machine until it would block. Returns 0, or -1 when c was closed for good. */
static int tl_advance(struct tl_thread *t, struct tl_conn *c)
{
    for (;;) {
        int r, status;
        long blen;
        size_t total;

        switch (c->state) {
        case TL_CONNECTING: {
            const struct sockaddr_storage *to = g.use_proxy ? &g.proxy : &g.target;
            socklen_t tolen = g.use_proxy ? g.proxy_len : g.target_len;
            if (connect(c->fd, (const struct sockaddr *)to, tolen) != 0 && errno != EISCONN) {
                if (errno == EALREADY || errno == EINPROGRESS)
                    return 0;
                tl_error(t, "connect");
                goto reopen;
            }
            if (g.use_proxy) {
                c->out_len = (size_t)snprintf(c->out, sizeof(c->out),
                                              "CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n",
                                              c->host, c->host);
                c->out_off = 0;
                c->state = TL_SEND_CONNECT;
            } else {
                c->state = g.use_tls ? TL_HANDSHAKE : TL_SEND_REQ;
                if (!g.use_tls)
                    tl_build_request(c);
            }
            break;
        }
        case TL_SEND_CONNECT:
            if ((r = tl_write(t, c)) <= 0)
                goto blocked;
            c->state = TL_READ_CONNECT;
            break;
        case TL_READ_CONNECT:
            if ((r = tl_read(t, c)) <= 0)
                goto blocked;
            if (strstr(c->in, "\r\n\r\n") == NULL)
                break;
            if (strncmp(c->in, "HTTP/1.1 200", 12) != 0 &&
                strncmp(c->in, "HTTP/1.0 200", 12) != 0) {
                t->bad++;
                if (t->first_error[0] == '\0')
                    snprintf(t->first_error, sizeof(t->first_error), "CONNECT answered: %.60s",
                             c->in);
                goto reopen;
            }
            c->in_len = 0;
            c->in[0] = '\0';
            c->state = TL_HANDSHAKE;
            break;
        case TL_HANDSHAKE:
            if (c->ssl == NULL) {
                struct in6_addr a6;
                struct in_addr a4;
                c->ssl = SSL_new(g.ctx);
                if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
                    tl_error(t, "SSL_new");
                    goto reopen;
                }
                if (inet_pton(AF_INET, c->host, &a4) != 1 && inet_pton(AF_INET6, c->host, &a6) != 1)
                    SSL_set_tlsext_host_name(c->ssl, c->host);
                if (g.verify && inet_pton(AF_INET, c->host, &a4) != 1)
                    SSL_set1_host(c->ssl, c->host);
                else if (g.verify)
                    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host);
                SSL_set_connect_state(c->ssl);
            }
            r = SSL_do_handshake(c->ssl);
            if (r != 1) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    return 0;
                if (g.verify && SSL_get_verify_result(c->ssl) != X509_V_OK &&
                    t->first_error[0] == 0)
                    snprintf(t->first_error, sizeof(t->first_error), "verify: %s",
                             X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
                tl_error(t, "TLS handshake");
                goto reopen;
            }
            tl_build_request(c);
            c->state = TL_SEND_REQ;
            break;
        case TL_SEND_REQ:
            if (c->out_off == 0 && !g.new_conn)
                c->t_start = now_ns();
            if ((r = tl_write(t, c)) <= 0)
                goto blocked;
            c->in_len = 0;
            c->in[0] = '\0';
            c->state = TL_READ_RESP;
            /* The answer cannot be there yet: wait for its edge instead of an EAGAIN read. */
            if (c->ssl == NULL)
                return 0;
            break;
        case TL_READ_RESP:
            r = tl_read(t, c);
            if (r < 0)
                goto reopen;
            r = tl_response(c, &status, &blen, &total);
            if (r == 0)
                return 0;
            if (r < 0 || status != g.expect_status ||
                (g.expect_body >= 0 && blen != g.expect_body) || total != c->in_len) {
                t->bad++;
                if (t->first_error[0] == '\0')
                    snprintf(t->first_error, sizeof(t->first_error),
                             "unexpected answer (status %d, body %ld bytes): %.80s",
                             r < 0 ? 0 : status, r < 0 ? -1 : blen, c->in);
                goto reopen;
            }
            tl_record(t, c->t_start);
            if (tl_done()) {
                tl_close(t, c, 0);
                return -1;
            }
            if (g.new_conn)
                goto reopen_clean;
            tl_build_request(c);
            c->state = TL_SEND_REQ;
            break;
        }
        continue;
    blocked:
        if (r < 0)
            goto reopen;
        return 0;
    }
reopen:
    tl_close(t, c, 1);
    if (tl_done())
        return -1;
    /* A failing target must not turn into a connect storm. */
    usleep(1000);
    return tl_open(t, c) == 0 ? tl_advance(t, c) : -1;
reopen_clean:
    tl_close(t, c, 1);
    return tl_open(t, c) == 0 ? tl_advance(t, c) : -1;
}

static void *tl_thread_main(void *arg)
{
    struct tl_thread *t = arg;
    struct epoll_event evs[256];
    int live = 0;

    for (int i = 0; i < t->nconns; i++) {
        struct tl_conn *c = &t->conns[i];
        if (g.host_pattern == NULL)
            snprintf(c->host, sizeof(c->host), "%s", g.host);
        if (tl_open(t, c) == 0 && tl_advance(t, c) == 0)
            live++;
    }
    while (live > 0 && !tl_done()) {
        int n = epoll_wait(t->epfd, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct tl_conn *c = evs[i].data.ptr;
            if (c->fd >= 0 && tl_advance(t, c) < 0)
                live--;
        }
    }
    for (int i = 0; i < t->nconns; i++)
        tl_close(t, &t->conns[i], 1);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: tunnel_load --target HOST:PORT [--proxy HOST:PORT] [--tls] "
                    "[--host NAME | --host-pattern P] [--path P] [--header H]... [--method M] "
                    "[--body TEXT] [--new-conn] [--connections N] [--threads N] [--seconds S] "
                    "[--max-requests N] [--expect-status N] [--expect-body-bytes N] "
                    "[--cafile FILE]\n");
    exit(2);
}

static long num(const char *s, long lo, long hi, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "tunnel_load: %s must be %ld..%ld\n", what, lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", 1, NULL, 'T'},        {"proxy", 1, NULL, 'P'},
        {"tls", 0, NULL, 's'},           {"host", 1, NULL, 'H'},
        {"host-pattern", 1, NULL, 'p'},  {"path", 1, NULL, 'u'},
        {"header", 1, NULL, 'h'},        {"method", 1, NULL, 'm'},
        {"body", 1, NULL, 'b'},          {"new-conn", 0, NULL, 'n'},
        {"connections", 1, NULL, 'c'},   {"threads", 1, NULL, 't'},
        {"seconds", 1, NULL, 'd'},       {"max-requests", 1, NULL, 'N'},
        {"expect-status", 1, NULL, 'S'}, {"expect-body-bytes", 1, NULL, 'B'},
        {"cafile", 1, NULL, 'C'},        {NULL, 0, NULL, 0},
    };
    struct tl_thread th[TL_MAX_THREADS] = {0};
    struct rusage ru0, ru1;
    uint64_t t0, t1, requests = 0, errors = 0, bad = 0, max_us = 0, cum = 0, cpu_us;
    uint64_t p50 = 0, p90 = 0, p99 = 0;
    const char *first_error = "";
    int ch, have_target = 0;
    uint32_t *hist;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'T':
            if (parse_addr(optarg, &g.target, &g.target_len) != 0)
                usage();
            have_target = 1;
            break;
        case 'P':
            if (parse_addr(optarg, &g.proxy, &g.proxy_len) != 0)
                usage();
            g.use_proxy = 1;
            break;
        case 's':
            g.use_tls = 1;
            break;
        case 'H':
            g.host = optarg;
            break;
        case 'p':
            g.host_pattern = optarg;
            break;
        case 'u':
            g.path = optarg;
            break;
        case 'h':
            if (g.nheaders == TL_MAX_HEADERS)
                usage();
            g.headers[g.nheaders++] = optarg;
            break;
        case 'm':
            g.method = optarg;
            break;
        case 'b':
            g.body = optarg;
            break;
        case 'n':
            g.new_conn = 1;
            break;
        case 'c':
            g.connections = (int)num(optarg, 1, TL_MAX_CONNS, "--connections");
            break;
        case 't':
            g.threads = (int)num(optarg, 1, TL_MAX_THREADS, "--threads");
            break;
        case 'd':
            g.seconds = (int)num(optarg, 1, TL_MAX_SECONDS, "--seconds");
            break;
        case 'N':
            g.max_requests = (uint64_t)num(optarg, 1, 1000000000L, "--max-requests");
            break;
        case 'S':
            g.expect_status = (int)num(optarg, 100, 599, "--expect-status");
            break;
        case 'B':
            g.expect_body = num(optarg, 0, TL_BUF, "--expect-body-bytes");
            break;
        case 'C':
            g.cafile = optarg;
            break;
        default:
            usage();
        }
    }
    if (!have_target && !g.use_proxy)
        usage();
    if (g.use_proxy && !g.use_tls)
        usage(); /* CONNECT is for TLS to a CRM host */
    if (g.host == NULL && g.host_pattern == NULL)
        g.host = "127.0.0.1";
    if (g.host_pattern != NULL && strstr(g.host_pattern, "%u") == NULL)
        usage();
    if (g.threads > g.connections)
        g.threads = g.connections;
    if (g.use_tls) {
        g.ctx = SSL_CTX_new(TLS_client_method());
        if (g.ctx == NULL)
            return 1;
        SSL_CTX_set_min_proto_version(g.ctx, TLS1_2_VERSION);
        /* Every handshake is a full one: no session cache, no tickets offered back. */
        SSL_CTX_set_session_cache_mode(g.ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(g.ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_alpn_protos(g.ctx, (const unsigned char *)"\x08http/1.1", 9);
        if (g.cafile != NULL) {
            if (SSL_CTX_load_verify_locations(g.ctx, g.cafile, NULL) != 1) {
                fprintf(stderr, "tunnel_load: cannot load %s\n", g.cafile);
                return 2;
            }
            SSL_CTX_set_verify(g.ctx, SSL_VERIFY_PEER, NULL);
            g.verify = 1;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    getrusage(RUSAGE_SELF, &ru0);
    t0 = now_ns();
    g.deadline_ns = t0 + (uint64_t)g.seconds * 1000000000u;
    for (int i = 0; i < g.threads; i++) {
        struct tl_thread *t = &th[i];
        t->id = i;
        t->nconns = g.connections / g.threads + (i < g.connections % g.threads);
        t->conns = calloc((size_t)t->nconns, sizeof(*t->conns));
        t->hist = calloc(TL_HIST_US, sizeof(*t->hist));
        t->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (t->conns == NULL || t->hist == NULL || t->epfd < 0)
            return 1;
        for (int j = 0; j < t->nconns; j++)
            t->conns[j].fd = -1;
        pthread_create(&t->tid, NULL, tl_thread_main, t);
    }
    for (int i = 0; i < g.threads; i++)
        pthread_join(th[i].tid, NULL);
    t1 = now_ns();
    getrusage(RUSAGE_SELF, &ru1);
    hist = th[0].hist;
    for (int i = 0; i < g.threads; i++) {
        requests += th[i].requests;
        errors += th[i].errors;
        bad += th[i].bad;
        if (th[i].max_us > max_us)
            max_us = th[i].max_us;
        if (first_error[0] == '\0' && th[i].first_error[0] != '\0')
            first_error = th[i].first_error;
        if (i > 0)
            for (int b = 0; b < TL_HIST_US; b++)
                hist[b] += th[i].hist[b];
    }
    for (int b = 0; b < TL_HIST_US && requests > 0; b++) {
        uint64_t before = cum;
        cum += hist[b];
        if (before < (requests + 1) / 2 && cum >= (requests + 1) / 2)
            p50 = (uint64_t)b;
        if (before < requests * 9 / 10 + 1 && cum >= requests * 9 / 10 + 1)
            p90 = (uint64_t)b;
        if (before < requests * 99 / 100 + 1 && cum >= requests * 99 / 100 + 1)
            p99 = (uint64_t)b;
    }
    cpu_us = (uint64_t)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1000000u +
             (uint64_t)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) +
             (uint64_t)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1000000u +
             (uint64_t)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
    printf("BENCH requests=%llu duration_us=%llu errors=%llu bad=%llu p50_us=%llu p90_us=%llu "
           "p99_us=%llu max_us=%llu cpu_us=%llu first_error=\"%s\"\n",
           (unsigned long long)requests, (unsigned long long)((t1 - t0) / 1000),
           (unsigned long long)errors, (unsigned long long)bad, (unsigned long long)p50,
           (unsigned long long)p90, (unsigned long long)p99, (unsigned long long)max_us,
           (unsigned long long)cpu_us, first_error);
    return requests > 0 && errors == 0 && bad == 0 ? 0 : 1;
}
