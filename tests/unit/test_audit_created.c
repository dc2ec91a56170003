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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "audit.h"

#define MAX_RECS 8

/* Records as audit_records leaves them, with the operations they name. */
struct recs {
    struct audit_records r;
    struct audit_rec v[MAX_RECS];
    struct crm_op ops[MAX_RECS];
    char objects[MAX_RECS][32];
};

/* n records of {verb, object, record id or NULL} (outcome "allowed"). */
static struct audit_records *mk(const char *const (*rows)[3], size_t n)
{
    struct recs *x = calloc(1, sizeof(*x));

    assert_non_null(x);
    assert_true(n <= MAX_RECS);
    x->r.v = x->v;
    x->r.n = n;
    for (size_t i = 0; i < n; i++) {
        x->ops[i].verb = strcmp(rows[i][0], "create") == 0 ? CRM_VERB_CREATE : CRM_VERB_UPDATE;
        snprintf(x->objects[i], sizeof(x->objects[i]), "%s", rows[i][1]);
        x->ops[i].object = x->objects[i];
        x->v[i].op = &x->ops[i];
        x->v[i].record = rows[i][2] != NULL ? strdup(rows[i][2]) : NULL;
        x->v[i].outcome = "allowed";
    }
    return &x->r;
}

/* n create records of object (no ids yet). */
static struct audit_records *creates(const char *object, size_t n)
{
    const char *rows[MAX_RECS][3];

    for (size_t i = 0; i < n && i < MAX_RECS; i++) {
        rows[i][0] = "create";
        rows[i][1] = object;
        rows[i][2] = NULL;
    }
    return mk(rows, n);
}

static void release(struct audit_records *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].record);
    free(r); /* r is the first member of its struct recs */
}

static const char *id_of(struct audit_records *records, size_t i)
{
    return records->v[i].record;
}

static size_t run(struct audit_records *records, enum crm crm, const char *req, const char *ans)
{
    return audit_created_ids(records, crm, req, strlen(req), ans, strlen(ans));
}

static void test_hubspot_trace_and_refused(void **state)
{
    struct audit_records *r = creates("contacts", 3);

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
    assert_string_equal(r->v[1].outcome, "upstream_error");
    assert_string_equal(id_of(r, 2), "22");
    release(r);
}

static void test_hubspot_by_values(void **state)
{
    struct audit_records *r = creates("contacts", 3);

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
    release(r);

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
    release(r);
}

static void test_salesforce(void **state)
{
    struct audit_records *r = creates("Account", 3);

    (void)state;
    assert_int_equal(run(r, CRM_SALESFORCE, "{\"records\":[{},{},{}]}",
                         "[{\"id\":\"001A\",\"success\":true},{\"success\":false,\"errors\":[]},"
                         "{\"id\":\"001C\",\"success\":true}]"),
                     2);
    assert_string_equal(id_of(r, 0), "001A");
    assert_null(id_of(r, 1));
    assert_string_equal(id_of(r, 2), "001C");
    release(r);

    /* composite: an update between two creates; the records list only the creates' objects */
    {
        const char *const rows[][3] = {{"create", "Account", NULL},
                                       {"update", "Account", "001A"},
                                       {"create", "Contact", NULL}};
        r = mk(rows, 3);
    }
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
    release(r);

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
    release(r);

    /* graph: the graphs' subrequests as one composite; a rolled-back graph gives no id */
    {
        const char *const rows[][3] = {
            {"create", "Account", NULL}, {"create", "Contact", NULL}, {"create", "Account", NULL}};
        r = mk(rows, 3);
    }
    assert_int_equal(
        run(r, CRM_SALESFORCE,
            "{\"graphs\":[{\"graphId\":\"g1\",\"compositeRequest\":[{\"method\":\"POST\",\"url\":"
            "\"/services/data/v62.0/sobjects/Account\"},{\"method\":\"POST\",\"url\":\"/services/"
            "data/v62.0/sobjects/Contact\"}]},{\"graphId\":\"g2\",\"compositeRequest\":[{"
            "\"method\":\"POST\",\"url\":\"/services/data/v62.0/sobjects/Account\"}]}]}",
            "{\"graphs\":[{\"graphId\":\"g1\",\"isSuccessful\":true,\"graphResponse\":{"
            "\"compositeResponse\":[{\"httpStatusCode\":201,\"body\":{\"id\":\"001G\"}},{"
            "\"httpStatusCode\":201,\"body\":{\"id\":\"003G\"}}]}},{\"graphId\":\"g2\","
            "\"isSuccessful\":false,\"graphResponse\":{\"compositeResponse\":[{"
            "\"httpStatusCode\":400,\"body\":[{\"errorCode\":\"X\"}]}]}}]}"),
        2);
    assert_string_equal(id_of(r, 0), "001G");
    assert_string_equal(id_of(r, 1), "003G");
    assert_null(id_of(r, 2));
    release(r);
    /* a graph answered with fewer entries than it asked: none */
    r = creates("Account", 2);
    assert_int_equal(
        run(r, CRM_SALESFORCE,
            "{\"graphs\":[{\"graphId\":\"g1\",\"compositeRequest\":[{\"method\":\"POST\",\"url\":"
            "\"/services/data/v62.0/sobjects/Account\"},{\"method\":\"POST\",\"url\":\"/services/"
            "data/v62.0/sobjects/Account\"}]}]}",
            "{\"graphs\":[{\"graphId\":\"g1\",\"isSuccessful\":true,\"graphResponse\":{"
            "\"compositeResponse\":[{\"httpStatusCode\":201,\"body\":{\"id\":\"001G\"}}]}}]}"),
        0);
    assert_null(id_of(r, 0));
    release(r);

    /* sObject tree: a record, then its children, matched by referenceId (results in any order) */
    {
        const char *const rows[][3] = {
            {"create", "Account", NULL}, {"create", "Contact", NULL}, {"create", "Account", NULL}};
        r = mk(rows, 3);
    }
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
    release(r);
    /* a tree that failed created nothing */
    r = creates("Account", 1);
    assert_int_equal(run(r, CRM_SALESFORCE,
                         "{\"records\":[{\"attributes\":{\"type\":\"Account\","
                         "\"referenceId\":\"a1\"}}]}",
                         "{\"hasErrors\":true,\"results\":[{\"referenceId\":\"a1\","
                         "\"errors\":[]}]}"),
                     0);
    assert_null(id_of(r, 0));
    release(r);
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
