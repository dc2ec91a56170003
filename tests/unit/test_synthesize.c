/*
 * test_synthesize.c - dry-run answers and the overlay against the cases in
 * tests/unit/cases/synthesize.jsonl (run from the repository root), one
 * JSON object per line:
 *
 *   write:  {"name", "crm": "hubspot"|"salesforce", "method", "path", "query", "body" (JSON)
 *            or "body_raw" (as given, with "content_type"),
 *            "before": [per op: fields or null], "now": ms, "rand": [u63, ...],
 *            "status": N, "response": JSON (null: no body), "ids": [...],
 *            "records": [per op: {"fields", "created", "deleted"} subset or null],
 *            "error": "substring of the refusal"}
 *   read:   {"kind": "read", "crm", "method", "path", "query", "rec", "status", "response"}
 *   merge:  {"kind": "merge", "crm", "method", "path", "query", "body", "recs", "answer",
 *            "status_in", "status", "response", "changed"}
 *
 * The request is classified by the real classifier first. Every synthetic id
 * is also checked for its format: HubSpot numeric above 2^31 and below 2^53,
 * Salesforce 18 characters with the object's key prefix and a valid checksum.
 * SYNTH_DUMP=1 prints every actual answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hubspot.h"
#include "salesforce.h"
#include "synthesize.h"

#define SYNTH_MIN_CASES 40

struct rand_seq {
    json_t *vals;
    size_t i;
};

static uint64_t test_rand(void *arg)
{
    struct rand_seq *r = arg;
    size_t n = json_array_size(r->vals);
    uint64_t v = n ? (uint64_t)json_integer_value(json_array_get(r->vals, r->i % n)) : 12345;

    r->i++;
    return v;
}

static int dump;

static void show(const char *name, const char *what, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    printf("  %s %s: %s\n", name, what, s ? s : "(null)");
    free(s);
}

/* Every key of want matches got (want's nested objects compare whole). */
static int subset(json_t *want, json_t *got)
{
    const char *key;
    json_t *v;

    if (!json_is_object(want))
        return json_equal(want, got);
    json_object_foreach(want, key, v)
    {
        if (!json_equal(v, json_object_get(got, key)))
            return 0;
    }
    return 1;
}

static int check_id(enum crm crm, const struct crm_op *op, json_t *rec, const char *id)
{
    if (rec == NULL || !json_is_true(json_object_get(rec, "created")) || id == NULL)
        return 1;
    if (crm == CRM_HUBSPOT) {
        char *end;
        unsigned long long v = strtoull(id, &end, 10);
        return *end == '\0' && v > (1ULL << 31) && v < (1ULL << 53);
    }
    {
        const char *prefix = sf_prefix_for_object(NULL, op->object);
        return strlen(id) == 18 && sf_id_valid(id, 18) && prefix != NULL &&
               strncmp(id, prefix, 3) == 0;
    }
}

static void load_request(json_t *c, struct crm_request *req, char **body_text)
{
    json_t *body = json_object_get(c, "body");

    memset(req, 0, sizeof(*req));
    *body_text = NULL;
    req->method = json_string_value(json_object_get(c, "method"));
    req->path = json_string_value(json_object_get(c, "path"));
    req->query = json_string_value(json_object_get(c, "query"));
    if (body != NULL) {
        *body_text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        req->body = *body_text;
        req->body_len = strlen(*body_text);
        req->content_type = "application/json";
    } else if (json_is_string(json_object_get(c, "body_raw"))) {
        req->body = json_string_value(json_object_get(c, "body_raw"));
        req->body_len = json_string_length(json_object_get(c, "body_raw"));
        req->content_type = json_string_value(json_object_get(c, "content_type"));
    }
}

static int classify(enum crm crm, const struct crm_request *req, struct crm_ops *ops)
{
    return crm == CRM_HUBSPOT ? hubspot_classify(req, ops) : salesforce_classify(req, NULL, ops);
}

static int run_write(json_t *c, const char *name, enum crm crm, const struct crm_request *req,
                     const struct crm_ops *ops, char *why, size_t whylen)
{
    struct rand_seq rs = {json_object_get(c, "rand"), 0};
    json_t *before = json_object_get(c, "before"), *want_err = json_object_get(c, "error");
    json_t **bv = calloc(ops->n ? ops->n : 1, sizeof(*bv)), *got = NULL;
    unsigned char *deleted = calloc(ops->n ? ops->n : 1, 1);
    json_t **prev = calloc(ops->n ? ops->n : 1, sizeof(*prev));
    struct synth_request in = {
        .crm = crm,
        .req = req,
        .ops = ops,
        .before = bv,
        .if_unmodified_since = json_string_value(json_object_get(c, "if_unmodified_since")),
        .deleted = deleted,
        .prev = prev,
        .correlation_id = json_string_value(json_object_get(c, "correlation_id")),
        .now_ms = json_integer_value(json_object_get(c, "now")),
        .rand64 = test_rand,
        .rand_arg = &rs};
    struct synth_response out;
    char err[512] = "";
    int ok = 0, rc;

    for (size_t i = 0; i < ops->n; i++) {
        json_t *b = json_array_get(before, i);
        bv[i] = json_is_null(b) ? NULL : b;
        deleted[i] = json_is_true(json_array_get(json_object_get(c, "deleted"), i));
        prev[i] = json_array_get(json_object_get(c, "prev"), i);
        if (json_is_null(prev[i]))
            prev[i] = NULL;
    }
    rc = synth_response(&in, &out, err, sizeof(err));
    if (dump)
        printf("== %s: rc %d status %d err \"%s\"\n  body %s\n", name, rc, out.status, err,
               out.body ? out.body : "(none)");
    if (want_err != NULL) {
        if (rc == 0)
            snprintf(why, whylen, "answered (status %d), want refusal \"%s\"", out.status,
                     json_string_value(want_err));
        else if (strstr(err, json_string_value(want_err)) == NULL)
            snprintf(why, whylen, "refusal \"%s\" lacks \"%s\"", err, json_string_value(want_err));
        else
            ok = 1;
        goto done;
    }
    if (rc != 0) {
        snprintf(why, whylen, "refused: %s", err);
        goto done;
    }
    if (out.status != json_integer_value(json_object_get(c, "status"))) {
        snprintf(why, whylen, "status %d, want %d", out.status,
                 (int)json_integer_value(json_object_get(c, "status")));
        goto done;
    }
    if (json_is_string(json_object_get(c, "location")) &&
        (out.location == NULL ||
         strcmp(out.location, json_string_value(json_object_get(c, "location"))) != 0)) {
        snprintf(why, whylen, "location %s", out.location ? out.location : "(none)");
        goto done;
    }
    got = out.body ? json_loads(out.body, JSON_REJECT_DUPLICATES, NULL) : json_null();
    if (got == NULL || !json_equal(got, json_object_get(c, "response"))) {
        snprintf(why, whylen, "body %s", out.body ? out.body : "(none)");
        goto done;
    }
    for (size_t i = 0; i < ops->n; i++) {
        json_t *wid = json_array_get(json_object_get(c, "ids"), i);
        json_t *wrec = json_array_get(json_object_get(c, "records"), i);
        if (!check_id(crm, &ops->v[i], out.records[i], out.ids[i])) {
            snprintf(why, whylen, "op %zu: synthetic id %s has the wrong format", i, out.ids[i]);
            goto done;
        }
        if (wid != NULL && (json_is_null(wid) ? out.ids[i] != NULL
                                              : out.ids[i] == NULL ||
                                                    strcmp(out.ids[i], json_string_value(wid)))) {
            snprintf(why, whylen, "op %zu: id %s, want %s", i, out.ids[i] ? out.ids[i] : "NULL",
                     json_is_null(wid) ? "NULL" : json_string_value(wid));
            goto done;
        }
        if (wrec != NULL &&
            (json_is_null(wrec) ? out.records[i] != NULL : !subset(wrec, out.records[i]))) {
            char *s = out.records[i] ? json_dumps(out.records[i], JSON_COMPACT) : NULL;
            snprintf(why, whylen, "op %zu: record %s", i, s ? s : "NULL");
            free(s);
            goto done;
        }
        if (dump && out.records[i])
            show(name, "record", out.records[i]);
        if (out.records[i] != NULL &&
            (json_integer_value(json_object_get(out.records[i], "ts")) != in.now_ms ||
             !json_is_object(json_object_get(out.records[i], "fields")))) {
            snprintf(why, whylen, "op %zu: overlay record lacks ts or fields", i);
            goto done;
        }
    }
    ok = 1;
done:
    json_decref(got);
    if (rc == 0)
        synth_response_free(&out, ops->n);
    free(bv);
    free(deleted);
    free(prev);
    return ok;
}

static int run_read(json_t *c, const char *name, enum crm crm, const struct crm_request *req,
                    const struct crm_ops *ops, char *why, size_t whylen)
{
    char err[512] = "", *body = NULL;
    size_t len = 0;
    int status = 0, ok = 0;
    json_t *got = NULL;

    if (synth_read_answer(crm, req, &ops->v[0], json_object_get(c, "rec"), 0, &status, &body, &len,
                          err, sizeof(err)) != 0) {
        snprintf(why, whylen, "refused: %s", err);
        return 0;
    }
    if (dump)
        printf("== %s: status %d body %s\n", name, status, body);
    got = json_loads(body, 0, NULL);
    if (status != json_integer_value(json_object_get(c, "status")) ||
        !json_equal(got, json_object_get(c, "response")))
        snprintf(why, whylen, "status %d body %s", status, body);
    else
        ok = 1;
    json_decref(got);
    free(body);
    return ok;
}

static int run_merge(json_t *c, const char *name, enum crm crm, const struct crm_request *req,
                     const struct crm_ops *ops, char *why, size_t whylen)
{
    json_t **recs = calloc(ops->n ? ops->n : 1, sizeof(*recs));
    json_t *answer = json_deep_copy(json_object_get(c, "answer"));
    int status = (int)json_integer_value(json_object_get(c, "status_in")), ok = 0, n;
    char err[512] = "";

    for (size_t i = 0; i < ops->n; i++) {
        json_t *r = json_array_get(json_object_get(c, "recs"), i);
        recs[i] = json_is_null(r) ? NULL : r;
    }
    n = synth_overlay_merge(crm, req, ops, recs, &answer, &status, err, sizeof(err));
    if (dump)
        show(name, "merged", answer);
    if (n < 0)
        snprintf(why, whylen, "refused: %s", err);
    else if (n != json_integer_value(json_object_get(c, "changed")) ||
             status != json_integer_value(json_object_get(c, "status")) ||
             !json_equal(answer, json_object_get(c, "response"))) {
        char *s = json_dumps(answer, JSON_COMPACT);
        snprintf(why, whylen, "changed %d status %d answer %s", n, status, s);
        free(s);
    } else {
        ok = 1;
    }
    json_decref(answer);
    free(recs);
    return ok;
}

static void test_synthesize_cases(void **state)
{
    const char *file = "tests/unit/cases/synthesize.jsonl";
    FILE *f = fopen(file, "r");
    char *line = NULL;
    size_t cap = 0, ncases = 0;
    ssize_t len;
    int failures = 0, lineno = 0;

    (void)state;
    dump = getenv("SYNTH_DUMP") != NULL;
    assert_non_null(f);
    while ((len = getline(&line, &cap, f)) > 0) {
        struct crm_request req;
        struct crm_ops ops = {0};
        json_error_t jerr;
        json_t *c;
        const char *name, *kind, *crmname;
        enum crm crm;
        char *body_text, why[2048] = "";
        int ok;

        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        c = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
        if (c == NULL) {
            printf("%s:%d: bad case line: %s\n", file, lineno, jerr.text);
            failures++;
            continue;
        }
        ncases++;
        name = json_string_value(json_object_get(c, "name"));
        kind = json_string_value(json_object_get(c, "kind"));
        crmname = json_string_value(json_object_get(c, "crm"));
        crm = crmname && strcmp(crmname, "salesforce") == 0 ? CRM_SALESFORCE : CRM_HUBSPOT;
        load_request(c, &req, &body_text);
        if (classify(crm, &req, &ops) != 0 || ops.n == 0) {
            snprintf(why, sizeof(why), "classifier failed");
            ok = 0;
        } else if (kind && strcmp(kind, "read") == 0) {
            ok = run_read(c, name, crm, &req, &ops, why, sizeof(why));
        } else if (kind && strcmp(kind, "merge") == 0) {
            ok = run_merge(c, name, crm, &req, &ops, why, sizeof(why));
        } else {
            ok = run_write(c, name, crm, &req, &ops, why, sizeof(why));
        }
        if (!ok) {
            printf("FAIL %s:%d \"%s\": %s\n", file, lineno, name ? name : "?", why);
            failures++;
        }
        crm_ops_free(&ops);
        free(body_text);
        json_decref(c);
    }
    free(line);
    fclose(f);
    printf("synthesize: %zu cases, %d failures\n", ncases, failures);
    assert_int_equal(failures, 0);
    assert_true(ncases >= SYNTH_MIN_CASES);
}

/* The timestamp arithmetic against known instants, including a leap day and the epoch. */
/* Two dry-run writes to one record that raced: the later commit keeps what the earlier wrote. */
static void test_synthesize_combine(void **state)
{
    json_t *old = json_loads("{\"id\":\"1\",\"fields\":{\"a\":\"A1\",\"b\":\"B0\",\"c\":\"C0\"},"
                             "\"written\":[\"a\"],\"created\":true,\"deleted\":false,\"ts\":1}",
                             0, NULL);
    json_t *rec = json_loads("{\"id\":\"1\",\"fields\":{\"a\":\"A0\",\"b\":\"B2\",\"c\":\"C9\"},"
                             "\"written\":[\"b\"],\"created\":false,\"deleted\":false,\"ts\":2}",
                             0, NULL);
    json_t *want = json_loads("{\"id\":\"1\",\"fields\":{\"a\":\"A1\",\"b\":\"B2\",\"c\":\"C9\"},"
                              "\"written\":[\"b\",\"a\"],\"created\":true,\"deleted\":false,"
                              "\"ts\":2}",
                              0, NULL);
    json_t *del = json_loads("{\"id\":\"1\",\"fields\":{},\"deleted\":true,\"ts\":3}", 0, NULL);
    json_t *got = synth_overlay_combine(old, rec), *got2 = synth_overlay_combine(old, del);
    json_t *got3 = synth_overlay_combine(NULL, rec);

    (void)state;
    /* adds: old wrote a, rec did not (and old was created); not after combining, not a delete */
    assert_int_equal(synth_overlay_combine_adds(old, rec), 1);
    assert_int_equal(synth_overlay_combine_adds(old, got), 0);
    assert_int_equal(synth_overlay_combine_adds(old, del), 0);
    assert_int_equal(synth_overlay_combine_adds(NULL, rec), 0);
    assert_true(json_equal(got, want));
    assert_ptr_equal(got2, del); /* a delete replaces */
    assert_ptr_equal(got3, rec);
    /* in place (the store's writer owns its record): the same result, rec itself changed */
    assert_int_equal(synth_overlay_combine_into(old, rec), 0);
    assert_true(json_equal(rec, want));
    assert_int_equal(synth_overlay_combine_into(old, del), 0);
    assert_int_equal(json_object_size(json_object_get(del, "fields")), 0);
    /* only "created" to add: that alone is a change */
    json_object_set_new(want, "created", json_false());
    assert_int_equal(synth_overlay_combine_adds(old, want), 1);
    json_object_set_new(old, "created", json_false());
    assert_int_equal(synth_overlay_combine_adds(old, want), 0);
    json_decref(got);
    json_decref(got2);
    json_decref(got3);
    json_decref(old);
    json_decref(rec);
    json_decref(want);
    json_decref(del);
}

static void test_synthesize_iso(void **state)
{
    static const struct {
        long long ms;
        const char *hs, *sf;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z", "1970-01-01T00:00:00.000+0000"},
        {1787306400123LL, "2026-08-21T10:00:00.123Z", "2026-08-21T10:00:00.123+0000"},
        {951782400000LL, "2000-02-29T00:00:00.000Z", "2000-02-29T00:00:00.000+0000"},
        {1704067199999LL, "2023-12-31T23:59:59.999Z", "2023-12-31T23:59:59.999+0000"},
    };
    const char *path = "/services/data/v62.0/sobjects/Account";
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct crm_request req = {.method = "POST",
                                  .path = path,
                                  .body = "{\"Name\":\"x\"}",
                                  .body_len = 12,
                                  .content_type = "application/json"};
        struct crm_ops ops = {0};
        struct rand_seq rs = {NULL, 0};
        json_t *before[1] = {NULL};
        struct synth_request in = {.crm = CRM_SALESFORCE,
                                   .req = &req,
                                   .ops = &ops,
                                   .before = before,
                                   .now_ms = cases[i].ms,
                                   .rand64 = test_rand,
                                   .rand_arg = &rs};
        struct synth_response out;
        char err[256];
        json_t *fields;

        assert_int_equal(salesforce_classify(&req, NULL, &ops), 0);
        assert_int_equal(synth_response(&in, &out, err, sizeof(err)), 0);
        fields = json_object_get(out.records[0], "fields");
        assert_string_equal(json_string_value(json_object_get(fields, "CreatedDate")), cases[i].sf);
        synth_response_free(&out, ops.n);
        crm_ops_free(&ops);
        (void)cases[i].hs;
    }
}

/*
 * A read of every field of a Salesforce record created in dry-run: the
 * describe to ask for, then the row built from it (describe order, booleans
 * false, the rest null, the overlay's values); no describe path for a read
 * that names its fields; NULL for a describe without fields.
 */
/* Which written values leave a dry-run alias: keys a CRM may find records by, both CRMs. */
static void test_synthesize_key_candidates(void **state)
{
    static const struct {
        enum crm crm;
        const char *object, *name;
        int want;
    } cases[] = {
        {CRM_HUBSPOT, "contacts", "email", 1},     {CRM_HUBSPOT, "companies", "email", 0},
        {CRM_HUBSPOT, "deals", "deal_key", 1},     {CRM_HUBSPOT, "2-123", "external_ref", 1},
        {CRM_HUBSPOT, "contacts", "firstname", 0}, {CRM_HUBSPOT, "deals", "dealname", 0},
        {CRM_HUBSPOT, "contacts", "phone", 0},     {CRM_HUBSPOT, "deals", "hs_priority", 0},
        {CRM_SALESFORCE, "Account", "Ext__c", 1},  {CRM_SALESFORCE, "Account", "ns__Key__C", 1},
        {CRM_SALESFORCE, "Account", "Name", 0},    {CRM_SALESFORCE, "Account", "__c", 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(synth_unique_key_candidate(cases[i].crm, cases[i].object, cases[i].name),
                         cases[i].want);
}

static void test_synthesize_describe_row(void **state)
{
    struct crm_request all = {.method = "GET",
                              .path = "/services/data/v58.0/sobjects/Account/001DR0000000001YAA"};
    struct crm_request named = {.method = "GET",
                                .path = "/services/data/v58.0/sobjects/Account/001DR0000000001YAA",
                                .query = "fields=Name"};
    struct crm_ops ops = {0}, nops = {0};
    json_t *describe = json_loads("{\"name\":\"Account\",\"fields\":[{\"name\":\"Id\","
                                  "\"type\":\"id\"},{\"name\":\"IsDeleted\",\"type\":"
                                  "\"boolean\"},{\"name\":\"Name\",\"type\":\"string\"},"
                                  "{\"name\":\"Phone\",\"type\":\"phone\"},{\"name\":"
                                  "\"Active__c\",\"type\":\"boolean\"}]}",
                                  0, NULL);
    json_t *rec = json_loads("{\"object\":\"Account\",\"id\":\"001DR0000000001YAA\","
                             "\"fields\":{\"Id\":\"001DR0000000001YAA\",\"Name\":\"Hooli\","
                             "\"IsDeleted\":false},\"created\":true,\"deleted\":false}",
                             0, NULL);
    json_t *want = json_loads(
        "{\"attributes\":{\"type\":\"Account\",\"url\":\"/services/data/v58.0/sobjects/"
        "Account/001DR0000000001YAA\"},\"Id\":\"001DR0000000001YAA\",\"IsDeleted\":false,"
        "\"Name\":\"Hooli\",\"Phone\":null,\"Active__c\":false}",
        0, NULL);
    json_t *row, *empty = json_pack("{s:[]}", "fields");
    char *path;

    (void)state;
    assert_int_equal(salesforce_classify(&all, NULL, &ops), 0);
    assert_int_equal(salesforce_classify(&named, NULL, &nops), 0);
    path = synth_sf_describe_path(&all, &ops.v[0]);
    assert_non_null(path);
    assert_string_equal(path, "/services/data/v58.0/sobjects/Account/describe");
    free(path);
    assert_null(synth_sf_describe_path(&named, &nops.v[0]));
    row = synth_sf_describe_row(&all, describe, rec);
    assert_non_null(row);
    assert_true(json_equal(row, want));
    assert_null(synth_sf_describe_row(&all, empty, rec));
    json_decref(row);
    json_decref(empty);
    json_decref(want);
    json_decref(rec);
    json_decref(describe);
    crm_ops_free(&ops);
    crm_ops_free(&nops);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthesize_cases),
        cmocka_unit_test(test_synthesize_iso),
        cmocka_unit_test(test_synthesize_combine),
        cmocka_unit_test(test_synthesize_describe_row),
        cmocka_unit_test(test_synthesize_key_candidates),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
