/*
 * admin.h - the admin HTTP API: a JSON API (and /metrics) on a unix socket
 * under the state directory (mode 0660) and, optionally, on TCP with a
 * bearer token (admin.listen, admin.token).
 *
 * It runs on its own thread and event_base (libevent's evhttp), with its
 * own store port for writes, so nothing it does touches a worker's loop.
 *
 * Modules add endpoints through a route table instead of editing the
 * dispatcher: admin_route_add("GET", "/v1/things", fn, arg) at start-up.
 * A handler runs on the admin thread with a parsed request and answers it
 * exactly once with admin_reply*, either before returning or later from
 * another callback on the admin thread (a store commit's, typically).
 *
 * Errors always have the shape {"error": {"code": "...", "message": "..."}}.
 * Requests are bounded: ADMIN_MAX_BODY_BYTES, ADMIN_MAX_HEADER_BYTES,
 * ADMIN_MAX_PARAMS query parameters, ADMIN_TIMEOUT_S to send a whole
 * request (however slowly its bytes trickle in), ADMIN_MAX_CONNECTIONS per
 * listener.
 */
#ifndef CRMGATE_ADMIN_H
#define CRMGATE_ADMIN_H

#include <stddef.h>

#include <jansson.h>

#include "config.h"

#define ADMIN_MAX_BODY_BYTES   (64 * 1024)
#define ADMIN_MAX_HEADER_BYTES (16 * 1024)
#define ADMIN_MAX_PARAMS       32   /* query parameters of one request */
#define ADMIN_MAX_PARAM_BYTES  1024 /* one decoded parameter value */
#define ADMIN_TIMEOUT_S        10   /* a connection's read/write timeout: idle ones are closed */
#define ADMIN_MAX_CONNECTIONS  64   /* open connections per listener; more are closed at once */
#define ADMIN_MAX_ROUTES       64

struct admin;
struct admin_req;
struct store;
struct store_port;

struct admin_param {
    char *name;
    char *value; /* URL-decoded; never NULL ("" for "?a" or "?a=") */
};

/* What a handler sees; everything is owned by the request and valid until it is answered. */
struct admin_req {
    const char *method;         /* "GET", "PUT", ... */
    const char *path;           /* URL-decoded path, without the query */
    const char *rest;           /* path after the route's prefix, without its leading '/' */
    struct admin_param *params; /* decoded query parameters, in order, names unique */
    size_t nparams;
    const char *body; /* the request body, NUL-terminated (may hold other NULs); "" if none */
    size_t body_len;
    int tcp;                     /* arrived on the TCP listener (and carried the token) */
    struct store *store;         /* the process's store */
    struct store_port *port;     /* the admin thread's completion port, for writes */
    struct config *cfg;          /* the current config; take a reference to keep it longer */
    void *arg;                   /* the route's arg */
    void *ctx;                   /* a handler's state across an asynchronous answer, or NULL */
    void (*ctx_free)(void *ctx); /* called on ctx when r is answered or dropped, or NULL */
};

/* A handler: answer r exactly once with admin_reply*, now or later on the admin thread. */
typedef void (*admin_handler_fn)(struct admin_req *r);

/*
 * Add a route: method ("GET", "PUT", ...; "*" for any) on path_prefix
 * (starts with '/'). A path matches a prefix when equal to it or when the
 * prefix is followed by '/' (a prefix ending in '/' matches anything
 * below it); the longest matching prefix wins, and a path that matches
 * only with another method gets 405. Strings are copied. 0, or -1 when the
 * table is full or the route exists. Call before admin_open.
 */
int admin_route_add(const char *method, const char *path_prefix, admin_handler_fn fn, void *arg);

/* Forget every route (tests, and after a failed start-up). */
void admin_routes_clear(void);

/* Answer with status and body (a JSON value, reference stolen; NULL: no body). Frees r. */
void admin_reply(struct admin_req *r, int status, json_t *body);

/* Answer {"error":{"code":code,"message":...}} with status. Frees r. */
void admin_reply_error(struct admin_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Answer with raw bytes of content_type (the text of /metrics, ...). Frees r. */
void admin_reply_raw(struct admin_req *r, int status, const char *content_type, const void *data,
                     size_t len);

/* The decoded value of query parameter name, or NULL when absent. */
const char *admin_param(const struct admin_req *r, const char *name);

/*
 * Parse the body as one JSON value (a new reference in *out). 0, or -1
 * after answering 400 bad_json (r is then gone).
 */
int admin_body_json(struct admin_req *r, json_t **out);

/*
 * Bind the admin listeners of cfg: the unix socket (a stale socket file is
 * replaced, a live one is an error; mode 0660) and the TCP one when
 * admin.listen is set. Nothing is served until admin_start. NULL with err.
 */
struct admin *admin_open(struct config *cfg, struct store *store, char *err, size_t errlen);

/* Start the admin thread. 0, or -1 with err. */
int admin_start(struct admin *a, char *err, size_t errlen);

/* A reloaded config (a reference is taken); any thread. */
void admin_set_config(struct admin *a, struct config *cfg);

/* Where it listens, for log lines: the socket path, and "HOST:PORT" or NULL. */
const char *admin_socket_path(const struct admin *a);
const char *admin_tcp_address(const struct admin *a);

/*
 * Stop the thread (requests still waiting for a commit are answered 503),
 * close the listeners, remove the socket file if it is still ours, free.
 * Before store_close. NULL is ignored.
 */
void admin_close(struct admin *a);

#endif
