/*
 * test_audit.c - audit records written straight to JSON (audit_record_json)
 * come out byte for byte as jansson writes the same record built as a JSON
 * object (json_dumps, compact, sorted keys: the format the store always
 * wrote): every optional member, strings that need escaping and non-ASCII,
 * an "id" placeholder in its sorted place, an update's id, outcomes and
 * created ids set afterwards; and a string that is not UTF-8 refuses the
 * records, as building them in jansson did.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "audit.h"

/* A string member as a record holds it: null when absent or empty. */
static json_t *str_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

/* Record i as jansson writes it, built member by member from what the records hold. */
static char *oracle(const struct audit_records *r, size_t i, int placeholder)
{
    const struct audit_rec *rec = &r->v[i];
    const struct crm_op *op = rec->op;
    const struct config_caller *who = r->ef->caller;
    json_t *o = json_object();
    char id[24], *s;

    if (rec->before_unknown)
        json_object_set_new(o, "before_state", json_string("unavailable"));
    json_object_set_new(o, "call", str_or_null(r->ctx->call));
    json_object_set_new(o, "crm", json_string(crm_name(op->crm)));
    json_object_set_new(o, "decision", json_string(r->decision));
    if (!r->ef->verdict.allow)
        json_object_set_new(o, "denial", str_or_null(r->ef->verdict.reason));
    if (op->verb == CRM_VERB_UNKNOWN)
        json_object_set_new(o, "detail", str_or_null(op->detail));
    if (rec->error != NULL)
        json_object_set_new(o, "error", json_string(rec->error));
    json_object_set(o, "fields", rec->fields);
    snprintf(id, sizeof(id), "%llu", (unsigned long long)rec->id);
    json_object_set_new(o, "id", json_string(placeholder ? "" : id));
    json_object_set_new(o, "id_property", str_or_null(op->id_property));
    if (who != NULL)
        json_object_set_new(o, "integration",
                            r->integration != NULL ? custody_audit_json(r->integration)
                            : r->key_id != NULL    ? json_null()
                                                   : custody_audit_json(NULL));
    if (r->key_id != NULL)
        json_object_set_new(o, "key", json_string(r->key_id));
    json_object_set_new(o, "kind", str_or_null(who != NULL ? config_kind_name(who->kind) : NULL));
    json_object_set_new(o, "latency_us", json_integer(rec->latency_us));
    json_object_set_new(o, "object", str_or_null(op->object));
    json_object_set_new(o, "outcome", json_string(rec->outcome));
    json_object_set_new(o, "reason", str_or_null(r->ctx->reason));
    json_object_set_new(o, "record", rec->record != NULL ? json_string(rec->record) : json_null());
    json_object_set_new(o, "request_id", str_or_null(r->request_id));
    json_object_set_new(o, "rule", str_or_null(r->ef->verdict.rule));
    if (op->save_duplicates)
        json_object_set_new(o, "save_duplicates", json_true());
    json_object_set_new(o, "synthetic", json_boolean(r->synthetic));
    if (op->to_object != NULL || op->to_id != NULL)
        json_object_set_new(o, "to",
                            json_pack("{s:o, s:o}", "object", str_or_null(op->to_object), "id",
                                      str_or_null(op->to_id)));
    json_object_set_new(o, "ts", json_integer(r->ts_ms));
    json_object_set_new(o, "upstream_status",
                        rec->upstream_status > 0 ? json_integer(rec->upstream_status)
                                                 : json_null());
    json_object_set_new(o, "user", str_or_null(who != NULL ? who->user : NULL));
    json_object_set_new(o, "verb", json_string(crm_verb_name(op->verb)));
    json_object_set_new(o, "workflow", str_or_null(r->ctx->workflow));
    json_object_set_new(o, "workspace", str_or_null(who != NULL ? who->workspace : NULL));
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    assert_non_null(s);
    return s;
}

/* Every record, as an append (placeholder id) and as an update, equals the oracle's bytes. */
static void same_as_oracle(const struct audit_records *r)
{
    for (size_t i = 0; i < r->n; i++) {
        for (int placeholder = 0; placeholder < 2; placeholder++) {
            struct jsonout out = {0};
            size_t id_at = 0;
            char *want = oracle(r, i, placeholder);
            assert_int_equal(audit_record_json(r, i, &out, placeholder ? &id_at : NULL), 0);
            assert_string_equal(out.buf, want);
            assert_int_equal(out.len, strlen(want));
            if (placeholder) {
                assert_true(id_at > 0 && id_at < out.len);
                assert_memory_equal(out.buf + id_at - 6, "\"id\":\"\"", 7);
            }
            free(want);
            jsonout_free(&out);
        }
    }
}

struct fixture {
    struct enforce ef;
    struct crm_op ops[3];
    struct crm_write writes[2];
    struct config_caller who;
    struct audit_ctx ctx;
    struct custody_ref iref;
    struct audit_in in; /* allowed, outcome "unknown", nothing else */
};

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->writes[0].name = "firstname";
    f->writes[0].value = json_string("Ada \"Bench\"\n\xc3\xa9");
    f->writes[1].name = "amount";
    f->writes[1].value = json_integer(-42);
    f->ops[0] = (struct crm_op){.crm = CRM_HUBSPOT,
                                .verb = CRM_VERB_UPDATE,
                                .object = "contacts",
                                .record_id = "2",
                                .writes = f->writes,
                                .nwrites = 2};
    f->ops[1] = (struct crm_op){.crm = CRM_SALESFORCE,
                                .verb = CRM_VERB_ASSOCIATE,
                                .object = "Account",
                                .record_id = "001\\x",
                                .id_property = "Ext__c",
                                .to_object = "Contact",
                                .to_id = "003"};
    f->ops[2] = (struct crm_op){
        .crm = CRM_HUBSPOT, .verb = CRM_VERB_UNKNOWN, .detail = "a \x01 control \xe2\x82\xac"};
    f->ef.crm = CRM_HUBSPOT;
    f->ef.ops.v = f->ops;
    f->ef.ops.n = 3;
    f->who.workspace = "acme";
    f->who.user = "ann@example.com";
    f->who.kind = CONFIG_KIND_CHAT;
    f->ef.caller = &f->who;
    f->ef.verdict.allow = 1;
    snprintf(f->ef.verdict.rule, sizeof(f->ef.verdict.rule), "acme.json#/hubspot/objects");
    snprintf(f->ctx.workflow, sizeof(f->ctx.workflow), "wf-1");
    snprintf(f->ctx.reason, sizeof(f->ctx.reason), "tab\there, quote \" and \\ slash /");
    snprintf(f->iref.ws, sizeof(f->iref.ws), "acme");
    snprintf(f->iref.user, sizeof(f->iref.user), "ann");
    f->iref.scope = CUSTODY_SCOPE_USER;
    f->in.ef = &f->ef;
    f->in.ctx = &f->ctx;
    f->in.decision = "allow";
    f->in.outcome = "unknown";
}

static void fixture_free(struct fixture *f)
{
    json_decref(f->writes[0].value);
    json_decref(f->writes[1].value);
}

static void test_members(void **state)
{
    struct fixture f;
    json_t *before = json_pack("{s:s}", "firstname", "Old");
    const unsigned char unknown[3] = {0, 1, 0};
    char *ids[3] = {NULL, NULL, NULL};
    struct audit_in in;
    struct audit_records *r;

    (void)state;
    fixture_init(&f);
    in = f.in;
    in.before = (json_t *const[]){before, NULL, NULL};
    in.unknown = unknown;
    in.ids = ids;
    in.ts_ms = 1796673343259;
    in.request_id = "6f5e1e2c-6589-4d4b-8d4d-2c63d282717a";
    in.synthetic = 0;

    /* passthrough, allowed, no key */
    r = audit_records(&in);
    assert_non_null(r);
    assert_int_equal(r->n, 3);
    same_as_oracle(r);
    /* after the intent: ids, an outcome with an error, a batch member marked, a created id */
    audit_set_ids(r, 117746784223887360ull);
    assert_int_equal(audit_set_outcome(r, "allowed", 200, 1234, "uninspectable_answer"), 0);
    r->v[1].outcome = "upstream_error";
    free(r->v[0].record);
    r->v[0].record = NULL;
    assert_int_equal(audit_set_record_id(r, 0, "77"), 0);
    assert_string_equal(r->v[0].record, "77");
    assert_int_equal(audit_set_record_id(r, 0, "78"), 0); /* has one: kept */
    assert_string_equal(r->v[0].record, "77");
    assert_int_equal(audit_set_record_id(r, 1, "\xff"), 0); /* has one */
    same_as_oracle(r);
    audit_records_free(r);

    /* denied, in dry-run with a key and its user integration, a synthetic create id; one
     * op sent past Salesforce's duplicate rules */
    f.ops[1].save_duplicates = 1;
    f.ef.verdict.allow = 0;
    snprintf(f.ef.verdict.reason, sizeof(f.ef.verdict.reason), "field \"amount\" is not writable");
    ids[0] = "9001";
    in.decision = "dry_run";
    in.outcome = "dry_run";
    in.synthetic = 1;
    in.key_id = "k_123";
    in.integration = &f.iref;
    in.request_id = NULL;
    r = audit_records(&in);
    assert_non_null(r);
    assert_string_equal(r->v[0].record, "9001");
    assert_string_equal(r->v[1].record, "001\\x"); /* by id property: its own */
    r->v[2].upstream_status = 404;
    r->v[2].error = "not_found";
    same_as_oracle(r);
    audit_records_free(r);

    /* a workspace integration; a key with none chosen yet; no caller at all */
    f.iref.scope = CUSTODY_SCOPE_WORKSPACE;
    r = audit_records(&in);
    same_as_oracle(r);
    audit_records_free(r);
    in.integration = NULL;
    r = audit_records(&in);
    same_as_oracle(r);
    audit_records_free(r);
    f.ef.caller = NULL;
    in.key_id = NULL;
    r = audit_records(&in);
    same_as_oracle(r);
    audit_records_free(r);

    json_decref(before);
    fixture_free(&f);
}

/* A string jansson would refuse (not UTF-8) refuses the records, as it did. */
static void test_not_utf8(void **state)
{
    struct fixture f;
    struct audit_records *r;

    (void)state;
    fixture_init(&f);
    r = audit_records(&f.in);
    assert_non_null(r);
    audit_records_free(r);
    f.ops[1].to_id = "00\xc3";
    assert_null(audit_records(&f.in));
    f.ops[1].to_id = "003";
    snprintf(f.ctx.call, sizeof(f.ctx.call), "\xe2\x82");
    assert_null(audit_records(&f.in));
    fixture_free(&f);
}

/*
 * Which records a partly failed answer marks upstream_error (audit_batch_outcomes), row by
 * row: records 0..2 of the fixture (HubSpot record "2", a Salesforce record, an unknown op),
 * ops 0 and 1 as subrequests 2 and 1 of a composite where a row says so.
 */
static void test_batch_outcomes(void **state)
{
    static const struct {
        enum crm crm;
        int composite; /* 1: composite subrequests 2 and 1; 2: graphs 1, 2 and 2 */
        const char *body;
        const char *marked; /* '1' per record marked */
    } rows[] = {
        {CRM_HUBSPOT, 0, NULL, "000"},
        {CRM_HUBSPOT, 0, "", "000"},
        {CRM_HUBSPOT, 0, "{\"id\":\"2\",\"properties\":{}}", "000"},
        {CRM_HUBSPOT, 0, "{\"status\":\"COMPLETE\",\"results\":[{\"id\":\"2\"}]}", "000"},
        {CRM_HUBSPOT, 0, "{\"errors\":[{\"context\":{\"ids\":[\"2\"]}}]}", "100"},
        {CRM_HUBSPOT, 0, "{\"errors\":[{\"context\":{\"ids\":[\"3\"]}}]}", "000"},
        {CRM_HUBSPOT, 0, "{\"errors\": not json", "000"},
        {CRM_SALESFORCE, 0, "{\"id\":\"001\",\"success\":true,\"errors\":[]}", "000"},
        {CRM_SALESFORCE, 0, " [{\"success\":true},{\"success\":false},{\"success\":true}]", "010"},
        {CRM_SALESFORCE, 0, "[{\"success\":false}]", "000"}, /* not one per record */
        {CRM_SALESFORCE, 1,
         "{\"compositeResponse\":[{\"httpStatusCode\":400},{\"httpStatusCode\":200}]}", "010"},
        {CRM_SALESFORCE, 1, "{\"results\":[{\"statusCode\":201},{\"statusCode\":500}]}", "100"},
        {CRM_SALESFORCE, 1, "{\"compositeResponse\":[{\"httpStatusCode\":400}]}", "000"},
        /* graphs (2): record 0 in graph 1, records 1 and 2 in graph 2 */
        {CRM_SALESFORCE, 2,
         "{\"graphs\":[{\"graphId\":\"a\",\"isSuccessful\":true},"
         "{\"graphId\":\"b\",\"isSuccessful\":false}]}",
         "011"},
        {CRM_SALESFORCE, 2, "{\"graphs\":[{\"isSuccessful\":false},{\"isSuccessful\":true}]}",
         "100"},
        {CRM_SALESFORCE, 2, "{\"graphs\":[{\"isSuccessful\":true},{\"isSuccessful\":true}]}",
         "000"},
        {CRM_SALESFORCE, 2, "{\"graphs\":[{\"isSuccessful\":false}]}", "000"}, /* one short */
        {CRM_SALESFORCE, 2, "{\"graphs\":[{\"isSuccessful\":false},{}]}", "100"},
        {CRM_SALESFORCE, 1, "{\"graphs\":[{\"isSuccessful\":false}]}", "000"}, /* no graph ops */
    };
    struct fixture f;

    (void)state;
    for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        struct audit_records *r;
        size_t want = 0, got;

        fixture_init(&f);
        f.ops[0].subrequest = rows[k].composite == 1 ? 2 : 0;
        f.ops[1].subrequest = rows[k].composite == 1 ? 1 : 0;
        f.ops[0].graph = rows[k].composite == 2 ? 1 : 0;
        f.ops[1].graph = f.ops[2].graph = rows[k].composite == 2 ? 2 : 0;
        r = audit_records(&f.in);
        assert_non_null(r);
        audit_set_outcome(r, "allowed", 200, 1, NULL);
        got = audit_batch_outcomes(r, rows[k].crm, rows[k].body,
                                   rows[k].body != NULL ? strlen(rows[k].body) : 0);
        for (size_t i = 0; i < 3; i++) {
            int marked = rows[k].marked[i] == '1';
            want += (size_t)marked;
            if (strcmp(r->v[i].outcome, marked ? "upstream_error" : "allowed") != 0)
                fail_msg("row %zu record %zu: %s", k, i, r->v[i].outcome);
        }
        assert_int_equal(got, want);
        audit_records_free(r);
        fixture_free(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_not_utf8),
        cmocka_unit_test(test_batch_outcomes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
