/*
 * before.c - reading a write's before-state from the CRM.
 *
 * Operations are grouped per object (and per id property): a group of one
 * is read with the single-record GET, a larger one with HubSpot batch/read
 * or Salesforce's collections retrieve, so a batch of a hundred updates
 * costs one read, not a hundred. Salesforce upserts by external id and
 * deletes (which need the whole record) are read one by one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "../policy/diff.h"
#include "../policy/jsonfilter.h"
#include "before.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "upstream.h"

struct before_call {
    struct before_fetch *bf;
    struct upstream_xfer *xfer;
    size_t *idx; /* the ops this call reads */
    size_t nidx;
    int batch; /* batch/read or collections retrieve: the answer holds several records */
    char *url;
    char *body;
    struct http_fields headers;
};

struct before_fetch {
    struct worker *w;
    enum crm crm;
    const struct crm_ops *ops;
    struct before_result res;
    struct before_call *calls;
    size_t ncalls, outstanding;
    struct event *zero; /* nothing to read: answer from the loop, not from the caller */
    before_done_cb cb;
    void *arg;
    int lastmod; /* Salesforce: read LastModifiedDate too */
};

int before_needed(const struct crm_op *op)
{
    switch (op->verb) {
    case CRM_VERB_UPDATE:
    case CRM_VERB_UPSERT:
    case CRM_VERB_DELETE:
    case CRM_VERB_GDPR_DELETE:
    case CRM_VERB_MERGE:
        break;
    default:
        return 0;
    }
    return op->record_id != NULL && op->record_id[0] != '\0' && op->record_id[0] != '@' &&
           op->object != NULL;
}

/* Percent-encode s (RFC 3986 unreserved kept) onto an open string; 0 / -1. */
static int before_enc(char **out, size_t *len, size_t *cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~';
        if (*len + 4 > *cap) {
            size_t ncap = *cap * 2 + 64;
            char *n = realloc(*out, ncap);
            if (n == NULL)
                return -1;
            *out = n;
            *cap = ncap;
        }
        if (plain) {
            (*out)[(*len)++] = (char)c;
        } else {
            (*out)[(*len)++] = '%';
            (*out)[(*len)++] = hex[c >> 4];
            (*out)[(*len)++] = hex[c & 15];
        }
        (*out)[*len] = '\0';
    }
    return 0;
}

/* Append raw text; 0 / -1. */
static int before_cat(char **out, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);

    if (*len + n + 1 > *cap) {
        size_t ncap = (*len + n + 1) * 2;
        char *p = realloc(*out, ncap);
        if (p == NULL)
            return -1;
        *out = p;
        *cap = ncap;
    }
    memcpy(*out + *len, s, n + 1);
    *len += n;
    return 0;
}

/* The names op writes, comma-separated and encoded, appended after key= (nothing if none). */
static int before_field_list(char **out, size_t *len, size_t *cap, const char *key,
                             const struct crm_ops *ops, const size_t *idx, size_t nidx,
                             const char *extra)
{
    int first = 1;

    if (extra != NULL) {
        if (before_cat(out, len, cap, key) < 0 || before_enc(out, len, cap, extra) < 0)
            return -1;
        first = 0;
    }
    for (size_t k = 0; k < nidx; k++) {
        const struct crm_op *op = &ops->v[idx[k]];
        for (size_t i = 0; i < op->nwrites; i++) {
            int seen = extra != NULL && strcasecmp(extra, op->writes[i].name) == 0;
            for (size_t k2 = 0; k2 <= k && !seen; k2++) {
                const struct crm_op *o2 = &ops->v[idx[k2]];
                size_t lim = k2 == k ? i : o2->nwrites;
                for (size_t j = 0; j < lim && !seen; j++)
                    seen = strcasecmp(o2->writes[j].name, op->writes[i].name) == 0;
            }
            if (seen)
                continue;
            if (before_cat(out, len, cap, first ? key : ",") < 0 ||
                before_enc(out, len, cap, op->writes[i].name) < 0)
                return -1;
            first = 0;
        }
    }
    return 0;
}

/* "/services/data/vNN.N" from the request path, or the default version. */
static void before_sf_version(const char *api_path, char *out, size_t outlen)
{
    const char *p = strstr(api_path != NULL ? api_path : "", "/services/data/v");
    size_t n;

    if (p != NULL) {
        n = strlen("/services/data/v");
        while (p[n] != '\0' && ((p[n] >= '0' && p[n] <= '9') || p[n] == '.'))
            n++;
        if (n > strlen("/services/data/v") && n < outlen) {
            memcpy(out, p, n);
            out[n] = '\0';
            return;
        }
    }
    snprintf(out, outlen, "/services/data/v59.0");
}

/* Build the URL (and body) of a call reading ops idx[0..nidx). 0 / -1. */
static int before_build(struct before_fetch *bf, struct before_call *call, const char *base,
                        const char *ver)
{
    const struct crm_ops *ops = bf->ops;
    const struct crm_op *op0 = &ops->v[call->idx[0]];
    char *u = NULL;
    size_t len = 0, cap = 0;
    int del = op0->nwrites == 0;

    if (before_cat(&u, &len, &cap, base) < 0)
        goto fail;
    if (bf->crm == CRM_HUBSPOT && !call->batch) {
        if (before_cat(&u, &len, &cap, "/crm/v3/objects/") < 0 ||
            before_enc(&u, &len, &cap, op0->object) < 0 || before_cat(&u, &len, &cap, "/") < 0 ||
            before_enc(&u, &len, &cap, op0->record_id) < 0 ||
            before_cat(&u, &len, &cap, "?archived=false") < 0 ||
            before_field_list(&u, &len, &cap, "&properties=", ops, call->idx, call->nidx,
                              op0->id_property) < 0 ||
            before_field_list(&u, &len, &cap, "&propertiesWithHistory=", ops, call->idx, call->nidx,
                              NULL) < 0)
            goto fail;
        if (op0->id_property != NULL && (before_cat(&u, &len, &cap, "&idProperty=") < 0 ||
                                         before_enc(&u, &len, &cap, op0->id_property) < 0))
            goto fail;
    } else if (bf->crm == CRM_HUBSPOT) {
        json_t *body = json_object(), *props = json_array(), *hist = json_array(),
               *inputs = json_array();
        int bad = body == NULL || props == NULL || hist == NULL || inputs == NULL;
        if (!bad && op0->id_property != NULL)
            bad = json_array_append_new(props, json_string(op0->id_property)) < 0;
        for (size_t k = 0; k < call->nidx && !bad; k++) {
            const struct crm_op *op = &ops->v[call->idx[k]];
            bad = json_array_append_new(inputs, json_pack("{s:s}", "id", op->record_id)) < 0;
            for (size_t i = 0; i < op->nwrites && !bad; i++) {
                json_t *name = json_string(op->writes[i].name);
                bad = json_array_append(props, name) < 0 || json_array_append(hist, name) < 0;
                json_decref(name);
            }
        }
        if (!bad)
            bad = json_object_set(body, "inputs", inputs) < 0 ||
                  (json_array_size(props) > 0 && json_object_set(body, "properties", props) < 0) ||
                  (json_array_size(hist) > 0 &&
                   json_object_set(body, "propertiesWithHistory", hist) < 0) ||
                  (op0->id_property != NULL &&
                   json_object_set_new(body, "idProperty", json_string(op0->id_property)) < 0);
        if (!bad)
            call->body = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        json_decref(props);
        json_decref(hist);
        json_decref(inputs);
        if (bad || call->body == NULL || before_cat(&u, &len, &cap, "/crm/v3/objects/") < 0 ||
            before_enc(&u, &len, &cap, op0->object) < 0 ||
            before_cat(&u, &len, &cap, "/batch/read?archived=false") < 0)
            goto fail;
    } else if (!call->batch) {
        if (before_cat(&u, &len, &cap, ver) < 0 || before_cat(&u, &len, &cap, "/sobjects/") < 0 ||
            before_enc(&u, &len, &cap, op0->object) < 0 || before_cat(&u, &len, &cap, "/") < 0)
            goto fail;
        if (op0->id_property != NULL && (before_enc(&u, &len, &cap, op0->id_property) < 0 ||
                                         before_cat(&u, &len, &cap, "/") < 0))
            goto fail;
        if (before_enc(&u, &len, &cap, op0->record_id) < 0)
            goto fail;
        /* A delete reads the whole record: no field list. */
        if (!del &&
            (before_field_list(&u, &len, &cap, "?fields=", ops, call->idx, call->nidx, "Id") < 0 ||
             (bf->lastmod && before_cat(&u, &len, &cap, ",LastModifiedDate") < 0)))
            goto fail;
    } else {
        if (before_cat(&u, &len, &cap, ver) < 0 ||
            before_cat(&u, &len, &cap, "/composite/sobjects/") < 0 ||
            before_enc(&u, &len, &cap, op0->object) < 0 || before_cat(&u, &len, &cap, "?ids=") < 0)
            goto fail;
        for (size_t k = 0; k < call->nidx; k++) {
            if ((k > 0 && before_cat(&u, &len, &cap, ",") < 0) ||
                before_enc(&u, &len, &cap, ops->v[call->idx[k]].record_id) < 0)
                goto fail;
        }
        if (before_field_list(&u, &len, &cap, "&fields=", ops, call->idx, call->nidx, "Id") < 0 ||
            (bf->lastmod && before_cat(&u, &len, &cap, ",LastModifiedDate") < 0))
            goto fail;
    }
    call->url = u;
    return 0;
fail:
    free(u);
    return -1;
}

/* The record's fields as the CRM answered them: HubSpot's properties, Salesforce's row. */
static json_t *before_fields(enum crm crm, json_t *rec)
{
    json_t *out;

    if (!json_is_object(rec))
        return NULL;
    if (crm == CRM_HUBSPOT) {
        out = json_object_get(rec, "properties");
        return json_is_object(out) ? json_deep_copy(out) : NULL;
    }
    out = json_deep_copy(rec);
    if (out != NULL)
        json_object_del(out, "attributes");
    return out;
}

/* Which of the call's ops a batch answer's record belongs to, or -1. */
static long before_match(struct before_fetch *bf, struct before_call *call, json_t *rec, size_t pos)
{
    const struct crm_op *op0 = &bf->ops->v[call->idx[0]];
    const char *key;

    if (bf->crm == CRM_SALESFORCE)
        return pos < call->nidx ? (long)pos : -1; /* retrieve answers in the order asked */
    key = op0->id_property != NULL ? json_string_value(json_object_get(
                                         json_object_get(rec, "properties"), op0->id_property))
                                   : json_string_value(json_object_get(rec, "id"));
    if (key == NULL)
        return -1;
    for (size_t k = 0; k < call->nidx; k++) {
        const char *want = bf->ops->v[call->idx[k]].record_id;
        if (op0->id_property != NULL ? strcasecmp(want, key) == 0 : strcmp(want, key) == 0)
            return (long)k;
    }
    return -1;
}

static void before_free(struct before_fetch *bf)
{
    for (size_t i = 0; bf->res.before != NULL && i < bf->ops->n; i++)
        json_decref(bf->res.before[i]);
    free(bf->res.before);
    bf->res.before = NULL;
    free(bf->res.unknown);
    bf->res.unknown = NULL;
    if (bf->res.body != NULL)
        evbuffer_free(bf->res.body);
    bf->res.body = NULL;
    http_fields_free(&bf->res.quota);
    http_fields_free(&bf->res.headers);
    for (size_t i = 0; i < bf->ncalls; i++) {
        free(bf->calls[i].idx);
        free(bf->calls[i].url);
        free(bf->calls[i].body);
        http_fields_cleanse(&bf->calls[i].headers); /* they carry the credential */
    }
    free(bf->calls);
    if (bf->zero != NULL)
        event_free(bf->zero);
    free(bf);
}

static void before_finish(struct before_fetch *bf)
{
    bf->cb(&bf->res, bf->arg);
    before_free(bf);
}

/* Record the first failure (the one reported): what, and the CRM's status if it answered. */
static void before_fail(struct before_fetch *bf, long status, const char *what)
{
    if (!bf->res.ok)
        return;
    bf->res.ok = 0;
    bf->res.status = status;
    snprintf(bf->res.error, sizeof(bf->res.error),
             "crmgate could not read the record's current state: %s", what);
}

/* Keep the quota headers of rsp, the CRM's latest answer (before_result.quota); 0 / -1. */
static int before_keep_quota(struct before_fetch *bf, const struct upstream_response *rsp)
{
    http_fields_reset(&bf->res.quota);
    for (size_t k = 0; k < rsp->headers.n; k++) {
        size_t nl, vl;
        const char *n = http_field_name(&rsp->headers, k, &nl);
        const char *v = http_field_value(&rsp->headers, k, &vl);
        int quota = (nl > 20 && strncasecmp(n, "x-hubspot-ratelimit-", 20) == 0) ||
                    http_name_eq(n, nl, "sforce-limit-info") || http_name_eq(n, nl, "retry-after");
        if (quota && http_fields_add(&bf->res.quota, n, nl, v, vl) < 0)
            return -1;
    }
    return 0;
}

/* A credential shorter than this is not looked for in answers: it could not be told from
 * the data around it, which redacting would corrupt (real CRM tokens are far longer). */
#define BEFORE_REDACT_MIN 8

/*
 * Redact the credential this read carried (the integration's token, or the
 * agent's own) from its answer before anything is taken from it: a CRM that
 * echoes it (in a field's value, an error message) must not put it in an
 * audit record, the dry-run overlay or the agent's answer. 0 / -1.
 */
static int before_scrub(const struct before_call *call, struct upstream_response *rsp)
{
    long i = http_fields_find(&call->headers, "authorization", 0);
    size_t vl;
    const char *v, *tok;

    if (i < 0 || rsp->body == NULL)
        return 0;
    v = http_field_value(&call->headers, (size_t)i, &vl);
    tok = memchr(v, ' ', vl);
    tok = tok != NULL ? tok + 1 : v;
    while (tok < v + vl && *tok == ' ')
        tok++;
    if ((size_t)(v + vl - tok) < BEFORE_REDACT_MIN)
        return 0;
    return upstream_redact(&rsp->body, tok, (size_t)(v + vl - tok)) < 0 ? -1 : 0;
}

static void before_donecb(struct upstream_response *rsp, void *arg)
{
    struct before_call *call = arg;
    struct before_fetch *bf = call->bf;
    json_t *root = NULL;

    call->xfer = NULL;
    if (rsp->result == CURLE_OK &&
        (before_scrub(call, rsp) < 0 || before_keep_quota(bf, rsp) < 0)) {
        before_fail(bf, 0, "out of memory");
    } else if (rsp->result != CURLE_OK) {
        if (bf->res.ok && rsp->result == CURLE_OPERATION_TIMEDOUT)
            bf->res.timed_out = 1;
        before_fail(bf, 0, rsp->error);
    } else if ((rsp->status == 404 || rsp->status == 300) && !call->batch) {
        /* no such record (an upsert creates it, an update gets the CRM's own 404), or an
         * external id matching several (the CRM answers the write with its own 300) */
    } else if (rsp->status == 400) {
        for (size_t k = 0; k < call->nidx; k++)
            bf->res.unknown[call->idx[k]] = 1;
    } else if (rsp->status < 200 || rsp->status > 299) {
        char st[64];
        snprintf(st, sizeof(st), "the CRM answered %ld", rsp->status);
        if (bf->res.ok && rsp->status < 500) {
            /* kept so the agent gets the CRM's own refusal (a bad field, an expired token, a
             * rate limit with its Retry-After and X-HubSpot-RateLimit-* headers) */
            bf->res.body = rsp->body;
            rsp->body = NULL;
            bf->res.headers = rsp->headers;
            memset(&rsp->headers, 0, sizeof(rsp->headers));
        }
        before_fail(bf, rsp->status, st);
    } else if (bf->crm == CRM_HUBSPOT && !call->batch) {
        /* Only the record's properties are kept: the whole answer is validated and just those
         * parsed, in one pass (its propertiesWithHistory and the rest are most of the bytes). */
        size_t len = evbuffer_get_length(rsp->body);
        const char *body = (const char *)evbuffer_pullup(rsp->body, -1);
        json_t *f = NULL;
        int found = jsonfilter_member_value(body, len, "properties", &f, NULL, 0);
        if (found == -2) {
            before_fail(bf, 0, "out of memory");
        } else if (found < 0) {
            before_fail(bf, 0, "the CRM's answer is not JSON");
        } else if (found == 0 || !json_is_object(f)) {
            /* a record HubSpot has always comes with its properties: without them its
             * before-state is not known, and recording "none" would make one up */
            before_fail(bf, 0, "the CRM's answer has no properties object");
            json_decref(f);
        } else {
            json_decref(bf->res.before[call->idx[0]]);
            bf->res.before[call->idx[0]] = f;
        }
    } else {
        size_t len = evbuffer_get_length(rsp->body);
        const char *body = (const char *)evbuffer_pullup(rsp->body, -1);
        json_t *arr = NULL;
        /* the fast parser (json_loadb's tree); jansson for what it refuses (deeper nesting) */
        root = jsonfilter_parse(body, len, NULL, 0);
        if (root == NULL)
            root = json_loadb(body, len, 0, NULL);
        if (root == NULL) {
            before_fail(bf, 0, "the CRM's answer is not JSON");
        } else if (!call->batch) {
            /* a Salesforce row always has its Id (asked for, or the whole record): an answer
             * without one, or no object at all, is not the record, and not its absence */
            if (!json_is_object(root) || !json_is_string(json_object_get(root, "Id"))) {
                before_fail(bf, 0, "the CRM's answer is not a record");
            } else {
                json_decref(bf->res.before[call->idx[0]]);
                bf->res.before[call->idx[0]] = before_fields(bf->crm, root);
            }
        } else if (!json_is_array(arr = bf->crm == CRM_HUBSPOT ? json_object_get(root, "results")
                                                               : root)) {
            before_fail(bf, 0, "the CRM's answer is not a list of records");
        } else {
            size_t i;
            json_t *rec;
            json_array_foreach(arr, i, rec)
            {
                long k = before_match(bf, call, rec, i);
                json_t *f;
                if (k < 0 || json_is_null(rec))
                    continue;
                if ((f = before_fields(bf->crm, rec)) == NULL) {
                    before_fail(bf, 0, "a record in the CRM's answer has no fields");
                    break;
                }
                json_decref(bf->res.before[call->idx[k]]);
                bf->res.before[call->idx[k]] = f;
            }
        }
    }
    json_decref(root);
    if (--bf->outstanding == 0)
        before_finish(bf);
}

static void before_zerocb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    before_finish(arg);
}

/* Group the ops that need reading into calls; 0, or -1 (too many calls / out of memory). */
static int before_plan(struct before_fetch *bf)
{
    const struct crm_ops *ops = bf->ops;
    size_t cap = bf->crm == CRM_HUBSPOT ? BEFORE_HS_BATCH : BEFORE_SF_RETRIEVE;
    char *taken = calloc(ops->n + 1, 1);

    if (taken == NULL)
        return -1;
    for (size_t i = 0; i < ops->n; i++) {
        const struct crm_op *op = &ops->v[i];
        struct before_call *call, *nc;
        /* Salesforce reads upserts by external id and deletes (whole records) one by one. */
        int single = bf->crm == CRM_SALESFORCE && (op->id_property != NULL || op->nwrites == 0);
        if (taken[i] || !before_needed(op))
            continue;
        if (bf->ncalls >= BEFORE_MAX_CALLS)
            goto fail;
        nc = realloc(bf->calls, (bf->ncalls + 1) * sizeof(*nc));
        if (nc == NULL)
            goto fail;
        bf->calls = nc;
        call = &bf->calls[bf->ncalls++];
        memset(call, 0, sizeof(*call));
        call->bf = bf;
        call->idx = calloc(cap, sizeof(size_t));
        if (call->idx == NULL)
            goto fail;
        call->idx[call->nidx++] = i;
        taken[i] = 1;
        for (size_t j = i + 1; j < ops->n && !single && call->nidx < cap; j++) {
            const struct crm_op *o2 = &ops->v[j];
            if (taken[j] || !before_needed(o2) || strcasecmp(o2->object, op->object) != 0 ||
                (o2->id_property == NULL) != (op->id_property == NULL) ||
                (op->id_property != NULL && strcasecmp(o2->id_property, op->id_property) != 0) ||
                (bf->crm == CRM_SALESFORCE && (o2->id_property != NULL || o2->nwrites == 0)))
                continue;
            call->idx[call->nidx++] = j;
            taken[j] = 1;
        }
        call->batch = call->nidx > 1;
    }
    free(taken);
    return 0;
fail:
    free(taken);
    return -1;
}

struct before_fetch *before_start(struct worker *w, enum crm crm, const char *base,
                                  const char *api_path, const struct http_fields *auth,
                                  const struct crm_ops *ops, int lastmod, const struct config *cfg,
                                  before_done_cb cb, void *arg)
{
    struct before_fetch *bf = calloc(1, sizeof(*bf));
    char ver[64];

    if (bf == NULL)
        return NULL;
    bf->lastmod = lastmod && crm == CRM_SALESFORCE;
    bf->w = w;
    bf->crm = crm;
    bf->ops = ops;
    bf->cb = cb;
    bf->arg = arg;
    bf->res.ok = 1;
    bf->res.before = calloc(ops->n + 1, sizeof(json_t *));
    bf->res.unknown = calloc(ops->n + 1, 1);
    if (bf->res.before == NULL || bf->res.unknown == NULL || before_plan(bf) < 0)
        goto fail;
    before_sf_version(api_path, ver, sizeof(ver));
    if (bf->ncalls == 0) {
        struct timeval now = {0, 0};
        bf->zero = evtimer_new(w->base, before_zerocb, bf);
        if (bf->zero == NULL || evtimer_add(bf->zero, &now) < 0)
            goto fail;
        return bf;
    }
    for (size_t i = 0; i < bf->ncalls; i++) {
        struct before_call *call = &bf->calls[i];
        struct upstream_request ur = {0};
        if (before_build(bf, call, base, ver) < 0 ||
            http_fields_add(&call->headers, "Accept", 6, "application/json", 16) < 0)
            goto fail;
        if (call->body != NULL &&
            http_fields_add(&call->headers, "Content-Type", 12, "application/json", 16) < 0)
            goto fail;
        for (size_t k = 0; auth != NULL && k < auth->n; k++) {
            size_t nl, vl;
            const char *n = http_field_name(auth, k, &nl);
            const char *v = http_field_value(auth, k, &vl);
            if (http_fields_add(&call->headers, n, nl, v, vl) < 0)
                goto fail;
        }
        ur.method = call->body != NULL ? "POST" : "GET";
        ur.url = call->url;
        ur.headers = &call->headers;
        ur.body = call->body;
        ur.body_len = call->body != NULL ? strlen(call->body) : 0;
        ur.has_body = call->body != NULL;
        ur.connect_timeout_ms = cfg->upstream_connect_timeout_ms;
        ur.timeout_ms = cfg->upstream_timeout_ms;
        ur.max_response = cfg->limits.response_bytes;
        ur.ca_bundle = cfg->ca_bundle;
        call->xfer = upstream_start(w->upstream, &ur, before_donecb, call);
        if (call->xfer == NULL) {
            /* the calls already started are abandoned with the fetch */
            for (size_t j = 0; j < i; j++)
                upstream_cancel(bf->calls[j].xfer);
            goto fail;
        }
        bf->outstanding++;
        bf->res.calls++;
        metrics_own_call(crm, METRICS_PURPOSE_BEFORE_STATE);
        log_debug("before-state read %zu/%zu: %s %s", i + 1, bf->ncalls, ur.method, crm_name(crm));
    }
    return bf;
fail:
    before_free(bf);
    return NULL;
}

void before_cancel(struct before_fetch *bf)
{
    for (size_t i = 0; i < bf->ncalls; i++) {
        if (bf->calls[i].xfer != NULL)
            upstream_cancel(bf->calls[i].xfer);
        bf->calls[i].xfer = NULL;
    }
    before_free(bf);
}
