/*
 * test_crm.c - CRM-shaped error bodies, parsed back with jansson; form
 * bodies (crm_form_value), as OAuth token revocations send them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

static void test_oauth_shape(void **state)
{
    static const struct {
        int status;
        const char *error;
    } cases[] = {
        {400, "invalid_request"}, {403, "access_denied"}, {503, "temporarily_unavailable"}};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *body = crm_oauth_error_body(cases[i].status, "why \"quoted\"");
        json_t *j = json_loads(body, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_object_size(j), 2);
        assert_string_equal(json_string_value(json_object_get(j, "error")), cases[i].error);
        assert_string_equal(json_string_value(json_object_get(j, "error_description")),
                            "why \"quoted\"");
        json_decref(j);
        free(body);
    }
}

static void test_form_value(void **state)
{
    static const char *const form = "application/x-www-form-urlencoded";
    static const struct {
        const char *ctype, *body, *want; /* want NULL: absent */
        size_t count;
        enum crm_form rc;
    } cases[] = {
        {form, "token=abc", "abc", 1, CRM_FORM_OK},
        {"Application/X-WWW-Form-Urlencoded ; charset=UTF-8", "a=1&token=a%2Bb+c&b=2", "a+b c", 1,
         CRM_FORM_OK},
        {form, "%74oken=x", "x", 1, CRM_FORM_OK},             /* keys are decoded too */
        {form, "Token=x&tokens=y&token", "", 1, CRM_FORM_OK}, /* exact name; no '=': empty */
        {form, "token=a&&token=b", "a", 2, CRM_FORM_OK},      /* the first, and the count */
        {form, "client_id=c", NULL, 0, CRM_FORM_OK},
        {NULL, "", NULL, 0, CRM_FORM_OK}, /* no body: nothing to name */
        {"application/json", "token=x", NULL, 0, CRM_FORM_BAD},
        {"application/x-www-form-urlencodedx", "token=x", NULL, 0, CRM_FORM_BAD},
        {NULL, "token=x", NULL, 0, CRM_FORM_BAD},
        {form, "token=a%2", NULL, 0, CRM_FORM_BAD},
        {form, "token=a%zz", NULL, 0, CRM_FORM_BAD},
        {form, "token=a%00b", NULL, 0, CRM_FORM_BAD},
        {form, "token=a%0Db", NULL, 0, CRM_FORM_BAD},
        {form, "token=%C3%28", NULL, 0, CRM_FORM_BAD},  /* not UTF-8 */
        {form, "x=%zz&token=a", NULL, 0, CRM_FORM_BAD}, /* a bad value anywhere */
        {form, "%zz=1&token=a", NULL, 0, CRM_FORM_BAD}, /* a bad key */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = (char *)1;
        size_t outlen = 99, count = 99;
        enum crm_form rc = crm_form_value(cases[i].ctype, cases[i].body, strlen(cases[i].body),
                                          "token", &out, &outlen, &count);
        assert_int_equal(rc, cases[i].rc);
        if (cases[i].want == NULL) {
            assert_null(out);
            assert_int_equal(outlen, 0);
        } else {
            assert_non_null(out);
            assert_string_equal(out, cases[i].want);
            assert_int_equal(outlen, strlen(cases[i].want));
        }
        if (rc == CRM_FORM_OK)
            assert_int_equal(count, cases[i].count);
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hubspot_shape), cmocka_unit_test(test_salesforce_shape),
        cmocka_unit_test(test_categories),    cmocka_unit_test(test_oauth_shape),
        cmocka_unit_test(test_form_value),
    };
    return cmocka_run_group_tests_name("crm", tests, NULL, NULL);
}
