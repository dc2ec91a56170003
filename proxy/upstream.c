/*
 * upstream.c - libcurl multi-socket on a libevent base.
 *
 * Follows curl's hiperfifo.c: curl tells us which sockets to watch
 * (upstream_sockcb) and when to wake it (upstream_timerfunc); we call
 * curl_multi_socket_action from libevent callbacks and drain
 * curl_multi_info_read after every call. Nothing here calls libcurl from
 * inside a libcurl callback, and a socket context may be freed during
 * socket_action, so it is never touched afterwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "upstream.h"

#define UPSTREAM_POOL_MAX         64          /* idle easy handles kept for reuse */
#define UPSTREAM_MAX_HEADER_BYTES (64 * 1024) /* upstream response head */
#define UPSTREAM_MAX_CONNECTS     256         /* idle connections kept by the multi */

struct upstream {
    struct event_base *base;
    CURLM *multi;
    CURLSH *share;
    struct event *timer;
    CURL *pool[UPSTREAM_POOL_MAX];
    size_t npool;
    size_t active;
    struct upstream_xfer *xfers;     /* doubly linked, for upstream_free */
    char via[UPSTREAM_HOP_MAX + 16]; /* "Via: 1.1 <hop>" */
};

struct upstream_sock {
    struct upstream *u;
    struct event *ev;
};

struct upstream_xfer {
    struct upstream *u;
    struct upstream_xfer *prev, *next;
    CURL *easy;
    struct curl_slist *hdrs;
    upstream_done_cb cb;
    void *arg;
    size_t max_response;
    size_t head_bytes;
    int body_started;
    struct upstream_response rsp;
    char why[CURL_ERROR_SIZE]; /* our own reason for failing it: curl's error buffer would
                                  say only "Failed writing header" or "... output" */
    const char *body;          /* a once request's body, fed by upstream_readcb */
    size_t body_len, body_off;
};

static void upstream_drive(struct upstream *u, curl_socket_t fd, int sel);

static void upstream_eventcb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_sock *us = arg;
    struct upstream *u = us->u;
    int sel = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);

    us = NULL; /* may be freed inside socket_action */
    upstream_drive(u, fd, sel);
}

static void upstream_timercb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    upstream_drive(arg, CURL_SOCKET_TIMEOUT, 0);
}

static int upstream_sockcb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct upstream *u = userp;
    struct upstream_sock *us = socketp;
    short kind;

    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (us != NULL) {
            event_free(us->ev);
            free(us);
        }
        return 0;
    }
    kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0) |
                   EV_PERSIST);
    if (us == NULL) {
        us = calloc(1, sizeof(*us));
        if (us == NULL)
            return -1;
        us->u = u;
        us->ev = event_new(u->base, s, kind, upstream_eventcb, us);
        if (us->ev == NULL) {
            free(us);
            return -1;
        }
        curl_multi_assign(u->multi, s, us);
    } else {
        event_del(us->ev);
        event_assign(us->ev, u->base, s, kind, upstream_eventcb, us);
    }
    event_add(us->ev, NULL);
    return 0;
}

/* Only arm the timer: calling curl from here would recurse. */
static int upstream_timerfunc(CURLM *multi, long timeout_ms, void *userp)
{
    struct upstream *u = userp;
    struct timeval tv;

    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(u->timer);
        return 0;
    }
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    evtimer_add(u->timer, &tv);
    return 0;
}

struct upstream *upstream_new(struct event_base *base, const char *hop, char *err, size_t errlen)
{
    struct upstream *u;

    if (hop == NULL || hop[0] == '\0' || strlen(hop) > UPSTREAM_HOP_MAX) {
        snprintf(err, errlen, "bad Via pseudonym for the upstream");
        return NULL;
    }
    u = calloc(1, sizeof(*u));
    if (u == NULL)
        goto oom;
    snprintf(u->via, sizeof(u->via), "Via: 1.1 %s", hop);
    u->base = base;
    u->multi = curl_multi_init();
    u->share = curl_share_init();
    u->timer = evtimer_new(base, upstream_timercb, u);
    if (u->multi == NULL || u->share == NULL || u->timer == NULL)
        goto oom;
    /* Same thread only, so no lock functions: DNS and TLS sessions. */
    curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, upstream_sockcb);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, upstream_timerfunc);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, (long)UPSTREAM_MAX_CONNECTS);
    return u;
oom:
    snprintf(err, errlen, "cannot create the libcurl multi handle (out of memory)");
    upstream_free(u);
    return NULL;
}

static void upstream_xfer_release(struct upstream_xfer *x)
{
    struct upstream *u = x->u;

    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        u->xfers = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    u->active--;
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    http_fields_free(&x->rsp.headers);
    if (x->rsp.body != NULL)
        evbuffer_free(x->rsp.body);
    x->rsp.body = NULL;
    if (u->npool < UPSTREAM_POOL_MAX) {
        /* reset keeps the session-id cache and the share; the multi keeps connections */
        curl_easy_reset(x->easy);
        u->pool[u->npool++] = x->easy;
    } else {
        curl_easy_cleanup(x->easy);
    }
    x->easy = NULL;
    free(x);
}

void upstream_free(struct upstream *u)
{
    if (u == NULL)
        return;
    while (u->xfers != NULL) {
        curl_multi_remove_handle(u->multi, u->xfers->easy);
        upstream_xfer_release(u->xfers);
    }
    for (size_t i = 0; i < u->npool; i++)
        curl_easy_cleanup(u->pool[i]);
    u->npool = 0;
    if (u->multi != NULL)
        curl_multi_cleanup(u->multi);
    u->multi = NULL;
    if (u->share != NULL)
        curl_share_cleanup(u->share);
    u->share = NULL;
    if (u->timer != NULL)
        event_free(u->timer);
    u->timer = NULL;
    free(u);
}

size_t upstream_active(const struct upstream *u)
{
    return u->active;
}

int upstream_redact(struct evbuffer **body, const char *secret, size_t slen)
{
    size_t len = *body != NULL ? evbuffer_get_length(*body) : 0;
    const char *p, *cur, *hit;
    struct evbuffer *nb;
    int n = 0;

    if (slen == 0 || len < slen)
        return 0;
    p = (const char *)evbuffer_pullup(*body, -1);
    hit = p != NULL ? memmem(p, len, secret, slen) : NULL;
    if (hit == NULL)
        return 0;
    nb = evbuffer_new();
    if (nb == NULL)
        return -1;
    for (cur = p; hit != NULL; n++) {
        if (evbuffer_add(nb, cur, (size_t)(hit - cur)) < 0 ||
            evbuffer_add(nb, UPSTREAM_REDACTED, sizeof(UPSTREAM_REDACTED) - 1) < 0) {
            evbuffer_free(nb);
            return -1;
        }
        cur = hit + slen;
        hit = memmem(cur, len - (size_t)(cur - p), secret, slen);
    }
    if (evbuffer_add(nb, cur, len - (size_t)(cur - p)) < 0) {
        evbuffer_free(nb);
        return -1;
    }
    evbuffer_free(*body);
    *body = nb;
    return n;
}

static void upstream_finish(struct upstream_xfer *x, CURLcode result)
{
    struct upstream_response *rsp = &x->rsp;

    rsp->result = result;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &rsp->status);
    if (result == CURLE_SEND_FAIL_REWIND)
        snprintf(x->why, sizeof(x->why),
                 "the connection closed before an answer came, and crmgate does not send the "
                 "request again (the other side may have acted on it)");
    if (result != CURLE_OK && x->why[0] != '\0')
        snprintf(rsp->error, sizeof(rsp->error), "%s", x->why);
    if (result != CURLE_OK && rsp->error[0] == '\0')
        snprintf(rsp->error, sizeof(rsp->error), "%s", curl_easy_strerror(result));
    x->cb(rsp, x->arg);
    upstream_xfer_release(x);
}

/* Fail every transfer: after a socket_action error the multi is unusable. */
static void upstream_fail_all(struct upstream *u, CURLMcode mc)
{
    log_error("libcurl multi handle failed (%s); failing %zu transfers", curl_multi_strerror(mc),
              u->active);
    while (u->xfers != NULL) {
        struct upstream_xfer *x = u->xfers;
        curl_multi_remove_handle(u->multi, x->easy);
        snprintf(x->rsp.error, sizeof(x->rsp.error), "libcurl: %s", curl_multi_strerror(mc));
        upstream_finish(x, CURLE_SEND_ERROR);
    }
}

static void upstream_drive(struct upstream *u, curl_socket_t fd, int sel)
{
    CURLMcode mc;
    CURLMsg *m;
    int running, left;

    mc = curl_multi_socket_action(u->multi, fd, sel, &running);
    if (mc != CURLM_OK) {
        upstream_fail_all(u, mc);
        return;
    }
    while ((m = curl_multi_info_read(u->multi, &left)) != NULL) {
        CURL *e = m->easy_handle; /* copy: *m dies in remove_handle */
        CURLcode rc = m->data.result;
        struct upstream_xfer *x = NULL;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(u->multi, e);
        if (x != NULL)
            upstream_finish(x, rc);
    }
}

/* A field line (CRLF stripped) with a control character other than HTAB (RFC 9110 5.5). */
static int upstream_bad_field(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 1;
    }
    return 0;
}

/* A Content-Length whose value differs from one already in this head. */
static int upstream_conflicting_length(const struct upstream_xfer *x, const char *name, size_t nl,
                                       const char *v, size_t vl)
{
    long i;
    size_t ol;
    const char *ov;

    if (nl != 14 || strncasecmp(name, "content-length", 14) != 0)
        return 0;
    if ((i = http_fields_find(&x->rsp.headers, "content-length", 0)) < 0)
        return 0;
    ov = http_field_value(&x->rsp.headers, (size_t)i, &ol);
    return ol != vl || memcmp(ov, v, vl) != 0;
}

/*
 * A once request's body, handed to curl piece by piece. There is no seek
 * callback: when a request dies unanswered on a reused connection after its
 * body went out, curl's resend needs a rewind, cannot have one, and fails
 * with CURLE_SEND_FAIL_REWIND instead of sending the write again. A request
 * that died before its body went out needs no rewind and is resent: the CRM
 * cannot have acted on it.
 */
static size_t upstream_readcb(char *buf, size_t size, size_t n, void *arg)
{
    struct upstream_xfer *x = arg;
    size_t left = x->body_len - x->body_off, take = size * n < left ? size * n : left;

    memcpy(buf, x->body + x->body_off, take);
    x->body_off += take;
    return take;
}

static size_t upstream_headercb(char *buf, size_t size, size_t n, void *arg)
{
    struct upstream_xfer *x = arg;
    size_t len = size * n, nl, vs;

    x->head_bytes += len;
    if (x->head_bytes > UPSTREAM_MAX_HEADER_BYTES) {
        snprintf(x->why, sizeof(x->why), "upstream response head larger than %d bytes",
                 UPSTREAM_MAX_HEADER_BYTES);
        return 0;
    }
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        const char *sp = memchr(buf, ' ', len);
        /* crmgate never asks to switch protocols (Upgrade is refused at the edge): curl would
         * take a 101 for an interim head and wait for a final one until the timeout */
        if (sp != NULL && (size_t)(buf + len - sp) > 4 && strncmp(sp + 1, "101", 3) == 0 &&
            (sp[4] == ' ' || sp[4] == '\r' || sp[4] == '\n')) {
            snprintf(x->why, sizeof(x->why),
                     "the upstream answered 101 Switching Protocols, which crmgate never asks for");
            return 0;
        }
        /* A new status line: 1xx heads before the final one are forgotten. */
        http_fields_reset(&x->rsp.headers);
        x->body_started = 0;
        return len;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len == 0) {
        x->body_started = 1; /* end of a head; a later head resets this */
        return size * n;
    }
    if (x->body_started)
        return size * n; /* trailers: not forwarded */
    if (upstream_bad_field(buf, len)) {
        /* curl passes a bare CR through: relayed, the agent's parser could take it for a
         * line end and read a header the CRM never sent */
        snprintf(x->why, sizeof(x->why), "upstream response header with a control character");
        return 0;
    }
    if (buf[0] == ' ' || buf[0] == '\t') {
        /* obs-fold continuation: join with a single space */
        if (x->rsp.headers.n == 0 || http_fields_append_value(&x->rsp.headers, " ", 1) < 0 ||
            http_fields_append_value(&x->rsp.headers, buf + 1, len - 1) < 0)
            return 0;
        return size * n;
    }
    for (nl = 0; nl < len && buf[nl] != ':'; nl++)
        ;
    if (nl == len || nl == 0)
        return size * n; /* not a field line: ignore it */
    vs = nl + 1;
    while (vs < len && (buf[vs] == ' ' || buf[vs] == '\t'))
        vs++;
    while (len > vs && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        len--;
    if (upstream_conflicting_length(x, buf, nl, buf + vs, len - vs)) {
        /* RFC 9112 6.3: unrecoverable. curl takes the last one; a load balancer in front of
         * the CRM may have framed by the first, and the rest would answer the next request */
        snprintf(x->why, sizeof(x->why), "upstream response with conflicting Content-Length");
        return 0;
    }
    if (http_fields_add(&x->rsp.headers, buf, nl, buf + vs, len - vs) < 0)
        return 0;
    return size * n;
}

static size_t upstream_writecb(char *buf, size_t size, size_t n, void *arg)
{
    struct upstream_xfer *x = arg;
    size_t len = size * n;

    if (evbuffer_get_length(x->rsp.body) + len > x->max_response) {
        x->rsp.too_large = 1;
        snprintf(x->why, sizeof(x->why),
                 "upstream response body larger than %zu bytes (limits.response_bytes)",
                 x->max_response);
        return 0;
    }
    if (evbuffer_add(x->rsp.body, buf, len) < 0)
        return 0;
    return len;
}

static int upstream_add_header(struct upstream_xfer *x, const char *line)
{
    struct curl_slist *l = curl_slist_append(x->hdrs, line);

    if (l == NULL)
        return -1;
    x->hdrs = l;
    return 0;
}

/* Header list for curl: "Name: value", or "Name;" for an empty value. */
static int upstream_build_headers(struct upstream_xfer *x, const struct upstream_request *r)
{
    const struct http_fields *fs = r->headers;
    char stack[1024];

    for (size_t i = 0; fs != NULL && i < fs->n; i++) {
        size_t nl, vl, need;
        const char *nm = http_field_name(fs, i, &nl);
        const char *v = http_field_value(fs, i, &vl);
        char *line = stack;
        int rc;

        need = nl + vl + 3;
        if (need > sizeof(stack) && (line = malloc(need)) == NULL)
            return -1;
        if (vl == 0)
            snprintf(line, need, "%.*s;", (int)nl, nm);
        else
            snprintf(line, need, "%.*s: %.*s", (int)nl, nm, (int)vl, v);
        rc = upstream_add_header(x, line);
        if (line != stack)
            free(line);
        if (rc < 0)
            return -1;
    }
    /* crmgate's own hop, after any Via the client sent (RFC 9110 7.6.3): a request
     * that comes back carrying it is a loop (conn.c refuses it with 508). */
    if (upstream_add_header(x, x->u->via) < 0)
        return -1;
    /* Suppress what curl would add on its own. */
    if (upstream_add_header(x, "Expect:") < 0)
        return -1;
    if (http_fields_find(fs, "accept", 0) < 0 && upstream_add_header(x, "Accept:") < 0)
        return -1;
    if (r->has_body && http_fields_find(fs, "content-type", 0) < 0 &&
        upstream_add_header(x, "Content-Type:") < 0)
        return -1;
    return 0;
}

struct upstream_xfer *upstream_start(struct upstream *u, const struct upstream_request *r,
                                     upstream_done_cb cb, void *arg)
{
    struct upstream_xfer *x = calloc(1, sizeof(*x));
    CURL *e;

    if (x == NULL)
        return NULL;
    e = u->npool > 0 ? u->pool[--u->npool] : curl_easy_init();
    x->rsp.body = evbuffer_new();
    if (e == NULL || x->rsp.body == NULL)
        goto fail;
    x->u = u;
    x->easy = e;
    x->cb = cb;
    x->arg = arg;
    x->max_response = r->max_response;
    if (upstream_build_headers(x, r) < 0)
        goto fail;

    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SHARE, u->share);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* Straight to the upstream the config names: never a proxy from the environment
     * (an inherited HTTPS_PROXY may be crmgate's own forward listener, an http_proxy would
     * see the CRM token in clear). "" overrides http_proxy, HTTPS_PROXY and ALL_PROXY. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    /* Forward the path exactly as classified: no dot-segment squashing. */
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    /* Ask for identity; should gzip or deflate come anyway, curl decodes it. */
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "identity");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, upstream_headercb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, upstream_writecb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->rsp.error);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (r->once && !r->has_body) {
        /* Sent once, with no body to withhold (a DELETE): on a new connection, as curl
         * resends a request that died unanswered on a reused one; closed after it, or every
         * such write would add an idle connection to the CRM (up to UPSTREAM_MAX_CONNECTS
         * per worker). A once request with a body keeps pooled connections: see
         * upstream_readcb. */
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    if (r->ca_bundle != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, r->ca_bundle);

    if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (r->has_body) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        if (r->once) {
            x->body = r->body_len > 0 ? r->body : "";
            x->body_len = r->body_len;
            curl_easy_setopt(e, CURLOPT_READFUNCTION, upstream_readcb);
            curl_easy_setopt(e, CURLOPT_READDATA, x);
        } else {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body_len > 0 ? r->body : "");
        }
        if (strcmp(r->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        if (strcmp(r->method, "GET") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    }

    x->next = u->xfers;
    if (u->xfers != NULL)
        u->xfers->prev = x;
    u->xfers = x;
    u->active++;
    if (curl_multi_add_handle(u->multi, e) != CURLM_OK) {
        upstream_cancel(x);
        return NULL;
    }
    return x;
fail:
    curl_slist_free_all(x->hdrs);
    if (x->rsp.body != NULL)
        evbuffer_free(x->rsp.body);
    if (e != NULL)
        curl_easy_cleanup(e);
    free(x);
    return NULL;
}

void upstream_cancel(struct upstream_xfer *x)
{
    curl_multi_remove_handle(x->u->multi, x->easy);
    upstream_xfer_release(x);
}
