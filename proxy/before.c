/*
 * before.c - reading a write's before-state from the CRM.
 *
 * Operations are grouped per object (and per id property): a group of one
 * is read with the single-record GET, a larger one with HubSpot batch/read
 * or Salesforce's collections retrieve, so a batch of a hundred updates
 * costs one read, not a hundred. Salesforce upserts by external id and
 * deletes (which need the whole record) are read one by one. Single-record
 * reads of concurrent requests are folded the same way (below).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "../policy/diff.h"
#include "../policy/jsonfilter.h"
#include "../policy/salesforce.h"
#include "before.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "upstream.h"

struct before_queue;
struct before_fold;

struct before_call {
    struct before_fetch *bf;
    struct upstream_xfer *xfer;
    size_t *idx; /* the ops this call reads */
    size_t nidx;
    int batch; /* batch/read or collections retrieve: the answer holds several records */
    char *url;
    char *body;
    struct http_fields headers;
    struct before_queue *queue; /* waiting there to be folded, at slot */
    struct before_fold *fold;   /* read by that folded read, as its member slot */
    size_t slot;
};

struct before_fetch {
    struct worker *w;
    enum crm crm;
    const struct crm_ops *ops;
    const struct config *cfg;
    char *base;
    char ver[64]; /* Salesforce: "/services/data/vNN.N" */
    struct before_result res;
    struct before_call *calls;
    size_t ncalls, outstanding;
    struct event *zero; /* finishes the fetch from the loop: nothing to read, or a folded read
                           answered (never inside another request's callback) */
    before_done_cb cb;
    void *arg;
    int lastmod; /* Salesforce: read LastModifiedDate too */
};

/*
 * Folding. A single-record read waits in its worker's queue for a turn of
 * the loop (or before_read_window_ms), where the reads of other requests
 * for the same object type, id property, kind (HubSpot deletes fold only
 * with deletes), Salesforce API version and the very same credential join
 * it; the group is then read with one batch read (or, when every request
 * names the same record, with that record's read asking for all their
 * fields). A group of one is read as it was built. Each request keeps
 * only what its own read would have returned (the fields only others
 * asked for are dropped). A folded read refused 400 or 404 (a bad field, a
 * malformed id: one request's fault) or as too large (413, 414, 431: the
 * fold's own doing) is redone request by request; any other refusal is
 * every request's, as its own read would have got it from the same CRM
 * with the same credential.
 */
struct before_queue {
    struct worker *w;
    struct event *timer;
    struct before_call **v; /* NULL: cancelled */
    size_t n, cap, live;
};

struct before_fold {
    enum crm crm;
    struct before_call **member; /* NULL once its fetch is cancelled */
    size_t n, live;
    char **id; /* the distinct records asked for, in order (copies: members may go) */
    size_t nid;
    size_t *which; /* member k reads id[which[k]] */
    char *idprop;  /* HubSpot idProperty, or NULL */
    json_t *names; /* every field some member writes, once (an array of strings) */
    struct upstream_xfer *xfer;
    char *url, *body;
    struct http_fields headers; /* the members' own: they carry the credential */
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

/* The names ops v[0..n) write, comma-separated and encoded, appended after key= (nothing if
 * none). */
static int before_field_list(char **out, size_t *len, size_t *cap, const char *key,
                             const struct crm_op *const *v, size_t n, const char *extra)
{
    int first = 1;

    if (extra != NULL) {
        if (before_cat(out, len, cap, key) < 0 || before_enc(out, len, cap, extra) < 0)
            return -1;
        first = 0;
    }
    for (size_t k = 0; k < n; k++) {
        const struct crm_op *op = v[k];
        for (size_t i = 0; i < op->nwrites; i++) {
            int seen = extra != NULL && strcasecmp(extra, op->writes[i].name) == 0;
            for (size_t k2 = 0; k2 <= k && !seen; k2++) {
                const struct crm_op *o2 = v[k2];
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

/*
 * What one read asks for: the records rec[0..nrec) (one, unless batch) and the fields that the
 * ops fop[0..nfop) write (the same ops, unless the read is folded: then every request's op).
 */
struct before_ask {
    enum crm crm;
    int batch;
    int lastmod;
    const struct crm_op *const *rec;
    size_t nrec;
    const struct crm_op *const *fop;
    size_t nfop;
};

/* Whether the array of names arr has name (compared as before_field_list does). */
static int before_listed(const json_t *arr, const char *name)
{
    size_t i;
    const json_t *v;

    json_array_foreach(arr, i, v)
    {
        if (strcasecmp(json_string_value(v), name) == 0)
            return 1;
    }
    return 0;
}

/* Build the URL (and body, for HubSpot's batch/read) of a read; 0 / -1. */
static int before_build(const struct before_ask *a, const char *base, const char *ver, char **url,
                        char **body)
{
    const struct crm_op *op0 = a->rec[0];
    char *u = NULL;
    size_t len = 0, cap = 0;
    int del = op0->nwrites == 0;

    if (before_cat(&u, &len, &cap, base) < 0)
        goto fail;
    if (a->crm == CRM_HUBSPOT && !a->batch) {
        if (before_cat(&u, &len, &cap, "/crm/v3/objects/") < 0 ||
            before_enc(&u, &len, &cap, op0->object) < 0 || before_cat(&u, &len, &cap, "/") < 0 ||
            before_enc(&u, &len, &cap, op0->record_id) < 0 ||
            before_cat(&u, &len, &cap, "?archived=false") < 0 ||
            before_field_list(&u, &len, &cap, "&properties=", a->fop, a->nfop, op0->id_property) <
                0 ||
            before_field_list(&u, &len, &cap, "&propertiesWithHistory=", a->fop, a->nfop, NULL) < 0)
            goto fail;
        if (op0->id_property != NULL && (before_cat(&u, &len, &cap, "&idProperty=") < 0 ||
                                         before_enc(&u, &len, &cap, op0->id_property) < 0))
            goto fail;
    } else if (a->crm == CRM_HUBSPOT) {
        json_t *b = json_object(), *props = json_array(), *hist = json_array(),
               *inputs = json_array();
        int bad = b == NULL || props == NULL || hist == NULL || inputs == NULL;
        if (!bad && op0->id_property != NULL)
            bad = json_array_append_new(props, json_string(op0->id_property)) < 0;
        for (size_t k = 0; k < a->nrec && !bad; k++)
            bad = json_array_append_new(inputs, json_pack("{s:s}", "id", a->rec[k]->record_id)) < 0;
        for (size_t k = 0; k < a->nfop && !bad; k++) {
            const struct crm_op *op = a->fop[k];
            for (size_t i = 0; i < op->nwrites && !bad; i++) {
                json_t *name;
                if (before_listed(hist, op->writes[i].name))
                    continue; /* each name once, as the single read's list has it */
                name = json_string(op->writes[i].name);
                bad = json_array_append(props, name) < 0 || json_array_append(hist, name) < 0;
                json_decref(name);
            }
        }
        if (!bad)
            bad = json_object_set(b, "inputs", inputs) < 0 ||
                  (json_array_size(props) > 0 && json_object_set(b, "properties", props) < 0) ||
                  (json_array_size(hist) > 0 &&
                   json_object_set(b, "propertiesWithHistory", hist) < 0) ||
                  (op0->id_property != NULL &&
                   json_object_set_new(b, "idProperty", json_string(op0->id_property)) < 0);
        if (!bad)
            *body = json_dumps(b, JSON_COMPACT);
        json_decref(b);
        json_decref(props);
        json_decref(hist);
        json_decref(inputs);
        if (bad || *body == NULL || before_cat(&u, &len, &cap, "/crm/v3/objects/") < 0 ||
            before_enc(&u, &len, &cap, op0->object) < 0 ||
            before_cat(&u, &len, &cap, "/batch/read?archived=false") < 0)
            goto fail;
    } else if (!a->batch) {
        if (before_cat(&u, &len, &cap, ver) < 0 || before_cat(&u, &len, &cap, "/sobjects/") < 0 ||
            before_enc(&u, &len, &cap, op0->object) < 0 || before_cat(&u, &len, &cap, "/") < 0)
            goto fail;
        if (op0->id_property != NULL && (before_enc(&u, &len, &cap, op0->id_property) < 0 ||
                                         before_cat(&u, &len, &cap, "/") < 0))
            goto fail;
        if (before_enc(&u, &len, &cap, op0->record_id) < 0)
            goto fail;
        /* A delete reads the whole record: no field list. */
        if (!del && (before_field_list(&u, &len, &cap, "?fields=", a->fop, a->nfop, "Id") < 0 ||
                     (a->lastmod && before_cat(&u, &len, &cap, ",LastModifiedDate") < 0)))
            goto fail;
    } else {
        if (before_cat(&u, &len, &cap, ver) < 0 ||
            before_cat(&u, &len, &cap, "/composite/sobjects/") < 0 ||
            before_enc(&u, &len, &cap, op0->object) < 0 || before_cat(&u, &len, &cap, "?ids=") < 0)
            goto fail;
        for (size_t k = 0; k < a->nrec; k++) {
            if ((k > 0 && before_cat(&u, &len, &cap, ",") < 0) ||
                before_enc(&u, &len, &cap, a->rec[k]->record_id) < 0)
                goto fail;
        }
        if (before_field_list(&u, &len, &cap, "&fields=", a->fop, a->nfop, "Id") < 0 ||
            (a->lastmod && before_cat(&u, &len, &cap, ",LastModifiedDate") < 0))
            goto fail;
    }
    *url = u;
    return 0;
fail:
    free(u);
    free(*body);
    *body = NULL;
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

/*
 * Which of the records asked for (ids[0..n), by the id property idprop when not NULL) a batch
 * answer's record at pos belongs to, or -1.
 */
static long before_match(enum crm crm, const char *const *ids, size_t n, const char *idprop,
                         json_t *rec, size_t pos)
{
    const char *key;

    if (crm == CRM_SALESFORCE)
        return pos < n ? (long)pos : -1; /* retrieve answers in the order asked */
    key = idprop != NULL
              ? json_string_value(json_object_get(json_object_get(rec, "properties"), idprop))
              : json_string_value(json_object_get(rec, "id"));
    if (key == NULL)
        return -1;
    for (size_t k = 0; k < n; k++) {
        if (idprop != NULL ? strcasecmp(ids[k], key) == 0 : strcmp(ids[k], key) == 0)
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
    free(bf->base);
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
static int before_scrub(const struct http_fields *headers, struct upstream_response *rsp)
{
    long i = http_fields_find(headers, "authorization", 0);
    size_t vl;
    const char *v, *tok;

    if (i < 0 || rsp->body == NULL)
        return 0;
    v = http_field_value(headers, (size_t)i, &vl);
    tok = memchr(v, ' ', vl);
    tok = tok != NULL ? tok + 1 : v;
    while (tok < v + vl && *tok == ' ')
        tok++;
    if ((size_t)(v + vl - tok) < BEFORE_REDACT_MIN)
        return 0;
    return upstream_redact(&rsp->body, tok, (size_t)(v + vl - tok)) < 0 ? -1 : 0;
}

/*
 * The CRM refused a read (not 2xx), or the read failed: record it in bf.
 * shared: the answer is a folded read's, every request gets its own copy.
 */
static void before_refused(struct before_fetch *bf, struct upstream_response *rsp, int shared)
{
    char st[64];

    if (rsp->result != CURLE_OK) {
        if (bf->res.ok && rsp->result == CURLE_OPERATION_TIMEDOUT)
            bf->res.timed_out = 1;
        before_fail(bf, 0, rsp->error);
        return;
    }
    snprintf(st, sizeof(st), "the CRM answered %ld", rsp->status);
    if (bf->res.ok && rsp->status < 500) {
        /* kept so the agent gets the CRM's own refusal (a bad field, an expired token, a
         * rate limit with its Retry-After and X-HubSpot-RateLimit-* headers) */
        if (!shared) {
            bf->res.body = rsp->body;
            rsp->body = NULL;
            bf->res.headers = rsp->headers;
            memset(&rsp->headers, 0, sizeof(rsp->headers));
        } else if ((rsp->body != NULL && (bf->res.body = evbuffer_new()) == NULL) ||
                   (rsp->body != NULL && evbuffer_add(bf->res.body, evbuffer_pullup(rsp->body, -1),
                                                      evbuffer_get_length(rsp->body)) < 0) ||
                   http_fields_copy(&bf->res.headers, &rsp->headers) < 0) {
            before_fail(bf, 0, "out of memory");
            return;
        }
    }
    before_fail(bf, rsp->status, st);
}

/*
 * A 2xx answer's body as JSON: the fast parser, jansson for what it refuses
 * (deeper nesting). HubSpot records' propertiesWithHistory, most of a batch
 * answer's bytes, are validated but not built: only properties are kept.
 */
static json_t *before_json(enum crm crm, struct upstream_response *rsp)
{
    size_t len = evbuffer_get_length(rsp->body);
    const char *body = (const char *)evbuffer_pullup(rsp->body, -1);
    json_t *root = crm == CRM_HUBSPOT
                       ? jsonfilter_parse_without(body, len, "propertiesWithHistory", NULL, 0)
                       : jsonfilter_parse(body, len, NULL, 0);

    return root != NULL ? root : json_loadb(body, len, 0, NULL);
}

/*
 * The records of a read's 2xx answer: got[k], the fields of record ids[k]
 * (found by the id property idprop when not NULL), or NULL when the answer
 * does not have it. stray (may be NULL): the answer's records that match no
 * id asked for, or one already matched (HubSpot answers a merged-away id
 * with the primary record, under the primary's id). 0, or -1 with why: the
 * answer is not what was asked for (nothing is taken from it).
 */
static int before_parse(enum crm crm, int batch, const char *const *ids, size_t n,
                        const char *idprop, struct upstream_response *rsp, json_t **got,
                        const char **why, size_t *stray)
{
    json_t *root, *arr, *rec;
    size_t i;

    if (crm == CRM_HUBSPOT && !batch) {
        /* Only the record's properties are kept: the whole answer is validated and just those
         * parsed, in one pass (its propertiesWithHistory and the rest are most of the bytes). */
        size_t len = evbuffer_get_length(rsp->body);
        const char *body = (const char *)evbuffer_pullup(rsp->body, -1);
        json_t *f = NULL;
        int found = jsonfilter_member_value(body, len, "properties", &f, NULL, 0);
        if (found == -2) {
            *why = "out of memory";
        } else if (found < 0) {
            *why = "the CRM's answer is not JSON";
        } else if (found == 0 || !json_is_object(f)) {
            /* a record HubSpot has always comes with its properties: without them its
             * before-state is not known, and recording "none" would make one up */
            *why = "the CRM's answer has no properties object";
            json_decref(f);
        } else {
            got[0] = f;
            return 0;
        }
        return -1;
    }
    if ((root = before_json(crm, rsp)) == NULL) {
        *why = "the CRM's answer is not JSON";
        return -1;
    }
    if (!batch) {
        /* a Salesforce row always has its Id (asked for, or the whole record): an answer
         * without one, or no object at all, is not the record, and not its absence */
        if (!json_is_object(root) || !json_is_string(json_object_get(root, "Id"))) {
            *why = "the CRM's answer is not a record";
            goto fail;
        }
        got[0] = before_fields(crm, root);
        json_decref(root);
        return 0;
    }
    if (!json_is_array(arr = crm == CRM_HUBSPOT ? json_object_get(root, "results") : root)) {
        *why = "the CRM's answer is not a list of records";
        goto fail;
    }
    json_array_foreach(arr, i, rec)
    {
        long k = before_match(crm, ids, n, idprop, rec, i);
        json_t *f;
        if (json_is_null(rec))
            continue;
        if (stray != NULL && (k < 0 || got[k] != NULL))
            (*stray)++;
        if (k < 0)
            continue;
        if ((f = before_fields(crm, rec)) == NULL) {
            *why = "a record in the CRM's answer has no fields";
            goto fail;
        }
        json_decref(got[k]);
        got[k] = f;
    }
    json_decref(root);
    return 0;
fail:
    json_decref(root);
    for (size_t k = 0; k < n; k++) {
        json_decref(got[k]);
        got[k] = NULL;
    }
    return -1;
}

static void before_donecb(struct upstream_response *rsp, void *arg)
{
    struct before_call *call = arg;
    struct before_fetch *bf = call->bf;
    int ok = rsp->result == CURLE_OK;

    call->xfer = NULL;
    if (ok && (before_scrub(&call->headers, rsp) < 0 || before_keep_quota(bf, rsp) < 0)) {
        before_fail(bf, 0, "out of memory");
    } else if (ok && (rsp->status == 404 || rsp->status == 300) && !call->batch) {
        /* no such record (an upsert creates it, an update gets the CRM's own 404), or an
         * external id matching several (the CRM answers the write with its own 300) */
    } else if (ok && rsp->status == 400) {
        for (size_t k = 0; k < call->nidx; k++)
            bf->res.unknown[call->idx[k]] = 1;
    } else if (!ok || rsp->status < 200 || rsp->status > 299) {
        before_refused(bf, rsp, 0);
    } else {
        const char **ids = calloc(call->nidx, sizeof(*ids));
        json_t **got = calloc(call->nidx, sizeof(*got));
        const char *why = "out of memory";
        for (size_t k = 0; ids != NULL && k < call->nidx; k++)
            ids[k] = bf->ops->v[call->idx[k]].record_id;
        if (ids == NULL || got == NULL ||
            before_parse(bf->crm, call->batch, ids, call->nidx,
                         bf->ops->v[call->idx[0]].id_property, rsp, got, &why, NULL) < 0) {
            before_fail(bf, 0, why);
        } else {
            for (size_t k = 0; k < call->nidx; k++) {
                json_decref(bf->res.before[call->idx[k]]);
                bf->res.before[call->idx[k]] = got[k];
            }
        }
        free(ids);
        free(got);
    }
    if (--bf->outstanding == 0)
        before_finish(bf);
}

static void before_zerocb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    before_finish(arg);
}

/* One of bf's reads is done: when it was the last, finish from the loop. */
static void before_settle(struct before_fetch *bf)
{
    if (--bf->outstanding == 0)
        event_active(bf->zero, EV_TIMEOUT, 1);
}

/* Start a read of url (a POST when body is not NULL) for bf. NULL: curl refused it. */
static struct upstream_xfer *before_send(struct before_fetch *bf, const char *url, const char *body,
                                         const struct http_fields *headers, upstream_done_cb cb,
                                         void *arg)
{
    struct upstream_request ur = {0};

    ur.method = body != NULL ? "POST" : "GET";
    ur.url = url;
    ur.headers = headers;
    ur.body = body;
    ur.body_len = body != NULL ? strlen(body) : 0;
    ur.has_body = body != NULL;
    ur.connect_timeout_ms = bf->cfg->upstream_connect_timeout_ms;
    ur.timeout_ms = bf->cfg->upstream_timeout_ms;
    ur.max_response = bf->cfg->limits.response_bytes;
    ur.ca_bundle = bf->cfg->ca_bundle;
    return upstream_start(bf->w->upstream, &ur, cb, arg);
}

/* Start call's own read; 0 / -1 (curl refused it: no callback). */
static int before_launch(struct before_call *call)
{
    struct before_fetch *bf = call->bf;

    call->xfer = before_send(bf, call->url, call->body, &call->headers, before_donecb, call);
    if (call->xfer == NULL)
        return -1;
    bf->res.calls++;
    metrics_own_call(bf->crm, METRICS_PURPOSE_BEFORE_STATE);
    log_debug("before-state read: %s %s", call->body != NULL ? "POST" : "GET", crm_name(bf->crm));
    return 0;
}

/* Start a queued call's own read; if curl refuses, its fetch fails (from the loop). */
static void before_go(struct before_call *call)
{
    if (before_launch(call) == 0)
        return;
    before_fail(call->bf, 0, "the read could not be started");
    before_settle(call->bf);
}

static const struct crm_op *before_call_op(const struct before_call *call)
{
    return &call->bf->ops->v[call->idx[0]];
}

/* Whether call may wait to be folded: a single-record read the CRM can also batch. */
static int before_foldable(const struct before_call *call)
{
    const struct crm_op *op = before_call_op(call);
    const char *owner;

    if (call->batch)
        return 0;
    if (call->bf->crm != CRM_SALESFORCE)
        return 1;
    /* Salesforce: only ids whose key prefix is the object's, as far as crmgate knows: the
     * collections retrieve answers null for an id of no such record, where the record's own
     * read may refuse it (400), which a write's before-state must tell apart */
    owner = strlen(op->record_id) >= 3 ? sf_object_for_id(NULL, op->record_id) : NULL;
    return op->id_property == NULL && op->nwrites > 0 && owner != NULL &&
           strcasecmp(owner, op->object) == 0;
}

/* Whether two queued reads can be one: same CRM, object, kind, version and credential. */
static int before_same_read(const struct before_call *a, const struct before_call *b)
{
    const struct before_fetch *fa = a->bf, *fb = b->bf;
    const struct crm_op *oa = before_call_op(a), *ob = before_call_op(b);

    return fa->crm == fb->crm && fa->cfg == fb->cfg && fa->lastmod == fb->lastmod &&
           strcmp(fa->base, fb->base) == 0 && strcmp(fa->ver, fb->ver) == 0 &&
           strcmp(oa->object, ob->object) == 0 && (oa->nwrites == 0) == (ob->nwrites == 0) &&
           (oa->id_property == NULL) == (ob->id_property == NULL) &&
           (oa->id_property == NULL || strcmp(oa->id_property, ob->id_property) == 0) &&
           a->headers.n == b->headers.n && a->headers.len == b->headers.len &&
           memcmp(a->headers.buf, b->headers.buf, a->headers.len) == 0 &&
           memcmp(a->headers.f, b->headers.f, a->headers.n * sizeof(*a->headers.f)) == 0;
}

static void before_fold_free(struct before_fold *f)
{
    for (size_t k = 0; f->id != NULL && k < f->nid; k++)
        free(f->id[k]);
    free(f->id);
    json_decref(f->names);
    free(f->which);
    free(f->idprop);
    free(f->member);
    free(f->url);
    free(f->body);
    http_fields_cleanse(&f->headers);
    free(f);
}

/* Whether op asks for the field name: it writes it, or every read asks for it. */
static int before_asks(const struct crm_op *op, const char *name)
{
    if (strcasecmp(name, "Id") == 0 || strcasecmp(name, "LastModifiedDate") == 0 ||
        (op->id_property != NULL && strcasecmp(name, op->id_property) == 0))
        return 1;
    for (size_t i = 0; i < op->nwrites; i++) {
        if (strcasecmp(op->writes[i].name, name) == 0)
            return 1;
    }
    return 0;
}

/* A copy of a folded read's record for the member op: without what only others asked for. */
static json_t *before_own_copy(const struct before_fold *f, const struct crm_op *op, json_t *rec)
{
    json_t *out = json_deep_copy(rec), *v;
    const char *key;
    void *tmp;

    if (out == NULL)
        return NULL;
    json_object_foreach_safe(out, tmp, key, v)
    {
        if (before_listed(f->names, key) && !before_asks(op, key))
            json_object_del(out, key);
    }
    return out;
}

static void before_fold_donecb(struct upstream_response *rsp, void *arg)
{
    struct before_fold *f = arg;
    json_t **got = NULL;
    const char *why = NULL;
    int ok = rsp->result == CURLE_OK, redo = 0, answered = 0;
    size_t stray = 0, alone = 0;

    f->xfer = NULL;
    if (ok && before_scrub(&f->headers, rsp) < 0) {
        why = "out of memory";
    } else if (ok && (rsp->status == 400 || (rsp->status == 404 && f->nid > 1))) {
        redo = 1; /* maybe one request's fault (a bad field, a malformed id): each reads alone */
    } else if (ok && (rsp->status == 413 || rsp->status == 414 || rsp->status == 431)) {
        redo = 1; /* the fold's own doing (every request's records and fields in one URL or
                     body): no request's own read is that large */
    } else if (ok && (rsp->status == 404 || rsp->status == 300)) {
        answered = 1; /* the one record asked for: none, or several (as its own read says) */
    } else if (ok && rsp->status >= 200 && rsp->status <= 299) {
        if ((got = calloc(f->nid, sizeof(*got))) == NULL)
            why = "out of memory";
        else if (before_parse(f->crm, f->nid > 1, (const char *const *)f->id, f->nid, f->idprop,
                              rsp, got, &why, &stray) == 0)
            answered = 1;
    }
    for (size_t k = 0; k < f->n; k++) {
        struct before_call *m = f->member[k];
        struct before_fetch *bf;
        json_t *rec;
        if (m == NULL)
            continue; /* its request left */
        f->member[k] = NULL;
        m->fold = NULL;
        bf = m->bf;
        rec = got != NULL ? got[f->which[k]] : NULL;
        if (redo || (answered && stray > 0 && rec == NULL)) {
            /* a record the answer could not place may be this one's (a merged-away id): its
             * own read tells, as it follows the merge */
            alone++;
            before_go(m);
            continue;
        }
        if (ok && why == NULL && before_keep_quota(bf, rsp) < 0) {
            before_fail(bf, 0, "out of memory");
        } else if (why != NULL) {
            before_fail(bf, 0, why);
        } else if (!answered) {
            before_refused(bf, rsp, 1);
        } else if (rec != NULL) {
            json_t *own = before_own_copy(f, before_call_op(m), rec);
            if (own == NULL)
                before_fail(bf, 0, "out of memory");
            json_decref(bf->res.before[m->idx[0]]);
            bf->res.before[m->idx[0]] = own;
        }
        before_settle(bf);
    }
    if (answered && f->n > alone + 1)
        metrics_before_folded(f->crm, (unsigned)(f->n - alone - 1));
    for (size_t k = 0; got != NULL && k < f->nid; k++)
        json_decref(got[k]);
    free(got);
    before_fold_free(f);
}

/*
 * Read the queued calls m[0..n) (n > 1, alike by before_same_read) with one
 * read: the fold takes m. 0, or -1 (nothing started; m is still the caller's).
 */
static int before_fold_start(struct before_call **m, size_t n)
{
    struct before_fetch *bf0 = m[0]->bf;
    const struct crm_op *op0 = before_call_op(m[0]);
    const struct crm_op **fop = calloc(n, sizeof(*fop)), **rec = calloc(n, sizeof(*rec));
    struct before_fold *f = calloc(1, sizeof(*f));
    struct before_ask ask = {0};

    if (f == NULL || fop == NULL || rec == NULL || (f->names = json_array()) == NULL ||
        (f->id = calloc(n, sizeof(char *))) == NULL ||
        (f->which = calloc(n, sizeof(size_t))) == NULL ||
        (op0->id_property != NULL && (f->idprop = strdup(op0->id_property)) == NULL))
        goto fail;
    f->crm = bf0->crm;
    for (size_t k = 0; k < n; k++) {
        const struct crm_op *op = before_call_op(m[k]);
        size_t u = 0;
        while (u < f->nid && (f->idprop != NULL ? strcasecmp(f->id[u], op->record_id)
                                                : strcmp(f->id[u], op->record_id)) != 0)
            u++;
        if (u == f->nid) {
            if ((f->id[u] = strdup(op->record_id)) == NULL)
                goto fail;
            rec[f->nid++] = op;
        }
        f->which[k] = u;
        fop[k] = op;
        for (size_t i = 0; i < op->nwrites; i++) {
            const char *name = op->writes[i].name;
            if (!before_listed(f->names, name) &&
                json_array_append_new(f->names, json_string(name)) < 0)
                goto fail;
        }
    }
    /* one record (writes to the same record): its single-record read, with every field */
    ask = (struct before_ask){bf0->crm, f->nid > 1, bf0->lastmod, rec, f->nid, fop, n};
    /* the credential last, as before_start puts it: nothing added after it can move (realloc)
     * the buffer, leaving a copy of it in freed memory */
    if (before_build(&ask, bf0->base, bf0->ver, &f->url, &f->body) < 0 ||
        (f->body != NULL &&
         http_fields_add(&f->headers, "Content-Type", 12, "application/json", 16) < 0) ||
        http_fields_copy(&f->headers, &m[0]->headers) < 0)
        goto fail;
    f->xfer = before_send(bf0, f->url, f->body, &f->headers, before_fold_donecb, f);
    if (f->xfer == NULL)
        goto fail;
    f->member = m;
    f->n = f->live = n;
    for (size_t k = 0; k < n; k++) {
        m[k]->fold = f;
        m[k]->slot = k;
        m[k]->bf->res.calls++;
    }
    metrics_own_call(f->crm, METRICS_PURPOSE_BEFORE_STATE);
    log_debug("before-state read folded for %zu requests (%zu records): %s", n, f->nid,
              crm_name(f->crm));
    free(fop);
    free(rec);
    return 0;
fail:
    free(fop);
    free(rec);
    if (f != NULL)
        before_fold_free(f);
    return -1;
}

static void before_queue_free(struct before_queue *q)
{
    if (q->w->before_q == q)
        q->w->before_q = NULL;
    event_free(q->timer);
    free(q->v);
    free(q);
}

/* The window is over: group the queued reads and start them. */
static void before_flushcb(evutil_socket_t fd, short what, void *arg)
{
    struct before_queue *q = arg;

    (void)fd, (void)what;
    if (q->w->before_q == q)
        q->w->before_q = NULL; /* reads queued from now on wait for the next window */
    for (size_t i = 0; i < q->n; i++) {
        struct before_call *call = q->v[i], **m;
        size_t n = 1, cap;
        if (call == NULL)
            continue;
        cap = call->bf->crm == CRM_SALESFORCE     ? BEFORE_SF_RETRIEVE
              : before_call_op(call)->nwrites > 0 ? BEFORE_HS_HISTORY
                                                  : BEFORE_HS_BATCH;
        for (size_t j = i + 1; j < q->n && n < cap; j++)
            n += q->v[j] != NULL && before_same_read(call, q->v[j]);
        if (n > 1 && (m = calloc(n, sizeof(*m))) != NULL) {
            size_t k = 0;
            for (size_t j = i; j < q->n && k < n; j++) {
                if (q->v[j] != NULL && (j == i || before_same_read(call, q->v[j])))
                    m[k++] = q->v[j];
            }
            for (k = 0; k < n; k++) {
                q->v[m[k]->slot] = NULL;
                m[k]->queue = NULL;
            }
            if (before_fold_start(m, n) < 0) {
                for (k = 0; k < n; k++)
                    before_go(m[k]);
                free(m);
            }
            continue;
        }
        q->v[i] = NULL;
        call->queue = NULL;
        before_go(call);
    }
    before_queue_free(q);
}

/* Queue call in its worker to be folded with other requests' reads; 0 / -1 (not queued). */
static int before_enqueue(struct before_call *call)
{
    struct before_fetch *bf = call->bf;
    struct worker *w = bf->w;
    struct before_queue *q = w->before_q;

    if (bf->zero == NULL && (bf->zero = evtimer_new(w->base, before_zerocb, bf)) == NULL)
        return -1;
    if (q == NULL) {
        unsigned ms = bf->cfg->before_read_window_ms;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        if ((q = calloc(1, sizeof(*q))) == NULL)
            return -1;
        q->w = w;
        if ((q->timer = evtimer_new(w->base, before_flushcb, q)) == NULL ||
            evtimer_add(q->timer, &tv) < 0) {
            if (q->timer != NULL)
                event_free(q->timer);
            free(q);
            return -1;
        }
        w->before_q = q;
    }
    if (q->n == q->cap) {
        size_t ncap = q->cap * 2 + 16;
        struct before_call **nv = realloc(q->v, ncap * sizeof(*nv));
        if (nv == NULL) {
            if (q->live == 0)
                before_queue_free(q);
            return -1;
        }
        q->v = nv;
        q->cap = ncap;
    }
    call->queue = q;
    call->slot = q->n;
    q->v[q->n++] = call;
    q->live++;
    return 0;
}

/* Stop every read of bf: started, queued or part of a folded read (which goes on for the
 * others). */
static void before_detach(struct before_fetch *bf)
{
    for (size_t i = 0; i < bf->ncalls; i++) {
        struct before_call *call = &bf->calls[i];
        if (call->xfer != NULL)
            upstream_cancel(call->xfer);
        call->xfer = NULL;
        if (call->queue != NULL) {
            struct before_queue *q = call->queue;
            q->v[call->slot] = NULL;
            call->queue = NULL;
            if (--q->live == 0)
                before_queue_free(q);
        }
        if (call->fold != NULL) {
            struct before_fold *f = call->fold;
            f->member[call->slot] = NULL;
            call->fold = NULL;
            if (--f->live == 0) {
                upstream_cancel(f->xfer);
                before_fold_free(f);
            }
        }
    }
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
        int single = bf->crm == CRM_SALESFORCE && (op->id_property != NULL || op->nwrites == 0),
            hist;
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
        /* HubSpot: a read asking for property histories (an op that writes) takes fewer */
        hist = bf->crm == CRM_HUBSPOT && op->nwrites > 0;
        for (size_t j = i + 1; j < ops->n && !single && call->nidx < cap; j++) {
            const struct crm_op *o2 = &ops->v[j];
            if (taken[j] || !before_needed(o2) || strcasecmp(o2->object, op->object) != 0 ||
                (o2->id_property == NULL) != (op->id_property == NULL) ||
                (op->id_property != NULL && strcasecmp(o2->id_property, op->id_property) != 0) ||
                (bf->crm == CRM_SALESFORCE && (o2->id_property != NULL || o2->nwrites == 0)) ||
                ((hist || (bf->crm == CRM_HUBSPOT && o2->nwrites > 0)) &&
                 call->nidx >= BEFORE_HS_HISTORY))
                continue;
            hist |= bf->crm == CRM_HUBSPOT && o2->nwrites > 0;
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

    if (bf == NULL)
        return NULL;
    bf->lastmod = lastmod && crm == CRM_SALESFORCE;
    bf->w = w;
    bf->crm = crm;
    bf->ops = ops;
    bf->cfg = cfg;
    bf->cb = cb;
    bf->arg = arg;
    bf->res.ok = 1;
    bf->res.before = calloc(ops->n + 1, sizeof(json_t *));
    bf->res.unknown = calloc(ops->n + 1, 1);
    bf->base = strdup(base);
    if (bf->res.before == NULL || bf->res.unknown == NULL || bf->base == NULL ||
        before_plan(bf) < 0)
        goto fail;
    before_sf_version(api_path, bf->ver, sizeof(bf->ver));
    if (bf->ncalls == 0) {
        struct timeval now = {0, 0};
        bf->zero = evtimer_new(w->base, before_zerocb, bf);
        if (bf->zero == NULL || evtimer_add(bf->zero, &now) < 0)
            goto fail;
        return bf;
    }
    for (size_t i = 0; i < bf->ncalls; i++) {
        struct before_call *call = &bf->calls[i];
        const struct crm_op **v = calloc(call->nidx, sizeof(*v));
        struct before_ask ask = {crm, call->batch, bf->lastmod, v, call->nidx, v, call->nidx};
        int built;
        for (size_t k = 0; v != NULL && k < call->nidx; k++)
            v[k] = &ops->v[call->idx[k]];
        built = v != NULL && before_build(&ask, bf->base, bf->ver, &call->url, &call->body) == 0;
        free(v);
        if (!built || http_fields_add(&call->headers, "Accept", 6, "application/json", 16) < 0)
            goto fail;
        if (call->body != NULL &&
            http_fields_add(&call->headers, "Content-Type", 12, "application/json", 16) < 0)
            goto fail;
        if (auth != NULL && http_fields_copy(&call->headers, auth) < 0)
            goto fail;
        if (!(before_foldable(call) && before_enqueue(call) == 0) && before_launch(call) < 0)
            goto fail;
        bf->outstanding++;
    }
    return bf;
fail:
    before_detach(bf); /* the reads already started or queued are abandoned with the fetch */
    before_free(bf);
    return NULL;
}

void before_cancel(struct before_fetch *bf)
{
    before_detach(bf);
    before_free(bf);
}
