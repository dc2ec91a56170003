/*
 * test_classify_salesforce.c - the Salesforce classifier against the cases
 * in tests/unit/cases/salesforce.jsonl (built-in schema), plus the schema
 * API, the id checksum and appending to a non-empty list, which the data
 * file cannot express. Run from the repository root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <jansson.h>

#include "classify_driver.h"
#include "crm.h"
#include "salesforce.h"

static int classify_sf(const struct crm_request *r, struct crm_ops *o)
{
    return salesforce_classify(r, NULL, o);
}

static void test_cases(void **state)
{
    size_t n = 0;
    int failures;

    (void)state;
    failures = driver_run_file("tests/unit/cases/salesforce.jsonl", classify_sf, &n);
    printf("salesforce.jsonl: %zu cases, %d failures\n", n, failures);
    assert_true(n >= 150);
    assert_int_equal(failures, 0);
}

static void test_id_checksum(void **state)
{
    (void)state;
    assert_true(sf_id_valid("a0RE000000IJmcNMAT", 18));
    assert_true(sf_id_valid("001D000000IqhSLIAZ", 18));
    assert_true(sf_id_valid("001D000000IqhSL", 15));
    assert_false(sf_id_valid("001D000000IqhSLIAA", 18));
    assert_false(sf_id_valid("001d000000iqhsliaz", 18));
    assert_false(sf_id_valid("001D000000IqhS", 14));
    assert_false(sf_id_valid("001D000000Iqh-L", 15));
    assert_string_equal(sf_object_for_id(NULL, "00Q000000000001"), "Lead");
    assert_null(sf_object_for_id(NULL, "a0B000000000001"));
}

/* Classify one GET and return the ops as JSON text (caller frees). */
static char *classify_get(const struct sf_schema *schema, const char *path, const char *query)
{
    struct crm_request req = {.method = "GET", .path = path, .query = query};
    struct crm_ops ops = {0};
    json_t *j;
    char *s;

    assert_int_equal(salesforce_classify(&req, schema, &ops), 0);
    j = crm_ops_to_json(&ops);
    s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    crm_ops_free(&ops);
    return s;
}

static void test_custom_schema(void **state)
{
    struct sf_schema *s = sf_schema_new();
    const char *target = NULL;
    char *got;

    (void)state;
    assert_non_null(s);
    got = classify_get(NULL, "/services/data/v62.0/query",
                       "q=SELECT+Name,Project__r.Budget__c+FROM+Invoice__c");
    assert_non_null(strstr(got, "\"verb\":\"unknown\""));
    assert_non_null(strstr(got, "unknown relationship Project__r on Invoice__c"));
    free(got);

    assert_int_equal(sf_schema_add(s, "Invoice__c", "Project__r", "Project__c", 0), 0);
    assert_int_equal(sf_schema_add(s, "Project__c", "Invoices__r", "Invoice__c", 1), 0);
    assert_int_equal(sf_schema_add_prefix(s, "Invoice__c", "a0B"), 0);
    assert_int_equal(sf_schema_add(s, "bad name", "X__r", "Y__c", 0), -1);
    assert_int_equal(sf_schema_add_prefix(s, "Invoice__c", "a0"), -1);
    got = classify_get(s, "/services/data/v62.0/query",
                       "q=SELECT+Name,Project__r.Budget__c+FROM+Invoice__c");
    assert_string_equal(got,
                        "[{\"crm\":\"salesforce\",\"object\":\"Invoice__c\",\"reads\":["
                        "\"Name\",\"Project__c\"],\"verb\":\"list\"},{\"crm\":\"salesforce\","
                        "\"object\":\"Project__c\",\"reads\":[\"Budget__c\"],\"verb\":\"list\"}]");
    free(got);
    got = classify_get(s, "/services/data/v62.0/query",
                       "q=SELECT+Id,(SELECT+Amount__c+FROM+Invoices__r)+FROM+Project__c");
    assert_string_equal(got, "[{\"crm\":\"salesforce\",\"object\":\"Project__c\",\"reads\":["
                             "\"Id\"],\"verb\":\"list\"},{\"crm\":\"salesforce\",\"object\":"
                             "\"Invoice__c\",\"reads\":[\"Amount__c\"],\"verb\":\"list\"}]");
    free(got);
    /* With a registered prefix, an id of another object is refused. */
    got = classify_get(s, "/services/data/v62.0/sobjects/Invoice__c/001D000000IqhSLIAZ", NULL);
    assert_non_null(strstr(got, "\"verb\":\"unknown\""));
    free(got);
    got = classify_get(s, "/services/data/v62.0/sobjects/Invoice__c/a0B000000000001EAA", NULL);
    assert_non_null(strstr(got, "\"verb\":\"read\""));
    free(got);

    /* A second target makes a relationship polymorphic: it no longer resolves. */
    assert_int_equal(sf_schema_resolve(s, "invoice__c", "project__r", 10, 0, &target), 1);
    assert_string_equal(target, "Project__c");
    assert_int_equal(sf_schema_add(s, "Invoice__c", "Project__r", "Program__c", 0), 0);
    assert_int_equal(sf_schema_resolve(s, "Invoice__c", "Project__r", 10, 0, &target), -1);
    /* Schema entries override built-in ones. */
    assert_int_equal(sf_schema_resolve(NULL, "Task", "What", 4, 0, &target), -1);
    assert_int_equal(sf_schema_add(s, "Task", "What", "Opportunity", 0), 0);
    assert_int_equal(sf_schema_resolve(s, "Task", "What", 4, 0, &target), 1);
    assert_string_equal(target, "Opportunity");
    sf_schema_free(s);
}

static void test_appends(void **state)
{
    struct crm_request req = {.method = "DELETE",
                              .path = "/services/data/v62.0/sobjects/Account/001D000000IqhSLIAZ"};
    struct crm_ops ops = {0};

    (void)state;
    assert_int_equal(salesforce_classify(&req, NULL, &ops), 0);
    assert_int_equal(salesforce_classify(&req, NULL, &ops), 0);
    assert_int_equal(ops.n, 2);
    assert_int_equal(ops.v[1].verb, CRM_VERB_DELETE);
    assert_string_equal(ops.v[1].record_id, "001D000000IqhSLIAZ");
    crm_ops_free(&ops);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_id_checksum),
        cmocka_unit_test(test_custom_schema),
        cmocka_unit_test(test_appends),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
