/*
 * exchange.c - route a reverse-mode request to its CRM and relay it.
 *
 * What goes upstream: the method, the path after the /hubspot or
 * /salesforce prefix (slashes collapsed), the query as sent, the end-to-end
 * headers, and the body de-chunked with a Content-Length. What does not:
 * hop-by-hop headers, Host (curl sets the upstream's), the client's
 * Accept-Encoding (crmgate asks for identity so it can always read the
 * answer), Expect, and crmgate's own X-Crmgate-* context headers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <llhttp.h>

#include "config.h"
#include "conn.h"
#include "enforce.h"
#include "exchange.h"
#include "log.h"
#include "route.h"
#include "server.h"
#include "upstream.h"

struct exchange {
    struct conn *c;
    struct config *cfg;
    enum crm crm;
    char *url;
    struct http_fields fwd;
    struct upstream_xfer *xfer;
    struct enforce ef;
};

static void exchange_free(struct exchange *ex)
{
    config_unref(ex->cfg);
    ex->cfg = NULL;
    free(ex->url);
    ex->url = NULL;
    http_fields_free(&ex->fwd);
    enforce_free(&ex->ef);
    free(ex);
}

/* The decision headers every answer to a classified request carries. */
static int exchange_decision_headers(struct exchange *ex, struct http_fields *f)
{
    const char *d = ex->ef.verdict.allow ? "allow" : "deny";

    return http_fields_add(f, "X-Crmgate-Decision", 18, d, strlen(d)) < 0 ||
                   http_fields_add(f, "X-Crmgate-Rule", 14, ex->ef.verdict.rule,
                                   strlen(ex->ef.verdict.rule)) < 0
               ? -1
               : 0;
}

/*
 * Answer a denied request in the CRM's own error shape: 403 (never 401,
 * 429 or 5xx: SDKs refresh or retry on those), or Salesforce's 400
 * MALFORMED_QUERY for a query crmgate cannot parse. The connection stays
 * open: a denial is not a protocol error.
 */
static void exchange_deny(struct exchange *ex)
{
    const struct enforce *ef = &ex->ef;
    const struct config_caller *who = ef->caller;
    struct http_fields f = {0};
    struct evbuffer *body = evbuffer_new();
    char msg[1100], *json = NULL;

    snprintf(msg, sizeof(msg), "crmgate denied this call (rule %s): %s", ef->verdict.rule,
             ef->verdict.reason);
    log_info("%s deny workspace=%s user=%s kind=%s rule=%s: %s", conn_peer(ex->c),
             who != NULL ? who->workspace : "-", who != NULL && who->user ? who->user : "-",
             who != NULL ? config_kind_name(who->kind) : "-", ef->verdict.rule, ef->verdict.reason);
    if (ef->oauth || (ef->status == 400 && ex->crm == CRM_SALESFORCE)) {
        /* OAuth endpoints answer {error, error_description} in both CRMs. */
        json_t *j =
            ef->oauth ? json_pack("{s:s, s:s}", "error", "access_denied", "error_description", msg)
                      : json_pack("[{s:s, s:s}]", "message", msg, "errorCode", "MALFORMED_QUERY");
        json = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
    } else {
        json = crm_denial_body(ex->crm, msg, ef->verdict.fields, conn_request_id(ex->c));
    }
    if (body == NULL || json == NULL ||
        http_fields_add(&f, "Content-Type", 12, "application/json;charset=utf-8", 30) < 0 ||
        exchange_decision_headers(ex, &f) < 0 ||
        http_fields_add(&f, "X-Crmgate-Error", 15, ef->code, strlen(ef->code)) < 0 ||
        evbuffer_add(body, json, strlen(json)) < 0) {
        conn_abort(ex->c, 503, "out_of_memory", "crmgate is out of memory");
    } else {
        conn_respond(ex->c, ef->status, &f, body, -1);
    }
    free(json);
    if (body != NULL)
        evbuffer_free(body);
    http_fields_free(&f);
}

void exchange_cancel(struct exchange *ex)
{
    if (ex->xfer != NULL)
        upstream_cancel(ex->xfer);
    ex->xfer = NULL;
    exchange_free(ex);
}

static const char *exchange_crm_title(enum crm crm)
{
    return crm == CRM_SALESFORCE ? "Salesforce" : "HubSpot";
}

/* Request headers that never go upstream, beyond the hop-by-hop set. */
static int exchange_drop_request_header(const char *name, size_t nlen)
{
    static const char *const drop[] = {"host",   "content-length",  "accept-encoding",
                                       "expect", "x-forwarded-for", NULL};

    for (size_t i = 0; drop[i] != NULL; i++) {
        if (http_name_eq(name, nlen, drop[i]))
            return 1;
    }
    /* crmgate's context headers, also spelt with underscores (X_Crmgate_Reason): some
     * stacks map '_' to '-', so both spellings are crmgate's and never go upstream. */
    if (nlen < 10)
        return 0;
    for (size_t i = 0; i < 10; i++) {
        char a = name[i], b = "x-crmgate-"[i];
        if (a == '_')
            a = '-';
        if (a >= 'A' && a <= 'Z')
            a = (char)(a + 32);
        if (a != b)
            return 0;
    }
    return 1;
}

static int exchange_build_request_headers(struct exchange *ex, const struct http_request *req)
{
    const struct http_fields *in = &req->headers;
    const char *peer = conn_peer(ex->c);
    struct http_fields xff = {0};
    int rc = -1;
    long i = -1;

    for (size_t k = 0; k < in->n; k++) {
        size_t nl, vl;
        const char *n = http_field_name(in, k, &nl);
        const char *v = http_field_value(in, k, &vl);
        if (http_is_hop_by_hop(in, n, nl) || exchange_drop_request_header(n, nl))
            continue;
        if (http_fields_add(&ex->fwd, n, nl, v, vl) < 0)
            goto done;
    }
    /* X-Forwarded-For: the chain the client sent, then the client itself. */
    if (http_fields_add(&xff, "X-Forwarded-For", 15, "", 0) < 0)
        goto done;
    while ((i = http_fields_find(in, "x-forwarded-for", (size_t)(i + 1))) >= 0) {
        size_t vl;
        const char *v = http_field_value(in, (size_t)i, &vl);
        if (vl == 0)
            continue;
        if (xff.f[0].vlen > 0 && http_fields_append_value(&xff, ", ", 2) < 0)
            goto done;
        if (http_fields_append_value(&xff, v, vl) < 0)
            goto done;
    }
    if (xff.f[0].vlen > 0 && http_fields_append_value(&xff, ", ", 2) < 0)
        goto done;
    if (http_fields_append_value(&xff, peer, strlen(peer)) < 0)
        goto done;
    {
        size_t vl;
        const char *v = http_field_value(&xff, 0, &vl);
        if (http_fields_add(&ex->fwd, "X-Forwarded-For", 15, v, vl) < 0)
            goto done;
    }
    rc = 0;
done:
    http_fields_free(&xff);
    return rc;
}

/* Map a failed transfer to 502 or 504 with a message an operator can act on. */
static void exchange_fail(struct exchange *ex, const struct upstream_response *rsp)
{
    const char *title = exchange_crm_title(ex->crm);
    const char *code = "upstream_error";
    int status = 502;
    char msg[512];

    if (rsp->too_large) {
        code = "response_too_large";
        snprintf(msg, sizeof(msg), "the %s answer was refused: %s", title, rsp->error);
    } else {
        switch (rsp->result) {
        case CURLE_OPERATION_TIMEDOUT:
            status = 504;
            code = "upstream_timeout";
            break;
        case CURLE_COULDNT_CONNECT:
            code = "upstream_refused";
            break;
        case CURLE_COULDNT_RESOLVE_HOST:
            code = "upstream_dns";
            break;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
            code = "upstream_tls";
            break;
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
            code = "upstream_reset";
            break;
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_BAD_CONTENT_ENCODING:
            code = "upstream_bad_response";
            break;
        default:
            break;
        }
        snprintf(msg, sizeof(msg), "crmgate could not get an answer from the %s upstream: %s",
                 title, rsp->error);
    }
    conn_abort(ex->c, status, code, msg);
}

/* Response headers that are not relayed: framing is crmgate's own. */
static int exchange_drop_response_header(const struct http_fields *in, const char *name,
                                         size_t nlen)
{
    return http_is_hop_by_hop(in, name, nlen) || http_name_eq(name, nlen, "content-length") ||
           http_name_eq(name, nlen, "content-encoding");
}

static void exchange_done(struct upstream_response *rsp, void *arg)
{
    struct exchange *ex = arg;
    struct http_fields out = {0};
    long long content_length = -1;
    long i;

    ex->xfer = NULL; /* upstream releases it after this callback */
    if (rsp->result != CURLE_OK || rsp->status < 200 || rsp->status > 599) {
        if (rsp->result == CURLE_OK)
            snprintf(rsp->error, sizeof(rsp->error), "unexpected status %ld", rsp->status);
        exchange_fail(ex, rsp);
        exchange_free(ex);
        return;
    }
    {
        char ctype[256], why[512];
        long ci = http_fields_find(&rsp->headers, "content-type", 0);
        size_t cl = 0;
        const char *cv = ci >= 0 ? http_field_value(&rsp->headers, (size_t)ci, &cl) : NULL;
        if (cv != NULL) {
            snprintf(ctype, sizeof(ctype), "%.*s", (int)cl, cv);
            cv = ctype;
        }
        if (enforce_response(&ex->ef, rsp->status, cv, rsp->body, why, sizeof(why)) < 0) {
            conn_abort(ex->c, 502, "uninspectable_answer", why);
            exchange_free(ex);
            return;
        }
    }
    if (exchange_decision_headers(ex, &out) < 0) {
        http_fields_free(&out);
        conn_abort(ex->c, 502, "out_of_memory", "out of memory relaying the answer");
        exchange_free(ex);
        return;
    }
    for (size_t k = 0; k < rsp->headers.n; k++) {
        size_t nl, vl;
        const char *n = http_field_name(&rsp->headers, k, &nl);
        const char *v = http_field_value(&rsp->headers, k, &vl);
        if (exchange_drop_response_header(&rsp->headers, n, nl))
            continue;
        if (http_fields_add(&out, n, nl, v, vl) < 0) {
            http_fields_free(&out);
            conn_abort(ex->c, 502, "out_of_memory", "out of memory relaying the answer");
            exchange_free(ex);
            return;
        }
    }
    i = http_fields_find(&rsp->headers, "content-length", 0);
    if (i >= 0) {
        size_t vl;
        const char *v = http_field_value(&rsp->headers, (size_t)i, &vl);
        char tmp[32];
        if (vl < sizeof(tmp)) {
            memcpy(tmp, v, vl);
            tmp[vl] = '\0';
            content_length = strtoll(tmp, NULL, 10);
        }
    }
    conn_respond(ex->c, (int)rsp->status, &out, rsp->body, content_length);
    http_fields_free(&out);
    exchange_free(ex);
}

static int exchange_method_allowed(int method)
{
    switch (method) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_POST:
    case HTTP_PUT:
    case HTTP_PATCH:
    case HTTP_DELETE:
    case HTTP_OPTIONS:
        return 1;
    default:
        return 0;
    }
}

struct exchange *exchange_start(struct conn *c, struct http_request *req)
{
    struct worker *w = conn_worker(c);
    struct config *cfg = worker_config(w);
    struct upstream_request ur = {0};
    struct exchange *ex;
    const char *rest, *base, *tunnel = conn_tunnel_host(c);
    enum crm crm;
    char tunnel_base[300];
    size_t blen;

    /* Forward mode: the CRM is the tunnel's host, and the whole target is the path. */
    if (tunnel != NULL) {
        crm = route_forward_host(tunnel, cfg->sf_instance_host);
        rest = req->target;
    } else {
        crm = route_reverse(req->target, &rest);
    }

    if (crm == CRM_NONE) {
        conn_abort(c, 404, "unknown_route",
                   "no route for this path: crmgate serves /hubspot/... (HubSpot API) and "
                   "/salesforce/... (Salesforce REST API)");
        return NULL;
    }
    if (!exchange_method_allowed(req->method)) {
        char msg[128];
        snprintf(msg, sizeof(msg), "method %s is not supported by crmgate", req->method_name);
        conn_abort(c, 405, "method_not_allowed", msg);
        return NULL;
    }
    base = crm == CRM_HUBSPOT ? cfg->upstream_hubspot : cfg->upstream_salesforce;
    /* An intercepted Salesforce host is its own upstream unless one is configured. */
    if (tunnel != NULL && crm == CRM_SALESFORCE && base == NULL) {
        snprintf(tunnel_base, sizeof(tunnel_base), "https://%s", tunnel);
        base = tunnel_base;
    }
    if (base == NULL) {
        conn_abort(c, 502, "no_upstream",
                   "no Salesforce instance URL is configured (set upstreams.salesforce or "
                   "--upstream salesforce=URL)");
        return NULL;
    }
    ex = calloc(1, sizeof(*ex));
    if (ex == NULL)
        goto oom;
    ex->c = c;
    ex->crm = crm;
    ex->cfg = config_ref(cfg);
    switch (enforce_request(&ex->ef, cfg, crm, req, rest, conn_proxy_fingerprint(c))) {
    case 1:
        break;
    case 0:
        exchange_deny(ex);
        exchange_free(ex);
        return NULL;
    default:
        goto oom_ex;
    }
    ex->url = route_upstream_url(base, rest);
    if (ex->url == NULL || exchange_build_request_headers(ex, req) < 0)
        goto oom_ex;

    blen = evbuffer_get_length(req->body);
    ur.method = req->method_name;
    ur.url = ex->url;
    ur.headers = &ex->fwd;
    ur.body = blen > 0 ? evbuffer_pullup(req->body, -1) : NULL;
    ur.body_len = blen;
    ur.has_body = blen > 0 || req->method == HTTP_POST || req->method == HTTP_PUT ||
                  req->method == HTTP_PATCH;
    ur.connect_timeout_ms = cfg->upstream_connect_timeout_ms;
    ur.timeout_ms = cfg->upstream_timeout_ms;
    ur.max_response = cfg->limits.response_bytes;
    ur.ca_bundle = cfg->ca_bundle;
    ex->xfer = upstream_start(w->upstream, &ur, exchange_done, ex);
    if (ex->xfer == NULL) {
        exchange_free(ex);
        conn_abort(c, 502, "upstream_error", "crmgate could not start the upstream request");
        return NULL;
    }
    return ex;
oom_ex:
    exchange_free(ex);
oom:
    conn_abort(c, 503, "out_of_memory", "crmgate is out of memory");
    return NULL;
}
