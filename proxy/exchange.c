/*
 * exchange.c - one request through the pipeline: route, enforce (identify,
 * classify, decide), then per DESIGN.md §1 "act":
 *
 *   read            forward, then filter the answer (and, in dry-run, lay
 *                   the overlay of dry-run writes over it)
 *   denied          answer in the CRM's error shape; a denied write is
 *                   audited first
 *   allowed write   read the before-state, commit an intent record
 *                   (outcome "unknown"), forward, commit the outcome, answer
 *   dry-run write   read the before-state, synthesize the CRM's answer,
 *                   commit the record (and the overlay), answer
 *
 * A write-class answer leaves only after its audit record is committed: if
 * the store cannot take the intent, nothing is forwarded (503).
 *
 * What goes upstream: the method, the path after the /hubspot or
 * /salesforce prefix (slashes collapsed), the query as sent, the end-to-end
 * headers, and the body de-chunked with a Content-Length. What does not:
 * hop-by-hop headers, Host (curl sets the upstream's), the client's
 * Accept-Encoding (crmgate asks for identity so it can always read the
 * answer), Accept (crmgate asks for JSON, the only answer it filters),
 * Range and If-Range (crmgate filters whole answers only), Expect, and
 * crmgate's own X-Crmgate-* context headers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <llhttp.h>

#include "../policy/synthesize.h"
#include "audit.h"
#include "before.h"
#include "config.h"
#include "conn.h"
#include "custody.h"
#include "enforce.h"
#include "exchange.h"
#include "log.h"
#include "refresh.h"
#include "metrics.h"
#include "route.h"
#include "server.h"
#include "store.h"
#include "upstream.h"

enum exchange_phase {
    EX_READ,         /* a read forwarded */
    EX_DENY_COMMIT,  /* a denied write: its record is being committed */
    EX_BEFORE,       /* reading the before-state */
    EX_INTENT,       /* committing the intent */
    EX_WRITE,        /* the write forwarded */
    EX_OUTCOME,      /* committing the outcome; the answer is ready */
    EX_FINAL_COMMIT, /* committing a final record (dry-run, failed before-state) */
};

/* What is kept of a failed transfer to answer it after the commit. */
struct exchange_failure {
    CURLcode result;
    int too_large; /* 1: the answer was too large; -1: it could not be inspected */
    char error[512];
};

struct exchange {
    struct conn *c; /* NULL once the connection has gone */
    struct worker *w;
    struct config *cfg;
    struct http_request *req; /* the connection's; valid while c is */
    enum crm crm;
    enum exchange_phase phase;
    char *url;
    char *base;
    char *rest; /* the target after the CRM prefix */
    struct http_fields fwd;
    struct upstream_xfer *xfer;
    struct before_fetch *bf;
    struct enforce ef;
    struct audit_ctx ctx;
    int write;    /* audited */
    int detached; /* on w->detached: the client left, the exchange finishes alone */
    struct exchange *dnext, *dprev;
    char *wbody; /* a forwarded write's body, ours: curl may still send it after the conn is gone */
    size_t wbody_len;
    int refused;       /* answered with crmgate's own error, not the policy's (metrics "refused") */
    int dry;           /* this write is answered in dry-run */
    int store_pending; /* a commit's callback is outstanding */
    struct audit_records *records; /* the audit records (serialized when committed) */
    json_t **before;               /* ef.ops.n before-states, or NULL */
    unsigned char *unknown;        /* ef.ops.n flags: before-state unknown */
    uint64_t first_id;             /* the first record's id once committed */
    json_t **overlay; /* reads in dry-run: ef.ops.n overlay records (NULL entries), or NULL */
    unsigned char
        *was_created; /* dry-run writes: ef.ops.n flags, the record exists only in the overlay */
    unsigned char *was_deleted; /* dry-run writes: ef.ops.n flags, the record deleted in dry-run */
    json_t **prev; /* dry-run writes: ef.ops.n stored overlay records (NULL entries), or NULL */
    struct store_seen *seen;  /* dry-run writes: ef.ops.n, the stored bytes prev came from */
    struct http_fields quota; /* the CRM's quota headers of the before-state read */
    /* a Salesforce read the overlay changed: its Last-Modified (ETag dropped), "" for none */
    int lm_set;
    char lm_date[40];
    int describe_row; /* a read of a record created in dry-run, forwarded as its describe */
    long long t_forward_us;
    /* the answer, when it waits for the outcome's commit */
    int out_status;
    struct http_fields out;
    struct evbuffer *out_body;
    long long out_length;
    int out_failed; /* answer with fail instead */
    struct exchange_failure fail;
    /* an error answer after a final commit */
    int err_status;
    const char *err_code;
    char err_msg[600];
    /* credential custody (custody.h): a crmgate key's identity and the integration it uses */
    struct custody_identity kid;
    struct enforce_key ekey;
    char key_why[300];
    struct custody_ref iref;
    struct custody_cred cred; /* opened; cleansed when the exchange goes */
    int has_cred;
    struct refresh_wait *rw; /* waiting for the integration's token refresh */
    int refreshed;           /* waited once already: use what the refresh left */
    int cred_refused;        /* the CRM refused the integration's token: answer 403 instead */
    int retry_after_s;       /* an error answer's Retry-After (refresh back-off), 0: none */
    struct refresh_result refresh_failed; /* code != NULL: the refresh failed for now */
};

static long long exchange_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long long exchange_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Release an array of n json references (NULL entries allowed) and clear *a. */
static void exchange_json_array_free(json_t ***a, size_t n)
{
    if (*a == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        json_decref((*a)[i]);
    free(*a);
    *a = NULL;
}

static void exchange_free(struct exchange *ex)
{
    if (ex->detached) {
        struct worker *w = ex->w;
        if (ex->dprev != NULL)
            ex->dprev->dnext = ex->dnext;
        else
            w->detached = ex->dnext;
        if (ex->dnext != NULL)
            ex->dnext->dprev = ex->dprev;
        ex->detached = 0;
        w->ndetached--;
        worker_conn_removed(w); /* a draining worker may be waiting for this one */
    }
    if (ex->rw != NULL)
        refresh_cancel(ex->rw);
    ex->rw = NULL;
    custody_cred_free(&ex->cred);
    custody_identity_free(&ex->kid);
    http_fields_cleanse(&ex->fwd);
    http_fields_free(&ex->quota);
    /* every classified request is counted once, with its final decision */
    if (ex->ef.verdict.rule[0] != '\0')
        metrics_request(ex->crm, ex->ef.ops.n > 0 ? ex->ef.ops.v[0].verb : CRM_VERB_UNKNOWN,
                        !ex->ef.verdict.allow ? METRICS_DENY
                        : ex->refused         ? METRICS_REFUSED
                        : ex->dry             ? METRICS_DRY_RUN
                                              : METRICS_ALLOW);
    config_unref(ex->cfg);
    ex->cfg = NULL;
    free(ex->url);
    ex->url = NULL;
    free(ex->base);
    ex->base = NULL;
    free(ex->rest);
    ex->rest = NULL;
    free(ex->wbody);
    ex->wbody = NULL;
    http_fields_free(&ex->fwd);
    http_fields_free(&ex->out);
    if (ex->out_body != NULL)
        evbuffer_free(ex->out_body);
    ex->out_body = NULL;
    exchange_json_array_free(&ex->before, ex->ef.ops.n);
    free(ex->unknown);
    ex->unknown = NULL;
    free(ex->was_created);
    ex->was_created = NULL;
    free(ex->was_deleted);
    ex->was_deleted = NULL;
    exchange_json_array_free(&ex->prev, ex->ef.ops.n);
    store_seen_free(ex->seen, ex->ef.ops.n);
    ex->seen = NULL;
    exchange_json_array_free(&ex->overlay, ex->ef.ops.n);
    audit_records_free(ex->records);
    ex->records = NULL;
    enforce_free(&ex->ef);
    free(ex);
}

static const char *exchange_decision(const struct exchange *ex)
{
    if (!ex->ef.verdict.allow)
        return "deny";
    return ex->dry ? "dry_run" : "allow";
}

/* The decision headers every answer to a classified request carries, and the audit id. */
static int exchange_decision_headers(struct exchange *ex, struct http_fields *f)
{
    const char *d = exchange_decision(ex);

    if (http_fields_add(f, "X-Crmgate-Decision", 18, d, strlen(d)) < 0 ||
        http_fields_add(f, "X-Crmgate-Rule", 14, ex->ef.verdict.rule, strlen(ex->ef.verdict.rule)) <
            0)
        return -1;
    if (ex->first_id == 0)
        return 0;
    return http_fields_add_u64(f, "X-Crmgate-Audit-Id", 18, ex->first_id) < 0 ||
                   http_fields_add_u64(f, "X-Crmgate-Audit-Records", 23,
                                       ex->records != NULL ? ex->records->n : 0) < 0
               ? -1
               : 0;
}

/*
 * Answer with an error in the CRM's shape and keep the connection (not a
 * protocol error): store failures, dry-run refusals, bad context headers.
 */
static void exchange_reply_error(struct exchange *ex, int status, const char *code, const char *msg)
{
    struct http_fields f = {0};
    struct evbuffer *body = evbuffer_new();
    /* an OAuth call's (a revocation's store refusal, say) in the OAuth shape, as its denial */
    char *json = ex->ef.oauth ? crm_oauth_error_body(status, msg)
                              : crm_error_body(ex->crm, status, code, msg, conn_request_id(ex->c));
    char retry[24];

    log_info("%s %d %s: %s", conn_peer(ex->c), status, code, msg);
    ex->refused = 1;
    snprintf(retry, sizeof(retry), "%d", ex->retry_after_s);
    if (body == NULL || json == NULL ||
        (ex->retry_after_s > 0 &&
         http_fields_add(&f, "Retry-After", 11, retry, strlen(retry)) < 0) ||
        http_fields_add(&f, "Content-Type", 12, "application/json;charset=utf-8", 30) < 0 ||
        exchange_decision_headers(ex, &f) < 0 ||
        http_fields_add(&f, "X-Crmgate-Error", 15, code, strlen(code)) < 0 ||
        evbuffer_add(body, json, strlen(json)) < 0)
        conn_abort(ex->c, 503, "out_of_memory", "crmgate is out of memory");
    else
        conn_respond(ex->c, status, &f, body, -1);
    free(json);
    if (body != NULL)
        evbuffer_free(body);
    http_fields_free(&f);
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
    if (ef->oauth) {
        /* OAuth endpoints answer {error, error_description} in both CRMs. */
        json = crm_oauth_error_body(ef->status, msg);
    } else if (ef->status == 400 && ex->crm == CRM_SALESFORCE) {
        json_t *j = json_pack("[{s:s, s:s, s:s}]", "message", msg, "errorCode", "MALFORMED_QUERY",
                              "crmgateError", ef->code);
        json = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
    } else {
        json = crm_denial_body(ex->crm, ef->code, msg, ef->verdict.fields, conn_request_id(ex->c));
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

/* Keep ex alive on its worker's detached list until it finishes by itself. */
static void exchange_detach(struct exchange *ex)
{
    struct worker *w = ex->w;

    ex->detached = 1;
    ex->dprev = NULL;
    ex->dnext = w->detached;
    if (w->detached != NULL)
        w->detached->dprev = ex;
    w->detached = ex;
    w->ndetached++;
}

void exchange_cancel(struct exchange *ex)
{
    if (ex->rw != NULL)
        refresh_cancel(ex->rw);
    ex->rw = NULL;
    if (ex->bf != NULL)
        before_cancel(ex->bf);
    ex->bf = NULL;
    ex->c = NULL;
    ex->req = NULL;
    /* A write at the CRM may be applied whatever the client does: cutting it would leave its
     * record "unknown" for good. It finishes, and exchange_done commits the CRM's outcome. */
    if (ex->xfer != NULL && ex->phase == EX_WRITE && !ex->w->closing) {
        exchange_detach(ex);
        return;
    }
    if (ex->xfer != NULL)
        upstream_cancel(ex->xfer);
    ex->xfer = NULL;
    /* A commit in flight still calls back: the exchange goes then. */
    if (ex->store_pending) {
        exchange_detach(ex);
        return;
    }
    exchange_free(ex);
}

void exchange_abandon_all(struct worker *w)
{
    while (w->detached != NULL) {
        struct exchange *ex = w->detached;
        if (ex->xfer != NULL)
            upstream_cancel(ex->xfer);
        ex->xfer = NULL;
        /* a commit still pending goes on; its callback never runs (the port is freed next) */
        exchange_free(ex);
    }
}

static const char *exchange_crm_title(enum crm crm)
{
    return crm == CRM_SALESFORCE ? "Salesforce" : "HubSpot";
}

/* Request headers that never go upstream, beyond the hop-by-hop set. */
static int exchange_drop_request_header(const char *name, size_t nlen)
{
    /* range, if-range: a byte range of an answer is a fragment the filter cannot place (the
     * "properties" object of a record, cut out, reads as a record-less object) */
    static const char *const drop[] = {"host",   "content-length", "accept-encoding",
                                       "accept", "expect",         "x-forwarded-for",
                                       "range",  "if-range",       NULL};

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

/* "Authorization: Bearer <the integration's access token>" onto f; 0 / -1. */
static int exchange_add_auth(struct exchange *ex, struct http_fields *f)
{
    return http_fields_add(f, "Authorization", 13, "Bearer ", 7) < 0 ||
                   http_fields_append_value(f, ex->cred.access_token,
                                            strlen(ex->cred.access_token)) < 0
               ? -1
               : 0;
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
        /* A crmgate key never goes upstream: the integration's token replaces it. */
        if (ex->ef.via_key && http_name_eq(n, nl, "authorization"))
            continue;
        if (http_fields_add(&ex->fwd, n, nl, v, vl) < 0)
            goto done;
    }
    if (ex->has_cred && exchange_add_auth(ex, &ex->fwd) < 0)
        goto done;
    /* The answer must be JSON, whatever the agent asked for: Salesforce answers XML to
     * "Accept: application/xml", and an XML error (a DUPLICATES_DETECTED listing the matching
     * records' fields) is relayed as it is, not filtered, as any error page that is not JSON. */
    if (http_fields_add(&ex->fwd, "Accept", 6, "application/json", 16) < 0)
        goto done;
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
static void exchange_fail(struct exchange *ex, const struct exchange_failure *rsp)
{
    if (rsp->too_large < 0) {
        conn_abort(ex->c, 502, "uninspectable_answer", rsp->error);
        return;
    }
    const char *title = exchange_crm_title(ex->crm);
    const char *code = "upstream_error";
    int status = 502;
    char msg[700];

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
        case CURLE_SEND_FAIL_REWIND: /* died unanswered, not sent twice (upstream_readcb) */
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
            code = "upstream_reset";
            break;
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_BAD_CONTENT_ENCODING:
        case CURLE_WRITE_ERROR: /* upstream.c refused the head */
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

/* ----- the audit steps ----- */

static void exchange_storecb(enum store_status st, uint64_t first, size_t n, void *arg);

/* Build the request's records with this outcome into ex->records (replacing any); 0 / -1. */
static int exchange_build_records(struct exchange *ex, const char *outcome, char *const *ids)
{
    struct audit_in in = {
        .ef = &ex->ef,
        .ctx = &ex->ctx,
        .decision = exchange_decision(ex),
        .outcome = outcome,
        .before = ex->before,
        .unknown = ex->unknown,
        .ids = ids,
        .ts_ms = exchange_wall_ms(),
        .request_id = ex->c != NULL ? conn_request_id(ex->c) : NULL,
        /* only a dry-run answer is synthetic: a refusal or a failed before-state read is not */
        .synthetic = ex->dry && strcmp(outcome, "dry_run") == 0,
        .keep_volatile = ex->cfg->store_record_volatile,
        .integration = ex->ef.via_key && ex->iref.ws[0] != '\0' ? &ex->iref : NULL,
        .key_id = ex->ef.via_key ? ex->kid.key_id : NULL,
    };

    audit_records_free(ex->records);
    ex->records = audit_records(&in);
    return ex->records != NULL ? 0 : -1;
}

/*
 * Hand the records to the store (append, or update once ids are known); 0 /
 * -1. They are serialized before this returns, so ours stay ours to change
 * (no copy). overlay and seen (nseen entries parallel to it, see
 * store_audit_append_seen) are the store's, also on failure.
 */
static int exchange_commit(struct exchange *ex, enum exchange_phase phase, json_t *overlay,
                           struct store_seen *seen, size_t nseen)
{
    int rc;

    if (ex->records == NULL) {
        json_decref(overlay);
        store_seen_free(seen, nseen);
        return -1;
    }
    ex->phase = phase;
    rc = audit_submit(ex->records, ex->w->port, phase == EX_OUTCOME, overlay, seen, nseen,
                      exchange_storecb, ex);
    if (rc == 0)
        ex->store_pending = 1;
    return rc;
}

/*
 * Note the first id the writer assigned, and give our copies of an intent's
 * records their ids: its outcome replaces them by id. A final record (a
 * dry-run, a denial) is not written again, so its copy is left as it is.
 */
static void exchange_set_ids(struct exchange *ex, uint64_t first)
{
    ex->first_id = first;
    if (ex->phase == EX_INTENT && ex->records != NULL)
        audit_set_ids(ex->records, first);
}

/* The store could not take a write-class request's record: refuse, never forward. */
static void exchange_store_refused(struct exchange *ex, enum store_status st)
{
    char msg[300];

    snprintf(msg, sizeof(msg),
             "crmgate could not record this write in its audit log (%s), so it was not sent "
             "to the CRM; reads still work",
             st == STORE_FULL ? "the audit store is full" : "the audit store failed");
    ex->first_id = 0;
    exchange_reply_error(ex, 503, st == STORE_FULL ? "audit_store_full" : "audit_store_failed",
                         msg);
}

static int exchange_forward(struct exchange *ex);
static void exchange_send_ready(struct exchange *ex);
static void exchange_scrub(struct exchange *ex);
static void exchange_cred_refused(struct exchange *ex);
static void exchange_dry_run(struct exchange *ex);
static int exchange_overlay_merge(struct exchange *ex, struct upstream_response *rsp, char *why,
                                  size_t whylen);

/*
 * A write's outcome that cannot be recorded, whether its queueing or its
 * commit failed: the record stays "unknown" (its intent is durable), the
 * log says why, and the answer carries X-Crmgate-Audit-Outcome: unrecorded
 * so the agent or engineer knows the audit log lacks this outcome.
 */
static void exchange_outcome_unrecorded(struct exchange *ex, const char *what, const char *why)
{
    log_error("%s: the outcome of audit record %llu %s (%s); it stays \"unknown\"",
              ex->c != NULL ? conn_peer(ex->c) : "(client gone)", (unsigned long long)ex->first_id,
              what, why);
    if (http_fields_add(&ex->out, "X-Crmgate-Audit-Outcome", 23, "unrecorded", 10) < 0)
        log_error("out of memory marking an answer's audit outcome unrecorded");
}

static void exchange_storecb(enum store_status st, uint64_t first, size_t n, void *arg)
{
    struct exchange *ex = arg;

    (void)n;
    ex->store_pending = 0;
    if (st == STORE_OK && first != 0)
        exchange_set_ids(ex, first);
    if (ex->c == NULL) {
        /* The client went away while the commit ran. An intent is not forwarded then, and
         * its record says so rather than staying "unknown". */
        if (ex->phase == EX_INTENT && st == STORE_OK &&
            audit_set_outcome(ex->records, "upstream_error", 0, 0, "client_gone") == 0 &&
            exchange_commit(ex, EX_OUTCOME, NULL, NULL, 0) == 0)
            return;
        exchange_free(ex);
        return;
    }
    switch (ex->phase) {
    case EX_DENY_COMMIT:
        if (st != STORE_OK)
            log_error("%s: a denied write could not be audited (%s)", conn_peer(ex->c),
                      store_status_name(st));
        exchange_deny(ex);
        break;
    case EX_INTENT:
        if (st != STORE_OK) {
            exchange_store_refused(ex, st);
            break;
        }
        exchange_forward(ex); /* the exchange lives on, or has answered */
        return;
    case EX_OUTCOME:
        if (st != STORE_OK)
            exchange_outcome_unrecorded(ex, "could not be committed", store_status_name(st));
        exchange_send_ready(ex);
        break;
    case EX_FINAL_COMMIT:
        if (st != STORE_OK) {
            exchange_store_refused(ex, st);
            break;
        }
        if (ex->err_status != 0)
            exchange_reply_error(ex, ex->err_status, ex->err_code, ex->err_msg);
        else
            exchange_send_ready(ex);
        break;
    default:
        break;
    }
    exchange_free(ex);
}

/* ----- answering ----- */

/* Filter an answer of the CRM's (body, in place) for the agent: enforce_response. 0 / -1 (why). */
static int exchange_filter_answer(struct exchange *ex, long status,
                                  const struct http_fields *headers, struct evbuffer *body,
                                  char *why, size_t whylen)
{
    char ctype[256];
    long ci = http_fields_find(headers, "content-type", 0);
    size_t cl = 0;
    const char *cv = ci >= 0 ? http_field_value(headers, (size_t)ci, &cl) : NULL;

    if (cv != NULL) {
        snprintf(ctype, sizeof(ctype), "%.*s", (int)cl, cv);
        cv = ctype;
    }
    return enforce_response(&ex->ef, status, cv, body, why, whylen);
}

/* Prepare the relayed answer in ex->out*: filter the body, copy the end-to-end headers. 0 / -1. */
static int exchange_prepare_answer(struct exchange *ex, struct upstream_response *rsp, char *why,
                                   size_t whylen)
{
    long i;

    if (exchange_filter_answer(ex, rsp->status, &rsp->headers, rsp->body, why, whylen) < 0)
        return -1;
    for (size_t k = 0; k < rsp->headers.n; k++) {
        size_t nl, vl;
        const char *n = http_field_name(&rsp->headers, k, &nl);
        const char *v = http_field_value(&rsp->headers, k, &vl);
        if (exchange_drop_response_header(&rsp->headers, n, nl))
            continue;
        /* the CRM's version of a record the overlay changed is not the one answered */
        if (ex->lm_set && (http_name_eq(n, nl, "last-modified") || http_name_eq(n, nl, "etag")))
            continue;
        if (http_fields_add(&ex->out, n, nl, v, vl) < 0) {
            snprintf(why, whylen, "out of memory relaying the answer");
            return -1;
        }
    }
    if (ex->lm_set && ex->lm_date[0] != '\0' &&
        http_fields_add(&ex->out, "Last-Modified", 13, ex->lm_date, strlen(ex->lm_date)) < 0) {
        snprintf(why, whylen, "out of memory relaying the answer");
        return -1;
    }
    ex->out_length = -1;
    i = http_fields_find(&rsp->headers, "content-length", 0);
    if (i >= 0) {
        size_t vl;
        const char *v = http_field_value(&rsp->headers, (size_t)i, &vl);
        char tmp[32];
        if (vl < sizeof(tmp)) {
            memcpy(tmp, v, vl);
            tmp[vl] = '\0';
            ex->out_length = strtoll(tmp, NULL, 10);
        }
    }
    ex->out_status = (int)rsp->status;
    ex->out_body = rsp->body;
    rsp->body = NULL; /* ours now */
    return 0;
}

/* Send the prepared answer (or the prepared failure). */
static void exchange_send_ready(struct exchange *ex)
{
    struct http_fields f = {0};

    if (ex->cred_refused) {
        char msg[600];
        snprintf(msg, sizeof(msg),
                 "the %s refused the credentials of the %s integration of workspace %s%s%s: an "
                 "admin must reconnect it (crmgate integration add); crmgate has marked it as "
                 "needing attention",
                 exchange_crm_title(ex->crm), custody_scope_name(ex->iref.scope), ex->iref.ws,
                 ex->iref.scope == CUSTODY_SCOPE_USER ? " for user " : "", ex->iref.user);
        exchange_reply_error(ex, 403, "integration_refused", msg);
        return;
    }
    if (ex->out_failed) {
        exchange_fail(ex, &ex->fail);
        return;
    }
    exchange_scrub(ex);
    if (exchange_decision_headers(ex, &f) < 0) {
        conn_abort(ex->c, 502, "out_of_memory", "out of memory relaying the answer");
        http_fields_free(&f);
        return;
    }
    for (size_t k = 0; k < ex->out.n; k++) {
        size_t nl, vl;
        const char *n = http_field_name(&ex->out, k, &nl);
        const char *v = http_field_value(&ex->out, k, &vl);
        if (http_fields_add(&f, n, nl, v, vl) < 0) {
            conn_abort(ex->c, 502, "out_of_memory", "out of memory relaying the answer");
            http_fields_free(&f);
            return;
        }
    }
    conn_respond(ex->c, ex->out_status, &f, ex->out_body, ex->out_length);
    http_fields_free(&f);
}

/*
 * The ids of created records: a single create's answer carries "id"
 * (HubSpot and Salesforce both); batches, collections and composites are
 * matched by audit_created_ids.
 */
static void exchange_created_id(struct exchange *ex)
{
    json_t *root;
    const char *id;
    size_t i, len;
    const char *body;

    for (i = 0; i < ex->ef.ops.n && ex->ef.ops.v[i].verb != CRM_VERB_CREATE; i++)
        ;
    if (i == ex->ef.ops.n || ex->out_body == NULL || ex->out_status < 200 || ex->out_status > 299)
        return;
    body = (const char *)evbuffer_pullup(ex->out_body, -1);
    len = evbuffer_get_length(ex->out_body);
    if (ex->ef.ops.n == 1) {
        int found;
        root = json_loadb(body, len, 0, NULL);
        id = json_string_value(json_object_get(root, "id"));
        found = id != NULL;
        if (found)
            audit_set_record_id(ex->records, 0, id);
        json_decref(root);
        if (found)
            return;
    }
    if (ex->wbody != NULL)
        audit_created_ids(ex->records, ex->crm, ex->wbody, ex->wbody_len, body, len);
}

static void exchange_done(struct upstream_response *rsp, void *arg)
{
    struct exchange *ex = arg;
    long long latency = exchange_now_us() - ex->t_forward_us;
    char why[512];

    ex->xfer = NULL; /* upstream releases it after this callback */
    if (ex->has_cred && rsp->result == CURLE_OK && rsp->status == 401)
        exchange_cred_refused(ex);
    if (rsp->result == CURLE_OK)
        metrics_upstream_latency(ex->crm, latency);
    if (rsp->result != CURLE_OK || rsp->status < 200 || rsp->status > 599) {
        if (rsp->result == CURLE_OK)
            snprintf(rsp->error, sizeof(rsp->error), "unexpected status %ld", rsp->status);
        ex->out_failed = 1;
        ex->fail.result = rsp->result;
        ex->fail.too_large = rsp->too_large;
        snprintf(ex->fail.error, sizeof(ex->fail.error), "%s", rsp->error);
    } else if ((ex->overlay != NULL && exchange_overlay_merge(ex, rsp, why, sizeof(why)) < 0) ||
               exchange_prepare_answer(ex, rsp, why, sizeof(why)) < 0) {
        ex->out_failed = 1;
        ex->fail.result = CURLE_OK;
        snprintf(ex->fail.error, sizeof(ex->fail.error), "%s", why);
        ex->fail.too_large = -1; /* uninspectable */
    }
    if (!ex->write) {
        exchange_send_ready(ex);
        exchange_free(ex);
        return;
    }
    /* The write's outcome: a refused connection never reached the CRM; a timeout or a reset
     * may have, so that stays "unknown". */
    if (ex->out_failed && rsp->result != CURLE_OK) {
        int unreached =
            rsp->result == CURLE_COULDNT_CONNECT || rsp->result == CURLE_COULDNT_RESOLVE_HOST ||
            rsp->result == CURLE_SSL_CONNECT_ERROR || rsp->result == CURLE_PEER_FAILED_VERIFICATION;
        audit_set_outcome(ex->records, unreached ? "upstream_error" : "unknown", 0, latency,
                          "upstream_transfer_failed");
    } else {
        int ok = rsp->status >= 200 && rsp->status <= 299;
        /* the CRM answered, so its status is the outcome; the agent got a 502 instead of an
         * answer crmgate could not inspect, and the record says so */
        audit_set_outcome(ex->records, ok ? "allowed" : "upstream_error", rsp->status, latency,
                          ex->out_failed && ex->fail.too_large < 0 ? "uninspectable_answer" : NULL);
        /* a batch, collection or composite of one record is answered 2xx whatever the CRM did
         * with that record, as one of many is */
        if (ok && ex->out_body != NULL && ex->ef.ops.n > 0)
            audit_batch_outcomes(ex->records, ex->crm,
                                 (const char *)evbuffer_pullup(ex->out_body, -1),
                                 evbuffer_get_length(ex->out_body));
        exchange_created_id(ex);
    }
    if (exchange_commit(ex, EX_OUTCOME, NULL, NULL, 0) < 0) {
        exchange_outcome_unrecorded(ex, "could not be queued",
                                    "the store's queue is full or closed");
        if (ex->c != NULL)
            exchange_send_ready(ex);
        exchange_free(ex);
    }
}

/*
 * Send the request upstream (reads at once, writes after their intent
 * commit). 0 when under way, -1 when it could not start: then it has been
 * answered and the exchange is gone.
 */
static int exchange_forward(struct exchange *ex)
{
    struct http_request *req = ex->req;
    struct upstream_request ur = {0};
    size_t blen = evbuffer_get_length(req->body);

    ur.method = req->method_name;
    ur.url = ex->url;
    ur.headers = &ex->fwd;
    ur.body = blen > 0 ? evbuffer_pullup(req->body, -1) : NULL;
    if (ex->write && blen > 0) {
        /* a write may outlive its connection (exchange_cancel): curl sends our copy */
        ex->wbody = malloc(blen);
        if (ex->wbody != NULL)
            memcpy(ex->wbody, ur.body, blen);
        ex->wbody_len = ex->wbody != NULL ? blen : 0;
        ur.body = ex->wbody;
    }
    ur.body_len = blen;
    ur.has_body = blen > 0 || req->method == HTTP_POST || req->method == HTTP_PUT ||
                  req->method == HTTP_PATCH;
    ur.connect_timeout_ms = ex->cfg->upstream_connect_timeout_ms;
    ur.timeout_ms = ex->cfg->upstream_timeout_ms;
    ur.max_response = ex->cfg->limits.response_bytes;
    ur.ca_bundle = ex->cfg->ca_bundle;
    ur.once = ex->write; /* a write the CRM may have applied is never resent */
    ex->phase = ex->write ? EX_WRITE : EX_READ;
    ex->t_forward_us = exchange_now_us();
    if (ur.body != NULL || blen == 0)
        ex->xfer = upstream_start(ex->w->upstream, &ur, exchange_done, ex);
    if (ex->xfer != NULL)
        return 0;
    if (ex->write) {
        /* Never sent: say so in the record. */
        audit_set_outcome(ex->records, "upstream_error", 0, 0, "upstream_not_started");
        ex->out_failed = 1;
        ex->fail.result = CURLE_FAILED_INIT;
        snprintf(ex->fail.error, sizeof(ex->fail.error), "crmgate could not start the request");
        if (exchange_commit(ex, EX_OUTCOME, NULL, NULL, 0) == 0)
            return 0;
    }
    conn_abort(ex->c, 502, "upstream_error", "crmgate could not start the upstream request");
    exchange_free(ex);
    return -1;
}

/*
 * Keep before-states (new references) and their flags for the records and
 * the dry-run, and the quota headers of the CRM's answer.
 */
static int exchange_keep_before(struct exchange *ex, const struct before_result *res)
{
    json_t *const *before = res->before;

    ex->before = calloc(ex->ef.ops.n + 1, sizeof(json_t *));
    ex->unknown = calloc(ex->ef.ops.n + 1, 1);
    if (ex->before == NULL || ex->unknown == NULL)
        return -1;
    memcpy(ex->unknown, res->unknown, ex->ef.ops.n);
    for (size_t i = 0; i < ex->ef.ops.n; i++)
        ex->before[i] = before[i] != NULL ? json_incref(before[i]) : NULL;
    return http_fields_copy(&ex->quota, &res->quota);
}

/*
 * Record a write that ends before the CRM saw it, then answer status/code/
 * msg. 0 while the commit runs; -1 when it could not be queued (answered
 * 503, the exchange is gone).
 */
static int exchange_final_error(struct exchange *ex, const char *outcome, long upstream_status,
                                int status, const char *code, const char *msg)
{
    ex->err_status = status;
    ex->err_code = code;
    snprintf(ex->err_msg, sizeof(ex->err_msg), "%s", msg);
    if (exchange_build_records(ex, outcome, NULL) < 0 ||
        audit_set_outcome(ex->records, outcome, upstream_status, 0, code) < 0 ||
        exchange_commit(ex, EX_FINAL_COMMIT, NULL, NULL, 0) < 0) {
        exchange_store_refused(ex, STORE_FAILED);
        exchange_free(ex);
        return -1;
    }
    return 0;
}

static void exchange_beforecb(struct before_result *res, void *arg)
{
    struct exchange *ex = arg;

    ex->bf = NULL;
    if (exchange_keep_before(ex, res) < 0) {
        conn_abort(ex->c, 503, "out_of_memory", "crmgate is out of memory");
        exchange_free(ex);
        return;
    }
    if (!res->ok && res->status == 401 && ex->has_cred)
        exchange_cred_refused(ex); /* answered 403 after the record commits */
    if (!res->ok && res->body != NULL) {
        /* The CRM refused the read itself (a bad field, an expired token, a rate limit): the
         * agent gets that answer as the CRM gave it, so SDKs refresh, back off or report as
         * usual, filtered like any answer. Nothing was written. */
        char why[512];
        if (exchange_filter_answer(ex, res->status, &res->headers, res->body, why, sizeof(why)) <
            0) {
            (void)exchange_final_error(ex, "upstream_error", res->status, 502,
                                       "uninspectable_answer", why);
            return;
        }
        ex->out_status = (int)res->status;
        ex->out_body = res->body;
        res->body = NULL; /* ours now */
        ex->out_length = -1;
        for (size_t k = 0; k < res->headers.n; k++) {
            size_t nl, vl;
            const char *n = http_field_name(&res->headers, k, &nl);
            const char *v = http_field_value(&res->headers, k, &vl);
            if (!exchange_drop_response_header(&res->headers, n, nl) &&
                http_fields_add(&ex->out, n, nl, v, vl) < 0) {
                conn_abort(ex->c, 503, "out_of_memory", "crmgate is out of memory");
                exchange_free(ex);
                return;
            }
        }
        if (exchange_build_records(ex, "upstream_error", NULL) < 0 ||
            audit_set_outcome(ex->records, "upstream_error", res->status, 0,
                              "before_state_refused_by_crm") < 0 ||
            exchange_commit(ex, EX_FINAL_COMMIT, NULL, NULL, 0) < 0) {
            exchange_store_refused(ex, STORE_FAILED);
            exchange_free(ex);
        }
        return;
    }
    if (!res->ok) {
        int status = res->timed_out ? 504 : 502; /* curl says "timed out", not "timeout" */
        (void)exchange_final_error(ex, "upstream_error", res->status, status,
                                   "before_state_unavailable", res->error);
        return;
    }
    if (ex->dry) {
        exchange_dry_run(ex);
        return;
    }
    if (exchange_build_records(ex, "unknown", NULL) < 0 ||
        exchange_commit(ex, EX_INTENT, NULL, NULL, 0) < 0) {
        exchange_store_refused(ex, STORE_FAILED);
        exchange_free(ex);
    }
}

/* Whether this write is answered in dry-run: the header, the runtime switch, or the rules. */
static int exchange_is_dry(struct exchange *ex)
{
    int sw;

    if (ex->ctx.dry_run)
        return 1;
    /* No workspace: only the bench's passthrough build, which decides nothing. */
    if (ex->ef.ws == NULL)
        return 0;
    sw = store_workspace_dry_run(ex->w->store, ex->ef.ws->name);
    if (sw >= 0)
        return sw;
    return ex->ef.ws->mode == RULES_MODE_DRY_RUN;
}

static uint64_t exchange_rand64(void *arg)
{
    return worker_random(arg);
}

/* An overlay key "property=value" is at most this long (longer ones are not overlaid). */
#define EXCHANGE_MAX_ALIAS 600
/* written values that may be keys (synth_unique_key_candidate) a dry-run write leaves aliases for
 */
#define EXCHANGE_VALUE_ALIASES 4
/* an If-Unmodified-Since value longer than this is not a date crmgate reads */
#define EXCHANGE_MAX_DATE 128
/* overlay entries a dry-run write leaves per op: its record, the alias of the property it
 * names the record by, and those of the keys it writes */
#define EXCHANGE_OVERLAY_PER_OP (2 + EXCHANGE_VALUE_ALIASES)

/*
 * Whether op names its record by an id property (an email, a Salesforce
 * external id) rather than by its id; HubSpot's idProperty=hs_object_id is the id.
 */
static int exchange_by_property(const struct crm_op *op)
{
    return op->id_property != NULL && strcasecmp(op->id_property, "hs_object_id") != 0;
}

/*
 * The overlay key under which a record named by an id property is found:
 * "property=value" in lower case (HubSpot emails and Salesforce external ids
 * compare without case). 0, or -1 when it does not fit.
 */
static int exchange_alias_keyv(const char *property, const char *value, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s=%s", property, value);

    if (n < 0 || (size_t)n >= len)
        return -1;
    for (char *s = buf; *s != '\0'; s++) {
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + 32);
    }
    return 0;
}

static int exchange_alias_key(const struct crm_op *op, char *buf, size_t len)
{
    return exchange_alias_keyv(op->id_property, op->record_id, buf, len);
}

/*
 * The record id a CRM record names (borrowed from rec, or NULL): HubSpot's
 * "id" or hs_object_id (top level or in "properties"), Salesforce's "Id" or
 * the last segment of attributes.url.
 */
static const char *exchange_record_id(enum crm crm, json_t *rec)
{
    const char *id, *url;

    if (!json_is_object(rec))
        return NULL;
    if (crm == CRM_HUBSPOT) {
        id = json_string_value(json_object_get(rec, "id"));
        if (id == NULL)
            id = json_string_value(
                json_object_get(json_object_get(rec, "properties"), "hs_object_id"));
        if (id == NULL)
            id = json_string_value(json_object_get(rec, "hs_object_id"));
        return id;
    }
    id = json_string_value(json_object_get(rec, "Id"));
    url = json_string_value(json_object_get(json_object_get(rec, "attributes"), "url"));
    if (id == NULL && url != NULL && strrchr(url, '/') != NULL)
        id = strrchr(url, '/') + 1;
    return id;
}

/*
 * Whether a dry-run write gave rec (op's record, found by the id property op
 * names it by) another value of that property: the CRM would not find it
 * by the value op gives any more.
 */
static int exchange_overlay_moved(const struct crm_op *op, const json_t *rec)
{
    const char *now =
        json_string_value(json_object_get(json_object_get(rec, "fields"), op->id_property));

    return exchange_by_property(op) && now != NULL && strcasecmp(now, op->record_id) != 0;
}

static json_t *exchange_overlay_by_id(struct exchange *ex, const char *object, const char *id,
                                      struct store_seen *seen)
{
    return store_overlay_get_seen(ex->w->store, ex->ef.ws->name, crm_name(ex->crm), object, id,
                                  seen);
}

/*
 * The overlay record of op in this workspace, or NULL. crm_rec is the CRM's
 * own record of it when known (a before-state, a read's answer): a record
 * named by an id property is found by the id that record carries, else
 * through the alias an earlier dry-run write by that property left. seen
 * (may be NULL): the stored bytes of the record returned.
 */
static json_t *exchange_overlay_get(struct exchange *ex, const struct crm_op *op, json_t *crm_rec,
                                    struct store_seen *seen)
{
    char key[EXCHANGE_MAX_ALIAS];
    const char *id, *target;
    json_t *alias, *rec;

    /* a revocation's "record" names a token, never a CRM record */
    if (op->record_id == NULL || op->object == NULL || op->record_id[0] == '@' ||
        op->verb == CRM_VERB_REVOKE)
        return NULL;
    if (!exchange_by_property(op))
        return exchange_overlay_by_id(ex, op->object, op->record_id, seen);
    id = exchange_record_id(ex->crm, crm_rec);
    if (id != NULL)
        return exchange_overlay_by_id(ex, op->object, id, seen);
    if (exchange_alias_key(op, key, sizeof(key)) < 0)
        return NULL;
    alias = exchange_overlay_by_id(ex, op->object, key, NULL);
    target = json_string_value(json_object_get(alias, "alias_of"));
    rec = target != NULL ? exchange_overlay_by_id(ex, op->object, target, seen) : NULL;
    json_decref(alias);
    if (exchange_overlay_moved(op, rec)) {
        json_decref(rec);
        if (seen != NULL) {
            free(seen->bytes);
            seen->bytes = NULL;
            seen->len = 0;
        }
        return NULL;
    }
    return rec;
}

/*
 * Lay earlier dry-run writes over the before-state: a record created in
 * dry-run exists only in the overlay, one updated in dry-run has the
 * dry-run values, one deleted in dry-run is gone. The stored records are
 * kept (ex->prev, ex->seen) for the commit: exchange_overlay_records.
 */
static int exchange_overlay_before(struct exchange *ex)
{
    ex->was_created = calloc(ex->ef.ops.n + 1, 1);
    ex->was_deleted = calloc(ex->ef.ops.n + 1, 1);
    ex->prev = calloc(ex->ef.ops.n + 1, sizeof(*ex->prev));
    ex->seen = calloc(ex->ef.ops.n + 1, sizeof(*ex->seen));
    if (ex->was_created == NULL || ex->was_deleted == NULL || ex->prev == NULL || ex->seen == NULL)
        return -1;
    for (size_t i = 0; i < ex->ef.ops.n; i++) {
        json_t *rec = exchange_overlay_get(ex, &ex->ef.ops.v[i], ex->before[i], &ex->seen[i]),
               *merged;
        if (rec == NULL)
            continue;
        ex->prev[i] = json_incref(rec);
        ex->was_created[i] = json_is_true(json_object_get(rec, "created"));
        ex->was_deleted[i] = json_is_true(json_object_get(rec, "deleted"));
        if (json_is_true(json_object_get(rec, "deleted"))) {
            merged = NULL;
        } else {
            /* in place: the before-state is this exchange's (the fetch only releases it) */
            merged = json_is_object(ex->before[i]) ? json_incref(ex->before[i]) : json_object();
            if (merged == NULL || json_object_update(merged, json_object_get(rec, "fields")) < 0) {
                json_decref(merged);
                json_decref(rec);
                return -1;
            }
        }
        json_decref(ex->before[i]);
        ex->before[i] = merged;
        json_decref(rec);
    }
    return 0;
}

/*
 * Append to arr the alias "property=value" of the record id (op's object):
 * reads and writes naming the record by that property find it. A value
 * too long for a key is left out. 0, or -1 out of memory (arr released).
 */
static int exchange_alias_add(struct exchange *ex, json_t *arr, const struct crm_op *op,
                              const char *property, const char *value, const char *id,
                              size_t *nseen)
{
    char key[EXCHANGE_MAX_ALIAS];
    json_t *o;

    if (exchange_alias_keyv(property, value, key, sizeof(key)) < 0)
        return 0;
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "workspace", ex->ef.ws->name, "crm",
                  crm_name(ex->crm), "object", op->object, "id", key, "alias_of", id, "ts",
                  (json_int_t)exchange_wall_ms());
    if (o == NULL || json_array_append_new(arr, o) < 0) {
        json_decref(arr);
        return -1;
    }
    (*nseen)++;
    return 0;
}

/*
 * The aliases of the values op writes that the CRM may find records by: a
 * HubSpot contact's email or custom property (idProperty: a custom one with
 * hasUniqueValue), a Salesforce record's custom fields (an external id is
 * always one). crmgate does not know which are keys, so up to
 * EXCHANGE_VALUE_ALIASES of the candidates (synth_unique_key_candidate). A
 * record created in dry-run, or given a new value, is then found by it, as
 * the CRM would. 0 / -1 (arr released).
 */
static int exchange_value_aliases(struct exchange *ex, json_t *arr, const struct crm_op *op,
                                  const char *id, size_t *nseen)
{
    size_t added = 0;

    if (op->object == NULL || op->verb == CRM_VERB_DELETE)
        return 0;
    for (size_t k = 0; k < op->nwrites && added < EXCHANGE_VALUE_ALIASES; k++) {
        const char *name = op->writes[k].name, *v = json_string_value(op->writes[k].value);
        if (!synth_unique_key_candidate(ex->crm, op->object, name) || v == NULL || v[0] == '\0' ||
            strncmp(v, "@{", 2) == 0)
            continue;
        /* the alias of the property op names the record by is there already */
        if (exchange_by_property(op) && strcasecmp(op->id_property, name) == 0 &&
            strcasecmp(op->record_id, v) == 0)
            continue;
        if (exchange_alias_add(ex, arr, op, name, v, id, nseen) < 0)
            return -1;
        added++;
    }
    return 0;
}

/*
 * The overlay records synth left, tagged with their workspace and CRM, as a
 * new array, and *seen (parallel to it, *nseen entries; the caller's): the
 * stored bytes each one's record was read from, where combining with that
 * stored record adds nothing (the writer then need not read it back).
 */
static json_t *exchange_overlay_records(struct exchange *ex, const struct synth_response *out,
                                        struct store_seen **seen, size_t *nseen)
{
    json_t *arr = json_array();

    *nseen = 0;
    *seen = calloc(EXCHANGE_OVERLAY_PER_OP * ex->ef.ops.n + 1, sizeof(**seen));
    if (*seen == NULL) {
        json_decref(arr);
        return NULL;
    }
    for (size_t i = 0; arr != NULL && out->records != NULL && i < ex->ef.ops.n; i++) {
        json_t *o;
        if (out->records[i] == NULL)
            continue;
        /* synth's record, shared: out is only released after this, never read for these */
        o = json_incref(out->records[i]);
        /* a record created by an earlier dry-run write still exists only in the overlay */
        if (o != NULL && ex->was_created != NULL && ex->was_created[i] &&
            json_object_set_new(o, "created", json_true()) < 0) {
            json_decref(o);
            o = NULL;
        }
        if (o == NULL || json_object_set_new(o, "workspace", json_string(ex->ef.ws->name)) < 0 ||
            json_object_set_new(o, "crm", json_string(crm_name(ex->crm))) < 0 ||
            json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return NULL;
        }
        if (ex->prev != NULL && ex->prev[i] != NULL && ex->seen[i].bytes != NULL &&
            !synth_overlay_combine_adds(ex->prev[i], o)) {
            (*seen)[*nseen] = ex->seen[i];
            ex->seen[i].bytes = NULL;
            ex->seen[i].len = 0;
        }
        (*nseen)++;
        if (out->ids == NULL || out->ids[i] == NULL)
            continue;
        /* written by an id property: later calls by that property find the record */
        if (exchange_by_property(&ex->ef.ops.v[i]) &&
            exchange_alias_add(ex, arr, &ex->ef.ops.v[i], ex->ef.ops.v[i].id_property,
                               ex->ef.ops.v[i].record_id, out->ids[i], nseen) < 0)
            return NULL;
        if (exchange_value_aliases(ex, arr, &ex->ef.ops.v[i], out->ids[i], nseen) < 0)
            return NULL;
    }
    return arr;
}

/*
 * The records of writes the synthesized answer fails because the CRM does not
 * have their record (a single write's 404, a batch's per-record error: no id
 * and no overlay record for an op that names one), or because a Salesforce
 * row update's If-Unmodified-Since failed (412), say so: the status the CRM
 * would have answered, and error "not_found" or "precondition_failed". 0 / -1
 * (out of memory).
 */
static int exchange_dry_missing(struct exchange *ex, const struct synth_response *out)
{
    for (size_t i = 0; i < ex->ef.ops.n && i < ex->records->n; i++) {
        struct audit_rec *rec = &ex->records->v[i];
        if (out->status < 400 &&
            (out->ids[i] != NULL || out->records[i] != NULL || !before_needed(&ex->ef.ops.v[i])))
            continue;
        /* the CRM's refusal: a record it does not have, or a failed If-Unmodified-Since */
        rec->upstream_status = out->status == 412 ? 412 : 404;
        rec->error = out->status == 412 ? "precondition_failed" : "not_found";
    }
    return 0;
}

/* A synthesized Location: Salesforce's is a path, HubSpot's an absolute URL on its API host. */
static int exchange_add_location(struct exchange *ex, const char *path)
{
    char url[4200];
    int n = snprintf(url, sizeof(url), "%s%s", ex->crm == CRM_HUBSPOT ? ex->base : "", path);

    if (n < 0 || (size_t)n >= sizeof(url))
        return 0; /* too long to be a location crmgate made: left out */
    return http_fields_add(&ex->out, "Location", 8, url, (size_t)n);
}

/*
 * Dry-run: answer what the CRM would have answered (policy/synthesize.c),
 * filtered like a real answer, and record it; nothing is forwarded. A write
 * crmgate cannot synthesize is refused, never forwarded.
 */
static void exchange_dry_run(struct exchange *ex)
{
    struct enforce_view v;
    struct synth_response out = {0};
    struct synth_request in = {0};
    char err[512], why[512], since[EXCHANGE_MAX_DATE];
    long ius;
    json_t *overlay = NULL;
    struct store_seen *seen = NULL;
    size_t nseen = 0;

    for (size_t i = 0; i < ex->ef.ops.n; i++) {
        if (ex->unknown != NULL && ex->unknown[i]) {
            /* The CRM would refuse the write as it refused the read; crmgate does not know
             * that answer, and must not pretend the record is missing or unchanged. */
            (void)exchange_final_error(
                ex, "denied", 0, 403, "dry_run_unsupported",
                "crmgate cannot answer this write in dry-run, so it was neither sent nor "
                "answered: the CRM refused crmgate's read of the record's current state as a "
                "bad request (does the write name a field that does not exist?)");
            return;
        }
    }
    if (exchange_overlay_before(ex) < 0 || enforce_view_init(&v, ex->req, ex->rest) < 0) {
        conn_abort(ex->c, 503, "out_of_memory", "crmgate is out of memory");
        exchange_free(ex);
        return;
    }
    in.crm = ex->crm;
    in.req = &v.cr;
    in.ops = &ex->ef.ops;
    in.before = ex->before;
    in.deleted = ex->was_deleted;
    in.prev = ex->prev;
    in.correlation_id = ex->c != NULL ? conn_request_id(ex->c) : NULL;
    ius = http_fields_find(&ex->req->headers, "if-unmodified-since", 0);
    if (ius >= 0) {
        size_t vl;
        const char *hv = http_field_value(&ex->req->headers, (size_t)ius, &vl);
        snprintf(since, sizeof(since), "%.*s", (int)(vl < sizeof(since) ? vl : sizeof(since) - 1),
                 hv);
        in.if_unmodified_since = since;
    }
    in.now_ms = exchange_wall_ms();
    in.rand64 = exchange_rand64;
    in.rand_arg = ex->w;
    if (synth_response(&in, &out, err, sizeof(err)) < 0) {
        char msg[700];
        enforce_view_free(&v);
        snprintf(msg, sizeof(msg),
                 "crmgate cannot answer this write in dry-run, so it was neither sent nor "
                 "answered: %s",
                 err);
        (void)exchange_final_error(ex, "denied", 0, 403, "dry_run_unsupported", msg);
        return;
    }
    enforce_view_free(&v);
    ex->out_status = out.status;
    ex->out_length = -1;
    ex->out_body = evbuffer_new();
    overlay = exchange_overlay_records(ex, &out, &seen, &nseen);
    if (ex->out_body == NULL || overlay == NULL ||
        (out.body != NULL && evbuffer_add(ex->out_body, out.body, out.body_len) < 0) ||
        (out.body != NULL &&
         http_fields_add(&ex->out, "Content-Type", 12, "application/json;charset=utf-8", 30) < 0) ||
        (out.location != NULL && exchange_add_location(ex, out.location) < 0) ||
        /* HubSpot names every answer's correlation id in a header */
        (ex->crm == CRM_HUBSPOT && ex->c != NULL &&
         http_fields_add(&ex->out, "x-hubspot-correlation-id", 24, conn_request_id(ex->c),
                         strlen(conn_request_id(ex->c))) < 0) ||
        /* the quota as the CRM counted crmgate's read of the record (none for a create) */
        http_fields_copy(&ex->out, &ex->quota) < 0 ||
        exchange_build_records(ex, "dry_run", out.ids) < 0 || exchange_dry_missing(ex, &out) < 0) {
        json_decref(overlay);
        store_seen_free(seen, EXCHANGE_OVERLAY_PER_OP * ex->ef.ops.n + 1);
        synth_response_free(&out, ex->ef.ops.n);
        conn_abort(ex->c, 503, "out_of_memory", "crmgate is out of memory");
        exchange_free(ex);
        return;
    }
    synth_response_free(&out, ex->ef.ops.n);
    /* The synthesized answer carries the before-state: it is filtered like the CRM's own. */
    if (enforce_response(&ex->ef, ex->out_status, "application/json", ex->out_body, why,
                         sizeof(why)) < 0) {
        json_decref(overlay);
        store_seen_free(seen, nseen);
        conn_abort(ex->c, 502, "uninspectable_answer", why);
        exchange_free(ex);
        return;
    }
    if (exchange_commit(ex, EX_FINAL_COMMIT, overlay, seen, nseen) < 0) {
        exchange_store_refused(ex, STORE_FAILED);
        exchange_free(ex);
    }
}

/*
 * A Salesforce datetime ("2025-01-02T03:04:05.000+0000") as the HTTP date
 * of a Last-Modified header; "" when iso is not one.
 */
static void exchange_http_date(const char *iso, char *buf, size_t len)
{
    struct tm tm;
    time_t t;

    buf[0] = '\0';
    memset(&tm, 0, sizeof(tm));
    if (iso == NULL || strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
        return;
    t = timegm(&tm);
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
        buf[0] = '\0';
}

/*
 * What the overlay changes in the headers of a read of one record: a
 * Salesforce row carries the Last-Modified of the record answered (none on
 * a 404; its ETag was the CRM's version's, so it goes); a HubSpot error
 * names its correlation id, the one of the x-hubspot-correlation-id header
 * (cid). answer is changed in place.
 */
static void exchange_overlay_headers(struct exchange *ex, json_t *answer, int status,
                                     const char *cid)
{
    if (ex->crm == CRM_HUBSPOT) {
        if (status >= 400 && json_is_object(answer) &&
            json_object_get(answer, "correlationId") == NULL && cid != NULL)
            json_object_set_new(answer, "correlationId", json_string(cid));
        return;
    }
    if (ex->ef.ops.n != 1 || ex->overlay == NULL || ex->overlay[0] == NULL)
        return;
    ex->lm_set = 1;
    if (status == 200)
        exchange_http_date(json_string_value(json_object_get(
                               json_object_get(ex->overlay[0], "fields"), "LastModifiedDate")),
                           ex->lm_date, sizeof(ex->lm_date));
}

/*
 * The headers of a read answered from the overlay alone (the CRM's would
 * have): HubSpot's x-hubspot-correlation-id (cid, named by an error body
 * too), Salesforce's Last-Modified. *body (synth's, malloc'ed) may be
 * replaced. 0 / -1 out of memory.
 */
static int exchange_overlay_local(struct exchange *ex, int status, char **body, size_t *blen,
                                  const char *cid)
{
    json_t *answer;
    char *out;

    if (ex->crm != CRM_HUBSPOT) {
        exchange_overlay_headers(ex, NULL, status, NULL);
        return ex->lm_date[0] == '\0' ? 0
                                      : http_fields_add(&ex->out, "Last-Modified", 13, ex->lm_date,
                                                        strlen(ex->lm_date));
    }
    if (http_fields_add(&ex->out, "x-hubspot-correlation-id", 24, cid, strlen(cid)) < 0)
        return -1;
    if (status < 400)
        return 0;
    answer = json_loadb(*body, *blen, 0, NULL);
    exchange_overlay_headers(ex, answer, status, cid);
    out = answer != NULL ? json_dumps(answer, JSON_COMPACT) : NULL;
    json_decref(answer);
    if (out == NULL)
        return -1;
    free(*body);
    *body = out;
    *blen = strlen(out);
    return 0;
}

/*
 * Reads in dry-run (the workspace's mode, or the request's header): find the
 * overlay records of the records read. 1 when the read was answered from
 * the overlay alone (a record created in dry-run: the CRM has never seen
 * it), 0 to forward (the answer is merged in exchange_done), -1 when the
 * exchange answered an error and is gone.
 */
static int exchange_overlay_read(struct exchange *ex)
{
    size_t found = 0;
    int late = 0; /* a record named by an id property: found by the id the CRM answers */

    if (!ex->ctx.dry_run && !exchange_is_dry(ex))
        return 0;
    ex->overlay = calloc(ex->ef.ops.n + 1, sizeof(json_t *));
    if (ex->overlay == NULL)
        goto oom;
    for (size_t i = 0; i < ex->ef.ops.n; i++) {
        if (ex->ef.ops.v[i].verb != CRM_VERB_READ)
            continue;
        ex->overlay[i] = exchange_overlay_get(ex, &ex->ef.ops.v[i], NULL, NULL);
        found += ex->overlay[i] != NULL;
        late |= exchange_by_property(&ex->ef.ops.v[i]);
    }
    if (found == 0 && !late) {
        free(ex->overlay);
        ex->overlay = NULL;
        return 0;
    }
    if (found == 0)
        return 0;
    ex->dry = 1;
    if (ex->ef.ops.n == 1 && json_is_true(json_object_get(ex->overlay[0], "created"))) {
        struct enforce_view v;
        char *body = NULL, err[512], why[512];
        size_t blen = 0;
        int status = 0;
        if (enforce_view_init(&v, ex->req, ex->rest) < 0)
            goto oom;
        if (!synth_is_single_read(ex->crm, &v.cr)) {
            /* a batch read of it alone: forwarded, and the answer merged in its own shape */
            enforce_view_free(&v);
            return 0;
        }
        if (ex->crm == CRM_SALESFORCE &&
            !json_is_true(json_object_get(ex->overlay[0], "deleted"))) {
            /* every field of a created record: its object's describe names them */
            char *path = synth_sf_describe_path(&v.cr, &ex->ef.ops.v[0]);
            char *url = path != NULL ? route_upstream_url(ex->base, path) : NULL;
            free(path);
            if (url != NULL) {
                enforce_view_free(&v);
                free(ex->url);
                ex->url = url;
                ex->describe_row = 1;
                return 0;
            }
        }
        if (synth_read_answer(ex->crm, &v.cr, &ex->ef.ops.v[0], ex->overlay[0], exchange_wall_ms(),
                              &status, &body, &blen, err, sizeof(err)) < 0) {
            enforce_view_free(&v);
            exchange_reply_error(ex, 502, "dry_run_read_failed", err);
            exchange_free(ex);
            return -1;
        }
        enforce_view_free(&v);
        ex->out_status = status;
        ex->out_length = -1;
        ex->out_body = evbuffer_new();
        if (ex->out_body == NULL ||
            exchange_overlay_local(ex, status, &body, &blen, conn_request_id(ex->c)) < 0 ||
            evbuffer_add(ex->out_body, body, blen) < 0 ||
            http_fields_add(&ex->out, "Content-Type", 12, "application/json;charset=utf-8", 30) <
                0) {
            free(body);
            goto oom;
        }
        free(body);
        if (enforce_response(&ex->ef, status, "application/json", ex->out_body, why, sizeof(why)) <
            0) {
            conn_abort(ex->c, 502, "uninspectable_answer", why);
            exchange_free(ex);
            return -1;
        }
        exchange_send_ready(ex);
        exchange_free(ex);
        return 1;
    }
    return 0;
oom:
    conn_abort(ex->c, 503, "out_of_memory", "crmgate is out of memory");
    exchange_free(ex);
    return -1;
}

/*
 * Records read by an id property: their overlay records, found by the id
 * the CRM's answer gives them (a single record, or a HubSpot batch result
 * carrying the property). Returns how many ops have an overlay record now.
 */
static size_t exchange_overlay_late(struct exchange *ex, json_t *answer)
{
    json_t *results = json_object_get(answer, "results"), *r;
    size_t found = 0, k;

    for (size_t i = 0; i < ex->ef.ops.n; i++) {
        const struct crm_op *op = &ex->ef.ops.v[i];
        json_t *crm_rec = NULL;
        if (ex->overlay[i] != NULL || op->verb != CRM_VERB_READ || !exchange_by_property(op)) {
            found += ex->overlay[i] != NULL;
            continue;
        }
        if (!json_is_array(results)) {
            crm_rec = ex->ef.ops.n == 1 ? answer : NULL;
        } else {
            json_array_foreach(results, k, r)
            {
                const char *v = json_string_value(
                    json_object_get(json_object_get(r, "properties"), op->id_property));
                if (v != NULL && strcasecmp(v, op->record_id) == 0)
                    crm_rec = r;
            }
        }
        if (exchange_record_id(ex->crm, crm_rec) != NULL)
            ex->overlay[i] = exchange_overlay_get(ex, op, crm_rec, NULL);
        if (exchange_overlay_moved(op, ex->overlay[i])) {
            /* the CRM still has the value op names the record by; in dry-run it has another */
            json_t *gone = json_copy(ex->overlay[i]);
            json_decref(ex->overlay[i]);
            ex->overlay[i] = gone;
            if (gone != NULL) {
                json_object_set_new(gone, "deleted", json_true());
                json_object_set_new(gone, "moved", json_true());
            }
        }
        found += ex->overlay[i] != NULL;
    }
    return found;
}

/*
 * The answer to a read of every field of a record created in dry-run, from
 * the object's describe the CRM answered (rsp, parsed: describe, taken):
 * the row with every field, replacing the describe. A describe the CRM
 * refused leaves the row with the fields crmgate knows. 0 / -1 with why.
 */
static int exchange_describe_row(struct exchange *ex, struct upstream_response *rsp,
                                 json_t *describe, char *why, size_t whylen)
{
    struct enforce_view v;
    json_t *row = NULL;
    char *body = NULL;
    size_t blen = 0;
    int status = 200;

    if (enforce_view_init(&v, ex->req, ex->rest) < 0) {
        json_decref(describe);
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    if (rsp->status == 200)
        row = synth_sf_describe_row(&v.cr, describe, ex->overlay[0]);
    json_decref(describe);
    if (row != NULL) {
        body = json_dumps(row, JSON_COMPACT);
        blen = body != NULL ? strlen(body) : 0;
        json_decref(row);
    } else if (synth_read_answer(ex->crm, &v.cr, &ex->ef.ops.v[0], ex->overlay[0],
                                 exchange_wall_ms(), &status, &body, &blen, why, whylen) < 0) {
        enforce_view_free(&v);
        return -1;
    }
    enforce_view_free(&v);
    if (body == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    exchange_overlay_headers(ex, NULL, status, NULL);
    evbuffer_drain(rsp->body, evbuffer_get_length(rsp->body));
    evbuffer_add(rsp->body, body, blen);
    free(body);
    rsp->status = status;
    ex->dry = 1;
    return 0;
}

/*
 * A read forwarded in dry-run: lay the overlay over the CRM's answer (before
 * it is filtered). 0, or -1 with why when the answer cannot be merged.
 */
static int exchange_overlay_merge(struct exchange *ex, struct upstream_response *rsp, char *why,
                                  size_t whylen)
{
    struct enforce_view v;
    json_t *answer;
    char *json;
    int status = (int)rsp->status;

    answer = json_loadb((const char *)evbuffer_pullup(rsp->body, -1),
                        evbuffer_get_length(rsp->body), 0, NULL);
    if (ex->describe_row)
        return exchange_describe_row(ex, rsp, answer, why, whylen);
    if (answer == NULL)
        return 0; /* not JSON: nothing to lay over (the filter decides about it) */
    if (exchange_overlay_late(ex, answer) == 0) {
        json_decref(answer);
        return 0; /* no dry-run write touched these records: the CRM's answer stands */
    }
    ex->dry = 1;
    if (enforce_view_init(&v, ex->req, ex->rest) < 0) {
        json_decref(answer);
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    if (synth_overlay_merge(ex->crm, &v.cr, &ex->ef.ops, ex->overlay, &answer, &status, why,
                            whylen) < 0) {
        enforce_view_free(&v);
        json_decref(answer);
        return -1;
    }
    if (synth_is_single_read(ex->crm, &v.cr) && (status == 200 || status == 404)) {
        long ci = http_fields_find(&rsp->headers, "x-hubspot-correlation-id", 0);
        size_t cl = 0;
        const char *cv = ci >= 0 ? http_field_value(&rsp->headers, (size_t)ci, &cl) : NULL;
        char cid[128];
        snprintf(cid, sizeof(cid), "%.*s", cv != NULL ? (int)cl : 0, cv != NULL ? cv : "");
        exchange_overlay_headers(ex, answer, status, cid[0] != '\0' ? cid : NULL);
    }
    enforce_view_free(&v);
    json = json_dumps(answer, JSON_COMPACT);
    json_decref(answer);
    if (json == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    evbuffer_drain(rsp->body, evbuffer_get_length(rsp->body));
    evbuffer_add(rsp->body, json, strlen(json));
    free(json);
    rsp->status = status; /* conn frames the new body itself */
    return 0;
}

/* ----- credential custody ----- */

/*
 * The crmgate key the caller presented, looked up (every request: a
 * revocation holds at once): forward mode's Proxy-Authorization first, then
 * "Authorization: Bearer cgk_...". NULL when the caller sent none.
 */
static const struct enforce_key *exchange_key(struct exchange *ex)
{
    const unsigned char *pk = conn_proxy_key(ex->c);
    const struct http_fields *h = &ex->req->headers;
    unsigned char hash[32];
    long i = http_fields_find(h, "authorization", 0);

    if (pk == NULL) {
        size_t vl;
        const char *v = i >= 0 ? http_field_value(h, (size_t)i, &vl) : NULL;
        if (v == NULL || http_fields_count(h, "authorization") != 1)
            return NULL;
        if (vl > 7 && strncasecmp(v, "Bearer ", 7) == 0) {
            v += 7;
            vl -= 7;
        } else if (vl > 6 && strncasecmp(v, "OAuth ", 6) == 0) {
            v += 6;
            vl -= 6;
        } else {
            return NULL;
        }
        while (vl > 0 && *v == ' ') {
            v++;
            vl--;
        }
        if (!custody_key_parse(v, vl, hash))
            return NULL;
        pk = hash;
    }
    if (custody_key_lookup_cached(ex->w->store, pk, custody_now_ms(), &ex->kid, ex->key_why,
                                  sizeof(ex->key_why)) == 0)
        ex->ekey.caller = &ex->kid.caller;
    else
        ex->ekey.refusal = ex->key_why;
    return &ex->ekey;
}

/* A workflow key's workflow id is the request's; a different X-Crmgate-Workflow is refused. */
static int exchange_key_workflow(struct exchange *ex, char *why, size_t whylen)
{
    const char *wf = ex->kid.workflow;

    if (!ex->ef.via_key || wf == NULL)
        return 0;
    if (ex->ctx.workflow[0] != '\0' && strcmp(ex->ctx.workflow, wf) != 0) {
        snprintf(why, whylen,
                 "X-Crmgate-Workflow differs from the workflow this crmgate key belongs to");
        return -1;
    }
    snprintf(ex->ctx.workflow, sizeof(ex->ctx.workflow), "%s", wf);
    return 0;
}

/*
 * Refuse the request with an error in the CRM's shape, recording a write
 * first. 1 while the write's record is committed (the exchange answers
 * then), 0 when answered (the exchange is gone).
 */
static int exchange_refuse(struct exchange *ex, int status, const char *code, const char *msg)
{
    if (ex->write)
        return exchange_final_error(ex, status == 403 ? "denied" : "upstream_error", 0, status,
                                    code, msg) == 0;
    exchange_reply_error(ex, status, code, msg);
    exchange_free(ex);
    return 0;
}

static struct exchange *exchange_proceed(struct exchange *ex);

static int exchange_credentials(struct exchange *ex);

/*
 * A token this long before its expiry still serves while its refresh fails
 * or backs off: a token endpoint's outage then costs the agents nothing until
 * the token really expires. The slack covers a call in flight, so the CRM
 * never sees the token expire under it (its 401 would need an admin).
 */
#define EXCHANGE_TOKEN_GRACE_MS (60 * 1000)

static int exchange_token_usable(const struct exchange *ex, long long now_ms)
{
    return ex->cred.access_token != NULL && ex->cred.expires_ms > 0 &&
           ex->cred.expires_ms - EXCHANGE_TOKEN_GRACE_MS > now_ms;
}

/* A refresh that failed for now (the endpoint's outage, the back-off), not refused for good. */
static int exchange_refresh_transient(const struct refresh_result *res)
{
    return res->code != NULL && (strcmp(res->code, "integration_refresh_failed") == 0 ||
                                 strcmp(res->code, "integration_refresh_backoff") == 0);
}

static void exchange_refreshcb(const struct refresh_result *res, void *arg)
{
    struct exchange *ex = arg;

    ex->rw = NULL;
    ex->refreshed = 1;
    if (!res->ok && exchange_refresh_transient(res)) {
        /* the token held before may still serve, but as the store has it now: an admin may
         * have removed or replaced the integration while the refresh ran (exchange_credentials
         * answers with res when the token it reads is not usable) */
        ex->refresh_failed = *res;
        if (exchange_credentials(ex) == 0)
            (void)exchange_proceed(ex);
        return;
    }
    if (!res->ok) {
        ex->retry_after_s = res->retry_after_s;
        (void)exchange_refuse(ex, res->status, res->code, res->message);
        return;
    }
    if (exchange_credentials(ex) == 0)
        (void)exchange_proceed(ex);
}

/*
 * The integration a key's caller acts with, opened into ex->cred. 0 when
 * ready, 1 when waiting for its token's refresh (exchange_refreshcb goes
 * on), -1 when answered (no integration: 403, never another one).
 */
static int exchange_credentials(struct exchange *ex)
{
    const struct config_caller *who = ex->ef.caller;
    const char *crm = crm_name(ex->crm);
    char err[400], msg[700];
    struct refresh_result held;
    long long now = custody_now_ms();
    int found, iu_bad, tu_bad;

    custody_cred_free(&ex->cred);
    ex->has_cred = 0;
    if (custody_select(who, ex->ef.ws, ex->crm, &ex->iref, err, sizeof(err)) < 0)
        return exchange_refuse(ex, 403, "no_integration", err) ? 1 : -1;
    found = custody_cred_read_cached(ex->w->store, custody_vault(), &ex->iref, &ex->cred, err,
                                     sizeof(err));
    if (found < 0) {
        snprintf(msg, sizeof(msg), "crmgate cannot use the %s integration: %s", crm, err);
        return exchange_refuse(ex, 503, "credential_unreadable", msg) ? 1 : -1;
    }
    if (found == 0) {
        if (ex->iref.scope == CUSTODY_SCOPE_USER)
            snprintf(msg, sizeof(msg),
                     "user %s has not connected their %s account to crmgate workspace %s: "
                     "connect it (crmgate integration add --workspace %s --user %s --crm %s) "
                     "and call again; crmgate never acts for you with another integration",
                     ex->iref.user, crm, ex->iref.ws, ex->iref.ws, ex->iref.user, crm);
        else
            snprintf(msg, sizeof(msg),
                     "workspace %s has no %s integration: an admin must connect one (crmgate "
                     "integration add --workspace %s --crm %s)",
                     ex->iref.ws, crm, ex->iref.ws, crm);
        return exchange_refuse(ex, 403, "no_integration", msg) ? 1 : -1;
    }
    iu_bad = ex->crm == CRM_SALESFORCE && ex->cred.instance_url != NULL &&
             !custody_crm_url_ok(ex->cfg, ex->crm, ex->cred.instance_url);
    tu_bad =
        ex->cred.token_url != NULL && !custody_crm_url_ok(ex->cfg, ex->crm, ex->cred.token_url);
    if (iu_bad || tu_bad) {
        /* stored before the domains were checked, or the domains narrowed since: the instance
         * URL would get the access token, the token URL the refresh token and client secret */
        snprintf(msg, sizeof(msg),
                 "the %s of the %s %s integration of workspace %s is not on a %s host (%s): "
                 "crmgate sends its tokens nowhere else; an admin must reconnect it (crmgate "
                 "integration add %s)",
                 iu_bad ? "instance URL" : "token URL", crm, custody_scope_name(ex->iref.scope),
                 ex->iref.ws, ex->crm == CRM_SALESFORCE ? "Salesforce" : "HubSpot",
                 custody_domains_key(ex->crm), iu_bad ? "--instance-url" : "--token-url");
        return exchange_refuse(ex, 403, "integration_instance_refused", msg) ? 1 : -1;
    }
    /* its refresh just failed for now: the token read again serves if it is usable, or if it
     * is no longer due (an admin stored the integration again meanwhile) */
    if (ex->refreshed && ex->refresh_failed.code != NULL) {
        if (exchange_token_usable(ex, now) ||
            !custody_cred_due(&ex->cred, now, ex->cfg->vault_refresh_margin_s)) {
            ex->has_cred = 1;
            return 0;
        }
        ex->retry_after_s = ex->refresh_failed.retry_after_s;
        return exchange_refuse(ex, ex->refresh_failed.status, ex->refresh_failed.code,
                               ex->refresh_failed.message)
                   ? 1
                   : -1;
    }
    /* backing off, a token not about to expire still serves (the token endpoint hears nothing) */
    if (!ex->refreshed && !ex->cred.refresh_refused &&
        refresh_waiting(ex->cred.refresh_next_ms, now, ex->cfg->vault_backoff_max_ms) &&
        exchange_token_usable(ex, now)) {
        ex->has_cred = 1;
        return 0;
    }
    /* a refresh refused for good, or backing off: answer now, the token endpoint hears nothing */
    if (!ex->refreshed &&
        (ex->cred.refresh_refused ||
         custody_cred_due(&ex->cred, now, ex->cfg->vault_refresh_margin_s)) &&
        refresh_held(&ex->iref, &ex->cred, now, ex->cfg->vault_backoff_max_ms, &held)) {
        ex->retry_after_s = held.retry_after_s;
        return exchange_refuse(ex, held.status, held.code, held.message) ? 1 : -1;
    }
    if (!ex->refreshed && custody_cred_due(&ex->cred, now, ex->cfg->vault_refresh_margin_s)) {
        ex->rw = refresh_start(ex->w, ex->cfg, &ex->iref, exchange_refreshcb, ex);
        if (ex->rw == NULL) {
            conn_abort(ex->c, 503, "out_of_memory", "crmgate is out of memory");
            exchange_free(ex);
            return -1;
        }
        return 1;
    }
    ex->has_cred = 1;
    return 0;
}

/*
 * The CRM refused the integration's token (401) although crmgate held it
 * fresh: the integration needs an admin (and an OAuth one refreshes on its
 * next use). The agent gets 403, never the 401 its SDK would act on.
 */
static void exchange_cred_refused(struct exchange *ex)
{
    char why[300];

    snprintf(why, sizeof(why), "the CRM refused its %s token (401) at %lld ms",
             custody_type_name(ex->cred.type), custody_now_ms());
    ex->cred_refused = 1;
    refresh_mark_attention(ex->w, &ex->iref, ex->cred.type == CUSTODY_TYPE_OAUTH, why);
}

/* Remove every trace of the injected token from the answer: headers that carry it, and in the
 * body, the token itself. */
static void exchange_scrub(struct exchange *ex)
{
    const char *tok = ex->has_cred ? ex->cred.access_token : NULL;
    size_t tl = tok != NULL ? strlen(tok) : 0;
    struct http_fields keep = {0};
    int dropped = 0, redacted;

    if (tl == 0)
        return;
    for (size_t k = 0; k < ex->out.n; k++) {
        size_t nl, vl;
        const char *n = http_field_name(&ex->out, k, &nl);
        const char *v = http_field_value(&ex->out, k, &vl);
        if (memmem(v, vl, tok, tl) != NULL) {
            dropped++;
            continue;
        }
        http_fields_add(&keep, n, nl, v, vl);
    }
    if (dropped > 0) {
        http_fields_cleanse(&ex->out);
        ex->out = keep;
        log_warn("%s: %d header(s) of the CRM's answer carried the integration's token; "
                 "dropped",
                 conn_peer(ex->c), dropped);
    } else {
        http_fields_free(&keep);
    }
    redacted = upstream_redact(&ex->out_body, tok, tl);
    if (redacted < 0) {
        /* out of memory: the answer goes without its body rather than with the token */
        evbuffer_drain(ex->out_body, evbuffer_get_length(ex->out_body));
        log_error("%s: out of memory redacting the integration's token from the CRM's answer; "
                  "its body is dropped",
                  conn_peer(ex->c));
    }
    if (redacted != 0) {
        ex->out_length = -1;
        if (redacted > 0)
            log_warn("%s: the CRM's answer carried the integration's token; redacted",
                     conn_peer(ex->c));
    }
}

/*
 * From an allowed request with its credentials settled to the answer: a
 * read is forwarded (or answered from the dry-run overlay), a write reads
 * its before-state first. Returns ex while it runs, NULL once answered.
 */
static struct exchange *exchange_proceed(struct exchange *ex)
{
    struct worker *w = ex->w;
    struct http_request *req = ex->req;
    struct config *cfg = ex->cfg;
    enum crm crm = ex->crm;

    if (ex->has_cred && crm == CRM_SALESFORCE) {
        /* one crmgate URL for every org: the integration says which instance, else the
         * configured upstream; never the host a forward tunnel names (the agent's pick) */
        const char *to =
            ex->cred.instance_url != NULL ? ex->cred.instance_url : cfg->upstream_salesforce;
        free(ex->base);
        ex->base = to != NULL ? strdup(to) : NULL;
        if (to != NULL && ex->base == NULL)
            goto oom_ex;
    }
    if (ex->base == NULL) {
        conn_abort(ex->c, 502, "no_upstream",
                   "no Salesforce instance URL is configured (set upstreams.salesforce or "
                   "--upstream salesforce=URL, or connect an integration with its instance URL)");
        exchange_free(ex);
        return NULL;
    }
    ex->url = route_upstream_url(ex->base, ex->rest);
    if (ex->url == NULL || exchange_build_request_headers(ex, req) < 0)
        goto oom_ex;
    if (!ex->write) {
        int local = exchange_overlay_read(ex);
        if (local != 0)
            return NULL; /* answered from the overlay, or failed: either way, answered */
        return exchange_forward(ex) == 0 ? ex : NULL;
    }
    ex->dry = exchange_is_dry(ex);
    {
        /* crmgate's own reads carry the agent's credential, as the write will. */
        struct http_fields auth = {0};
        long ai = ex->ef.via_key ? -1 : http_fields_find(&req->headers, "authorization", 0);
        if (ex->has_cred && exchange_add_auth(ex, &auth) < 0) {
            http_fields_cleanse(&auth);
            goto oom_ex;
        }
        if (ai >= 0) {
            size_t vl;
            const char *v = http_field_value(&req->headers, (size_t)ai, &vl);
            if (http_fields_add(&auth, "Authorization", 13, v, vl) < 0) {
                http_fields_cleanse(&auth);
                goto oom_ex;
            }
        }
        ex->phase = EX_BEFORE;
        /* a dry-run If-Unmodified-Since is checked against the record's LastModifiedDate */
        ex->bf =
            before_start(w, crm, ex->base, ex->rest, &auth, &ex->ef.ops,
                         ex->dry && http_fields_find(&req->headers, "if-unmodified-since", 0) >= 0,
                         cfg, exchange_beforecb, ex);
        http_fields_cleanse(&auth);
    }
    if (ex->bf == NULL)
        return exchange_final_error(ex, "denied", 0, 403, "before_state_refused",
                                    "crmgate would need too many reads to record this write's "
                                    "before-state; send fewer records per call") == 0
                   ? ex
                   : NULL;
    return ex;
oom_ex:
    conn_abort(ex->c, 503, "out_of_memory", "crmgate is out of memory");
    exchange_free(ex);
    return NULL;
}

struct exchange *exchange_start(struct conn *c, struct http_request *req)
{
    struct worker *w = conn_worker(c);
    struct config *cfg = worker_config(w);
    struct exchange *ex;
    const char *rest, *base, *tunnel = conn_tunnel_host(c);
    enum crm crm;
    char tunnel_base[300], why[300];

    /* Forward mode: the CRM is the tunnel's host, and the whole target is the path. */
    if (tunnel != NULL) {
        crm = route_forward_host(tunnel, cfg->sf_instance_host);
        rest = req->target;
    } else {
        crm = route_reverse(req->target, &rest);
    }

    if (crm == CRM_NONE) {
        metrics_request(CRM_NONE, CRM_VERB_UNKNOWN, METRICS_REFUSED);
        conn_abort(c, 404, "unknown_route",
                   "no route for this path: crmgate serves /hubspot/... (HubSpot API) and "
                   "/salesforce/... (Salesforce REST API)");
        return NULL;
    }
    if (!exchange_method_allowed(req->method)) {
        char msg[128];
        snprintf(msg, sizeof(msg), "method %s is not supported by crmgate", req->method_name);
        metrics_request(crm, CRM_VERB_UNKNOWN, METRICS_REFUSED);
        conn_abort(c, 405, "method_not_allowed", msg);
        return NULL;
    }
    base = crm == CRM_HUBSPOT ? cfg->upstream_hubspot : cfg->upstream_salesforce;
    /* An intercepted Salesforce host is its own upstream unless one is configured. */
    if (tunnel != NULL && crm == CRM_SALESFORCE && base == NULL) {
        snprintf(tunnel_base, sizeof(tunnel_base), "https://%s", tunnel);
        base = tunnel_base;
    }
    ex = calloc(1, sizeof(*ex));
    if (ex == NULL)
        goto oom;
    ex->c = c;
    ex->w = w;
    ex->req = req;
    ex->crm = crm;
    ex->cfg = config_ref(cfg);
    ex->base = base != NULL ? strdup(base) : NULL; /* NULL: only an integration can say */
    ex->rest = strdup(rest);
    if ((base != NULL && ex->base == NULL) || ex->rest == NULL)
        goto oom_ex;
    switch (enforce_request(&ex->ef, cfg, crm, req, rest, conn_proxy_fingerprint(c),
                            exchange_key(ex))) {
    case 1:
    case 0:
        break;
    default:
        goto oom_ex;
    }
    ex->write = audit_write_class(&ex->ef.ops, req->method_name);
    if (audit_context(&req->headers, &ex->ctx, why, sizeof(why)) < 0 ||
        exchange_key_workflow(ex, why, sizeof(why)) < 0) {
        ex->write = 0; /* nothing was attempted */
        exchange_reply_error(ex, 400, "bad_context_header", why);
        exchange_free(ex);
        return NULL;
    }
    if (!ex->ef.verdict.allow) {
        /* A denied write is audited, with the fields it tried to touch. */
        if (ex->write && exchange_build_records(ex, "denied", NULL) == 0 &&
            exchange_commit(ex, EX_DENY_COMMIT, NULL, NULL, 0) == 0)
            return ex;
        if (ex->write)
            log_error("%s: a denied write could not be queued for the audit log", conn_peer(c));
        exchange_deny(ex);
        exchange_free(ex);
        return NULL;
    }
    if (ex->ef.via_key) {
        switch (exchange_credentials(ex)) {
        case 0:
            break;
        case 1:
            return ex; /* waiting for the integration's token refresh */
        default:
            return NULL; /* answered */
        }
    }
    return exchange_proceed(ex);
oom_ex:
    exchange_free(ex);
oom:
    conn_abort(c, 503, "out_of_memory", "crmgate is out of memory");
    return NULL;
}
