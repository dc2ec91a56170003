/*
 * admin.c - the admin API server: listeners, the admin thread, request
 * parsing, the route table and replies. The endpoints themselves live in
 * admin_api.c (and in any module that calls admin_route_add).
 *
 * libevent's evhttp serves both listeners on the admin thread's own
 * event_base. A request that waits for something (a store commit) stays
 * with evhttp until admin_reply: if its client goes away meanwhile, evhttp
 * detaches the request and frees it when it is answered, so a late reply is
 * always safe. Requests still waiting at shutdown are answered 503 after
 * the store port is gone (their commits still happen).
 *
 * The unix socket is bound under a temporary name, given mode 0660, then
 * renamed over the final path: the path never exists with looser
 * permissions, and a stale socket (nobody accepting) is replaced in one
 * step. A socket a live crmgate still accepts on is left alone: that is
 * an error at start-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "../policy/crm.h"
#include "admin.h"
#include "log.h"
#include "server.h"
#include "store.h"

#define ADMIN_BACKLOG 64

struct admin_route {
    char *method;
    char *prefix;
    size_t plen;
    admin_handler_fn fn;
    void *arg;
};

static struct admin_route admin_routes[ADMIN_MAX_ROUTES];
static size_t admin_nroutes;

struct admin_conn;
TAILQ_HEAD(admin_conn_list, admin_conn);

struct admin_listener {
    struct admin *a;
    struct evhttp *http;
    int tcp;
    struct admin_conn_list conns; /* its open connections */
    size_t nconns;
};

/*
 * One connection, tracked through the bufferevent made for evhttp, on which
 * admin.c holds a reference: evhttp's own timeouts restart with every byte,
 * so a client sending a header line every few seconds would hold its
 * descriptor forever. The sweep (once a second) shuts down connections past
 * their deadline and lets go of those evhttp has freed (bufferevent_free
 * clears their callbacks; the descriptor closes with the last reference).
 */
struct admin_conn {
    struct admin_listener *l;
    struct bufferevent *bev;
    struct timespec deadline; /* a whole request must have come by then */
    int busy;                 /* a request is being handled: no deadline */
    int shut;                 /* shut down once already */
    TAILQ_ENTRY(admin_conn) link;
};

/* The request as admin.c keeps it: the public part first. */
struct admin_req_full {
    struct admin_req pub;
    struct evhttp_request *req;
    struct admin *a;
    struct admin_conn *conn; /* NULL once its connection is gone */
    char *path;
    char *body;
    TAILQ_ENTRY(admin_req_full) link;
};

TAILQ_HEAD(admin_req_list, admin_req_full);

struct admin {
    struct event_base *base;
    struct admin_listener unix_l, tcp_l;
    struct store *store;
    struct store_port *port;
    struct config *cfg; /* the admin thread's */
    struct admin_req_list pending;

    pthread_t thread;
    int started;
    pthread_mutex_t lock; /* guards pending_cfg and stopping */
    struct config *pending_cfg;
    int stopping;
    struct event *ctl;
    struct event *sweep; /* the connections' deadlines, every second */

    char *socket_path;
    int socket_bound;
    dev_t sock_dev;
    ino_t sock_ino;
    char tcp_addr[NI_MAXHOST + NI_MAXSERV + 2];
};

/* ----- the route table ----- */

int admin_route_add(const char *method, const char *path_prefix, admin_handler_fn fn, void *arg)
{
    struct admin_route *rt;

    if (method == NULL || path_prefix == NULL || path_prefix[0] != '/' || fn == NULL ||
        admin_nroutes >= ADMIN_MAX_ROUTES)
        return -1;
    for (size_t i = 0; i < admin_nroutes; i++) {
        if (strcmp(admin_routes[i].method, method) == 0 &&
            strcmp(admin_routes[i].prefix, path_prefix) == 0)
            return -1;
    }
    rt = &admin_routes[admin_nroutes];
    rt->method = strdup(method);
    rt->prefix = strdup(path_prefix);
    if (rt->method == NULL || rt->prefix == NULL) {
        free(rt->method);
        rt->method = NULL;
        free(rt->prefix);
        rt->prefix = NULL;
        return -1;
    }
    rt->plen = strlen(path_prefix);
    rt->fn = fn;
    rt->arg = arg;
    admin_nroutes++;
    return 0;
}

void admin_routes_clear(void)
{
    for (size_t i = 0; i < admin_nroutes; i++) {
        free(admin_routes[i].method);
        admin_routes[i].method = NULL;
        free(admin_routes[i].prefix);
        admin_routes[i].prefix = NULL;
    }
    admin_nroutes = 0;
}

/* Whether path is under prefix: equal, or the prefix followed by '/' (or ending in one). */
static int admin_prefix_match(const struct admin_route *rt, const char *path)
{
    if (strncmp(path, rt->prefix, rt->plen) != 0)
        return 0;
    if (path[rt->plen] == '\0')
        return 1;
    return rt->prefix[rt->plen - 1] == '/' || path[rt->plen] == '/';
}

/* ----- replies ----- */

static void admin_conn_arm(struct admin_conn *ac, int secs);

static void admin_req_free(struct admin_req_full *f)
{
    if (f->conn != NULL) {
        /* answered: the next request head must come within the timeout */
        f->conn->busy = 0;
        admin_conn_arm(f->conn, ADMIN_TIMEOUT_S);
        f->conn = NULL;
    }
    if (f->a != NULL)
        TAILQ_REMOVE(&f->a->pending, f, link);
    if (f->pub.ctx_free != NULL)
        f->pub.ctx_free(f->pub.ctx);
    f->pub.ctx = NULL;
    for (size_t i = 0; i < f->pub.nparams; i++) {
        free(f->pub.params[i].name);
        free(f->pub.params[i].value);
    }
    free(f->pub.params);
    f->pub.params = NULL;
    free(f->path);
    f->path = NULL;
    free(f->body);
    f->body = NULL;
    config_unref(f->pub.cfg);
    f->pub.cfg = NULL;
    free(f);
}

/* Send status with buf (may be NULL) and the given content type; frees r. */
static void admin_send(struct admin_req_full *f, int status, const char *ctype,
                       struct evbuffer *buf)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(f->req);

    if (ctype != NULL)
        evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (status == 401)
        evhttp_add_header(h, "WWW-Authenticate", "Bearer realm=\"crmgate admin\"");
    evhttp_send_reply(f->req, status, crm_status_reason(status), buf);
    admin_req_free(f);
}

void admin_reply(struct admin_req *r, int status, json_t *body)
{
    struct admin_req_full *f = (struct admin_req_full *)r;
    struct evbuffer *buf = evbuffer_new();
    char *json = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

    json_decref(body);
    if (buf == NULL || (body != NULL && json == NULL) ||
        (json != NULL &&
         (evbuffer_add(buf, json, strlen(json)) < 0 || evbuffer_add(buf, "\n", 1) < 0))) {
        free(json);
        if (buf != NULL)
            evbuffer_free(buf);
        evhttp_send_error(f->req, 500, "out of memory");
        admin_req_free(f);
        return;
    }
    free(json);
    admin_send(f, status, json != NULL ? "application/json" : NULL, buf);
    evbuffer_free(buf);
}

void admin_reply_error(struct admin_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    admin_reply(r, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg));
}

void admin_reply_raw(struct admin_req *r, int status, const char *content_type, const void *data,
                     size_t len)
{
    struct admin_req_full *f = (struct admin_req_full *)r;
    struct evbuffer *buf = evbuffer_new();

    if (buf == NULL || evbuffer_add(buf, data, len) < 0) {
        if (buf != NULL)
            evbuffer_free(buf);
        evhttp_send_error(f->req, 500, "out of memory");
        admin_req_free(f);
        return;
    }
    admin_send(f, status, content_type, buf);
    evbuffer_free(buf);
}

const char *admin_param(const struct admin_req *r, const char *name)
{
    for (size_t i = 0; i < r->nparams; i++) {
        if (strcmp(r->params[i].name, name) == 0)
            return r->params[i].value;
    }
    return NULL;
}

int admin_body_json(struct admin_req *r, json_t **out)
{
    json_error_t jerr;

    *out = NULL;
    if (r->body_len == 0) {
        admin_reply_error(r, 400, "bad_json", "the request needs a JSON body");
        return -1;
    }
    *out = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (*out == NULL) {
        char why[JSON_ERROR_TEXT_LENGTH];
        admin_reply_error(r, 400, "bad_json", "the body is not valid JSON: %s (line %d)",
                          config_json_error(&jerr, why, sizeof(why)), jerr.line);
        return -1;
    }
    return 0;
}

/* ----- connections ----- */

static void admin_conn_arm(struct admin_conn *ac, int secs)
{
    clock_gettime(CLOCK_MONOTONIC, &ac->deadline);
    ac->deadline.tv_sec += secs;
}

/* Drop our reference: the descriptor closes if evhttp is done with it too. */
static void admin_conn_release(struct admin_conn *ac)
{
    struct admin_req_full *f;

    TAILQ_FOREACH(f, &ac->l->a->pending, link)
    {
        if (f->conn == ac)
            f->conn = NULL; /* answered later into a detached request */
    }
    TAILQ_REMOVE(&ac->l->conns, ac, link);
    ac->l->nconns--;
    bufferevent_decref(ac->bev);
    free(ac);
}

static void admin_sweep_listener(struct admin_listener *l, const struct timespec *now)
{
    struct admin_conn *ac, *next;

    for (ac = TAILQ_FIRST(&l->conns); ac != NULL; ac = next) {
        bufferevent_data_cb rcb, wcb;
        bufferevent_event_cb ecb;
        next = TAILQ_NEXT(ac, link);
        bufferevent_getcb(ac->bev, &rcb, &wcb, &ecb, NULL);
        if (rcb == NULL && wcb == NULL && ecb == NULL) {
            admin_conn_release(ac); /* evhttp freed it */
            continue;
        }
        if (ac->busy || ac->shut || now->tv_sec < ac->deadline.tv_sec ||
            (now->tv_sec == ac->deadline.tv_sec && now->tv_nsec < ac->deadline.tv_nsec))
            continue;
        /* evhttp sees the end of the stream and frees the connection */
        ac->shut = 1;
        if (bufferevent_getfd(ac->bev) >= 0)
            shutdown(bufferevent_getfd(ac->bev), SHUT_RDWR);
    }
}

static void admin_sweepcb(evutil_socket_t fd, short what, void *arg)
{
    struct admin *a = arg;
    struct timespec now;

    (void)fd;
    (void)what;
    clock_gettime(CLOCK_MONOTONIC, &now);
    admin_sweep_listener(&a->unix_l, &now);
    if (a->tcp_l.http != NULL)
        admin_sweep_listener(&a->tcp_l, &now);
}

/*
 * evhttp's bufferevent for a new connection: tracked, with a deadline for
 * its first request; past ADMIN_MAX_CONNECTIONS on this listener it is due
 * at once. NULL (evhttp then makes an untracked one) when out of memory.
 */
static struct bufferevent *admin_conn_bevcb(struct event_base *base, void *arg)
{
    struct admin_listener *l = arg;
    struct admin_conn *ac = calloc(1, sizeof(*ac));

    if (ac == NULL || (ac->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
        free(ac);
        return NULL;
    }
    bufferevent_incref(ac->bev);
    ac->l = l;
    TAILQ_INSERT_TAIL(&l->conns, ac, link);
    l->nconns++;
    if (l->nconns > ADMIN_MAX_CONNECTIONS) {
        if (l->nconns == ADMIN_MAX_CONNECTIONS + 1) /* once per crossing, not per connection */
            log_warn("admin: more than %d connections on the %s listener; closing the newest",
                     ADMIN_MAX_CONNECTIONS, l->tcp ? "TCP" : "unix socket");
        admin_conn_arm(ac, 0);
    } else {
        admin_conn_arm(ac, ADMIN_TIMEOUT_S);
    }
    return ac->bev;
}

/* The tracked connection req arrived on, or NULL. */
static struct admin_conn *admin_conn_of(struct admin_listener *l, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    struct admin_conn *ac;

    TAILQ_FOREACH(ac, &l->conns, link)
    {
        if (ac->bev == bev)
            return ac;
    }
    return NULL;
}

/* ----- requests ----- */

static const char *admin_method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    }
    return "UNKNOWN";
}

/*
 * URL-decode s[0..len) (plus as space when plus); NULL when it holds a NUL,
 * is not UTF-8 (error bodies echo names and values, and JSON strings must be
 * UTF-8) or memory fails.
 */
static char *admin_decode(const char *s, size_t len, int plus)
{
    char *raw = strndup(s, len), *out;
    size_t olen = 0;

    if (raw == NULL)
        return NULL;
    out = evhttp_uridecode(raw, plus, &olen);
    free(raw);
    if (out != NULL && (strlen(out) != olen || !crm_utf8_valid((const unsigned char *)out, olen))) {
        free(out);
        return NULL;
    }
    return out;
}

/* Split and decode the query into f's params. 0, or -1 with why (for a 400). */
static int admin_parse_query(struct admin_req_full *f, const char *q, char *why, size_t whylen)
{
    const char *p = q;

    while (p != NULL && *p != '\0') {
        const char *amp = strchr(p, '&');
        size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq != NULL ? (size_t)(eq - p) : len;
        struct admin_param *np;
        char *name, *value;

        if (len > 0) {
            if (f->pub.nparams >= ADMIN_MAX_PARAMS) {
                snprintf(why, whylen, "more than %d query parameters", ADMIN_MAX_PARAMS);
                return -1;
            }
            name = admin_decode(p, nlen, 1);
            value = eq != NULL ? admin_decode(eq + 1, len - nlen - 1, 1) : strdup("");
            if (name == NULL || value == NULL || name[0] == '\0' ||
                strlen(value) > ADMIN_MAX_PARAM_BYTES) {
                snprintf(why, whylen,
                         name == NULL || name[0] == '\0'
                             ? "a query parameter has no name or a bad encoding"
                             : "query parameter \"%s\": bad encoding or longer than %d bytes",
                         name != NULL ? name : "", ADMIN_MAX_PARAM_BYTES);
                free(name);
                free(value);
                return -1;
            }
            if (admin_param(&f->pub, name) != NULL) {
                snprintf(why, whylen, "query parameter \"%s\" is given twice", name);
                free(name);
                free(value);
                return -1;
            }
            np = realloc(f->pub.params, (f->pub.nparams + 1) * sizeof(*np));
            if (np == NULL) {
                free(name);
                free(value);
                snprintf(why, whylen, "out of memory");
                return -1;
            }
            f->pub.params = np;
            np[f->pub.nparams].name = name;
            np[f->pub.nparams].value = value;
            f->pub.nparams++;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return 0;
}

/*
 * The bearer token of a TCP request, compared in constant time (as SHA-256
 * digests, so neither content nor length shows in the timing). The token
 * is never logged.
 */
static int admin_token_ok(const struct admin *a, struct evhttp_request *req)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    const char *want = a->cfg->admin_token;
    unsigned char got_md[SHA256_DIGEST_LENGTH], want_md[SHA256_DIGEST_LENGTH];
    size_t n;

    if (h == NULL || want == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    while (*h == ' ')
        h++;
    n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    SHA256((const unsigned char *)h, n, got_md);
    SHA256((const unsigned char *)want, strlen(want), want_md);
    return CRYPTO_memcmp(got_md, want_md, sizeof(got_md)) == 0;
}

static void admin_requestcb(struct evhttp_request *req, void *arg)
{
    struct admin_listener *l = arg;
    struct admin *a = l->a;
    struct admin_req_full *f;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *rawpath = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    const struct admin_route *best = NULL;
    int path_known = 0;
    char why[256];

    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        evhttp_send_error(req, 503, "out of memory");
        return;
    }
    f->req = req;
    f->a = a;
    TAILQ_INSERT_TAIL(&a->pending, f, link);
    f->conn = admin_conn_of(l, req);
    if (f->conn != NULL)
        f->conn->busy = 1;
    f->pub.method = admin_method_name(evhttp_request_get_command(req));
    f->pub.tcp = l->tcp;
    f->pub.store = a->store;
    f->pub.port = a->port;
    f->pub.cfg = config_ref(a->cfg);
    f->pub.body = "";
    f->pub.path = "";
    f->pub.rest = "";
    if (l->tcp && !admin_token_ok(a, req)) {
        log_info("admin: %s %s over TCP refused: no valid bearer token", f->pub.method,
                 rawpath != NULL ? rawpath : "?");
        admin_reply_error(&f->pub, 401, "unauthorized",
                          "the TCP admin API needs Authorization: Bearer <admin.token>");
        return;
    }
    if (rawpath == NULL || rawpath[0] != '/' ||
        (f->path = admin_decode(rawpath, strlen(rawpath), 0)) == NULL) {
        admin_reply_error(&f->pub, 400, "bad_path", "the request path is missing or badly encoded");
        return;
    }
    f->pub.path = f->path;
    if (query != NULL && admin_parse_query(f, query, why, sizeof(why)) < 0) {
        admin_reply_error(&f->pub, 400, "bad_query", "%s", why);
        return;
    }
    if (in != NULL && evbuffer_get_length(in) > 0) {
        size_t n = evbuffer_get_length(in);
        f->body = malloc(n + 1);
        if (f->body == NULL) {
            admin_reply_error(&f->pub, 503, "out_of_memory", "crmgate is out of memory");
            return;
        }
        evbuffer_copyout(in, f->body, n);
        f->body[n] = '\0';
        f->pub.body = f->body;
        f->pub.body_len = n;
    }
    for (size_t i = 0; i < admin_nroutes; i++) {
        const struct admin_route *rt = &admin_routes[i];
        if (!admin_prefix_match(rt, f->path))
            continue;
        path_known = 1;
        if (strcmp(rt->method, "*") != 0 && strcmp(rt->method, f->pub.method) != 0)
            continue;
        if (best == NULL || rt->plen > best->plen)
            best = rt;
    }
    if (best == NULL) {
        if (path_known)
            admin_reply_error(&f->pub, 405, "method_not_allowed", "%s is not allowed on %s",
                              f->pub.method, f->path);
        else
            admin_reply_error(&f->pub, 404, "not_found", "no admin endpoint at %s", f->path);
        return;
    }
    f->pub.rest = f->path + best->plen;
    while (*f->pub.rest == '/')
        f->pub.rest++;
    f->pub.arg = best->arg;
    log_debug("admin: %s %s%s", f->pub.method, f->path, l->tcp ? " (tcp)" : "");
    best->fn(&f->pub);
}

/* ----- the thread ----- */

static void admin_ctlcb(evutil_socket_t fd, short what, void *arg)
{
    struct admin *a = arg;
    struct config *cfg;
    int stop;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&a->lock);
    cfg = a->pending_cfg;
    a->pending_cfg = NULL;
    stop = a->stopping;
    pthread_mutex_unlock(&a->lock);
    if (cfg != NULL) {
        config_unref(a->cfg);
        a->cfg = cfg;
    }
    if (stop)
        event_base_loopexit(a->base, NULL);
}

static void *admin_main(void *arg)
{
    struct admin *a = arg;

    event_base_dispatch(a->base);
    return NULL;
}

void admin_set_config(struct admin *a, struct config *cfg)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    config_unref(a->pending_cfg);
    a->pending_cfg = config_ref(cfg);
    pthread_mutex_unlock(&a->lock);
    event_active(a->ctl, EV_READ, 0);
}

/* ----- listeners ----- */

/*
 * Whether something accepts on the unix socket at path: 1 yes, 0 no (a
 * stale file), -1 when path is not a socket or cannot be checked (err).
 */
static int admin_socket_live(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "admin socket %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "admin socket %s: exists and is not a socket; not replacing it",
                 path);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "admin socket %s: %s", path, strerror(errno));
        return -1;
    }
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    close(fd);
    if (rc == 0) {
        snprintf(err, errlen,
                 "admin socket %s is in use by a running crmgate (stop it, or give this one "
                 "another --state-dir or --admin-socket)",
                 path);
        return 1;
    }
    return 0; /* ECONNREFUSED: nobody listens; any other error: replace it too */
}

static evutil_socket_t admin_bind_unix(struct admin *a, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char tmp[sizeof(sun.sun_path)];
    struct stat st;
    evutil_socket_t fd = -1;
    int n;

    if (admin_socket_live(path, err, errlen) != 0)
        return -1;
    n = snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        snprintf(err, errlen, "admin socket %s: path too long", path);
        return -1;
    }
    unlink(tmp); /* left by an earlier process with our pid */
    memcpy(sun.sun_path, tmp, (size_t)n + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        snprintf(err, errlen, "admin socket %s: %s", path, strerror(errno));
        goto fail;
    }
    if (chmod(tmp, 0660) < 0 || listen(fd, ADMIN_BACKLOG) < 0 || rename(tmp, path) < 0) {
        snprintf(err, errlen, "admin socket %s: %s", path, strerror(errno));
        unlink(tmp);
        goto fail;
    }
    if (stat(path, &st) == 0) {
        a->sock_dev = st.st_dev;
        a->sock_ino = st.st_ino;
    }
    a->socket_bound = 1;
    return fd;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

/* The TCP listener: no SO_REUSEPORT, so a second crmgate cannot share its port unnoticed. */
static evutil_socket_t admin_bind_tcp(struct admin *a, const char *host, const char *port,
                                      char *err, size_t errlen)
{
    char bound[NI_MAXSERV], why[300];
    evutil_socket_t fd = server_listen_tcp(host, port, 0, why, sizeof(why));

    if (fd < 0) {
        snprintf(err, errlen, "admin.%s", why);
        return -1;
    }
    if (server_bound_port(fd, bound, sizeof(bound)) < 0) {
        snprintf(err, errlen, "admin.listen %s:%s: cannot read the bound port", host, port);
        close(fd);
        return -1;
    }
    snprintf(a->tcp_addr, sizeof(a->tcp_addr), strchr(host, ':') != NULL ? "[%s]:%s" : "%s:%s",
             host, bound);
    return fd;
}

/* An evhttp for one listener: limits, every method (the router answers 405), our callback. */
static int admin_http_new(struct admin *a, struct admin_listener *l, evutil_socket_t fd, int tcp)
{
    l->a = a;
    l->tcp = tcp;
    TAILQ_INIT(&l->conns);
    l->http = evhttp_new(a->base);
    if (l->http == NULL)
        return -1;
    evhttp_set_bevcb(l->http, admin_conn_bevcb, l);
    evhttp_set_max_body_size(l->http, ADMIN_MAX_BODY_BYTES);
    evhttp_set_max_headers_size(l->http, ADMIN_MAX_HEADER_BYTES);
    evhttp_set_timeout(l->http, ADMIN_TIMEOUT_S);
    evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(l->http, admin_requestcb, l);
    if (evhttp_accept_socket_with_handle(l->http, fd) == NULL)
        return -1;
    return 0;
}

struct admin *admin_open(struct config *cfg, struct store *store, char *err, size_t errlen)
{
    struct admin *a = calloc(1, sizeof(*a));
    evutil_socket_t ufd = -1, tfd = -1;

    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    TAILQ_INIT(&a->pending);
    pthread_mutex_init(&a->lock, NULL);
    a->store = store;
    a->cfg = config_ref(cfg);
    /* Store ports wake this base from the writer thread. */
    if (evthread_use_pthreads() < 0 || (a->base = event_base_new()) == NULL ||
        (a->ctl = event_new(a->base, -1, EV_READ, admin_ctlcb, a)) == NULL ||
        (a->sweep = event_new(a->base, -1, EV_PERSIST, admin_sweepcb, a)) == NULL ||
        (a->port = store_port_new(store, a->base)) == NULL ||
        (a->socket_path = strdup(cfg->admin_socket)) == NULL) {
        snprintf(err, errlen, "admin API: cannot create its event loop");
        goto fail;
    }
    ufd = admin_bind_unix(a, cfg->admin_socket, err, errlen);
    if (ufd < 0)
        goto fail;
    if (admin_http_new(a, &a->unix_l, ufd, 0) < 0) {
        snprintf(err, errlen, "admin socket %s: cannot serve it", cfg->admin_socket);
        close(ufd);
        goto fail;
    }
    if (cfg->admin_listen != NULL) {
        tfd = admin_bind_tcp(a, cfg->admin_host, cfg->admin_port, err, errlen);
        if (tfd < 0)
            goto fail;
        if (admin_http_new(a, &a->tcp_l, tfd, 1) < 0) {
            snprintf(err, errlen, "admin.listen %s: cannot serve it", cfg->admin_listen);
            close(tfd);
            goto fail;
        }
    }
    {
        struct timeval one = {1, 0};
        event_add(a->sweep, &one);
    }
    return a;
fail:
    admin_close(a);
    return NULL;
}

int admin_start(struct admin *a, char *err, size_t errlen)
{
    if (pthread_create(&a->thread, NULL, admin_main, a) != 0) {
        snprintf(err, errlen, "admin API: cannot start its thread");
        return -1;
    }
    a->started = 1;
    log_notice("admin API on unix socket %s", a->socket_path);
    if (a->tcp_l.http != NULL)
        log_notice("admin listener on %s (bearer token required)", a->tcp_addr);
    return 0;
}

const char *admin_socket_path(const struct admin *a)
{
    return a->socket_path;
}

const char *admin_tcp_address(const struct admin *a)
{
    return a->tcp_l.http != NULL ? a->tcp_addr : NULL;
}

void admin_close(struct admin *a)
{
    struct stat st;

    if (a == NULL)
        return;
    if (a->started) {
        pthread_mutex_lock(&a->lock);
        a->stopping = 1;
        pthread_mutex_unlock(&a->lock);
        event_active(a->ctl, EV_READ, 0);
        pthread_join(a->thread, NULL);
        a->started = 0;
    }
    /* No callback of a pending commit may run from here on. */
    store_port_free(a->port);
    a->port = NULL;
    while (!TAILQ_EMPTY(&a->pending))
        admin_reply_error(&TAILQ_FIRST(&a->pending)->pub, 503, "shutting_down",
                          "crmgate is shutting down");
    if (a->unix_l.http != NULL)
        evhttp_free(a->unix_l.http);
    a->unix_l.http = NULL;
    if (a->tcp_l.http != NULL)
        evhttp_free(a->tcp_l.http);
    a->tcp_l.http = NULL;
    /* evhttp has freed every connection: our references are the last */
    while (!TAILQ_EMPTY(&a->unix_l.conns))
        admin_conn_release(TAILQ_FIRST(&a->unix_l.conns));
    while (!TAILQ_EMPTY(&a->tcp_l.conns))
        admin_conn_release(TAILQ_FIRST(&a->tcp_l.conns));
    if (a->sweep != NULL)
        event_free(a->sweep);
    a->sweep = NULL;
    /* Remove the socket only if it is still ours (not a newer daemon's). */
    if (a->socket_bound && stat(a->socket_path, &st) == 0 && st.st_dev == a->sock_dev &&
        st.st_ino == a->sock_ino)
        unlink(a->socket_path);
    if (a->ctl != NULL)
        event_free(a->ctl);
    a->ctl = NULL;
    if (a->base != NULL)
        event_base_free(a->base);
    a->base = NULL;
    config_unref(a->cfg);
    a->cfg = NULL;
    config_unref(a->pending_cfg);
    a->pending_cfg = NULL;
    free(a->socket_path);
    a->socket_path = NULL;
    pthread_mutex_destroy(&a->lock);
    free(a);
}
