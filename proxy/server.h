/*
 * server.h - the worker threads and their listeners.
 *
 * Each worker owns an event_base, an SO_REUSEPORT listening socket, a curl
 * multi handle (via upstream) and its connections; nothing on the request
 * path is shared between workers. The main thread only handles signals and
 * hands new configs and the drain order to workers through their control
 * event.
 */
#ifndef CRMGATE_SERVER_H
#define CRMGATE_SERVER_H

#include <pthread.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"

struct admin;
struct before_queue;
struct conn;
struct exchange;
struct upstream;
struct store;
struct store_port;

TAILQ_HEAD(conn_list, conn);

struct worker {
    int id;
    pthread_t thread;
    struct event_base *base;
    struct evconnlistener *listener;
    struct evconnlistener *flistener; /* forward (HTTPS_PROXY) listener, or NULL */
    evutil_socket_t flfd;
    struct evconnlistener *tlistener; /* transparent (REDIRECT) listener, or NULL */
    evutil_socket_t tlfd;
    evutil_socket_t lfd;
    struct upstream *upstream;
    struct store *store;     /* the process's LMDB store */
    struct store_port *port; /* its completions for this worker's loop */
    struct config *cfg;      /* this worker's reference to the current config */
    struct conn_list conns;
    size_t nconns;
    struct exchange *detached; /* exchanges whose client left before they finished (exchange.c) */
    struct before_queue *before_q; /* before-state reads waiting to be folded (before.c) */
    size_t ndetached;
    int closing;           /* past the drain: in-flight work is cut, not waited for */
    unsigned long refused; /* connections refused at limits.connections */
    int draining;
    uint64_t rng;    /* xorshift state for request ids */
    const char *hop; /* the process's Via pseudonym (server.c), sent upstream */

    /* Written by the main thread under lock, read on the control event. */
    pthread_mutex_t lock;
    struct event *ctl;
    struct config *pending_cfg;
    int pending_drain;
    struct event *drain_deadline;
    struct event *accept_retry; /* re-enables the listener after accept errors */
    struct event *heartbeat;    /* watchdog: proves this loop still runs */
    unsigned long beats;        /* written by the worker, read by the main thread */
};

/* The worker's current config (valid while the worker runs one callback). */
struct config *worker_config(struct worker *w);

/*
 * A conn left w->conns, or a detached exchange finished: lets a draining
 * worker exit when neither is left.
 */
void worker_conn_removed(struct worker *w);

/*
 * The process's Via pseudonym, "crmgate-" and 16 random hex digits, fixed
 * for the process's life: every upstream request carries it, and a request
 * arriving with it has come back (a loop).
 */
const char *worker_hop(const struct worker *w);

/* 64 random bits from the worker's generator (not for secrets). */
uint64_t worker_random(struct worker *w);

/*
 * A listening TCP socket on host:port (non-blocking, close-on-exec,
 * SO_REUSEADDR, and SO_REUSEPORT when reuseport). The socket, or -1 with
 * err naming the address.
 */
evutil_socket_t server_listen_tcp(const char *host, const char *port, int reuseport, char *err,
                                  size_t errlen);

/* The port fd is bound to, as text into out (port 0 resolved). 0 / -1. */
int server_bound_port(evutil_socket_t fd, char *out, size_t outlen);

/*
 * Bind the listeners, start the admin thread (admin, already bound; may be
 * NULL) and the workers, and run until SIGTERM/SIGINT has drained them.
 * store is the opened store, admin the opened admin API (the caller closes
 * both after this returns; admin keeps serving during the drain). cfg is
 * the loaded config (one reference is taken); config_path and ov are kept
 * to re-read the config on SIGHUP, which admin gets too. Returns the
 * process exit status.
 */
int server_run(struct config *cfg, struct store *store, struct admin *admin,
               const char *config_path, const struct config_overrides *ov);

#endif
