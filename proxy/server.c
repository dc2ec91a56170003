/*
 * server.c - listeners, worker threads, signals, reload and drain.
 *
 * Start-up binds one SO_REUSEPORT socket per worker in the main thread (so
 * a bind error is reported before READY=1, and port 0 resolves to one port
 * for all), then starts the workers. The main thread's loop only handles
 * signals:
 *   SIGHUP  re-read the config; on success hand each worker the new one
 *           (it swaps its own pointer, so no lock is taken per request);
 *           on failure keep the old one and log why.
 *   SIGTERM stop accepting, let in-flight requests finish (at most
 *   SIGINT  drain_timeout_ms), then exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/thread.h>

#include "admin.h"
#include "conn.h"
#include "exchange.h"
#include "log.h"
#include "sdnotify.h"
#include "server.h"
#include "store.h"
#include "upstream.h"

struct server {
    struct event_base *base;
    struct event *watchdog;
    uint64_t watchdog_usec;
    unsigned long *last_beats;
    struct worker *workers;
    int nworkers;
    struct admin *admin;
    const char *config_path;
    const struct config_overrides *ov;
    struct config *cfg;
    struct store_port *port; /* the main loop's: overlay sweeps at start and reload */
    int stopping;
    int swept;                  /* the start-up sweep has committed (or failed) */
    char hop[UPSTREAM_HOP_MAX]; /* the Via pseudonym (worker_hop) */
};

struct config *worker_config(struct worker *w)
{
    return w->cfg;
}

void worker_conn_removed(struct worker *w)
{
    if (w->draining && w->nconns == 0 && w->ndetached == 0)
        event_base_loopexit(w->base, NULL);
}

const char *worker_hop(const struct worker *w)
{
    return w->hop;
}

uint64_t worker_random(struct worker *w)
{
    /* xorshift64*: request ids only, never secrets */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 0x2545F4914F6CDD1DULL;
}

/* Every listener: refuse while draining or past limits.connections, else a conn of its kind. */
static void worker_accept(struct worker *w, evutil_socket_t fd, struct sockaddr *sa, int salen,
                          enum conn_kind kind)
{
    if (w->draining) {
        evutil_closesocket(fd);
        return;
    }
    if (w->nconns >= w->cfg->limits.connections) {
        /* Each connection holds buffers and maybe TLS state: past the cap, refuse at once. */
        evutil_closesocket(fd);
        if (w->refused++ % 1000 == 0)
            log_warn("worker %d: %zu connections open (limits.connections); refusing new ones "
                     "(%lu so far)",
                     w->id, w->nconns, w->refused);
        return;
    }
    conn_new(w, fd, sa, salen, kind);
}

static void worker_acceptcb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                            int salen, void *arg)
{
    (void)l;
    worker_accept(arg, fd, sa, salen, CONN_KIND_REVERSE);
}

static void worker_accept_forwardcb(struct evconnlistener *l, evutil_socket_t fd,
                                    struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    worker_accept(arg, fd, sa, salen, CONN_KIND_FORWARD);
}

static void worker_accept_transparentcb(struct evconnlistener *l, evutil_socket_t fd,
                                        struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    worker_accept(arg, fd, sa, salen, CONN_KIND_TRANSPARENT);
}

static void worker_accept_retrycb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    if (w->draining)
        return;
    /* Whichever listener hit the error was paused; enabling a running one is a no-op. */
    if (w->listener != NULL)
        evconnlistener_enable(w->listener);
    if (w->flistener != NULL)
        evconnlistener_enable(w->flistener);
    if (w->tlistener != NULL)
        evconnlistener_enable(w->tlistener);
}

static void worker_accept_errorcb(struct evconnlistener *l, void *arg)
{
    struct worker *w = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv = {0, 100000};

    /* EMFILE and friends: back off instead of spinning on a readable socket. */
    log_error("worker %d: accept failed: %s; pausing the listener for 100ms", w->id,
              evutil_socket_error_to_string(err));
    evconnlistener_disable(l);
    evtimer_add(w->accept_retry, &tv);
}

static void worker_drain_deadlinecb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    log_warn("worker %d: drain deadline reached with %zu connections and %zu detached writes "
             "left; closing them",
             w->id, w->nconns, w->ndetached);
    w->closing = 1;
    conn_close_all(&w->conns);
    exchange_abandon_all(w);
    event_base_loopexit(w->base, NULL);
}

static void worker_start_drain(struct worker *w)
{
    unsigned ms = w->cfg->drain_timeout_ms;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    w->draining = 1;
    if (w->listener != NULL) {
        evconnlistener_free(w->listener); /* closes our listening socket */
        w->listener = NULL;
    }
    if (w->flistener != NULL) {
        evconnlistener_free(w->flistener);
        w->flistener = NULL;
    }
    if (w->tlistener != NULL) {
        evconnlistener_free(w->tlistener);
        w->tlistener = NULL;
    }
    conn_drain_all(&w->conns);
    if (w->nconns == 0 && w->ndetached == 0) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    w->drain_deadline = evtimer_new(w->base, worker_drain_deadlinecb, w);
    if (w->drain_deadline != NULL)
        evtimer_add(w->drain_deadline, &tv);
}

/* Woken by the main thread: a new config, or the order to drain. */
static void worker_ctlcb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct config *cfg;
    int drain;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->lock);
    cfg = w->pending_cfg;
    w->pending_cfg = NULL;
    drain = w->pending_drain;
    w->pending_drain = 0;
    pthread_mutex_unlock(&w->lock);
    if (cfg != NULL) {
        config_unref(w->cfg);
        w->cfg = cfg;
    }
    if (drain && !w->draining)
        worker_start_drain(w);
}

static void worker_heartbeatcb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    __atomic_add_fetch(&w->beats, 1, __ATOMIC_RELAXED);
}

/*
 * systemd's watchdog: WATCHDOG=1 at half the interval, but only when every
 * worker's loop has ticked since the last check. A wedged worker thus gets
 * the service restarted instead of silently dropping its connections.
 */
static void server_watchdogcb(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    int healthy = 1;

    (void)fd;
    (void)what;
    for (int i = 0; i < s->nworkers; i++) {
        unsigned long b = __atomic_load_n(&s->workers[i].beats, __ATOMIC_RELAXED);
        if (b == s->last_beats[i]) {
            healthy = 0;
            log_error("watchdog: worker %d has not run for a watchdog period", i);
        }
        s->last_beats[i] = b;
    }
    if (healthy)
        sdnotify("WATCHDOG=1");
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->base);
    return NULL;
}

static void worker_notify(struct worker *w, struct config *cfg, int drain)
{
    pthread_mutex_lock(&w->lock);
    if (cfg != NULL) {
        if (w->pending_cfg != NULL)
            config_unref(w->pending_cfg);
        w->pending_cfg = config_ref(cfg);
    }
    if (drain)
        w->pending_drain = 1;
    pthread_mutex_unlock(&w->lock);
    event_active(w->ctl, EV_READ, 0);
}

evutil_socket_t server_listen_tcp(const char *host, const char *port, int reuseport, char *err,
                                  size_t errlen)
{
    struct addrinfo hints = {0}, *ai = NULL;
    evutil_socket_t fd = -1;
    int one = 1, rc;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s:%s: %s", host, port, gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "listen %s:%s: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* One listening socket per worker: SO_REUSEPORT so every worker gets its own. */
static evutil_socket_t server_bind(const char *host, const char *port, char *err, size_t errlen)
{
    return server_listen_tcp(host, port, 1, err, errlen);
}

int server_bound_port(evutil_socket_t fd, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[NI_MAXHOST], serv[NI_MAXSERV];

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return -1;
    snprintf(out, outlen, "%s", serv);
    return 0;
}

static int server_workers_default(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        return 1;
    return n > CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS : (int)n;
}

static void server_sweptcb(enum store_status st, uint64_t first, size_t n, void *arg)
{
    struct server *s = arg;

    (void)first;
    s->swept = st == STORE_OK ? 1 : -1;
    if (st != STORE_OK)
        log_error("dry-run records of workspaces no longer in dry-run could not be discarded "
                  "(%s)",
                  store_status_name(st));
    else if (n > 0)
        log_notice("%zu dry-run record(s) of workspaces not in dry-run discarded", n);
}

/*
 * Discard the overlay of every workspace whose effective mode (its runtime
 * switch, else cfg's rules) is not dry-run: a rules file that went from
 * dry_run to enforce ends its dry-run values, as the switch does. 0 / -1.
 */
static int server_sweep_overlay(struct server *s, const struct config *cfg)
{
    json_t *dry = json_array();

    for (size_t i = 0; dry != NULL && cfg->rules != NULL && i < cfg->rules->n; i++) {
        if (cfg->rules->ws[i]->mode == RULES_MODE_DRY_RUN &&
            json_array_append_new(dry, json_string(cfg->rules->ws[i]->name)) < 0) {
            json_decref(dry);
            dry = NULL;
        }
    }
    if (dry == NULL)
        return -1;
    return store_overlay_discard(s->port, NULL, dry, server_sweptcb, s);
}

static void server_sighupcb(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    struct config *cfg;
    char err[512];

    (void)fd;
    (void)what;
    sdnotify_reloading();
    cfg = config_load(s->config_path, s->ov, err, sizeof(err));
    if (cfg == NULL) {
        log_error("reload failed, keeping the current configuration: %s", err);
        sdnotify("READY=1\nSTATUS=reload failed; running with the previous configuration");
        return;
    }
    if (strcmp(cfg->listen, s->cfg->listen) != 0 || cfg->workers != s->cfg->workers)
        log_warn("reload: listen and workers changes take effect only after a restart");
    if ((cfg->vault_key_file == NULL) != (s->cfg->vault_key_file == NULL) ||
        (cfg->vault_key_file != NULL && strcmp(cfg->vault_key_file, s->cfg->vault_key_file) != 0))
        log_warn("reload: a vault.key_file change takes effect only after a restart");
    log_set_level(cfg->log_level);
    for (int i = 0; i < s->nworkers; i++)
        worker_notify(&s->workers[i], cfg, 0);
    admin_set_config(s->admin, cfg);
    if (server_sweep_overlay(s, cfg) < 0)
        log_error("reload: the store did not take the sweep of dry-run records");
    config_unref(s->cfg);
    s->cfg = cfg;
    log_notice("configuration reloaded from %s",
               s->config_path != NULL ? s->config_path : "the embedded default");
    sdnotify("READY=1\nSTATUS=serving");
}

static void server_sigtermcb(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;

    (void)what;
    if (s->stopping)
        return;
    s->stopping = 1;
    log_notice("signal %d: draining in-flight requests (at most %ums), then exiting", (int)fd,
               s->cfg->drain_timeout_ms);
    sdnotify("STOPPING=1\nSTATUS=draining");
    for (int i = 0; i < s->nworkers; i++)
        worker_notify(&s->workers[i], NULL, 1);
    event_base_loopexit(s->base, NULL);
}

/*
 * The epoll changelist folds an event_del + event_add of the same fd within
 * one loop iteration into one epoll_ctl (or none); curl's socket callback
 * and the bufferevents do that on every request.
 */
static struct event_base *worker_base_new(void)
{
    struct event_config *ec = event_config_new();
    struct event_base *base;

    if (ec == NULL)
        return NULL;
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base;
}

/* An optional listener on *fd (-1: none); the listener owns the socket from here on. */
static int worker_listen(struct worker *w, evutil_socket_t *fd, struct evconnlistener **out,
                         evconnlistener_cb cb)
{
    if (*fd < 0)
        return 0;
    *out =
        evconnlistener_new(w->base, cb, w, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, *fd);
    if (*out == NULL)
        return -1;
    *fd = -1;
    evconnlistener_set_error_cb(*out, worker_accept_errorcb);
    return 0;
}

static int worker_init(struct worker *w, int id, struct config *cfg, struct store *store,
                       evutil_socket_t lfd, const char *hop, char *err, size_t errlen)
{
    uint64_t seed = 0;

    w->id = id;
    w->hop = hop;
    w->lfd = lfd;
    TAILQ_INIT(&w->conns);
    pthread_mutex_init(&w->lock, NULL);
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed) || seed == 0)
        seed = 0x9E3779B97F4A7C15ULL ^ (uint64_t)time(NULL) ^ (uint64_t)id;
    w->rng = seed;
    w->base = worker_base_new();
    if (w->base == NULL) {
        snprintf(err, errlen, "worker %d: cannot create an event base", id);
        return -1;
    }
    w->upstream = upstream_new(w->base, hop, err, errlen);
    if (w->upstream == NULL)
        return -1;
    w->store = store;
    w->port = store_port_new(store, w->base);
    if (w->port == NULL) {
        snprintf(err, errlen, "worker %d: out of memory", id);
        return -1;
    }
    w->ctl = event_new(w->base, -1, EV_READ, worker_ctlcb, w);
    w->accept_retry = evtimer_new(w->base, worker_accept_retrycb, w);
    w->heartbeat = event_new(w->base, -1, EV_PERSIST, worker_heartbeatcb, w);
    w->listener = evconnlistener_new(w->base, worker_acceptcb, w,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, lfd);
    if (w->ctl == NULL || w->accept_retry == NULL || w->heartbeat == NULL || w->listener == NULL) {
        snprintf(err, errlen, "worker %d: cannot create its listener", id);
        return -1;
    }
    w->lfd = -1; /* owned by the listener now */
    evconnlistener_set_error_cb(w->listener, worker_accept_errorcb);
    if (worker_listen(w, &w->flfd, &w->flistener, worker_accept_forwardcb) < 0) {
        snprintf(err, errlen, "worker %d: cannot create its forward listener", id);
        return -1;
    }
    if (worker_listen(w, &w->tlfd, &w->tlistener, worker_accept_transparentcb) < 0) {
        snprintf(err, errlen, "worker %d: cannot create its transparent listener", id);
        return -1;
    }
    w->cfg = config_ref(cfg);
    return 0;
}

static void worker_destroy(struct worker *w)
{
    w->closing = 1;
    conn_close_all(&w->conns);
    exchange_abandon_all(w);
    if (w->listener != NULL)
        evconnlistener_free(w->listener);
    w->listener = NULL;
    if (w->flistener != NULL)
        evconnlistener_free(w->flistener);
    w->flistener = NULL;
    if (w->tlistener != NULL)
        evconnlistener_free(w->tlistener);
    w->tlistener = NULL;
    if (w->tlfd >= 0)
        close(w->tlfd);
    w->tlfd = -1;
    if (w->lfd >= 0)
        close(w->lfd);
    w->lfd = -1;
    if (w->flfd >= 0)
        close(w->flfd);
    w->flfd = -1;
    if (w->drain_deadline != NULL)
        event_free(w->drain_deadline);
    w->drain_deadline = NULL;
    if (w->ctl != NULL)
        event_free(w->ctl);
    w->ctl = NULL;
    if (w->accept_retry != NULL)
        event_free(w->accept_retry);
    w->accept_retry = NULL;
    if (w->heartbeat != NULL)
        event_free(w->heartbeat);
    w->heartbeat = NULL;
    upstream_free(w->upstream);
    w->upstream = NULL;
    store_port_free(w->port); /* pending commits still happen; their callbacks do not run */
    w->port = NULL;
    if (w->base != NULL)
        event_base_free(w->base);
    w->base = NULL;
    config_unref(w->cfg);
    w->cfg = NULL;
    config_unref(w->pending_cfg);
    w->pending_cfg = NULL;
    pthread_mutex_destroy(&w->lock);
}

int server_run(struct config *cfg, struct store *store, struct admin *admin,
               const char *config_path, const struct config_overrides *ov)
{
    struct server s = {0};
    struct event *ev_hup = NULL, *ev_term = NULL, *ev_int = NULL;
    char err[512], port[NI_MAXSERV], fport[NI_MAXSERV] = "", tport[NI_MAXSERV] = "";
    int started = 0, status = 1;

    s.config_path = config_path;
    s.ov = ov;
    s.admin = admin;
    s.cfg = config_ref(cfg);
    s.nworkers = cfg->workers > 0 ? cfg->workers : server_workers_default();
    {
        /* Random per process: two crmgates in a chain are two hops, one coming back is a loop. */
        unsigned long long r = 0;
        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
            r = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
        snprintf(s.hop, sizeof(s.hop), "crmgate-%016llx", r);
    }
    if (evthread_use_pthreads() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("cannot initialise libevent threads or libcurl");
        goto out;
    }
    s.workers = calloc((size_t)s.nworkers, sizeof(*s.workers));
    s.base = event_base_new();
    if (s.workers == NULL || s.base == NULL ||
        (store != NULL && (s.port = store_port_new(store, s.base)) == NULL)) {
        log_error("out of memory");
        goto out;
    }
    /* Before any request: dry-run values of workspaces that left dry-run while crmgate was
     * stopped (a rules file changed, a header-only dry-run in an enforce workspace) go. */
    if (s.port != NULL) {
        if (server_sweep_overlay(&s, cfg) < 0) {
            log_error("the store did not take the start-up sweep of dry-run records");
            goto out;
        }
        while (s.swept == 0)
            event_base_loop(s.base, EVLOOP_ONCE);
        if (s.swept < 0)
            goto out;
    }
    for (int i = 0; i < s.nworkers; i++)
        s.workers[i].lfd = s.workers[i].flfd = s.workers[i].tlfd = -1; /* not stdin's 0 */
    snprintf(port, sizeof(port), "%s", cfg->listen_port);
    if (cfg->forward_listen != NULL)
        snprintf(fport, sizeof(fport), "%s", cfg->forward_port);
    if (cfg->transparent_listen != NULL)
        snprintf(tport, sizeof(tport), "%s", cfg->transparent_port);
    for (int i = 0; i < s.nworkers; i++) {
        evutil_socket_t fd = server_bind(cfg->listen_host, port, err, sizeof(err));
        if (fd >= 0 && cfg->forward_listen != NULL) {
            s.workers[i].flfd = server_bind(cfg->forward_host, fport, err, sizeof(err));
            if (s.workers[i].flfd < 0) {
                close(fd);
                fd = -1;
            } else if (i == 0 && server_bound_port(s.workers[i].flfd, fport, sizeof(fport)) < 0) {
                snprintf(err, sizeof(err), "cannot read the bound forward port");
                close(fd);
                close(s.workers[i].flfd);
                s.workers[i].flfd = -1;
                fd = -1;
            }
        }
        if (fd >= 0 && cfg->transparent_listen != NULL) {
            s.workers[i].tlfd = server_bind(cfg->transparent_host, tport, err, sizeof(err));
            if (s.workers[i].tlfd < 0 ||
                (i == 0 && server_bound_port(s.workers[i].tlfd, tport, sizeof(tport)) < 0)) {
                close(fd);
                fd = -1;
            }
        }
        if (fd < 0) {
            log_error("%s", err);
            goto out;
        }
        /* Port 0: the first bind picks the port, the others join it. */
        if (i == 0 && server_bound_port(fd, port, sizeof(port)) < 0) {
            log_error("cannot read the bound port: %s", strerror(errno));
            close(fd);
            goto out;
        }
        if (worker_init(&s.workers[i], i, cfg, store, fd, s.hop, err, sizeof(err)) < 0) {
            if (s.workers[i].lfd >= 0)
                close(s.workers[i].lfd);
            s.workers[i].lfd = -1;
            log_error("%s", err);
            goto out;
        }
    }
    ev_hup = evsignal_new(s.base, SIGHUP, server_sighupcb, &s);
    ev_term = evsignal_new(s.base, SIGTERM, server_sigtermcb, &s);
    ev_int = evsignal_new(s.base, SIGINT, server_sigtermcb, &s);
    if (ev_hup == NULL || ev_term == NULL || ev_int == NULL || evsignal_add(ev_hup, NULL) < 0 ||
        evsignal_add(ev_term, NULL) < 0 || evsignal_add(ev_int, NULL) < 0) {
        log_error("cannot install signal handlers");
        goto out;
    }
    s.watchdog_usec = sdnotify_watchdog_usec();
    if (s.watchdog_usec > 0) {
        /* Workers beat four times per check; the check runs at half the interval. */
        uint64_t beat = s.watchdog_usec / 8, check = s.watchdog_usec / 2;
        struct timeval btv = {.tv_sec = (time_t)(beat / 1000000),
                              .tv_usec = (suseconds_t)(beat % 1000000)};
        struct timeval ctv = {.tv_sec = (time_t)(check / 1000000),
                              .tv_usec = (suseconds_t)(check % 1000000)};
        s.last_beats = calloc((size_t)s.nworkers, sizeof(*s.last_beats));
        s.watchdog = event_new(s.base, -1, EV_PERSIST, server_watchdogcb, &s);
        if (s.last_beats == NULL || s.watchdog == NULL) {
            log_error("out of memory");
            goto out;
        }
        for (int i = 0; i < s.nworkers; i++)
            event_add(s.workers[i].heartbeat, &btv);
        event_add(s.watchdog, &ctv);
    }
    if (admin != NULL && admin_start(admin, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto out;
    }
    for (; started < s.nworkers; started++) {
        if (pthread_create(&s.workers[started].thread, NULL, worker_main, &s.workers[started]) !=
            0) {
            log_error("cannot start worker thread %d", started);
            for (int i = 0; i < started; i++)
                worker_notify(&s.workers[i], NULL, 1);
            goto join;
        }
    }
    if (cfg->tls_reverse != NULL) {
        char names[512] = "";
        size_t len = 0;
        for (size_t i = 0; i < cfg->tls_reverse->n && len < sizeof(names); i++) {
            int n = snprintf(names + len, sizeof(names) - len, "%s%s", i ? " " : "",
                             cfg->tls_reverse->names[i]);
            len += n > 0 ? (size_t)n : 0;
        }
        log_notice("reverse listener on %s:%s (https, certificate minted from the CA in %s for "
                   "%s, %d workers); hubspot -> %s; salesforce -> %s",
                   cfg->listen_host, port, cfg->ca_dir, names, s.nworkers, cfg->upstream_hubspot,
                   cfg->upstream_salesforce != NULL ? cfg->upstream_salesforce
                                                    : "(not configured)");
    } else {
        log_notice("reverse listener on %s:%s (%s, %d workers); hubspot -> %s; salesforce -> %s",
                   cfg->listen_host, port, cfg->tls_ctx != NULL ? "https" : "http", s.nworkers,
                   cfg->upstream_hubspot,
                   cfg->upstream_salesforce != NULL ? cfg->upstream_salesforce
                                                    : "(not configured)");
    }
    if (cfg->forward_listen != NULL)
        log_notice("forward listener on %s:%s (CONNECT to CRM hosts only, intercepted with the "
                   "CA in %s)",
                   cfg->forward_host, fport, cfg->ca_dir);
    if (cfg->transparent_listen != NULL)
        log_notice("transparent listener on %s:%s (REDIRECTed TLS to CRM hosts only, intercepted "
                   "with the CA in %s)",
                   cfg->transparent_host, tport, cfg->ca_dir);
    sdnotify("READY=1\nSTATUS=serving");
    event_base_dispatch(s.base);
    status = 0;
join:
    for (int i = 0; i < started; i++)
        pthread_join(s.workers[i].thread, NULL);
    if (status == 0)
        log_notice("all workers drained; exiting");
out:
    for (int i = 0; s.workers != NULL && i < s.nworkers; i++) {
        if (s.workers[i].base != NULL || s.workers[i].lfd >= 0 || s.workers[i].flfd >= 0 ||
            s.workers[i].tlfd >= 0)
            worker_destroy(&s.workers[i]);
    }
    free(s.workers);
    free(s.last_beats);
    if (s.watchdog != NULL)
        event_free(s.watchdog);
    if (ev_hup != NULL)
        event_free(ev_hup);
    if (ev_term != NULL)
        event_free(ev_term);
    if (ev_int != NULL)
        event_free(ev_int);
    store_port_free(s.port);
    if (s.base != NULL)
        event_base_free(s.base);
    config_unref(s.cfg);
    curl_global_cleanup();
    return status; /* main.c closes the admin API, then shuts libevent down */
}
