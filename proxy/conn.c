/*
 * conn.c - client connections: pre-scan, llhttp (strict), limits, timeouts,
 * keep-alive, pipelining and answers.
 *
 * States: IDLE (between requests) -> HEAD (first byte seen) -> BODY (headers
 * complete) -> EXCHANGE (request handed to the exchange, reading stopped)
 * -> WRITING (answer queued) -> IDLE again, or closed. Every protocol
 * violation goes through conn_abort().
 */
#include <arpa/inet.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <llhttp.h>

#include "../policy/crm.h"
#include "config.h"
#include "conn.h"
#include "custody.h"
#include "exchange.h"
#include "identify.h"
#include "log.h"
#include "route.h"
#include "server.h"
#include "tls.h"

/* Answers up to this size leave as one contiguous chunk: one TLS record (16 KiB at most). */
#define CONN_COALESCE_BYTES 16384
/* Segments logged after "oauth" at most: <version>/<resource>/<action> (v3/token/revoke). */
#define CONN_LOG_OAUTH_SEGS 3

/* CLOSING: out of memory for an answer; freed from a zero timeout, never under a caller. */
enum conn_state { CONN_IDLE, CONN_HEAD, CONN_BODY, CONN_EXCHANGE, CONN_WRITING, CONN_CLOSING };

struct conn {
    TAILQ_ENTRY(conn) link;
    struct worker *w;
    struct bufferevent *bev;
    struct event *timer;
    llhttp_t parser;
    struct http_prescan ps;
    int head_scanned;
    enum conn_state state;
    struct http_request req;
    int last_was_value;
    int head_done; /* the head is parsed: further header callbacks are trailers */
    size_t head_bytes;
    char peer[INET6_ADDRSTRLEN];
    char request_id[40];
    int close_after;
    int read_eof; /* the client half-closed; answer, then close */
    int tls;      /* HTTPS: c->bev is an OpenSSL bufferevent */
    enum conn_kind kind;
    int tunnel;                  /* forward mode: CONNECT accepted, TLS intercepted */
    char tunnel_host[256];       /* the CONNECT host, lower case */
    char proxy_fp[65];           /* fingerprint of Proxy-Authorization on CONNECT, or "" */
    unsigned char proxy_key[32]; /* SHA-256 of a crmgate key in Proxy-Authorization */
    int has_proxy_key;
    struct tls_mitm mitm;         /* what the interception handshake needs */
    struct config *tls_cfg;       /* the config whose TLS context, CA and cache c uses */
    int shutdown_sent;            /* close_notify queued (tunnels flush it before closing) */
    struct timespec linger_until; /* a closing tunnel waits this long for its bytes to leave */
    int responded;                /* an answer has been queued for the current request */
    unsigned long requests;
    struct exchange *ex;
    int abort_status;
    const char *abort_code;
    char abort_msg[512];
    struct timespec t_start;
};

static void conn_readcb(struct bufferevent *bev, void *arg);
static void conn_writecb(struct bufferevent *bev, void *arg);
static void conn_eventcb(struct bufferevent *bev, short what, void *arg);
static void conn_timercb(evutil_socket_t fd, short what, void *arg);
static void conn_process(struct conn *c);
static void conn_transparent_ready(struct conn *c);

static const struct config_limits *conn_limits(const struct conn *c)
{
    return &worker_config(c->w)->limits;
}

static void conn_arm(struct conn *c, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    evtimer_add(c->timer, &tv);
}

static void conn_free(struct conn *c)
{
    if (c->ex != NULL) {
        exchange_cancel(c->ex);
        c->ex = NULL;
    }
    TAILQ_REMOVE(&c->w->conns, c, link);
    c->w->nconns--;
    worker_conn_removed(c->w);
    event_free(c->timer);
    c->timer = NULL;
    if (c->tls) {
        /* Say goodbye (close_notify), as libevent's le-proxy does: without it a client
         * cannot tell a complete answer from a cut one. Best effort: the peer may be gone. */
        SSL *ssl = c->shutdown_sent ? NULL : bufferevent_openssl_get_ssl(c->bev);
        if (ssl != NULL) {
            SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
            SSL_shutdown(ssl);
        }
    }
    bufferevent_free(c->bev);
    c->bev = NULL;
    config_unref(c->tls_cfg);
    c->tls_cfg = NULL;
    http_fields_free(&c->req.headers);
    evbuffer_free(c->req.body);
    c->req.body = NULL;
    free(c->req.target);
    c->req.target = NULL;
    free(c);
}

void conn_close(struct conn *c)
{
    conn_free(c);
}

static int conn_is_idle(const struct conn *c)
{
    return c->state == CONN_IDLE && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0;
}

void conn_drain_all(struct conn_list *list)
{
    struct conn *c, *next;

    for (c = TAILQ_FIRST(list); c != NULL; c = next) {
        next = TAILQ_NEXT(c, link);
        if (conn_is_idle(c))
            conn_free(c);
        else
            c->close_after = 1;
    }
}

void conn_close_all(struct conn_list *list)
{
    while (!TAILQ_EMPTY(list))
        conn_free(TAILQ_FIRST(list));
}

const char *conn_peer(const struct conn *c)
{
    return c->peer;
}

struct worker *conn_worker(const struct conn *c)
{
    return c->w;
}

const char *conn_request_id(const struct conn *c)
{
    return c->request_id;
}

void conn_set_close(struct conn *c)
{
    c->close_after = 1;
}

/* Record a limit or validation failure inside an llhttp callback. */
static int conn_fail(struct conn *c, int status, const char *code, const char *msg)
{
    c->abort_status = status;
    c->abort_code = code;
    snprintf(c->abort_msg, sizeof(c->abort_msg), "%s", msg);
    llhttp_set_error_reason(&c->parser, code);
    return HPE_USER;
}

static int conn_count_head(struct conn *c, size_t n)
{
    c->head_bytes += n;
    if (c->head_bytes > conn_limits(c)->header_bytes) {
        char msg[160];
        snprintf(msg, sizeof(msg), "request head is larger than %zu bytes (limits.header_bytes)",
                 conn_limits(c)->header_bytes);
        return conn_fail(c, 431, "header_too_large", msg);
    }
    return 0;
}

static struct conn *conn_of(llhttp_t *p)
{
    return p->data;
}

static int conn_on_message_begin(llhttp_t *p)
{
    struct conn *c = conn_of(p);

    c->req.target_len = 0;
    c->req.target[0] = '\0';
    http_fields_reset(&c->req.headers);
    evbuffer_drain(c->req.body, evbuffer_get_length(c->req.body));
    c->last_was_value = 1;
    return 0;
}

static int conn_on_url(llhttp_t *p, const char *at, size_t n)
{
    struct conn *c = conn_of(p);
    int rc = conn_count_head(c, n);

    if (rc != 0)
        return rc;
    if (c->req.target_len + n + 1 > c->req.target_cap) {
        size_t cap = c->req.target_cap * 2;
        char *nt;
        while (cap < c->req.target_len + n + 1)
            cap *= 2;
        nt = realloc(c->req.target, cap);
        if (nt == NULL)
            return conn_fail(c, 500, "out_of_memory", "out of memory");
        c->req.target = nt;
        c->req.target_cap = cap;
    }
    memcpy(c->req.target + c->req.target_len, at, n);
    c->req.target_len += n;
    c->req.target[c->req.target_len] = '\0';
    return 0;
}

static int conn_on_header_field(llhttp_t *p, const char *at, size_t n)
{
    struct conn *c = conn_of(p);
    int rc = conn_count_head(c, n);

    if (rc != 0)
        return rc;
    /* Trailers skip the pre-scan and the head checks: no CRM client sends them. */
    if (c->head_done)
        return conn_fail(c, 400, "trailers", "chunked trailers are not accepted");
    if (c->last_was_value) {
        if (c->req.headers.n >= conn_limits(c)->header_count) {
            char msg[160];
            snprintf(msg, sizeof(msg),
                     "request has more than %zu header fields "
                     "(limits.header_count)",
                     conn_limits(c)->header_count);
            return conn_fail(c, 431, "too_many_headers", msg);
        }
        if (http_fields_add(&c->req.headers, at, n, "", 0) < 0)
            return conn_fail(c, 500, "out_of_memory", "out of memory");
        c->last_was_value = 0;
        return 0;
    }
    if (http_fields_append_name(&c->req.headers, at, n) < 0)
        return conn_fail(c, 500, "out_of_memory", "out of memory");
    return 0;
}

static int conn_on_header_value(llhttp_t *p, const char *at, size_t n)
{
    struct conn *c = conn_of(p);
    int rc = conn_count_head(c, n);

    if (rc != 0)
        return rc;
    c->last_was_value = 1;
    if (http_fields_append_value(&c->req.headers, at, n) < 0)
        return conn_fail(c, 500, "out_of_memory", "out of memory");
    return 0;
}

/*
 * Whether an authority (CONNECT) or absolute-form target carries user info
 * (user:password@host): credentials that are never logged or echoed. *from
 * is where its authority, and so the user info, starts.
 */
static int conn_target_userinfo(const char *t, size_t *from)
{
    size_t s = strcspn(t, ":/"), end;

    *from = 0;
    if (t[0] == '/')
        return 0;
    if (strncmp(t + s, "://", 3) == 0)
        *from = s + 3;
    end = *from + strcspn(t + *from, "/?#");
    return memchr(t + *from, '@', end - *from) != NULL;
}

/*
 * Whether a Via header names this process's pseudonym (worker_hop): the
 * request went out of this crmgate and came back in, through an upstream
 * pointing at crmgate or a REDIRECT rule catching crmgate's own calls.
 */
static int conn_looped(const struct conn *c)
{
    const char *hop = worker_hop(c->w);
    size_t hl = strlen(hop);

    for (long i = http_fields_find(&c->req.headers, "via", 0); i >= 0;
         i = http_fields_find(&c->req.headers, "via", (size_t)i + 1)) {
        size_t vl;
        const char *v = http_field_value(&c->req.headers, (size_t)i, &vl);
        if (memmem(v, vl, hop, hl) != NULL)
            return 1;
    }
    return 0;
}

/* Authority characters we accept in Host: names, IPv4, [IPv6], port. */
static int conn_host_valid(const char *v, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == '_' || ch == ':' || ch == '[' || ch == ']'))
            return 0;
    }
    return 1;
}

/*
 * Everything llhttp lets through that a proxy must still refuse (nghttpx's
 * list): versions, Host, framing, CONNECT/Upgrade, body limits, Expect,
 * compressed bodies.
 */
/*
 * The forward listener before a tunnel: CONNECT to a CRM host on 443, and
 * nothing else. Never an open proxy: any other authority is refused before
 * a single outbound byte, and plain-HTTP requests are refused (the CRMs are
 * HTTPS-only).
 */
static int conn_check_forward(struct conn *c, llhttp_t *p)
{
    struct http_request *r = &c->req;
    const struct config *cfg = worker_config(c->w);
    char host[256], why[256];
    size_t from;
    long port = 0;
    long i;

    if (r->method != HTTP_CONNECT) {
        if (strncasecmp(r->target, "http://", 7) == 0)
            return conn_fail(c, 403, "plain_http_refused",
                             "plain HTTP is refused: the CRMs are HTTPS-only (use CONNECT)");
        return conn_fail(c, 400, "forward_listener",
                         "the forward listener takes CONNECT host:443 (set it as HTTPS_PROXY)");
    }
    if ((p->flags & F_CONTENT_LENGTH) || http_fields_find(&r->headers, "transfer-encoding", 0) >= 0)
        return conn_fail(c, 400, "bad_framing", "CONNECT with a body");
    if (conn_target_userinfo(r->target, &from))
        return conn_fail(c, 403, "connect_refused",
                         "CONNECT with user info (user@host) is refused: proxy credentials go in "
                         "Proxy-Authorization");
    if (route_authority(r->target, host, sizeof(host), &port) < 0 || port != 443 ||
        route_forward_host(host, cfg->sf_instance_host) == CRM_NONE) {
        char msg[400];
        snprintf(msg, sizeof(msg),
                 "CONNECT to %.200s is refused: crmgate intercepts only the "
                 "HubSpot and Salesforce API hosts on port 443",
                 r->target);
        return conn_fail(c, 403, "connect_refused", msg);
    }
    /* Proxy-Authorization identifies the caller as a registered token would. */
    i = http_fields_find(&r->headers, "proxy-authorization", 0);
    if (i >= 0) {
        struct http_fields one = {0};
        size_t vl;
        const char *v = http_field_value(&r->headers, (size_t)i, &vl);
        char decoded[600], *tok = NULL;
        int rc = -1;
        if (vl > 6 && strncasecmp(v, "Basic ", 6) == 0 && vl - 6 < 800) {
            /* Basic user:token (proxy URLs carry credentials this way): the token counts */
            unsigned char out[600];
            int n = EVP_DecodeBlock(out, (const unsigned char *)v + 6, (int)(vl - 6));
            if (n > 0 && (size_t)n < sizeof(decoded)) {
                memcpy(decoded, out, (size_t)n);
                decoded[n] = '\0';
                while (n > 0 && decoded[n - 1] == '\0')
                    n--; /* EVP_DecodeBlock pads */
                decoded[n] = '\0';
                tok = strchr(decoded, ':');
                tok = tok != NULL ? tok + 1 : NULL;
            }
        } else if (vl > 7 && strncasecmp(v, "Bearer ", 7) == 0 && vl - 7 < sizeof(decoded)) {
            memcpy(decoded, v + 7, vl - 7);
            decoded[vl - 7] = '\0';
            tok = decoded;
        }
        if (tok != NULL && custody_key_parse(tok, strlen(tok), c->proxy_key)) {
            /* A crmgate key: checked now, and again on every request in the tunnel. */
            struct custody_identity id;
            char kwhy[300];
            memset(decoded, 0, sizeof(decoded));
            if (custody_key_lookup(c->w->store, c->proxy_key, custody_now_ms(), &id, kwhy,
                                   sizeof(kwhy)) < 0) {
                memset(c->proxy_key, 0, sizeof(c->proxy_key));
                return conn_fail(c, 403, "key_refused", kwhy);
            }
            custody_identity_free(&id);
            c->has_proxy_key = 1;
            rc = 0;
        } else if (tok != NULL && tok[0] != '\0' &&
                   http_fields_add(&one, "Authorization", 13, "Bearer ", 7) == 0 &&
                   http_fields_append_value(&one, tok, strlen(tok)) == 0 &&
                   identify_caller(cfg, &one, c->proxy_fp, why, sizeof(why)) != NULL)
            rc = 0;
        memset(decoded, 0, sizeof(decoded));
        http_fields_free(&one);
        if (rc < 0) {
            c->proxy_fp[0] = '\0';
            return conn_fail(c, 403, "unknown_caller",
                             "Proxy-Authorization does not name a registered caller");
        }
    }
    snprintf(c->tunnel_host, sizeof(c->tunnel_host), "%s", host);
    return 0;
}

/* Inside a tunnel: origin-form requests for the tunnel's own host, under the name the client
 * asked TLS for. Anything else is another site riding the tunnel: 421. */
static int conn_check_tunnel(struct conn *c)
{
    struct http_request *r = &c->req;
    long i = http_fields_find(&r->headers, "host", 0);
    size_t vl = 0, hl;
    const char *v = i >= 0 ? http_field_value(&r->headers, (size_t)i, &vl) : NULL;

    if (r->method == HTTP_CONNECT || r->target[0] != '/')
        return conn_fail(c, 400, "bad_request_target",
                         "inside a tunnel, requests are origin-form paths");
    if (http_fields_count(&r->headers, "host") != 1)
        return conn_fail(c, 400, "missing_host", "exactly one Host header is required");
    hl = strlen(c->tunnel_host);
    if (!((vl == hl || (vl == hl + 4 && memcmp(v + hl, ":443", 4) == 0)) &&
          strncasecmp(v, c->tunnel_host, hl) == 0))
        return conn_fail(c, 421, "misdirected",
                         "the Host header does not match the host this tunnel was opened for");
    if (c->mitm.sni[0] != '\0' && strcasecmp(c->mitm.sni, c->tunnel_host) != 0)
        return conn_fail(c, 421, "misdirected",
                         "the TLS server name does not match the host this tunnel was opened for");
    return 0;
}

/* Whether the header name n[0..nl) is lit (lower case), ignoring case and reading '_' as '-'. */
static int conn_name_eq_dashed(const char *n, size_t nl, const char *lit)
{
    size_t i;

    for (i = 0; i < nl && lit[i] != '\0'; i++) {
        char ch = n[i] == '_' ? '-' : n[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch != lit[i])
            return 0;
    }
    return i == nl && lit[i] == '\0';
}

/*
 * Whether a Sforce-Call-Options value sets defaultNamespace: Salesforce then
 * reads an unprefixed field or object name as that namespace's, so the rules
 * would check one name and the CRM act on another.
 */
static int conn_default_namespace(const char *v, size_t vl)
{
    static const char key[] = "defaultnamespace";

    for (size_t j = 0; j + sizeof(key) - 1 <= vl; j++)
        if (strncasecmp(v + j, key, sizeof(key) - 1) == 0)
            return 1;
    return 0;
}

static int conn_check_head(llhttp_t *p)
{
    struct conn *c = conn_of(p);
    struct http_request *r = &c->req;
    const struct config_limits *lim = conn_limits(c);
    size_t hosts, vlen;
    long i;

    c->head_done = 1;
    http_fields_trim(&r->headers);
    r->method = llhttp_get_method(p);
    r->method_name = llhttp_method_name((llhttp_method_t)r->method);
    r->http_major = llhttp_get_http_major(p);
    r->http_minor = llhttp_get_http_minor(p);
    c->state = CONN_BODY;
    conn_arm(c, lim->body_timeout_ms);

    if (r->http_major != 1 || r->http_minor > 1)
        return conn_fail(c, 505, "http_version", "only HTTP/1.0 and HTTP/1.1 are supported");
    conn_transparent_ready(c);
    if (c->kind == CONN_KIND_FORWARD && !c->tunnel)
        return conn_check_forward(c, p);
    if (c->kind == CONN_KIND_TRANSPARENT && !c->tunnel)
        return conn_fail(c, 421, "misdirected", "no intercepted host for this connection");
    /* A tunnel's requests then get every check below, as the reverse listener's do. */
    if (c->tunnel && conn_check_tunnel(c) != 0)
        return HPE_USER;
    if (conn_looped(c))
        return conn_fail(c, 508, "loop_detected",
                         "this request already passed through this crmgate (its Via names it): "
                         "crmgate's upstream leads back to crmgate. Point upstreams at the CRM, "
                         "and in transparent mode exempt crmgate's own user from the REDIRECT "
                         "rule");
    if (r->method == HTTP_CONNECT)
        return conn_fail(c, 405, "connect_not_allowed",
                         "CONNECT is not accepted on the reverse listener: point the SDK's "
                         "base URL at /hubspot or /salesforce instead");
    if (llhttp_get_upgrade(p) || http_fields_find(&r->headers, "upgrade", 0) >= 0)
        return conn_fail(c, 501, "upgrade_not_supported",
                         "protocol upgrades (WebSocket, h2c) are not supported");
    if (r->target[0] != '/')
        return conn_fail(c, 400, "bad_request_target",
                         "the request target must be a path (origin-form) such as "
                         "/hubspot/crm/v3/objects/contacts");
    {
        /* Checked once, forwarded as sent: each may appear once, so what crmgate checks is
         * what the CRM sees. Method overrides other than the one the classifiers
         * understand could turn a checked read into a write: refused. */
        static const char *const once[] = {"content-type",
                                           "content-encoding",
                                           "expect",
                                           "x-http-method-override",
                                           "authorization",
                                           "sforce-duplicate-rule-header",
                                           NULL};
        static const char *const never[] = {"x-http-method", "x-method-override",
                                            "x-http-method-override", NULL};
        for (size_t k = 0; once[k] != NULL; k++) {
            if (http_fields_count(&r->headers, once[k]) > 1) {
                char msg[128];
                snprintf(msg, sizeof(msg), "more than one %s header", once[k]);
                return conn_fail(c, 400, "duplicate_header", msg);
            }
        }
        /* The last of never (X-HTTP-Method-Override) is the classifiers' to judge as spelt;
         * spelt with '_' (X_HTTP_Method_Override), which some stacks map to '-', the
         * classifiers never see it: refused like the others. */
        for (size_t k = 0; k < r->headers.n; k++) {
            size_t nl, vl;
            const char *n = http_field_name(&r->headers, k, &nl);
            const char *v = http_field_value(&r->headers, k, &vl);
            /* however its '-' are spelt, as the method overrides */
            if (conn_name_eq_dashed(n, nl, "sforce-call-options") && conn_default_namespace(v, vl))
                return conn_fail(c, 400, "call_options_namespace",
                                 "Sforce-Call-Options defaultNamespace is not accepted: it makes "
                                 "Salesforce read an unprefixed field or object name as a "
                                 "namespaced one, which is not the name crmgate's rules checked");
            /* decides a policy (actions.save_duplicates): checked as spelt, so a spelling
             * with '_' that a front end could map to '-' is refused */
            if (conn_name_eq_dashed(n, nl, "sforce-duplicate-rule-header") &&
                memchr(n, '_', nl) != NULL)
                return conn_fail(c, 400, "duplicate_rule_header",
                                 "Sforce-Duplicate-Rule-Header must be spelt with '-'");
            for (size_t j = 0; never[j] != NULL; j++) {
                if (conn_name_eq_dashed(n, nl, never[j]) &&
                    (never[j + 1] != NULL || memchr(n, '_', nl) != NULL)) {
                    char msg[160];
                    snprintf(msg, sizeof(msg), "the %.*s header is not accepted", (int)nl, n);
                    return conn_fail(c, 400, "method_override", msg);
                }
            }
        }
    }
    hosts = http_fields_count(&r->headers, "host");
    if (hosts > 1)
        return conn_fail(c, 400, "duplicate_host", "more than one Host header");
    if (hosts == 0 && r->http_minor == 1)
        return conn_fail(c, 400, "missing_host", "HTTP/1.1 request without a Host header");
    if (hosts == 1) {
        const char *hv =
            http_field_value(&r->headers, (size_t)http_fields_find(&r->headers, "host", 0), &vlen);
        if (!conn_host_valid(hv, vlen))
            return conn_fail(c, 400, "bad_host", "malformed Host header");
    }
    i = http_fields_find(&r->headers, "transfer-encoding", 0);
    if (i >= 0) {
        const char *te = http_field_value(&r->headers, (size_t)i, &vlen);
        if (r->http_minor == 0)
            return conn_fail(c, 400, "bad_framing", "Transfer-Encoding in an HTTP/1.0 request");
        if (http_fields_count(&r->headers, "transfer-encoding") != 1 || vlen != 7 ||
            strncasecmp(te, "chunked", 7) != 0)
            return conn_fail(c, 501, "transfer_encoding",
                             "only \"Transfer-Encoding: chunked\" is accepted on requests");
    }
    i = http_fields_find(&r->headers, "content-encoding", 0);
    if (i >= 0) {
        const char *ce = http_field_value(&r->headers, (size_t)i, &vlen);
        if (!(vlen == 8 && strncasecmp(ce, "identity", 8) == 0))
            return conn_fail(c, 415, "content_encoding",
                             "compressed request bodies are not accepted: crmgate must read "
                             "every body it forwards (send it without Content-Encoding)");
    }
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > lim->body_bytes) {
        char msg[160];
        snprintf(msg, sizeof(msg), "request body is larger than %zu bytes (limits.body_bytes)",
                 lim->body_bytes);
        return conn_fail(c, 413, "body_too_large", msg);
    }
    i = http_fields_find(&r->headers, "expect", 0);
    if (i >= 0) {
        const char *ex = http_field_value(&r->headers, (size_t)i, &vlen);
        if (!(vlen == 12 && strncasecmp(ex, "100-continue", 12) == 0))
            return conn_fail(c, 417, "expectation", "only \"Expect: 100-continue\" is supported");
        if (r->http_minor == 1)
            bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    return 0;
}

static int conn_on_headers_complete(llhttp_t *p)
{
    /* Only 0, 1, 2, -1 or HPE_PAUSED may come back from this callback. */
    return conn_check_head(p) == 0 ? 0 : -1;
}

static int conn_on_body(llhttp_t *p, const char *at, size_t n)
{
    struct conn *c = conn_of(p);
    size_t limit = conn_limits(c)->body_bytes;

    if (evbuffer_get_length(c->req.body) + n > limit) {
        char msg[160];
        snprintf(msg, sizeof(msg), "request body is larger than %zu bytes (limits.body_bytes)",
                 limit);
        return conn_fail(c, 413, "body_too_large", msg);
    }
    if (evbuffer_add(c->req.body, at, n) < 0)
        return conn_fail(c, 500, "out_of_memory", "out of memory");
    return 0;
}

static int conn_on_message_complete(llhttp_t *p)
{
    struct conn *c = conn_of(p);

    c->req.keep_alive = llhttp_should_keep_alive(p);
    /* A CONNECT accepted on the forward listener: let llhttp stop with
     * HPE_PAUSED_UPGRADE, which starts the tunnel. */
    if (c->kind == CONN_KIND_FORWARD && !c->tunnel && c->req.method == HTTP_CONNECT &&
        c->tunnel_host[0] != '\0')
        return 0;
    /* Stop here: one request at a time; pipelined bytes wait in the input. */
    return HPE_PAUSED;
}

static const llhttp_settings_t conn_http_settings = {
    .on_message_begin = conn_on_message_begin,
    .on_url = conn_on_url,
    .on_header_field = conn_on_header_field,
    .on_header_value = conn_on_header_value,
    .on_headers_complete = conn_on_headers_complete,
    .on_body = conn_on_body,
    .on_message_complete = conn_on_message_complete,
};

/*
 * The address a REDIRECTed connection was originally sent to (iptables
 * keeps it for SO_ORIGINAL_DST), as "ip:port" for the log; "" if unknown.
 */
static void conn_original_dst(evutil_socket_t fd, int family, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN];

    out[0] = '\0';
    /* SO_ORIGINAL_DST is 80 at SOL_IP, and IP6T_SO_ORIGINAL_DST 80 at SOL_IPV6 */
    if (getsockopt(fd, family == AF_INET6 ? SOL_IPV6 : SOL_IP, SO_ORIGINAL_DST, &ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(out, outlen, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(out, outlen, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    }
}

/* Transparent mode: once TLS is up, the tunnel's host is the name the client asked for. */
static void conn_transparent_ready(struct conn *c)
{
    if (c->kind != CONN_KIND_TRANSPARENT || c->tunnel || c->mitm.sni[0] == '\0')
        return;
    snprintf(c->tunnel_host, sizeof(c->tunnel_host), "%s", c->mitm.sni);
    c->tunnel = 1;
    log_info("%s TLS to %s (originally for %s) intercepted", c->peer, c->tunnel_host,
             c->mitm.orig_dst[0] != '\0' ? c->mitm.orig_dst : "?");
}

const char *conn_tunnel_host(const struct conn *c)
{
    return c->tunnel ? c->tunnel_host : NULL;
}

const unsigned char *conn_proxy_key(const struct conn *c)
{
    return c->has_proxy_key ? c->proxy_key : NULL;
}

const char *conn_proxy_fingerprint(const struct conn *c)
{
    return c->proxy_fp[0] != '\0' ? c->proxy_fp : NULL;
}

struct conn *conn_new(struct worker *w, evutil_socket_t fd, const struct sockaddr *sa, int salen,
                      enum conn_kind kind)
{
    struct conn *c = calloc(1, sizeof(*c));
    struct timeval wt;

    (void)salen;
    if (c == NULL)
        goto fail;
    c->w = w;
    c->kind = kind;
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        /*
         * An answer leaves in one go, but over TLS as several records: with Nagle on, the
         * last one waits for the client's delayed ACK (40 ms a request, measured).
         */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->peer, sizeof(c->peer));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->peer,
                  sizeof(c->peer));
    else
        snprintf(c->peer, sizeof(c->peer), "unix");
    c->req.target_cap = 256;
    c->req.target = malloc(c->req.target_cap);
    c->req.body = evbuffer_new();
    if (kind == CONN_KIND_TRANSPARENT) {
        /* TLS from the first byte, for whichever CRM host the client names in its SNI. */
        struct config *cfg = worker_config(w);
        SSL *ssl = cfg->mitm_ctx != NULL ? SSL_new(cfg->mitm_ctx) : NULL;
        if (ssl == NULL) {
            evutil_closesocket(fd);
            goto fail_conn;
        }
        conn_original_dst(fd, sa->sa_family, c->mitm.orig_dst, sizeof(c->mitm.orig_dst));
        c->mitm.connect_host = "";
        c->mitm.sf_instance_host = cfg->sf_instance_host;
        c->mitm.ca = cfg->ca;
        c->mitm.cache = cfg->leaf_cache;
        c->tls_cfg = config_ref(cfg);
        SSL_set_app_data(ssl, &c->mitm);
        c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (c->bev == NULL) {
            SSL_free(ssl);
            evutil_closesocket(fd);
            goto fail_conn;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        c->tls = 1;
    } else if (kind == CONN_KIND_REVERSE && worker_config(w)->tls_ctx != NULL) {
        /* HTTPS from the first byte; the bufferevent owns ssl and fd from here on. */
        SSL *ssl = SSL_new(worker_config(w)->tls_ctx);
        if (ssl == NULL) {
            evutil_closesocket(fd);
            goto fail_conn;
        }
        /* A minted certificate's handshake reads the config's CA and cache: keep it alive. */
        c->tls_cfg = config_ref(worker_config(w));
        c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (c->bev == NULL) {
            SSL_free(ssl);
            evutil_closesocket(fd);
            goto fail_conn;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        c->tls = 1;
    } else {
        c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    c->timer = evtimer_new(w->base, conn_timercb, c);
    if (c->req.target == NULL || c->req.body == NULL || c->bev == NULL || c->timer == NULL) {
        if (c->bev == NULL)
            evutil_closesocket(fd);
        goto fail_conn;
    }
    c->req.target[0] = '\0';
    llhttp_init(&c->parser, HTTP_REQUEST, &conn_http_settings);
    c->parser.data = c;
    c->state = CONN_IDLE;
    wt.tv_sec = conn_limits(c)->write_timeout_ms / 1000;
    wt.tv_usec = (conn_limits(c)->write_timeout_ms % 1000) * 1000;
    bufferevent_set_timeouts(c->bev, NULL, &wt);
    bufferevent_setcb(c->bev, conn_readcb, NULL, conn_eventcb, c);
    bufferevent_enable(c->bev, EV_READ);
    TAILQ_INSERT_TAIL(&w->conns, c, link);
    w->nconns++;
    /* A fresh connection gets the header timeout to send its first byte. */
    conn_arm(c, conn_limits(c)->header_timeout_ms);
    return c;
fail_conn:
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    if (c->req.body != NULL)
        evbuffer_free(c->req.body);
    config_unref(c->tls_cfg);
    free(c->req.target);
    free(c);
    log_error("out of memory accepting a connection");
    return NULL;
fail:
    evutil_closesocket(fd);
    log_error("out of memory accepting a connection");
    return NULL;
}

static long long conn_elapsed_us(const struct conn *c)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)(now.tv_sec - c->t_start.tv_sec) * 1000000 +
           (now.tv_nsec - c->t_start.tv_nsec) / 1000;
}

/*
 * Whether a path segment (len bytes, still percent-encoded) reads "oauth"
 * once decoded, in any case: the HubSpot classifier takes /OAuth/ and
 * /%6Fauth/ for /oauth/, so the log must too.
 */
static int conn_segment_is_oauth(const char *s, size_t len)
{
    static const char want[] = "oauth";
    size_t k = 0;

    for (size_t i = 0; i < len; k++) {
        int ch = (unsigned char)s[i++], hi, lo;
        if (ch == '%' && i + 2 <= len && (hi = crm_hex(s[i])) >= 0 &&
            (lo = crm_hex(s[i + 1])) >= 0) {
            ch = hi * 16 + lo;
            i += 2;
        }
        if (ch >= 'A' && ch <= 'Z')
            ch += 32;
        if (k >= sizeof(want) - 1 || ch != want[k])
            return 0;
    }
    return k == sizeof(want) - 1;
}

/*
 * Whether a segment after "oauth" (still percent-encoded) is one of the
 * versions and resources the OAuth APIs name, never a token: v1, v3, a
 * dated version (2026-03), token, revoke, introspect, access-tokens,
 * refresh-tokens. An encoded spelling is not taken: the log then stops
 * sooner, which is the safe side.
 */
static int conn_segment_oauth_literal(const char *s, size_t len)
{
    static const char *const lit[] = {
        "v1", "v3", "token", "revoke", "introspect", "access-tokens", "refresh-tokens", NULL};

    for (size_t k = 0; lit[k] != NULL; k++) {
        if (strlen(lit[k]) == len && strncasecmp(s, lit[k], len) == 0)
            return 1;
    }
    return len == 7 && strspn(s, "0123456789") == 4 && s[4] == '-' &&
           strspn(s + 5, "0123456789") == 2;
}

/*
 * The length of the target to log: the path without its query or fragment
 * (they may carry secrets), and for OAuth paths only as far as the segments
 * after "oauth" are versions and resources (conn_segment_oauth_literal, at
 * most CONN_LOG_OAUTH_SEGS of them): /oauth/v1/access-tokens/{token} and
 * /refresh-tokens/{token} carry tokens, and so may a path the classifier
 * refuses (/oauth/refresh-tokens/{token}, /oauth/v1/{token}). Segments are
 * counted as the classifier counts them: empty ones skipped, "oauth" in any
 * case or percent-encoding. A target with user info is logged only up to it.
 */
static int conn_log_path_len(const struct conn *c)
{
    const char *t = c->req.target;
    size_t n = strcspn(t, "?#"), from;
    int after = -1; /* segments logged after an oauth one; -1: none seen */

    if (conn_target_userinfo(t, &from))
        return (int)from;
    for (size_t p = 0; p < n;) {
        size_t s = p, e;
        while (s < n && t[s] == '/')
            s++;
        if (s == n)
            break;
        for (e = s; e < n && t[e] != '/'; e++)
            ;
        if (after >= 0) {
            if (after == CONN_LOG_OAUTH_SEGS || !conn_segment_oauth_literal(t + s, e - s)) {
                n = p; /* what follows may be a token */
                break;
            }
            after++;
        } else if (conn_segment_is_oauth(t + s, e - s)) {
            after = 0;
        }
        p = e;
    }
    return (int)(n > 512 ? 512 : n);
}

void conn_respond(struct conn *c, int status, const struct http_fields *fields,
                  struct evbuffer *body, long long content_length)
{
    struct evbuffer *out = evbuffer_new();
    size_t blen = body != NULL ? evbuffer_get_length(body) : 0;
    int head = c->req.method == HTTP_HEAD;
    int no_body = status == 204 || status == 304 || (status >= 100 && status < 200);

    c->ex = NULL;
    if (c->responded)
        return;
    c->responded = 1;
    /*
     * State and write callback first: an OpenSSL bufferevent encrypts what is queued at once
     * and only schedules (deferred) a write callback that is already installed.
     */
    c->state = CONN_WRITING;
    bufferevent_setcb(c->bev, conn_readcb, conn_writecb, conn_eventcb, c);
    if (!c->req.keep_alive || c->w->draining)
        c->close_after = 1;
    if (out == NULL) {
        /* No memory for the answer: close from the loop, never under the caller. */
        struct timeval now = {0, 0};
        if (body != NULL)
            evbuffer_drain(body, blen);
        c->state = CONN_CLOSING;
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        evtimer_add(c->timer, &now);
        return;
    }
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, crm_status_reason(status));
    for (size_t i = 0; fields != NULL && i < fields->n; i++) {
        size_t nl, vl;
        const char *n = http_field_name(fields, i, &nl);
        const char *v = http_field_value(fields, i, &vl);
        evbuffer_add(out, n, nl);
        evbuffer_add(out, ": ", 2);
        evbuffer_add(out, v, vl);
        evbuffer_add(out, "\r\n", 2);
    }
    if (!no_body && !(head && content_length < 0)) {
        long long cl = head ? content_length : (long long)blen;
        evbuffer_add_printf(out, "Content-Length: %lld\r\n", cl);
    }
    if (c->close_after)
        evbuffer_add(out, "Connection: close\r\n", 19);
    evbuffer_add(out, "\r\n", 2);
    if (body != NULL) {
        if (!head && !no_body)
            evbuffer_add_buffer(out, body);
        else
            evbuffer_drain(body, blen);
    }
    /*
     * Hand the answer over in one piece. An OpenSSL bufferevent makes one TLS record per
     * evbuffer chunk, and a filter one (tunnels) encrypts at every add: written field by
     * field, an answer left as ~35 records, each costing the client two reads. A small
     * answer is made one contiguous chunk (one record); a large one keeps its chunks.
     */
    if (evbuffer_get_length(out) <= CONN_COALESCE_BYTES)
        (void)evbuffer_pullup(out, -1);
    bufferevent_write_buffer(c->bev, out);
    evbuffer_free(out);
    out = NULL;
    log_info("%s \"%s %.*s\" %d %zu %lldus", c->peer,
             c->req.method_name != NULL ? c->req.method_name : "-", conn_log_path_len(c),
             c->req.target, status, head || no_body ? (size_t)0 : blen, conn_elapsed_us(c));
    evtimer_del(c->timer);
    if (c->close_after)
        bufferevent_disable(c->bev, EV_READ);
}

void conn_abort(struct conn *c, int status, const char *code, const char *message)
{
    struct http_fields f = {0};
    struct evbuffer *body;
    const char *rest;
    enum crm crm = c->req.target[0] == '/' ? route_reverse(c->req.target, &rest) : CRM_NONE;
    char *json;

    /* In a tunnel the host names the CRM (its paths carry no /hubspot or /salesforce). */
    if (c->tunnel)
        crm = route_forward_host(c->tunnel_host, worker_config(c->w)->sf_instance_host);

    if (c->state == CONN_WRITING || c->responded) {
        /* Part of an answer is out already: all we can do is close. */
        c->close_after = 1;
        return;
    }
    log_warn("%s \"%.*s\": %d %s: %s", c->peer, conn_log_path_len(c), c->req.target, status, code,
             message);
    /* Called by the exchange itself (which frees itself afterwards) or by
     * conn before any exchange exists: either way, just detach. */
    c->ex = NULL;
    c->close_after = 1;
    json = crm_error_body(crm, status, code, message, c->request_id);
    body = evbuffer_new();
    if (json == NULL || body == NULL ||
        http_fields_add(&f, "Content-Type", 12, "application/json;charset=utf-8", 30) < 0 ||
        http_fields_add(&f, "X-Crmgate-Error", 15, code, strlen(code)) < 0) {
        struct timeval now = {0, 0};
        free(json);
        if (body != NULL)
            evbuffer_free(body);
        http_fields_free(&f);
        /* Callers may still hold c (conn_dispatch, conn_process): close from the loop. */
        c->state = CONN_CLOSING;
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        evtimer_add(c->timer, &now);
        return;
    }
    evbuffer_add(body, json, strlen(json));
    free(json);
    if (c->state == CONN_IDLE)
        clock_gettime(CLOCK_MONOTONIC, &c->t_start);
    conn_respond(c, status, &f, body, -1);
    evbuffer_free(body);
    http_fields_free(&f);
}

static void conn_new_request_id(struct conn *c)
{
    uint64_t a = worker_random(c->w), b = worker_random(c->w);

    /* UUID v4 layout, as HubSpot's correlationId. */
    snprintf(c->request_id, sizeof(c->request_id), "%08x-%04x-4%03x-%04x-%012llx",
             (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
             ((unsigned)(b >> 48) & 0x3fff) | 0x8000, (unsigned long long)(b & 0xffffffffffffULL));
}

static void conn_begin(struct conn *c)
{
    c->state = CONN_HEAD;
    c->head_scanned = 0;
    c->head_done = 0;
    c->head_bytes = 0;
    c->responded = 0;
    c->abort_status = 0;
    c->req.method_name = NULL;
    c->req.target_len = 0;
    c->req.target[0] = '\0';
    http_prescan_init(&c->ps);
    clock_gettime(CLOCK_MONOTONIC, &c->t_start);
    conn_new_request_id(c);
    conn_arm(c, conn_limits(c)->header_timeout_ms);
}

static void conn_dispatch(struct conn *c)
{
    c->state = CONN_EXCHANGE;
    evtimer_del(c->timer);
    c->requests++;
    c->ex = exchange_start(c, &c->req);
}

/* Skip CRLFs between messages (RFC 9112 §2.2 lets a server ignore them). */
static void conn_skip_crlf(struct evbuffer *in)
{
    unsigned char two[2];

    while (evbuffer_copyout(in, two, 2) == 2 && two[0] == '\r' && two[1] == '\n')
        evbuffer_drain(in, 2);
}

/*
 * CONNECT accepted: answer 200, then terminate TLS on the same connection
 * (bufferevent_openssl_filter_new over the plain bufferevent, so ClientHello
 * bytes already read are used), with a leaf minted for the client's SNI.
 * The requests inside run through the same pipeline as reverse mode.
 */
static void conn_start_tunnel(struct conn *c)
{
    struct config *cfg = worker_config(c->w);
    struct bufferevent *tls_bev;
    struct timeval wt;
    SSL *ssl;

    log_info("%s CONNECT %s:443 intercepted", c->peer, c->tunnel_host);
    bufferevent_write(c->bev, "HTTP/1.1 200 Connection established\r\n\r\n", 39);
    c->mitm.connect_host = c->tunnel_host;
    c->mitm.sf_instance_host = cfg->sf_instance_host;
    c->mitm.ca = cfg->ca;
    c->mitm.cache = cfg->leaf_cache;
    c->mitm.sni[0] = '\0';
    /* A SIGHUP may swap the worker's config before the ClientHello arrives. */
    if (c->tls_cfg == NULL)
        c->tls_cfg = config_ref(cfg);
    ssl = SSL_new(cfg->mitm_ctx);
    if (ssl == NULL) {
        conn_free(c);
        return;
    }
    SSL_set_app_data(ssl, &c->mitm);
    /*
     * DEFER_CALLBACKS: a filter bufferevent encrypts what is written at once, so its write
     * callback would run inside conn_respond, before the callback that ends the answer is
     * even installed (and could free c under its caller). Deferred, it runs from the loop.
     */
    tls_bev = bufferevent_openssl_filter_new(c->w->base, c->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (tls_bev == NULL) {
        SSL_free(ssl);
        conn_free(c);
        return;
    }
    c->bev = tls_bev; /* owns the plain bufferevent and the socket from here on */
    c->tls = 1;
    c->tunnel = 1;
    bufferevent_openssl_set_allow_dirty_shutdown(tls_bev, 1);
    wt.tv_sec = conn_limits(c)->write_timeout_ms / 1000;
    wt.tv_usec = (conn_limits(c)->write_timeout_ms % 1000) * 1000;
    bufferevent_set_timeouts(tls_bev, NULL, &wt);
    bufferevent_setcb(tls_bev, conn_readcb, NULL, conn_eventcb, c);
    bufferevent_enable(tls_bev, EV_READ | EV_WRITE);
    llhttp_init(&c->parser, HTTP_REQUEST, &conn_http_settings);
    c->parser.data = c;
    c->state = CONN_IDLE;
    conn_arm(c, conn_limits(c)->header_timeout_ms);
}

static void conn_process(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    while (c->state == CONN_IDLE || c->state == CONN_HEAD || c->state == CONN_BODY) {
        enum llhttp_errno err;
        const char *buf;
        size_t len;

        if (c->state == CONN_IDLE) {
            unsigned char first;
            conn_skip_crlf(in);
            if (evbuffer_get_length(in) == 0)
                return;
            /* A lone CR may be the start of a CRLF still in flight: wait for its pair, or a
             * split "\r" + "\n<head>" would pass as an empty head and skip the pre-scan. */
            if (evbuffer_get_length(in) == 1 && evbuffer_copyout(in, &first, 1) == 1 &&
                first == '\r')
                return;
            conn_begin(c);
        }
        len = evbuffer_get_length(in);
        if (len == 0)
            return;
        buf = (const char *)evbuffer_pullup(in, -1);
        if (c->state == CONN_HEAD && !c->head_scanned) {
            size_t end;
            const char *why = NULL;
            size_t cap = conn_limits(c)->header_bytes;
            enum http_prescan_result r =
                http_prescan_run(&c->ps, buf, len < cap + 1 ? len : cap + 1, &end, &why);
            if (r == HTTP_PRESCAN_ERROR) {
                char msg[160];
                snprintf(msg, sizeof(msg), "malformed request head: %s", why);
                conn_abort(c, 400, "malformed_request", msg);
                return;
            }
            if (r == HTTP_PRESCAN_MORE) {
                if (len > cap) {
                    char msg[160];
                    snprintf(msg, sizeof(msg),
                             "request head is larger than %zu bytes (limits.header_bytes)", cap);
                    conn_abort(c, 431, "header_too_large", msg);
                }
                return;
            }
            c->head_scanned = 1;
        }
        err = llhttp_execute(&c->parser, buf, len);
        if (err == HPE_OK) {
            evbuffer_drain(in, len);
            return;
        }
        if (err == HPE_PAUSED) {
            evbuffer_drain(in, (size_t)(llhttp_get_error_pos(&c->parser) - buf));
            conn_dispatch(c);
            return;
        }
        if (err == HPE_PAUSED_UPGRADE && c->abort_status == 0 && c->kind == CONN_KIND_FORWARD &&
            !c->tunnel && c->req.method == HTTP_CONNECT && c->tunnel_host[0] != '\0') {
            evbuffer_drain(in, (size_t)(llhttp_get_error_pos(&c->parser) - buf));
            conn_start_tunnel(c);
            return;
        }
        /* A callback recorded why; on_headers_complete can only say -1. */
        if (c->abort_status != 0) {
            conn_abort(c, c->abort_status, c->abort_code, c->abort_msg);
        } else {
            char msg[200];
            snprintf(msg, sizeof(msg), "malformed request: %s", llhttp_errno_name(err));
            if (llhttp_get_error_reason(&c->parser) != NULL)
                snprintf(msg, sizeof(msg), "malformed request: %s (%s)",
                         llhttp_get_error_reason(&c->parser), llhttp_errno_name(err));
            conn_abort(c, err == HPE_INVALID_METHOD ? 501 : 400, "malformed_request", msg);
        }
        return;
    }
}

static void conn_readcb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    /*
     * Reading stays on while a request is in flight (toggling it costs two
     * epoll_ctl calls per request); pipelined bytes wait in the input, up
     * to one full request's worth, then reading pauses until the answer is
     * out.
     */
    if (c->state == CONN_EXCHANGE || c->state == CONN_WRITING) {
        const struct config_limits *lim = conn_limits(c);
        if (evbuffer_get_length(bufferevent_get_input(bev)) > lim->header_bytes + lim->body_bytes)
            bufferevent_disable(bev, EV_READ);
        return;
    }
    conn_process(c);
}

/*
 * A tunnel's TLS bufferevent drains into the plain one below it: before
 * closing, queue close_notify and wait (polling, bounded by the write
 * timeout) until the plain one has sent everything. 1 while waiting.
 */
static int conn_tunnel_linger(struct conn *c)
{
    struct bufferevent *u = bufferevent_get_underlying(c->bev);
    struct timespec now;

    if (!c->shutdown_sent) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        unsigned ms = conn_limits(c)->write_timeout_ms;
        c->shutdown_sent = 1;
        if (ssl != NULL) {
            SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
            SSL_shutdown(ssl);
        }
        clock_gettime(CLOCK_MONOTONIC, &c->linger_until);
        c->linger_until.tv_sec += ms / 1000;
        c->linger_until.tv_nsec += (long)(ms % 1000) * 1000000L;
    }
    if (u == NULL || evbuffer_get_length(bufferevent_get_output(u)) == 0)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > c->linger_until.tv_sec ||
        (now.tv_sec == c->linger_until.tv_sec && now.tv_nsec >= c->linger_until.tv_nsec))
        return 0;
    conn_arm(c, 5);
    return 1;
}

static void conn_writecb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    if (c->state != CONN_WRITING || evbuffer_get_length(bufferevent_get_output(bev)) != 0)
        return;
    if (c->close_after) {
        if (c->tunnel && conn_tunnel_linger(c))
            return; /* the timer calls back until the bytes below have left */
        conn_free(c);
        return;
    }
    /* Ready for the next request: idle timer, resume the paused parser. */
    c->state = CONN_IDLE;
    bufferevent_setcb(c->bev, conn_readcb, NULL, conn_eventcb, c);
    if (llhttp_get_errno(&c->parser) == HPE_PAUSED)
        llhttp_resume(&c->parser);
    conn_arm(c, conn_limits(c)->idle_timeout_ms);
    if (!(bufferevent_get_enabled(c->bev) & EV_READ))
        bufferevent_enable(c->bev, EV_READ);
    conn_process(c);
}

static void conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (what == BEV_EVENT_CONNECTED) {
        conn_transparent_ready(c); /* TLS handshake done: requests follow */
        return;
    }
    /*
     * Plain TCP: an EOF after a complete request is a half-close, and the answer can still
     * be written. TLS: libevent's OpenSSL bufferevent stops writing as well as reading at
     * EOF, so the answer could never leave and the connection would linger past every
     * timeout; the peer is gone, so close (which also cancels the upstream call).
     */
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && !c->tls &&
        (c->state == CONN_EXCHANGE || c->state == CONN_WRITING)) {
        /* Half-close after a complete request: still answer it. */
        c->read_eof = 1;
        c->close_after = 1;
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        log_warn("%s: client did not read its answer within %ums; closing", c->peer,
                 conn_limits(c)->write_timeout_ms);
    else if ((what & BEV_EVENT_ERROR) && c->state != CONN_IDLE)
        log_debug("%s: connection error in state %d", c->peer, (int)c->state);
    /* EOF mid-request or an error: nobody is left to answer. */
    conn_free(c);
}

static void conn_timercb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    switch (c->state) {
    case CONN_IDLE:
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
            conn_free(c); /* quiet keep-alive connection: just close */
            return;
        }
        conn_abort(c, 408, "header_timeout", "request head not received in time");
        return;
    case CONN_HEAD:
        conn_abort(c, 408, "header_timeout",
                   "request head not received in time "
                   "(limits.header_timeout_ms)");
        return;
    case CONN_BODY:
        conn_abort(c, 408, "body_timeout",
                   "request body not received in time "
                   "(limits.body_timeout_ms)");
        return;
    case CONN_CLOSING:
        conn_free(c);
        return;
    case CONN_WRITING:
        conn_writecb(c->bev, c); /* a closing tunnel, lingering */
        return;
    case CONN_EXCHANGE:
        break;
    }
}
