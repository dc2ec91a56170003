/*
 * upstream.h - HTTP requests to the CRMs through libcurl's multi-socket API,
 * driven by a worker's event_base (curl's hiperfifo design).
 *
 * One upstream per worker: its multi handle pools connections, its share
 * handle keeps DNS and TLS sessions; nothing curl owns crosses threads.
 * Responses are buffered whole (up to a limit) because crmgate must read
 * every body; gzip and deflate are decoded here.
 */
#ifndef CRMGATE_UPSTREAM_H
#define CRMGATE_UPSTREAM_H

#include <stddef.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "http.h"

struct upstream;
struct upstream_xfer;

struct upstream_request {
    const char *method;                /* "GET", "PATCH", ... */
    const char *url;                   /* absolute */
    const struct http_fields *headers; /* forwarded as given; framing is curl's */
    const void *body;                  /* NULL or body_len bytes, valid until done */
    size_t body_len;
    int has_body; /* send a body (possibly empty) */
    unsigned connect_timeout_ms;
    unsigned timeout_ms;
    size_t max_response;   /* body bytes beyond this fail the transfer */
    const char *ca_bundle; /* NULL: system store */
    int once; /* never sent twice. curl resends a request that dies unanswered on a reused
                 connection: a body is fed so that it cannot be sent again (the resend fails,
                 CURLE_SEND_FAIL_REWIND); one without a body goes on a fresh connection, closed
                 after it */
};

struct upstream_response {
    CURLcode result;            /* CURLE_OK when a complete response arrived */
    long status;                /* final HTTP status */
    int too_large;              /* body exceeded max_response */
    int decoded;                /* curl removed a Content-Encoding */
    struct http_fields headers; /* of the final response */
    struct evbuffer *body;
    char error[CURL_ERROR_SIZE]; /* curl's message when result != CURLE_OK */
};

/* Called once per transfer, outside any curl callback; rsp lives until it returns. */
typedef void (*upstream_done_cb)(struct upstream_response *rsp, void *arg);

/* The longest Via pseudonym upstream_new takes ("crmgate-" and 16 hex digits fit). */
#define UPSTREAM_HOP_MAX 64

/*
 * Create a worker's upstream on base. hop: this process's pseudonym, sent
 * as "Via: 1.1 <hop>" on every upstream request so that a request coming
 * back to crmgate is recognised as a loop (conn.c); at most UPSTREAM_HOP_MAX
 * bytes of token characters. NULL with err filled on failure.
 */
struct upstream *upstream_new(struct event_base *base, const char *hop, char *err, size_t errlen);

/* Abort every transfer (no callbacks) and free everything. */
void upstream_free(struct upstream *u);

/*
 * Start a transfer; cb runs when it ends, whatever the outcome. Returns a
 * handle for upstream_cancel, or NULL (no callback) when curl refuses.
 */
struct upstream_xfer *upstream_start(struct upstream *u, const struct upstream_request *r,
                                     upstream_done_cb cb, void *arg);

/* Abandon a transfer: its callback will not run. */
void upstream_cancel(struct upstream_xfer *x);

/* Transfers currently running. */
size_t upstream_active(const struct upstream *u);

/* What a CRM answer's copy of a credential becomes (upstream_redact). */
#define UPSTREAM_REDACTED "[redacted by crmgate]"

/*
 * Replace every copy of secret (slen bytes) in *body with UPSTREAM_REDACTED,
 * so a CRM answer that echoes a token cannot carry it on to an agent, the
 * audit log or the dry-run overlay. *body may be replaced (the old buffer is
 * freed). Returns how many were replaced, or -1 when out of memory (*body
 * left as it was).
 */
int upstream_redact(struct evbuffer **body, const char *secret, size_t slen);

#endif
