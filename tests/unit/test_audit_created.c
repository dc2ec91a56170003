/*
 * test_audit_created.c - audit_created_ids: the ids of multi-record creates
 * matched from the CRM's answer. HubSpot by trace id, by written values
 * (exact, then without case), the last input with the last result, and a
 * 207's refused input; Salesforce collections, composite and composite
 * batch by position, trees by referenceId, and nothing when the creates do
 * not line up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "audit.h"

/* n create records of object (no ids yet). */
static json_t *creates(const char *object, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:n, s:s}", "verb", "create", "object",
                                           object, "record", "outcome", "allowed"));
    return a;
}

static const char *id_of(json_t *records, size_t i)
{
    return json_string_value(json_object_get(json_array_get(records, i), "record"));
}

static size_t run(json_t *records, enum crm crm, const char *req, const char *ans)
{
    return audit_created_ids(records, crm, req, strlen(req), ans, strlen(ans));
}

static void test_hubspot_trace_and_refused(void **state)
{
    json_t *r = creates("contacts", 3);

    (void)state;
    /* identical values: only the trace ids tell them apart; the answer is reversed */
    assert_int_equal(
        run(r, CRM_HUBSPOT,
            "{\"inputs\":[{\"objectWriteTraceId\":\"a\",\"properties\":{\"firstname\":\"T\"}},"
            "{\"objectWriteTraceId\":\"bad\",\"properties\":{\"firstname\":\"T\"}},"
            "{\"objectWriteTraceId\":\"b\",\"properties\":{\"firstname\":\"T\"}}]}",
            "{\"results\":[{\"id\":\"22\",\"objectWriteTraceId\":\"b\",\"properties\":{"
            "\"firstname\":"
            "\"T\"}},{\"id\":\"11\",\"objectWriteTraceId\":\"a\",\"properties\":{\"firstname\":"
            "\"T\"}}],\"errors\":[{\"context\":{\"objectWriteTraceId\":[\"bad\"]}}]}"),
        2);
    assert_string_equal(id_of(r, 0), "11");
    assert_null(id_of(r, 1));
    assert_string_equal(json_string_value(json_object_get(json_array_get(r, 1), "outcome")),
                        "upstream_error");
    assert_string_equal(id_of(r, 2), "22");
    json_decref(r);
}

static void test_hubspot_by_values(void **state)
{
    json_t *r = creates("contacts", 3);

    (void)state;
    /* reversed; the email comes back lowercased; a number as a string; the last by elimination */
    assert_int_equal(
        run(r, CRM_HUBSPOT,
            "{\"inputs\":[{\"properties\":{\"email\":\"A@X.COM\",\"n\":5}},"
            "{\"properties\":{\"firstname\":\"Bo\"}},{\"properties\":{\"date\":\"2026-01-01\"}}]}",
            "{\"results\":[{\"id\":\"3\",\"properties\":{\"date\":\"1767225600000\"}},"
            "{\"id\":\"2\",\"properties\":{\"firstname\":\"Bo\"}},"
            "{\"id\":\"1\",\"properties\":{\"email\":\"a@x.com\",\"n\":\"5\"}}]}"),
        3);
    assert_string_equal(id_of(r, 0), "1");
    assert_string_equal(id_of(r, 1), "2");
    assert_string_equal(id_of(r, 2), "3");
    json_decref(r);

    /* two unmatched inputs and results: no guess */
    r = creates("contacts", 2);
    assert_int_equal(
        run(r, CRM_HUBSPOT,
            "{\"inputs\":[{\"properties\":{\"a\":\"1\"}},{\"properties\":{\"a\":\"2\"}}]}",
            "{\"results\":[{\"id\":\"8\",\"properties\":{\"a\":\"x\"}},"
            "{\"id\":\"9\",\"properties\":{\"a\":\"y\"}}]}"),
        0);
    assert_null(id_of(r, 0));
    /* a record count that is not the inputs': nothing */
    assert_int_equal(run(r, CRM_HUBSPOT, "{\"inputs\":[{\"properties\":{\"a\":\"1\"}}]}",
                         "{\"results\":[{\"id\":\"8\",\"properties\":{\"a\":\"1\"}}]}"),
                     0);
    /* not JSON: nothing */
    assert_int_equal(run(r, CRM_HUBSPOT, "{\"inputs\":[", "{}"), 0);
    json_decref(r);
}

static void test_salesforce(void **state)
{
    json_t *r = creates("Account", 3);

    (void)state;
    assert_int_equal(run(r, CRM_SALESFORCE, "{\"records\":[{},{},{}]}",
                         "[{\"id\":\"001A\",\"success\":true},{\"success\":false,\"errors\":[]},"
                         "{\"id\":\"001C\",\"success\":true}]"),
                     2);
    assert_string_equal(id_of(r, 0), "001A");
    assert_null(id_of(r, 1));
    assert_string_equal(id_of(r, 2), "001C");
    json_decref(r);

    /* composite: an update between two creates; the records list only the creates' objects */
    r = json_pack("[{s:s, s:s, s:n}, {s:s, s:s, s:s}, {s:s, s:s, s:n}]", "verb", "create", "object",
                  "Account", "record", "verb", "update", "object", "Account", "record", "001A",
                  "verb", "create", "object", "Contact", "record");
    assert_int_equal(
        run(r, CRM_SALESFORCE,
            "{\"compositeRequest\":[{\"method\":\"POST\",\"url\":\"/services/data/v62.0/sobjects/"
            "Account\"},{\"method\":\"PATCH\",\"url\":\"/services/data/v62.0/sobjects/Account/"
            "001A\"},{\"method\":\"POST\",\"url\":\"/services/data/v62.0/sobjects/Contact/\"}]}",
            "{\"compositeResponse\":[{\"httpStatusCode\":201,\"body\":{\"id\":\"001N\"}},"
            "{\"httpStatusCode\":204,\"body\":null},{\"httpStatusCode\":201,\"body\":{\"id\":"
            "\"003N\"}}]}"),
        2);
    assert_string_equal(id_of(r, 0), "001N");
    assert_string_equal(id_of(r, 1), "001A");
    assert_string_equal(id_of(r, 2), "003N");
    json_decref(r);

    /* composite batch whose creates do not line up with the records (objects differ): none */
    r = creates("Contact", 1);
    assert_int_equal(run(r, CRM_SALESFORCE,
                         "{\"batchRequests\":[{\"method\":\"POST\",\"url\":\"v62.0/sobjects/"
                         "Account\"}]}",
                         "{\"results\":[{\"statusCode\":201,\"result\":{\"id\":\"001B\"}}]}"),
                     0);
    assert_null(id_of(r, 0));
    assert_int_equal(run(r, CRM_SALESFORCE,
                         "{\"batchRequests\":[{\"method\":\"POST\",\"url\":\"v62.0/sobjects/"
                         "Contact\"}]}",
                         "{\"results\":[{\"statusCode\":201,\"result\":{\"id\":\"003B\"}}]}"),
                     1);
    assert_string_equal(id_of(r, 0), "003B");
    json_decref(r);

    /* sObject tree: a record, then its children, matched by referenceId (results in any order) */
    r = json_pack("[{s:s, s:s, s:n}, {s:s, s:s, s:n}, {s:s, s:s, s:n}]", "verb", "create", "object",
                  "Account", "record", "verb", "create", "object", "Contact", "record", "verb",
                  "create", "object", "Account", "record");
    assert_int_equal(
        run(r, CRM_SALESFORCE,
            "{\"records\":[{\"attributes\":{\"type\":\"Account\",\"referenceId\":\"a1\"},"
            "\"Name\":\"T\",\"Contacts\":{\"records\":[{\"attributes\":{\"type\":\"Contact\","
            "\"referenceId\":\"c1\"},\"LastName\":\"L\"}]}},{\"attributes\":{\"type\":"
            "\"Account\",\"referenceId\":\"a2\"},\"Name\":\"U\"}]}",
            "{\"hasErrors\":false,\"results\":[{\"referenceId\":\"a2\",\"id\":\"001Y\"},"
            "{\"referenceId\":\"a1\",\"id\":\"001X\"},{\"referenceId\":\"c1\",\"id\":"
            "\"003X\"}]}"),
        3);
    assert_string_equal(id_of(r, 0), "001X");
    assert_string_equal(id_of(r, 1), "003X");
    assert_string_equal(id_of(r, 2), "001Y");
    json_decref(r);
    /* a tree that failed created nothing */
    r = creates("Account", 1);
    assert_int_equal(run(r, CRM_SALESFORCE,
                         "{\"records\":[{\"attributes\":{\"type\":\"Account\","
                         "\"referenceId\":\"a1\"}}]}",
                         "{\"hasErrors\":true,\"results\":[{\"referenceId\":\"a1\","
                         "\"errors\":[]}]}"),
                     0);
    assert_null(id_of(r, 0));
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hubspot_trace_and_refused),
        cmocka_unit_test(test_hubspot_by_values),
        cmocka_unit_test(test_salesforce),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
