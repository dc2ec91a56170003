/*
 * audit.c - building audit records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../policy/diff.h"
#include "audit.h"

/* Copy one context header's value into out[0..outmax]; 0 absent or copied, -1 with why. */
static int audit_header(const struct http_fields *h, const char *name, char *out, size_t outmax,
                        char *why, size_t whylen)
{
    long i = http_fields_find(h, name, 0);
    size_t vl;
    const char *v;

    out[0] = '\0';
    if (i < 0)
        return 0;
    if (http_fields_find(h, name, (size_t)i + 1) >= 0) {
        snprintf(why, whylen, "the %s header is given more than once", name);
        return -1;
    }
    v = http_field_value(h, (size_t)i, &vl);
    if (vl > outmax) {
        snprintf(why, whylen, "the %s header is longer than %zu bytes", name, outmax);
        return -1;
    }
    for (size_t k = 0; k < vl; k++) {
        unsigned char c = (unsigned char)v[k];
        if (c < 0x20 || c == 0x7f) {
            snprintf(why, whylen, "the %s header carries control characters", name);
            return -1;
        }
    }
    if (!crm_utf8_valid((const unsigned char *)v, vl)) {
        snprintf(why, whylen, "the %s header is not UTF-8", name);
        return -1;
    }
    memcpy(out, v, vl);
    out[vl] = '\0';
    return 0;
}

int audit_context(const struct http_fields *headers, struct audit_ctx *ctx, char *why,
                  size_t whylen)
{
    char dry[8];

    memset(ctx, 0, sizeof(*ctx));
    if (audit_header(headers, "x-crmgate-workflow", ctx->workflow, AUDIT_MAX_CONTEXT, why, whylen) <
            0 ||
        audit_header(headers, "x-crmgate-call", ctx->call, AUDIT_MAX_CONTEXT, why, whylen) < 0 ||
        audit_header(headers, "x-crmgate-reason", ctx->reason, AUDIT_MAX_REASON, why, whylen) < 0 ||
        audit_header(headers, "x-crmgate-dry-run", dry, sizeof(dry) - 1, why, whylen) < 0)
        return -1;
    if (dry[0] == '\0' || strcmp(dry, "0") == 0 || strcasecmp(dry, "false") == 0)
        return 0;
    if (strcmp(dry, "1") == 0 || strcasecmp(dry, "true") == 0) {
        ctx->dry_run = 1;
        return 0;
    }
    snprintf(why, whylen, "X-Crmgate-Dry-Run must be 1 or true (0 and false change nothing)");
    return -1;
}

static int audit_verb_writes(enum crm_verb v)
{
    switch (v) {
    case CRM_VERB_CREATE:
    case CRM_VERB_UPDATE:
    case CRM_VERB_UPSERT:
    case CRM_VERB_DELETE:
    case CRM_VERB_MERGE:
    case CRM_VERB_GDPR_DELETE:
    case CRM_VERB_ASSOCIATE:
    case CRM_VERB_DISSOCIATE:
    case CRM_VERB_REVOKE: /* it can cut off a whole integration: audited like any write */
        return 1;
    default:
        return 0;
    }
}

int audit_write_class(const struct crm_ops *ops, const char *method)
{
    int safe =
        strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 || strcmp(method, "OPTIONS") == 0;

    for (size_t i = 0; i < ops->n; i++) {
        if (audit_verb_writes(ops->v[i].verb) || (ops->v[i].verb == CRM_VERB_UNKNOWN && !safe))
            return 1;
    }
    return 0;
}

/* Whether s may be a record's string: absent, or UTF-8 (as jansson's json_string checks). */
static int audit_utf8(const char *s)
{
    return s == NULL || crm_utf8_valid((const unsigned char *)s, strlen(s));
}

/* A copy of s, or NULL when s is NULL or empty (a null member); *bad when out of memory. */
static char *audit_dup(const char *s, int *bad)
{
    char *d;

    if (s == NULL || s[0] == '\0')
        return NULL;
    d = strdup(s);
    *bad |= d == NULL;
    return d;
}

/*
 * Record i's id. A record named by an id property (an upsert by email or
 * external id) keeps that value, as in enforce mode, so "record" always
 * goes with "id_property".
 */
static const char *audit_record_id(const struct audit_in *in, size_t i)
{
    const struct crm_op *op = &in->ef->ops.v[i];

    return in->ids != NULL && in->ids[i] != NULL && op->id_property == NULL ? in->ids[i]
                                                                            : op->record_id;
}

/* Whether every string the records carry from the request, rules and identity is UTF-8. */
static int audit_in_utf8(const struct audit_in *in)
{
    const struct enforce *ef = in->ef;
    const struct config_caller *who = ef->caller;
    int ok = audit_utf8(in->decision) && audit_utf8(in->outcome) && audit_utf8(in->request_id) &&
             audit_utf8(in->ctx->call) && audit_utf8(in->ctx->reason) &&
             audit_utf8(in->ctx->workflow) && audit_utf8(in->key_id) &&
             audit_utf8(ef->verdict.rule) && (ef->verdict.allow || audit_utf8(ef->verdict.reason));

    if (who != NULL)
        ok = ok && audit_utf8(who->user) && audit_utf8(who->workspace);
    if (who != NULL && in->integration != NULL)
        ok = ok && audit_utf8(in->integration->ws) && audit_utf8(in->integration->user);
    for (size_t i = 0; ok && i < ef->ops.n; i++) {
        const struct crm_op *op = &ef->ops.v[i];
        ok = audit_utf8(op->object) && audit_utf8(audit_record_id(in, i)) &&
             audit_utf8(op->id_property) && audit_utf8(op->to_object) && audit_utf8(op->to_id) &&
             (op->verb != CRM_VERB_UNKNOWN || audit_utf8(op->detail));
    }
    return ok;
}

struct audit_records *audit_records(const struct audit_in *in)
{
    const struct enforce *ef = in->ef;
    struct audit_records *r;
    int bad = 0;

    if (!audit_in_utf8(in) ||
        (in->request_id != NULL && strlen(in->request_id) > AUDIT_MAX_REQUEST_ID))
        return NULL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->v = calloc(ef->ops.n + 1, sizeof(*r->v));
    if (r->v == NULL) {
        free(r);
        return NULL;
    }
    r->ef = ef;
    r->ctx = in->ctx;
    r->decision = in->decision;
    r->integration = in->integration;
    r->key_id = in->key_id;
    r->ts_ms = in->ts_ms;
    if (in->request_id != NULL)
        memcpy(r->request_id, in->request_id, strlen(in->request_id) + 1);
    r->synthetic = in->synthetic;
    r->n = ef->ops.n;
    for (size_t i = 0; i < r->n; i++) {
        struct audit_rec *rec = &r->v[i];
        const struct crm_op *op = &ef->ops.v[i];
        rec->op = op;
        rec->record = audit_dup(audit_record_id(in, i), &bad);
        rec->outcome = in->outcome;
        rec->fields = diff_fields(op, in->before != NULL ? in->before[i] : NULL, in->keep_volatile);
        bad |= rec->fields == NULL;
        rec->before_unknown = in->unknown != NULL && in->unknown[i];
    }
    if (bad) {
        audit_records_free(r);
        return NULL;
    }
    return r;
}

void audit_records_free(struct audit_records *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].record);
        r->v[i].record = NULL;
        json_decref(r->v[i].fields);
    }
    free(r->v);
    r->v = NULL;
    free(r);
}

/* A member's name with its separators, as jsonout writes it: ,"name": */
#define AUDIT_KEY(lit) lit, sizeof(lit) - 1

/* key, then s as a string, or null when s is NULL or empty. */
static int audit_put_str(struct jsonout *o, const char *key, size_t klen, const char *s)
{
    if (jsonout_raw(o, key, klen) < 0)
        return -1;
    if (s == NULL || s[0] == '\0')
        return jsonout_raw(o, "null", 4);
    return jsonout_str(o, s, strlen(s));
}

/* key, then s as a string, "" as it is. */
static int audit_put_text(struct jsonout *o, const char *key, size_t klen, const char *s)
{
    return jsonout_raw(o, key, klen) < 0 ? -1 : jsonout_str(o, s, strlen(s));
}

/* Whose credentials the CRM saw (custody_audit_json's object, in key order). */
static int audit_put_integration(struct jsonout *o, const struct audit_records *r)
{
    const struct custody_ref *c = r->integration;

    if (c == NULL && r->key_id != NULL)
        return jsonout_raw(o, AUDIT_KEY(",\"integration\":null")); /* none chosen yet */
    if (c == NULL)
        return jsonout_raw(o, AUDIT_KEY(",\"integration\":{\"scope\":\"passthrough\"}"));
    if (c->scope == CUSTODY_SCOPE_USER)
        return jsonout_raw(o, AUDIT_KEY(",\"integration\":{\"scope\":\"user\"")) < 0 ||
                       audit_put_text(o, AUDIT_KEY(",\"user\":"), c->user) < 0 ||
                       audit_put_text(o, AUDIT_KEY(",\"workspace\":"), c->ws) < 0
                   ? -1
                   : jsonout_raw(o, "}", 1);
    return jsonout_raw(o, AUDIT_KEY(",\"integration\":{\"scope\":\"workspace\"")) < 0 ||
                   audit_put_text(o, AUDIT_KEY(",\"workspace\":"), c->ws) < 0
               ? -1
               : jsonout_raw(o, "}", 1);
}

int audit_record_json(const struct audit_records *r, size_t i, struct jsonout *o, size_t *id_at)
{
    const struct audit_rec *rec = &r->v[i];
    const struct crm_op *op = rec->op;
    const struct enforce *ef = r->ef;
    const struct config_caller *who = ef->caller;
    size_t start = o->len;
    int bad;

    /* the members in key order, as jsonout_record writes them */
    bad = jsonout_reserve(o, 768) < 0 || jsonout_raw(o, "{", 1) < 0;
    if (rec->before_unknown)
        bad |= jsonout_raw(o, AUDIT_KEY("\"before_state\":\"unavailable\",")) < 0;
    bad |= audit_put_str(o, AUDIT_KEY("\"call\":"), r->ctx->call) < 0;
    bad |= audit_put_text(o, AUDIT_KEY(",\"crm\":"), crm_name(op->crm)) < 0;
    bad |= audit_put_text(o, AUDIT_KEY(",\"decision\":"), r->decision) < 0;
    if (!ef->verdict.allow)
        bad |= audit_put_str(o, AUDIT_KEY(",\"denial\":"), ef->verdict.reason) < 0;
    if (op->verb == CRM_VERB_UNKNOWN)
        bad |= audit_put_str(o, AUDIT_KEY(",\"detail\":"), op->detail) < 0;
    if (rec->error != NULL)
        bad |= audit_put_text(o, AUDIT_KEY(",\"error\":"), rec->error) < 0;
    bad |= jsonout_raw(o, AUDIT_KEY(",\"fields\":")) < 0 || jsonout_append(o, rec->fields) < 0;
    if (id_at != NULL) {
        bad |= jsonout_raw(o, AUDIT_KEY(",\"id\":\"\"")) < 0;
        *id_at = o->len - 1;
    } else {
        bad |= jsonout_raw(o, AUDIT_KEY(",\"id\":\"")) < 0 ||
               jsonout_int(o, (long long)rec->id) < 0 || jsonout_raw(o, "\"", 1) < 0;
    }
    bad |= audit_put_str(o, AUDIT_KEY(",\"id_property\":"), op->id_property) < 0;
    if (who != NULL)
        bad |= audit_put_integration(o, r) < 0;
    if (r->key_id != NULL)
        bad |= audit_put_text(o, AUDIT_KEY(",\"key\":"), r->key_id) < 0;
    bad |= audit_put_str(o, AUDIT_KEY(",\"kind\":"),
                         who != NULL ? config_kind_name(who->kind) : NULL) < 0;
    bad |= jsonout_raw(o, AUDIT_KEY(",\"latency_us\":")) < 0 || jsonout_int(o, rec->latency_us) < 0;
    bad |= audit_put_str(o, AUDIT_KEY(",\"object\":"), op->object) < 0;
    bad |= audit_put_text(o, AUDIT_KEY(",\"outcome\":"), rec->outcome) < 0;
    bad |= audit_put_str(o, AUDIT_KEY(",\"reason\":"), r->ctx->reason) < 0;
    bad |= (rec->record != NULL ? audit_put_text(o, AUDIT_KEY(",\"record\":"), rec->record)
                                : jsonout_raw(o, AUDIT_KEY(",\"record\":null"))) < 0;
    bad |= audit_put_str(o, AUDIT_KEY(",\"request_id\":"), r->request_id) < 0;
    bad |= audit_put_str(o, AUDIT_KEY(",\"rule\":"), ef->verdict.rule) < 0;
    if (op->save_duplicates) /* asked to be saved past Salesforce's duplicate rules */
        bad |= jsonout_raw(o, AUDIT_KEY(",\"save_duplicates\":true")) < 0;
    if (r->synthetic)
        bad |= jsonout_raw(o, AUDIT_KEY(",\"synthetic\":true")) < 0;
    else
        bad |= jsonout_raw(o, AUDIT_KEY(",\"synthetic\":false")) < 0;
    if (op->to_object != NULL || op->to_id != NULL)
        bad |= audit_put_str(o, AUDIT_KEY(",\"to\":{\"id\":"), op->to_id) < 0 ||
               audit_put_str(o, AUDIT_KEY(",\"object\":"), op->to_object) < 0 ||
               jsonout_raw(o, "}", 1) < 0;
    bad |= jsonout_raw(o, AUDIT_KEY(",\"ts\":")) < 0 || jsonout_int(o, r->ts_ms) < 0;
    bad |= jsonout_raw(o, AUDIT_KEY(",\"upstream_status\":")) < 0 ||
           (rec->upstream_status > 0 ? jsonout_int(o, rec->upstream_status)
                                     : jsonout_raw(o, "null", 4)) < 0;
    bad |= audit_put_str(o, AUDIT_KEY(",\"user\":"), who != NULL ? who->user : NULL) < 0;
    bad |= audit_put_text(o, AUDIT_KEY(",\"verb\":"), crm_verb_name(op->verb)) < 0;
    bad |= audit_put_str(o, AUDIT_KEY(",\"workflow\":"), r->ctx->workflow) < 0;
    bad |= audit_put_str(o, AUDIT_KEY(",\"workspace\":"), who != NULL ? who->workspace : NULL) < 0;
    bad |= jsonout_raw(o, "}", 1) < 0;
    if (bad) {
        o->len = start;
        if (o->buf != NULL)
            o->buf[start] = '\0';
        return -1;
    }
    return 0;
}

int audit_submit(const struct audit_records *r, struct store_port *p, int update, json_t *overlay,
                 struct store_seen *seen, size_t nseen, store_done_cb cb, void *arg)
{
    struct store_record stack[4], *recs = stack;
    const struct config_caller *who = r->ef->caller;
    size_t i = 0;
    int rc = -1;

    if (r->n > sizeof(stack) / sizeof(stack[0]))
        recs = calloc(r->n, sizeof(*recs));
    if (recs == NULL) {
        json_decref(overlay);
        store_seen_free(seen, nseen);
        return -1;
    }
    for (; i < r->n; i++) {
        const struct audit_rec *rec = &r->v[i];
        struct jsonout out = {0};
        memset(&recs[i], 0, sizeof(recs[i]));
        if (audit_record_json(r, i, &out, update ? NULL : &recs[i].id_at) < 0) {
            jsonout_free(&out);
            break;
        }
        recs[i].json = out.buf;
        recs[i].len = out.len;
        recs[i].id = rec->id;
        recs[i].reindex = rec->record_late; /* else its index entry came with the append */
        recs[i].ws = who != NULL ? who->workspace : NULL;
        recs[i].wf = r->ctx->workflow;
        recs[i].call = r->ctx->call;
        recs[i].record = rec->record;
        recs[i].crm = crm_name(rec->op->crm);
        recs[i].object = rec->op->object;
        recs[i].user = who != NULL ? who->user : NULL;
        recs[i].outcome = rec->outcome;
        recs[i].fields = rec->fields;
    }
    if (i == r->n) {
        rc = store_audit_submit(p, update, recs, r->n, overlay, seen, nseen, cb, arg);
    } else {
        for (size_t k = 0; k < i; k++)
            free(recs[k].json);
        json_decref(overlay);
        store_seen_free(seen, nseen);
    }
    if (recs != stack)
        free(recs);
    return rc;
}

void audit_set_ids(struct audit_records *r, uint64_t first)
{
    for (size_t i = 0; i < r->n; i++)
        r->v[i].id = first + i;
}

int audit_set_outcome(struct audit_records *r, const char *outcome, long upstream_status,
                      long long latency_us, const char *error)
{
    for (size_t i = 0; i < r->n; i++) {
        r->v[i].outcome = outcome;
        r->v[i].upstream_status = upstream_status > 0 ? upstream_status : 0;
        r->v[i].latency_us = latency_us;
        if (error != NULL)
            r->v[i].error = error;
    }
    return 0;
}

int audit_set_record_id(struct audit_records *r, size_t i, const char *id)
{
    if (i >= r->n || id == NULL || r->v[i].record != NULL)
        return 0;
    if (!audit_utf8(id))
        return -1;
    r->v[i].record = strdup(id); /* "" included: it is written as "", not null */
    r->v[i].record_late = r->v[i].record != NULL;
    return r->v[i].record != NULL ? 0 : -1;
}

/* Mark the records whose "record" is id (HubSpot ids compare exactly, emails as given). */
static size_t audit_mark_id(struct audit_records *r, const char *id)
{
    size_t n = 0;

    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].record != NULL && strcmp(r->v[i].record, id) == 0) {
            r->v[i].outcome = "upstream_error";
            n++;
        }
    }
    return n;
}

/* 1 + the index of the answer entry that holds record i's outcome (its graph's, by_graph), or 0. */
static size_t audit_entry_of(const struct audit_records *r, size_t i, int by_graph)
{
    return by_graph ? r->v[i].op->graph : r->v[i].op->subrequest;
}

/*
 * Mark the records whose answer entry failed, when every entry is there
 * (else none). A Salesforce composite ({"compositeResponse":
 * [{"httpStatusCode"}]}) or composite batch ({"results": [{"statusCode"}]})
 * has an entry per subrequest, failed unless 2xx (refused, halted, rolled
 * back); a composite graph ({"graphs": [{"isSuccessful"}]}) one per graph,
 * all or nothing, failed when isSuccessful is false (rolled back).
 */
static size_t audit_entry_outcomes(struct audit_records *r, const json_t *root)
{
    const json_t *answers = json_object_get(root, "graphs");
    const char *key = "httpStatusCode";
    int by_graph = answers != NULL;
    size_t i, n = 0, need = 0;

    if (!by_graph && (answers = json_object_get(root, "compositeResponse")) == NULL) {
        answers = json_object_get(root, "results");
        key = "statusCode";
    }
    if (!json_is_array(answers))
        return 0;
    for (i = 0; i < r->n; i++) {
        if (audit_entry_of(r, i, by_graph) > need)
            need = audit_entry_of(r, i, by_graph);
    }
    if (need == 0 || json_array_size(answers) != need)
        return 0;
    for (i = 0; i < r->n; i++) {
        size_t e = audit_entry_of(r, i, by_graph);
        const json_t *entry = json_array_get(answers, e > 0 ? e - 1 : 0), *st;
        if (e == 0)
            continue;
        if (by_graph) {
            if (!json_is_false(json_object_get(entry, "isSuccessful")))
                continue;
        } else {
            st = json_object_get(entry, key);
            if (json_is_integer(st) && json_integer_value(st) >= 200 &&
                json_integer_value(st) <= 299)
                continue;
        }
        r->v[i].outcome = "upstream_error";
        n++;
    }
    return n;
}

/*
 * Whether body can name a failed record at all: HubSpot's "errors", a
 * Salesforce array (collections), composite or graph answer. Every audited write
 * comes here, and most answers are one plain record: this spares parsing
 * them (a match only means the answer is parsed and looked at).
 */
static int audit_may_name_failures(enum crm crm, const char *body, size_t len)
{
    size_t i = 0;

    if (body == NULL || len == 0) /* a 204, or an empty evbuffer's NULL pullup */
        return 0;
    if (crm == CRM_HUBSPOT)
        return memmem(body, len, "\"errors\"", 8) != NULL;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    return (i < len && body[i] == '[') || memmem(body, len, "\"compositeResponse\"", 19) != NULL ||
           memmem(body, len, "\"results\"", 9) != NULL ||
           memmem(body, len, "\"graphs\"", 8) != NULL;
}

size_t audit_batch_outcomes(struct audit_records *r, enum crm crm, const char *body, size_t len)
{
    json_t *root, *errors, *e, *id;
    size_t i, k, n = 0;

    if (!audit_may_name_failures(crm, body, len))
        return 0;
    root = json_loadb(body, len, 0, NULL);
    if (root == NULL)
        return 0;
    if (crm == CRM_SALESFORCE && json_is_object(root)) {
        n = audit_entry_outcomes(r, root);
    } else if (crm == CRM_HUBSPOT) {
        errors = json_object_get(root, "errors");
        json_array_foreach(errors, i, e)
        {
            json_array_foreach(json_object_get(json_object_get(e, "context"), "ids"), k, id)
            {
                if (json_is_string(id))
                    n += audit_mark_id(r, json_string_value(id));
            }
        }
    } else if (json_is_array(root) && json_array_size(root) == r->n) {
        /* collections answer one SaveResult per record, in order */
        json_array_foreach(root, i, e)
        {
            if (json_is_false(json_object_get(e, "success"))) {
                r->v[i].outcome = "upstream_error";
                n++;
            }
        }
    }
    json_decref(root);
    return n;
}
