/*
 * audit.c - building audit records.
 */
#include <stdio.h>
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

/* A string member, or null when s is NULL or empty. */
static json_t *audit_str(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

/*
 * One record. Its member names are literals, set without jansson's UTF-8
 * check of each name (a record has ~22); values from requests and config
 * are checked as ever, only crmgate's own names (crm, verb) are not.
 */
static json_t *audit_record(const struct audit_in *in, size_t i)
{
    const struct enforce *ef = in->ef;
    const struct crm_op *op = &ef->ops.v[i];
    const struct config_caller *who = ef->caller;
    /* A record named by an id property (an upsert by email or external id) keeps that value,
     * as in enforce mode, so "record" always goes with "id_property". */
    const char *record = in->ids != NULL && in->ids[i] != NULL && op->id_property == NULL
                             ? in->ids[i]
                             : op->record_id;
    json_t *rec = json_object(), *fields;
    int bad;

    if (rec == NULL)
        return NULL;
    fields = diff_fields(op, in->before != NULL ? in->before[i] : NULL, in->keep_volatile);
    /* in key order: jsonout sorts the members, and sorted ones cost its sort nothing */
    bad = in->unknown != NULL && in->unknown[i] &&
          json_object_set_new_nocheck(rec, "before_state", json_string_nocheck("unavailable")) < 0;
    bad |= json_object_set_new_nocheck(rec, "call", audit_str(in->ctx->call)) < 0;
    bad |= json_object_set_new_nocheck(rec, "crm", json_string_nocheck(crm_name(op->crm))) < 0;
    bad |= json_object_set_new_nocheck(rec, "decision", json_string(in->decision)) < 0;
    if (!ef->verdict.allow)
        bad |= json_object_set_new_nocheck(rec, "denial", audit_str(ef->verdict.reason)) < 0;
    if (op->verb == CRM_VERB_UNKNOWN)
        bad |= json_object_set_new_nocheck(rec, "detail", audit_str(op->detail)) < 0;
    bad |= fields == NULL || json_object_set_new_nocheck(rec, "fields", fields) < 0;
    bad |= json_object_set_new_nocheck(rec, "id_property", audit_str(op->id_property)) < 0;
    /* whose credentials the CRM saw: the "who was this update for" */
    if (who != NULL)
        bad |= json_object_set_new_nocheck(rec, "integration",
                                           in->integration != NULL
                                               ? custody_audit_json(in->integration)
                                           : in->key_id != NULL ? json_null() /* none chosen yet */
                                                                : custody_audit_json(NULL)) < 0;
    if (in->key_id != NULL)
        bad |= json_object_set_new_nocheck(rec, "key", json_string(in->key_id)) < 0;
    bad |= json_object_set_new_nocheck(
               rec, "kind", audit_str(who != NULL ? config_kind_name(who->kind) : NULL)) < 0;
    bad |= json_object_set_new_nocheck(rec, "latency_us", json_integer(0)) < 0;
    bad |= json_object_set_new_nocheck(rec, "object", audit_str(op->object)) < 0;
    bad |= json_object_set_new_nocheck(rec, "outcome", json_string(in->outcome)) < 0;
    bad |= json_object_set_new_nocheck(rec, "reason", audit_str(in->ctx->reason)) < 0;
    bad |= json_object_set_new_nocheck(rec, "record", audit_str(record)) < 0;
    bad |= json_object_set_new_nocheck(rec, "request_id", audit_str(in->request_id)) < 0;
    bad |= json_object_set_new_nocheck(rec, "rule", audit_str(ef->verdict.rule)) < 0;
    bad |= json_object_set_new_nocheck(rec, "synthetic", json_boolean(in->synthetic)) < 0;
    if (op->to_object != NULL || op->to_id != NULL)
        bad |=
            json_object_set_new_nocheck(rec, "to",
                                        json_pack("{s:o, s:o}", "object", audit_str(op->to_object),
                                                  "id", audit_str(op->to_id))) < 0;
    bad |= json_object_set_new_nocheck(rec, "ts", json_integer(in->ts_ms)) < 0;
    bad |= json_object_set_new_nocheck(rec, "upstream_status", json_null()) < 0;
    bad |= json_object_set_new_nocheck(rec, "user", audit_str(who != NULL ? who->user : NULL)) < 0;
    bad |=
        json_object_set_new_nocheck(rec, "verb", json_string_nocheck(crm_verb_name(op->verb))) < 0;
    bad |= json_object_set_new_nocheck(rec, "workflow", audit_str(in->ctx->workflow)) < 0;
    bad |= json_object_set_new_nocheck(rec, "workspace",
                                       audit_str(who != NULL ? who->workspace : NULL)) < 0;
    if (bad) {
        json_decref(rec);
        return NULL;
    }
    return rec;
}

json_t *audit_records(const struct audit_in *in)
{
    json_t *arr = json_array();

    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < in->ef->ops.n; i++) {
        if (json_array_append_new(arr, audit_record(in, i)) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

int audit_set_outcome(json_t *records, const char *outcome, long upstream_status,
                      long long latency_us, const char *error)
{
    size_t i;
    json_t *rec;

    json_array_foreach(records, i, rec)
    {
        if (json_object_set_new_nocheck(rec, "outcome", json_string(outcome)) < 0 ||
            json_object_set_new_nocheck(rec, "upstream_status",
                                        upstream_status > 0 ? json_integer(upstream_status)
                                                            : json_null()) < 0 ||
            json_object_set_new_nocheck(rec, "latency_us", json_integer(latency_us)) < 0 ||
            (error != NULL && json_object_set_new_nocheck(rec, "error", json_string(error)) < 0))
            return -1;
    }
    return 0;
}

int audit_set_record_id(json_t *records, size_t i, const char *id)
{
    json_t *rec = json_array_get(records, i);

    if (rec == NULL || id == NULL || !json_is_null(json_object_get(rec, "record")))
        return 0;
    return json_object_set_new(rec, "record", json_string(id));
}

/* Mark the records whose "record" is id (HubSpot ids compare exactly, emails as given). */
static size_t audit_mark_id(json_t *records, const char *id)
{
    size_t i, n = 0;
    json_t *rec;

    json_array_foreach(records, i, rec)
    {
        const char *r = json_string_value(json_object_get(rec, "record"));
        if (r != NULL && strcmp(r, id) == 0 &&
            json_object_set_new(rec, "outcome", json_string("upstream_error")) == 0)
            n++;
    }
    return n;
}

/*
 * A Salesforce composite ({"compositeResponse": [{"httpStatusCode"}]}) or
 * composite batch ({"results": [{"statusCode"}]}): the records of each
 * subrequest whose entry is not 2xx (refused, halted, rolled back) are
 * marked. Nothing is marked unless every subrequest has its entry.
 */
static size_t audit_subrequest_outcomes(json_t *records, const struct crm_ops *ops,
                                        const json_t *root)
{
    const json_t *answers = json_object_get(root, "compositeResponse");
    const char *key = "httpStatusCode";
    size_t i, n = 0, need = 0;

    if (answers == NULL) {
        answers = json_object_get(root, "results");
        key = "statusCode";
    }
    if (!json_is_array(answers) || ops->n != json_array_size(records))
        return 0;
    for (i = 0; i < ops->n; i++) {
        if (ops->v[i].subrequest > need)
            need = ops->v[i].subrequest;
    }
    if (need == 0 || json_array_size(answers) != need)
        return 0;
    for (i = 0; i < ops->n; i++) {
        const json_t *st;
        json_int_t code;
        if (ops->v[i].subrequest == 0)
            continue;
        st = json_object_get(json_array_get(answers, ops->v[i].subrequest - 1), key);
        code = json_integer_value(st);
        if (json_is_integer(st) && code >= 200 && code <= 299)
            continue;
        if (json_object_set_new(json_array_get(records, i), "outcome",
                                json_string("upstream_error")) == 0)
            n++;
    }
    return n;
}

size_t audit_batch_outcomes(json_t *records, const struct crm_ops *ops, enum crm crm,
                            const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL), *errors, *e, *id;
    size_t i, k, n = 0;

    if (root == NULL)
        return 0;
    if (crm == CRM_SALESFORCE && json_is_object(root)) {
        n = audit_subrequest_outcomes(records, ops, root);
    } else if (crm == CRM_HUBSPOT) {
        errors = json_object_get(root, "errors");
        json_array_foreach(errors, i, e)
        {
            json_array_foreach(json_object_get(json_object_get(e, "context"), "ids"), k, id)
            {
                if (json_is_string(id))
                    n += audit_mark_id(records, json_string_value(id));
            }
        }
    } else if (json_is_array(root) && json_array_size(root) == json_array_size(records)) {
        /* collections answer one SaveResult per record, in order */
        json_array_foreach(root, i, e)
        {
            if (json_is_false(json_object_get(e, "success")) &&
                json_object_set_new(json_array_get(records, i), "outcome",
                                    json_string("upstream_error")) == 0)
                n++;
        }
    }
    json_decref(root);
    return n;
}
