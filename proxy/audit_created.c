/*
 * audit_created.c - the record ids of a multi-record create, taken from the
 * CRM's answer (audit.h, audit_created_ids). The request and the answer are
 * told apart by their shapes:
 *
 *   HubSpot batch create      {"inputs":[...]}  -> {"results":[...]}
 *   Salesforce collections    {"records":[...]} -> [SaveResult, ...]
 *   Salesforce composite      {"compositeRequest":[...]} -> {"compositeResponse":[...]}
 *   Salesforce composite batch {"batchRequests":[...]} -> {"results":[...]}
 *   Salesforce sObject tree   {"records":[...]} -> {"hasErrors":false,"results":[...]}
 *
 * HubSpot does not document that batch results come in input order, so
 * they are matched by objectWriteTraceId when every input carries a
 * distinct one, else by content: the result whose properties hold every
 * value the input wrote (exactly, then ignoring case, since HubSpot
 * normalizes some values such as emails), and a last unmatched input with
 * a last unmatched result; an input a 207's errors name by its trace id is
 * marked upstream_error (it created nothing). Salesforce answers collections and composite
 * subrequests in request order (a SaveResult per record, a response per
 * subrequest), so those are matched by position, and only when the
 * creates the records list line up with the creating subrequests one for
 * one, object by object; a tree's records by their referenceId, in the
 * classifier's order (a record, then its children). A record that cannot
 * be matched keeps no id.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "audit.h"

/* A JSON scalar as the text HubSpot stores (every property value is a string); 0 / -1. */
static int audit_created_text(const json_t *v, char *buf, size_t len)
{
    int n;

    if (json_is_string(v))
        n = snprintf(buf, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        n = snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        n = snprintf(buf, len, "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        n = snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
    else
        return -1;
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Whether result's properties hold every value input's properties wrote. */
static int audit_created_same(const json_t *input, const json_t *result, int nocase)
{
    const json_t *in = json_object_get(input, "properties");
    const json_t *out = json_object_get(result, "properties");
    const char *k;
    json_t *v;

    if (!json_is_object(in) || !json_is_object(out) || json_object_size(in) == 0)
        return 0;
    json_object_foreach((json_t *)in, k, v)
    {
        char want[1024];
        const char *got = json_string_value(json_object_get(out, k));
        if (audit_created_text(v, want, sizeof(want)) < 0 || got == NULL)
            return 0;
        if (nocase ? strcasecmp(want, got) != 0 : strcmp(want, got) != 0)
            return 0;
    }
    return 1;
}

/* Whether record i is a create still without an id. */
static int audit_created_open(const struct audit_records *records, size_t i)
{
    return i < records->n && records->v[i].record == NULL &&
           records->v[i].op->verb == CRM_VERB_CREATE;
}

#define AUDIT_CREATED_MAX 1000 /* inputs of one batch matched at most (HubSpot allows 100) */

/*
 * A 207's errors name the inputs they refused by objectWriteTraceId: those
 * records did not create anything, whatever the batch's status said.
 */
static void audit_created_refused(struct audit_records *records, const json_t *inputs,
                                  const json_t *errors)
{
    size_t e, k, i;
    json_t *err, *t;

    json_array_foreach(errors, e, err)
    {
        json_array_foreach(json_object_get(json_object_get(err, "context"), "objectWriteTraceId"),
                           k, t)
        {
            for (i = 0; json_is_string(t) && i < json_array_size(inputs); i++) {
                const char *u = json_string_value(
                    json_object_get(json_array_get(inputs, i), "objectWriteTraceId"));
                if (u != NULL && strcmp(u, json_string_value(t)) == 0 &&
                    audit_created_open(records, i))
                    records->v[i].outcome = "upstream_error";
            }
        }
    }
}

static size_t audit_created_hubspot(struct audit_records *records, const json_t *inputs,
                                    const json_t *results, const json_t *errors)
{
    size_t n = json_array_size(inputs), m = json_array_size(results), set = 0, i, j;
    unsigned char used[AUDIT_CREATED_MAX] = {0}, done[AUDIT_CREATED_MAX] = {0};
    int traced = 1;

    if (n != records->n || n > AUDIT_CREATED_MAX || m > AUDIT_CREATED_MAX)
        return 0;
    for (i = 0; i < n && traced; i++) {
        const char *t =
            json_string_value(json_object_get(json_array_get(inputs, i), "objectWriteTraceId"));
        traced = t != NULL;
        for (j = 0; traced && j < i; j++) {
            const char *u =
                json_string_value(json_object_get(json_array_get(inputs, j), "objectWriteTraceId"));
            traced = strcmp(t, u) != 0;
        }
    }
    if (traced)
        audit_created_refused(records, inputs, errors);
    for (i = 0; i < n; i++) {
        const char *o = records->v[i].outcome;
        if (!audit_created_open(records, i) || (o != NULL && strcmp(o, "upstream_error") == 0))
            done[i] = 1;
    }
    /* passes: the trace id (when every input has a distinct one), exact values, values without
     * case; then a last input with a last result */
    for (int pass = traced ? 0 : 1; pass < 3; pass++) {
        for (i = 0; i < n; i++) {
            json_t *in = json_array_get(inputs, i);
            for (j = 0; !done[i] && j < m; j++) {
                json_t *out = json_array_get(results, j);
                int match;
                if (used[j])
                    continue;
                if (pass == 0) {
                    const char *a = json_string_value(json_object_get(in, "objectWriteTraceId"));
                    const char *b = json_string_value(json_object_get(out, "objectWriteTraceId"));
                    match = a != NULL && b != NULL && strcmp(a, b) == 0;
                } else {
                    match = audit_created_same(in, out, pass == 2);
                }
                if (!match)
                    continue;
                if (audit_set_record_id(records, i,
                                        json_string_value(json_object_get(out, "id"))) == 0 &&
                    json_is_string(json_object_get(out, "id")))
                    set++;
                used[j] = done[i] = 1;
            }
        }
    }
    {
        size_t open_in = 0, open_out = 0, li = 0, lj = 0;
        for (i = 0; i < n; i++) {
            if (!done[i])
                open_in++, li = i;
        }
        for (j = 0; j < m; j++) {
            if (!used[j])
                open_out++, lj = j;
        }
        if (open_in == 1 && open_out == 1) {
            const char *id = json_string_value(json_object_get(json_array_get(results, lj), "id"));
            if (id != NULL && audit_set_record_id(records, li, id) == 0)
                set++;
        }
    }
    return set;
}

/*
 * The object a Salesforce subrequest creates one record of (POST
 * .../sobjects/{Object}), copied into obj; 0, or -1 when it is not one.
 */
static int audit_created_sf_single(const char *method, const char *url, char *obj, size_t len)
{
    const char *p, *q;
    size_t n;

    if (method == NULL || url == NULL || strcasecmp(method, "POST") != 0)
        return -1;
    p = strstr(url, "/sobjects/");
    if (p == NULL)
        return -1;
    p += strlen("/sobjects/");
    n = strcspn(p, "/?");
    q = p + n;
    if (n == 0 || n >= len || (*q == '/' && q[1] != '\0') || strstr(url, "/composite/") != NULL)
        return -1;
    memcpy(obj, p, n);
    obj[n] = '\0';
    return 0;
}

/* Pair the open create records, in order, with the ids the subrequests gave; a mismatch sets none.
 */
static size_t audit_created_pairs(struct audit_records *records, const json_t *objects,
                                  const json_t *ids)
{
    size_t k = 0, set = 0, i;

    for (i = 0; i < records->n; i++) {
        const char *o;
        if (!audit_created_open(records, i))
            continue;
        /* as the record's "object": null when empty */
        o = records->v[i].op->object != NULL && records->v[i].op->object[0] != '\0'
                ? records->v[i].op->object
                : NULL;
        if (k >= json_array_size(objects) || o == NULL ||
            strcasecmp(o, json_string_value(json_array_get(objects, k))) != 0)
            return 0;
        k++;
    }
    if (k != json_array_size(objects))
        return 0;
    k = 0;
    for (i = 0; i < records->n; i++) {
        const char *id;
        if (!audit_created_open(records, i))
            continue;
        id = json_string_value(json_array_get(ids, k++));
        if (id != NULL && audit_set_record_id(records, i, id) == 0)
            set++;
    }
    return set;
}

/* Composite or composite batch: subrequests and their answers, in order. */
static size_t audit_created_composite(struct audit_records *records, const json_t *subs,
                                      const json_t *answers, int batch)
{
    json_t *objects = json_array(), *ids = json_array(), *s;
    size_t i, set = 0;
    int bad = objects == NULL || ids == NULL || json_array_size(subs) != json_array_size(answers);

    json_array_foreach(subs, i, s)
    {
        json_t *a = json_array_get(answers, i);
        const char *method = json_string_value(json_object_get(s, "method"));
        const char *url = json_string_value(json_object_get(s, "url"));
        json_t *body = json_object_get(a, batch ? "result" : "body");
        json_int_t st =
            json_integer_value(json_object_get(a, batch ? "statusCode" : "httpStatusCode"));
        char obj[256];
        if (bad)
            break;
        if (audit_created_sf_single(method, url, obj, sizeof(obj)) < 0)
            continue;
        bad |= json_array_append_new(objects, json_string(obj)) < 0;
        bad |= json_array_append_new(ids, st >= 200 && st <= 299 &&
                                                  json_is_string(json_object_get(body, "id"))
                                              ? json_incref(json_object_get(body, "id"))
                                              : json_null()) < 0;
    }
    if (!bad)
        set = audit_created_pairs(records, objects, ids);
    json_decref(objects);
    json_decref(ids);
    return set;
}

/*
 * Composite graph: the graphs' subrequests and their answers, graph after
 * graph, as one composite (the classifier's order); none when a graph's
 * answer does not line up with its request.
 */
static size_t audit_created_graphs(struct audit_records *records, const json_t *graphs,
                                   const json_t *answers)
{
    json_t *subs = json_array(), *out = json_array(), *g;
    size_t i, set = 0;
    int bad = subs == NULL || out == NULL || !json_is_array(answers) ||
              json_array_size(graphs) != json_array_size(answers);

    json_array_foreach(graphs, i, g)
    {
        const json_t *rq = json_object_get(g, "compositeRequest");
        const json_t *an = json_object_get(
            json_object_get(json_array_get(answers, i), "graphResponse"), "compositeResponse");
        if (bad)
            break;
        bad = !json_is_array(rq) || !json_is_array(an) ||
              json_array_size(rq) != json_array_size(an) ||
              json_array_extend(subs, (json_t *)rq) < 0 || json_array_extend(out, (json_t *)an) < 0;
    }
    if (!bad)
        set = audit_created_composite(records, subs, out, 0);
    json_decref(subs);
    json_decref(out);
    return set;
}

/* Levels of an sObject tree followed (Salesforce allows 5). */
#define AUDIT_CREATED_TREE_DEPTH 5

/*
 * The objects and ids of an sObject tree's records (recs, at level depth),
 * appended to objects and ids in the classifier's order: a record, then the
 * records of its child relationships. An id is the one results gives the
 * record's referenceId, or null. 0, or -1 (too deep, out of memory).
 */
static int audit_created_tree(const json_t *recs, const json_t *results, json_t *objects,
                              json_t *ids, int depth)
{
    size_t i, k;
    json_t *rec, *r;

    if (depth > AUDIT_CREATED_TREE_DEPTH)
        return -1;
    json_array_foreach(recs, i, rec)
    {
        const json_t *attrs = json_object_get(rec, "attributes");
        const char *ref = json_string_value(json_object_get(attrs, "referenceId")), *key;
        json_t *id = json_null(), *v;
        json_array_foreach(results, k, r)
        {
            const char *rr = json_string_value(json_object_get(r, "referenceId"));
            if (ref != NULL && rr != NULL && strcmp(ref, rr) == 0 &&
                json_is_string(json_object_get(r, "id")))
                id = json_object_get(r, "id");
        }
        if (!json_is_string(json_object_get(attrs, "type")) ||
            json_array_append(objects, json_object_get(attrs, "type")) < 0 ||
            json_array_append(ids, id) < 0)
            return -1;
        json_object_foreach((json_t *)rec, key, v)
        {
            json_t *kids = json_object_get(v, "records");
            if (strcmp(key, "attributes") != 0 && json_is_object(v) && json_is_array(kids) &&
                audit_created_tree(kids, results, objects, ids, depth + 1) < 0)
                return -1;
        }
    }
    return 0;
}

size_t audit_created_ids(struct audit_records *records, enum crm crm, const char *req, size_t rlen,
                         const char *ans, size_t alen)
{
    json_t *rq = json_loadb(req, rlen, 0, NULL), *an = json_loadb(ans, alen, 0, NULL);
    size_t set = 0, i;
    json_t *r;

    if (rq == NULL || an == NULL)
        goto out;
    if (crm == CRM_HUBSPOT) {
        if (json_is_array(json_object_get(rq, "inputs")) &&
            json_is_array(json_object_get(an, "results")))
            set = audit_created_hubspot(records, json_object_get(rq, "inputs"),
                                        json_object_get(an, "results"),
                                        json_object_get(an, "errors"));
        goto out;
    }
    if (json_is_array(json_object_get(rq, "records")) && json_is_array(an) &&
        json_array_size(an) == json_array_size(json_object_get(rq, "records")) &&
        json_array_size(an) == records->n) {
        /* collections: one SaveResult per record, in order */
        json_array_foreach(an, i, r)
        {
            const char *id = json_string_value(json_object_get(r, "id"));
            if (json_is_true(json_object_get(r, "success")) && id != NULL &&
                audit_created_open(records, i) && audit_set_record_id(records, i, id) == 0)
                set++;
        }
    } else if (json_is_array(json_object_get(rq, "records")) &&
               json_is_array(json_object_get(an, "results")) &&
               json_is_false(json_object_get(an, "hasErrors"))) {
        /* sObject tree: results name their record by referenceId */
        json_t *objects = json_array(), *ids = json_array();
        if (objects != NULL && ids != NULL &&
            audit_created_tree(json_object_get(rq, "records"), json_object_get(an, "results"),
                               objects, ids, 1) == 0)
            set = audit_created_pairs(records, objects, ids);
        json_decref(objects);
        json_decref(ids);
    } else if (json_is_array(json_object_get(rq, "compositeRequest"))) {
        set = audit_created_composite(records, json_object_get(rq, "compositeRequest"),
                                      json_object_get(an, "compositeResponse"), 0);
    } else if (json_is_array(json_object_get(rq, "graphs"))) {
        set = audit_created_graphs(records, json_object_get(rq, "graphs"),
                                   json_object_get(an, "graphs"));
    } else if (json_is_array(json_object_get(rq, "batchRequests"))) {
        set = audit_created_composite(records, json_object_get(rq, "batchRequests"),
                                      json_object_get(an, "results"), 1);
    }
out:
    json_decref(rq);
    json_decref(an);
    return set;
}
