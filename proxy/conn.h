/*
 * conn.h - one client connection on the reverse listener: HTTP/1.1 parsing
 * (llhttp, strict, behind the raw pre-scan), keep-alive and pipelining, the
 * per-connection limits and timeouts, and writing answers back.
 *
 * A connection handles one request at a time: when a request is complete it
 * stops reading and hands the request to the exchange; the exchange answers
 * with conn_respond() or conn_abort(), and only after that answer has been
 * written does the next pipelined request get parsed.
 */
#ifndef CRMGATE_CONN_H
#define CRMGATE_CONN_H

#include <stddef.h>

#include <event2/buffer.h>
#include <event2/util.h>

#include "http.h"

struct worker;
struct conn;
struct conn_list;

/* A parsed request; owned by its connection and valid until the answer is written. */
struct http_request {
    int method;              /* enum llhttp_method */
    const char *method_name; /* "GET", ... */
    int http_major, http_minor;
    char *target; /* request-target, NUL-terminated */
    size_t target_len, target_cap;
    struct http_fields headers;
    struct evbuffer *body; /* de-chunked */
    int keep_alive;
};

/*
 * Take over an accepted socket. Returns the connection, or NULL (and closes
 * fd) when out of memory. The connection frees itself when it closes.
 */
enum conn_kind { CONN_KIND_REVERSE, CONN_KIND_FORWARD, CONN_KIND_TRANSPARENT };

struct conn *conn_new(struct worker *w, evutil_socket_t fd, const struct sockaddr *sa, int salen,
                      enum conn_kind kind);

/* Forward mode: the intercepted tunnel's CRM host, or NULL (reverse mode, or before CONNECT). */
const char *conn_tunnel_host(const struct conn *c);

/* Forward mode: the SHA-256 of a crmgate key given in Proxy-Authorization on CONNECT, or NULL. */
const unsigned char *conn_proxy_key(const struct conn *c);

/* Forward mode: the caller's fingerprint from Proxy-Authorization on CONNECT, or NULL. */
const char *conn_proxy_fingerprint(const struct conn *c);

/*
 * Answer the current request. fields are written as given (the caller has
 * removed hop-by-hop and framing headers); conn adds Content-Length and
 * Connection. body (may be NULL) is drained. For HEAD requests the body is
 * not sent and content_length, when >= 0, is announced instead.
 */
void conn_respond(struct conn *c, int status, const struct http_fields *fields,
                  struct evbuffer *body, long long content_length);

/*
 * End the current request with an error answer in the CRM's own shape
 * (status, crmgate reason code, human message), then close the connection.
 * The one exit for every protocol violation.
 */
void conn_abort(struct conn *c, int status, const char *code, const char *message);

/* Close at once, abandoning any request in flight (drain deadline). */
void conn_close(struct conn *c);

/* Draining: close idle connections now, the others after their answer. */
void conn_drain_all(struct conn_list *list);

/* Close every connection in list at once. */
void conn_close_all(struct conn_list *list);

/* The peer's address as text ("127.0.0.1"), for logs and X-Forwarded-For. */
const char *conn_peer(const struct conn *c);

/* The worker the connection belongs to. */
struct worker *conn_worker(const struct conn *c);

/* A correlation id for the current request (random, 36 characters). */
const char *conn_request_id(const struct conn *c);

/* Close after the current answer (draining). */
void conn_set_close(struct conn *c);

#endif
