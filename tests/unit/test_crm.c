/*
 * test_crm.c - CRM-shaped error bodies, parsed back with jansson.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <jansson.h>

#include "crm.h"

static void test_hubspot_shape(void **state)
{
    char *body = crm_error_body(CRM_HUBSPOT, 502, "upstream_refused", "cannot \"connect\"", "id-1");
    json_t *j;

    (void)state;
    assert_non_null(body);
    j = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(j);
    /* the four fields the schema requires, and the SDK passes through */
    assert_string_equal(json_string_value(json_object_get(j, "status")), "error");
    assert_string_equal(json_string_value(json_object_get(j, "message")), "cannot \"connect\"");
    assert_string_equal(json_string_value(json_object_get(j, "correlationId")), "id-1");
    assert_string_equal(json_string_value(json_object_get(j, "category")), "BAD_GATEWAY");
    assert_string_equal(json_string_value(json_object_get(j, "subCategory")),
                        "crmgate.upstream_refused");
    json_decref(j);
    free(body);
}

static void test_salesforce_shape(void **state)
{
    char *body = crm_error_body(CRM_SALESFORCE, 404, "unknown_route", "no route", NULL);
    json_t *j, *e;

    (void)state;
    j = json_loads(body, 0, NULL);
    assert_true(json_is_array(j));
    assert_int_equal(json_array_size(j), 1);
    e = json_array_get(j, 0);
    assert_string_equal(json_string_value(json_object_get(e, "errorCode")), "NOT_FOUND");
    assert_string_equal(json_string_value(json_object_get(e, "message")), "no route");
    assert_true(json_is_array(json_object_get(e, "fields")));
    assert_string_equal(json_string_value(json_object_get(e, "crmgateError")), "unknown_route");
    json_decref(j);
    free(body);
}

static void test_categories(void **state)
{
    static const struct {
        enum crm crm;
        int status;
        const char *key, *want;
    } cases[] = {
        {CRM_HUBSPOT, 400, "category", "VALIDATION_ERROR"},
        {CRM_HUBSPOT, 504, "category", "GATEWAY_TIMEOUT"},
        {CRM_NONE, 431, "category", "REQUEST_HEADER_FIELDS_TOO_LARGE"},
        {CRM_SALESFORCE, 403, "errorCode", "INSUFFICIENT_ACCESS"},
        {CRM_SALESFORCE, 503, "errorCode", "SERVER_UNAVAILABLE"},
        {CRM_SALESFORCE, 413, "errorCode", "REQUEST_TOO_LARGE"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *body = crm_error_body(cases[i].crm, cases[i].status, "x", "m", "c");
        json_t *j = json_loads(body, 0, NULL);
        json_t *o = json_is_array(j) ? json_array_get(j, 0) : j;
        assert_string_equal(json_string_value(json_object_get(o, cases[i].key)), cases[i].want);
        json_decref(j);
        free(body);
    }
    assert_string_equal(crm_status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(crm_name(CRM_SALESFORCE), "salesforce");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hubspot_shape),
        cmocka_unit_test(test_salesforce_shape),
        cmocka_unit_test(test_categories),
    };
    return cmocka_run_group_tests_name("crm", tests, NULL, NULL);
}
