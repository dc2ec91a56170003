/*
 * enforce.c - identify, classify, decide, filter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "../policy/jsonfilter.h"
#include "../policy/hubspot.h"
#include "../policy/salesforce.h"
#include "enforce.h"
#include "identify.h"
#include "locators.h"
#include "log.h"

static void enforce_deny(struct enforce *ef, int status, const char *code, const char *rule,
                         const char *reason)
{
    ef->status = status;
    ef->code = code;
    ef->verdict.allow = 0;
    snprintf(ef->verdict.rule, sizeof(ef->verdict.rule), "%s", rule);
    snprintf(ef->verdict.reason, sizeof(ef->verdict.reason), "%s", reason);
    ef->verdict.fields[0] = '\0';
}

/*
 * A header value as a NUL-terminated copy in buf, or NULL when absent. One
 * longer than buf is cut short, unless if_cut is given: then if_cut is
 * returned instead (a header that decides a policy must not lose its end).
 */
static const char *enforce_header(const struct http_fields *hs, const char *name, char *buf,
                                  size_t buflen, const char *if_cut)
{
    long i = http_fields_find(hs, name, 0);
    size_t vl;
    const char *v;

    if (i < 0)
        return NULL;
    v = http_field_value(hs, (size_t)i, &vl);
    if (vl >= buflen && if_cut != NULL)
        return if_cut;
    if (vl >= buflen)
        vl = buflen - 1; /* compared against short tokens by the classifiers */
    memcpy(buf, v, vl);
    buf[vl] = '\0';
    return buf;
}

/* Replace locator ops by the operations of the query that handed the locator out. */
static int enforce_resolve_locators(struct enforce *ef)
{
    struct crm_ops out = {0};
    time_t now = time(NULL);

    for (size_t i = 0; i < ef->ops.n; i++) {
        if (ef->ops.v[i].locator != NULL)
            goto resolve;
    }
    return 0;
resolve:
    for (size_t i = 0; i < ef->ops.n; i++) {
        struct crm_op *op = &ef->ops.v[i];
        if (op->locator == NULL || op->verb == CRM_VERB_UNKNOWN) {
            crm_ops_free(&out);
            return 0; /* mixed: decide sees the unresolved op and denies */
        }
        if (locators_lookup(ef->ws->name, op->locator, &out, now) < 0) {
            crm_ops_free(&out);
            enforce_deny(ef, 403, "unknown_locator", "builtin:unknown-query-locator",
                         "unknown or expired query locator: crmgate only follows nextRecordsUrl "
                         "values it handed to this workspace; run the query again");
            return 1;
        }
    }
    crm_ops_free(&ef->ops);
    ef->ops = out;
    ef->soql = 1;
    return 0;
}

int enforce_view_init(struct enforce_view *v, const struct http_request *req, const char *rest)
{
    const char *q = strchr(rest, '?');

    memset(v, 0, sizeof(*v));
    v->path = q != NULL ? strndup(rest, (size_t)(q - rest)) : strdup(rest);
    if (v->path == NULL)
        return -1;
    v->cr.method = req->method_name;
    v->cr.path = v->path[0] != '\0' ? v->path : "/";
    v->cr.query = q != NULL ? q + 1 : NULL;
    v->cr.content_type =
        enforce_header(&req->headers, "content-type", v->ctype, sizeof(v->ctype), NULL);
    v->cr.content_encoding =
        enforce_header(&req->headers, "content-encoding", v->cenc, sizeof(v->cenc), NULL);
    v->cr.method_override = enforce_header(&req->headers, "x-http-method-override", v->override,
                                           sizeof(v->override), NULL);
    /* too long to read whole: an allowSave the classifier cannot read (denied) */
    v->cr.duplicate_rule =
        enforce_header(&req->headers, "sforce-duplicate-rule-header", v->duprule,
                       sizeof(v->duprule), "allowSave=(longer than crmgate reads)");
    v->cr.body_len = evbuffer_get_length(req->body);
    v->cr.body = v->cr.body_len > 0 ? (const char *)evbuffer_pullup(req->body, -1) : NULL;
    return 0;
}

void enforce_view_free(struct enforce_view *v)
{
    free(v->path);
    v->path = NULL;
}

int enforce_revoked_fingerprint(struct crm_ops *ops)
{
    for (size_t i = 0; i < ops->n; i++) {
        struct crm_op *op = &ops->v[i];
        char fp[65], rec[ENFORCE_REVOKED_RECORD];
        int rc;
        if (op->secret == NULL)
            continue;
        rc = identify_fingerprint(op->secret, op->secret_len, fp);
        OPENSSL_cleanse(op->secret, op->secret_len);
        free(op->secret);
        op->secret = NULL;
        op->secret_len = 0;
        if (rc < 0)
            return -1;
        snprintf(rec, sizeof(rec), "%s:%.*s", op->record_id != NULL ? op->record_id : "token",
                 ENFORCE_REVOKED_FP_HEX, fp);
        OPENSSL_cleanse(fp, sizeof(fp));
        if (crm_op_set(&op->record_id, rec, strlen(rec)) < 0)
            return -1;
    }
    return 0;
}

/* Classify req into ef->ops (rest = the target after the CRM prefix). 0 / -1. */
static int enforce_classify(struct enforce *ef, enum crm crm, const struct http_request *req,
                            const char *rest)
{
    struct enforce_view v;
    int rc;

    if (enforce_view_init(&v, req, rest) < 0)
        return -1;
    rc = crm == CRM_SALESFORCE ? salesforce_classify(&v.cr, NULL, &ef->ops)
                               : hubspot_classify(&v.cr, &ef->ops);
    enforce_view_free(&v);
    /* before anything else sees the operations: a revoked token becomes its fingerprint */
    if (rc == 0 && enforce_revoked_fingerprint(&ef->ops) < 0)
        rc = -1;
    ef->oauth = ef->ops.n > 0;
    for (size_t i = 0; i < ef->ops.n; i++)
        ef->oauth &= ef->ops.v[i].verb == CRM_VERB_AUTH || ef->ops.v[i].verb == CRM_VERB_REVOKE;
    return rc;
}

int enforce_request(struct enforce *ef, const struct config *cfg, enum crm crm,
                    const struct http_request *req, const char *rest, const char *proxy_fp,
                    const struct enforce_key *key)
{
    char fp[65], why[256];
    size_t denied_op = 0;

    ef->crm = crm;
#ifdef CRMGATE_BENCH_PASSTHROUGH
    /*
     * make bench only: a second binary with policy compiled out, to measure what enforcement
     * costs against the same proxy. Never built by make, make install or the tests.
     */
    (void)cfg, (void)req, (void)rest, (void)fp, (void)why, (void)denied_op, (void)proxy_fp,
        (void)key;
    ef->verdict.allow = 1;
    snprintf(ef->verdict.rule, sizeof(ef->verdict.rule), "bench:passthrough");
    return 1;
#endif
    /* Classified first (it is pure) so that even a refusal takes the right shape. */
    if (enforce_classify(ef, crm, req, rest) < 0)
        return -1;
    if (key != NULL) {
        if (key->caller == NULL) {
            enforce_deny(ef, 403, "key_refused", "builtin:crmgate-key", key->refusal);
            return 0;
        }
        ef->caller = key->caller;
        ef->via_key = 1;
    } else {
        ef->caller = proxy_fp != NULL ? config_caller_find(cfg, proxy_fp)
                                      : identify_caller(cfg, &req->headers, fp, why, sizeof(why));
        if (ef->caller == NULL && proxy_fp != NULL)
            snprintf(why, sizeof(why), "the Proxy-Authorization caller is no longer registered");
    }
    if (ef->caller == NULL) {
        enforce_deny(ef, 403, "unknown_caller", "builtin:unknown-caller", why);
        return 0;
    }
    ef->ws = rules_workspace(cfg->rules, ef->caller->workspace);
    if (ef->ws == NULL) {
        snprintf(why, sizeof(why), "no rules are loaded for workspace %s", ef->caller->workspace);
        enforce_deny(ef, 403, "no_workspace", "builtin:no-workspace", why);
        return 0;
    }
    if (!ef->via_key && !ef->ws->allow_passthrough) {
        snprintf(why, sizeof(why),
                 "workspace %s does not let agents call with their own CRM token "
                 "(allow_passthrough is off): use a crmgate key, and crmgate sends the "
                 "workspace's or your own connected integration",
                 ef->caller->workspace);
        enforce_deny(ef, 403, "passthrough_refused", "builtin:passthrough", why);
        return 0;
    }
    if (crm == CRM_SALESFORCE) {
        if (enforce_resolve_locators(ef) != 0)
            return 0;
        for (size_t i = 0; i < ef->ops.n && !ef->soql; i++)
            ef->soql = ef->ops.v[i].verb == CRM_VERB_LIST;
    }
    if (policy_decide(ef->ws, &ef->ops, &ef->verdict, &denied_op))
        return 1;
    ef->status = 403;
    ef->code = "policy_denied";
    /* A query crmgate cannot parse is the agent's to rewrite: Salesforce's own 400. */
    if (crm == CRM_SALESFORCE && denied_op < ef->ops.n && ef->ops.v[denied_op].malformed) {
        ef->status = 400;
        ef->code = "malformed_query";
    }
    return 0;
}

/*
 * Remember every locator the answer hands out: each "nextRecordsUrl": "<url>"
 * (top level and child queries) in the filtered bytes. A locator written in
 * any other way (escaped, say) is not remembered, so its follow-up is
 * denied: the safe side.
 */
static void enforce_remember_locators(struct enforce *ef, const char *p, size_t len, time_t now)
{
    static const char key[] = "\"nextRecordsUrl\"";
    const char *end = p + len;

    while ((p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1)) != NULL) {
        const char *v = p + sizeof(key) - 1, *close, *slash;
        char locator[256];
        p = v;
        while (v < end && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r' || *v == ':'))
            v++;
        if (v >= end || *v != '"')
            continue;
        close = memchr(v + 1, '"', (size_t)(end - v - 1));
        if (close == NULL)
            break;
        slash = close;
        while (slash > v && *slash != '/')
            slash--;
        if (*slash != '/' || close - slash - 1 <= 0 || (size_t)(close - slash) > sizeof(locator) ||
            memchr(slash, '\\', (size_t)(close - slash)) != NULL)
            continue;
        memcpy(locator, slash + 1, (size_t)(close - slash - 1));
        locator[close - slash - 1] = '\0';
        locators_remember(ef->ws->name, locator, &ef->ops, now);
    }
}

/*
 * Whether a HubSpot operation's answer carries records of its object:
 * reads, lists and searches of records (not of a record's associations,
 * which name the other side in to_object), creates, updates, upserts and
 * merges. Deletes and association changes answer without records.
 */
static int enforce_carries_records(const struct crm_op *op)
{
    switch (op->verb) {
    case CRM_VERB_READ:
    case CRM_VERB_LIST:
        return op->to_object == NULL;
    case CRM_VERB_SEARCH:
    case CRM_VERB_CREATE:
    case CRM_VERB_UPDATE:
    case CRM_VERB_UPSERT:
    case CRM_VERB_MERGE:
        return 1;
    default:
        return 0;
    }
}

int enforce_response(struct enforce *ef, long status, const char *content_type,
                     struct evbuffer *body, char *why, size_t whylen)
{
    size_t len = evbuffer_get_length(body), removed = 0;
    struct jsonfilter_out out = {0};
    const char *object = NULL, *in;
    enum filter_hs_shape shape = FILTER_HS_SCHEMA;
    int rc;

    if (len == 0 || ef->ws == NULL)
        return 0; /* also the bench's passthrough build, which has no workspace */
    /* A part of an answer (crmgate never asks for one) cannot be filtered: a record's
     * "properties" object alone is a JSON object the filter would see no record in. */
    if (status == 206) {
        snprintf(why, whylen,
                 "the CRM answered with a part of the answer (206), which crmgate "
                 "cannot inspect");
        return -1;
    }
    /* Error answers can carry records too (Salesforce DUPLICATES_DETECTED lists the
     * matching records' fields): JSON ones are filtered like any answer. An error page that
     * is not JSON carries no CRM record and is relayed as it is. Media types are
     * case-insensitive (RFC 9110 8.3.1): "Application/JSON" is JSON. */
    if ((status < 200 || status > 299) &&
        (content_type == NULL || strcasestr(content_type, "json") == NULL))
        return 0;
    for (size_t i = 0; i < ef->ops.n; i++) {
        const struct crm_op *op = &ef->ops.v[i];
        if (op->verb == CRM_VERB_AUTH || op->verb == CRM_VERB_REVOKE)
            return 0; /* token answers carry no CRM records */
        if (object == NULL && op->verb != CRM_VERB_SCHEMA_READ)
            object = op->object;
        if (enforce_carries_records(op))
            shape = FILTER_HS_RECORDS;
        else if (op->verb != CRM_VERB_SCHEMA_READ && shape == FILTER_HS_SCHEMA)
            shape = FILTER_HS_LINKS;
    }
    if (content_type == NULL || strcasestr(content_type, "json") == NULL) {
        snprintf(why, whylen,
                 "the CRM answered with a body that is not JSON (%s), which crmgate "
                 "cannot inspect",
                 content_type != NULL ? content_type : "no Content-Type");
        return -1;
    }
    /* One pass over the bytes (policy/jsonfilter.c): no tree, no re-serialisation. */
    in = (const char *)evbuffer_pullup(body, -1);
    if (ef->crm == CRM_SALESFORCE)
        rc = jsonfilter_salesforce(ef->ws, in, len, &out, &removed, why, whylen);
    else
        rc = jsonfilter_hubspot(ef->ws, object, shape, in, len, &out, &removed, why, whylen);
    if (rc < 0) {
        jsonfilter_out_free(&out);
        return -1;
    }
    if (removed > 0) {
        evbuffer_drain(body, len);
        if (evbuffer_add(body, out.buf, out.len) < 0) {
            jsonfilter_out_free(&out);
            snprintf(why, whylen, "out of memory filtering the answer");
            return -1;
        }
        log_debug("filtered %zu values from the %s answer", removed, crm_name(ef->crm));
    }
    jsonfilter_out_free(&out);
    if (ef->crm == CRM_SALESFORCE && ef->soql)
        enforce_remember_locators(ef, (const char *)evbuffer_pullup(body, -1),
                                  evbuffer_get_length(body), time(NULL));
    return 0;
}

void enforce_free(struct enforce *ef)
{
    crm_ops_free(&ef->ops);
}
