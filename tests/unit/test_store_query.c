/*
 * test_store_query.c - store_query_audit and store_query_stats on a real
 * LMDB store in a temporary directory: every filter (through each index and
 * without one), newest-first cursor paging, the scan budget (a page with
 * fewer records than asked and a cursor to go on), the stats rows, and an
 * outcome's record joining the record index.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>

#include "store.h"
#include "store_fixture.h"

#define BULK 50010 /* more than one query call may examine */

/* Records are stamped some seconds before their commit, as the request path stamps them. */
static long long t0_ms;

static json_t *rec(const char *ws, const char *wf, const char *call, const char *crm,
                   const char *object, const char *record, const char *outcome, long long ts)
{
    ts += t0_ms;
    return json_pack("{s:s, s:s?, s:s?, s:s, s:s, s:s, s:s, s:I, s:s, s:[{s:s, s:s, s:s}]}",
                     "workspace", ws, "workflow", wf, "call", call, "crm", crm, "object", object,
                     "record", record, "outcome", outcome, "ts", (json_int_t)ts, "user", "ana",
                     "fields", "name", "amount", "before", "1", "after", "2");
}

/* Append records and wait for the commit. */
static void append(struct fixture *f, json_t *records)
{
    f->done = 0;
    assert_int_equal(store_audit_append(f->port, records, NULL, donecb, f), 0);
    while (!f->done)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(f->st, STORE_OK);
}

static int setup(void **state)
{
    t0_ms = (long long)time(NULL) * 1000 - 60000;
    return store_fixture_setup(state, "sq", 256u << 20);
}

static size_t count(struct fixture *f, struct store_query q)
{
    json_t *out;
    uint64_t next;
    char err[256];
    size_t n = 0;

    q.limit = STORE_QUERY_MAX;
    do {
        assert_int_equal(store_query_audit(f->s, &q, &out, &next, err, sizeof(err)), 0);
        n += json_array_size(out);
        json_decref(out);
        q.cursor = next;
    } while (next != 0);
    return n;
}

static void test_store_query_filters(void **state)
{
    struct fixture *f = *state;
    json_t *a = json_array(), *out, *all;
    struct store_query q = {0};
    uint64_t next;
    char err[256];

    json_array_append_new(a, rec("acme", "wf1", "c1", "hubspot", "deals", "1", "allowed", 1000));
    json_array_append_new(a, rec("acme", "wf1", NULL, "hubspot", "deals", "2", "denied", 2000));
    json_array_append_new(
        a, rec("acme", "wf2", "c2", "salesforce", "Opportunity", "006A", "dry_run", 3000));
    json_array_append_new(a, rec("globex", "wf1", "c1", "hubspot", "deals", "1", "allowed", 4000));
    json_array_append_new(
        a, rec("globex", NULL, NULL, "hubspot", "contacts", "9", "upstream_error", 5000));
    append(f, a);

    assert_int_equal(count(f, q), 5);
    q.workspace = "acme";
    assert_int_equal(count(f, q), 3);
    q.workflow = "wf1";
    assert_int_equal(count(f, q), 2);
    q.workflow = NULL;
    q.call = "c2";
    assert_int_equal(count(f, q), 1);
    q = (struct store_query){.workflow = "wf1"};
    assert_int_equal(count(f, q), 3);
    q = (struct store_query){.call = "c1"};
    assert_int_equal(count(f, q), 2);
    q = (struct store_query){.crm = "hubspot", .object = "DEALS", .record = "1"};
    assert_int_equal(count(f, q), 2);
    q = (struct store_query){.crm = "salesforce", .object = "opportunity", .record = "006A"};
    assert_int_equal(count(f, q), 1);
    q = (struct store_query){.record = "1"};
    assert_int_equal(count(f, q), 2);
    q = (struct store_query){.crm = "salesforce"};
    assert_int_equal(count(f, q), 1);
    q = (struct store_query){.object = "contacts", .outcome = "upstream_error"};
    assert_int_equal(count(f, q), 1);
    q = (struct store_query){.since_ms = t0_ms + 2000, .until_ms = t0_ms + 4000};
    assert_int_equal(count(f, q), 3);
    q = (struct store_query){.workspace = "nosuch"};
    assert_int_equal(count(f, q), 0);
    q = (struct store_query){.crm = "hubspot", .object = "deals", .record = "nosuch"};
    assert_int_equal(count(f, q), 0);

    /* newest first, two at a time, the cursor is the last id of a page */
    q = (struct store_query){.limit = 2};
    assert_int_equal(store_query_audit(f->s, &q, &out, &next, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "workspace")),
                        "globex");
    assert_true(next == strtoull(json_string_value(json_object_get(json_array_get(out, 1), "id")),
                                 NULL, 10));
    json_decref(out);
    q.limit = 5;
    assert_int_equal(store_query_audit(f->s, &q, &all, &next, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(all), 5);
    assert_true(next == 0); /* exactly five: no next page */
    q.limit = 4;
    assert_int_equal(store_query_audit(f->s, &q, &out, &next, err, sizeof(err)), 0);
    assert_true(next != 0);
    json_decref(out);
    q.limit = 2;
    q.cursor = next;
    assert_int_equal(store_query_audit(f->s, &q, &out, &next, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(out), 1);
    assert_true(json_equal(json_array_get(out, 0), json_array_get(all, 4)));
    assert_true(next == 0);
    json_decref(out);
    q.cursor = 1;
    assert_int_equal(store_query_audit(f->s, &q, &out, &next, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    json_decref(all);
}

/* Times far in the future (plain milliseconds, as the API takes them) bound nothing wrongly. */
static void test_store_query_far_times(void **state)
{
    struct fixture *f = *state;
    json_t *a = json_array();
    struct store_query q = {0};

    json_array_append_new(a, rec("acme", "wf1", NULL, "hubspot", "deals", "1", "allowed", 1000));
    append(f, a);
    q.until_ms = (1LL << 48) - 1; /* << 16 would overflow the id */
    assert_int_equal(count(f, q), 1);
    q.until_ms = 9999999999999999LL;
    assert_int_equal(count(f, q), 1);
    q = (struct store_query){.since_ms = (1LL << 48) - 1};
    assert_int_equal(count(f, q), 0);
    q.since_ms = 9999999999999999LL;
    assert_int_equal(count(f, q), 0);
}

static void test_store_query_budget(void **state)
{
    struct fixture *f = *state;
    json_t *a = json_array(), *out;
    struct store_query q = {.outcome = "denied", .limit = 10};
    uint64_t next;
    char err[256];
    size_t pages = 0, found = 0;

    json_array_append_new(a, rec("bulk", NULL, NULL, "hubspot", "deals", "old", "denied", 10));
    append(f, a);
    a = json_array();
    for (int i = 0; i < BULK; i++)
        json_array_append_new(a, rec("bulk", NULL, NULL, "hubspot", "deals", "x", "allowed", 20));
    append(f, a);

    /* the first call spends its budget on allowed records and hands back a cursor */
    assert_int_equal(store_query_audit(f->s, &q, &out, &next, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(out), 0);
    assert_true(next != 0);
    json_decref(out);
    do {
        q.cursor = next;
        assert_int_equal(store_query_audit(f->s, &q, &out, &next, err, sizeof(err)), 0);
        found += json_array_size(out);
        json_decref(out);
        pages++;
    } while (next != 0 && pages < 10);
    assert_int_equal(found, 1);
    assert_true(next == 0);
}

static void test_store_query_stats(void **state)
{
    struct fixture *f = *state;
    json_t *a = json_array(), *out, *rows;
    char err[256];

    json_array_append_new(a, rec("acme", "wf1", NULL, "hubspot", "deals", "1", "allowed", 1));
    json_array_append_new(a, rec("acme", "wf1", NULL, "hubspot", "deals", "2", "allowed", 2));
    json_array_append_new(a, rec("acme", NULL, NULL, "hubspot", "deals", "3", "denied", 3));
    json_array_append_new(
        a, rec("acme2", "wf1", NULL, "salesforce", "Opportunity", "4", "dry_run", 4));
    json_array_append_new(a, rec("acme", "wf1", NULL, "hubspot", "deals", "5", "unknown", 5));
    append(f, a);

    assert_int_equal(store_query_stats(f->s, "acme", &out, err, sizeof(err)), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "total")),
                     3); /* "unknown" not counted */
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(out, "by_outcome"), "allowed")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "by_workflow"), "-")),
                     1);
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(out, "by_field"), "hubspot/deals.amount")),
                     3);
    assert_null(
        json_object_get(json_object_get(out, "by_workspace"), "acme2")); /* a prefix, not a match */
    rows = json_object_get(out, "rows");
    assert_int_equal(json_array_size(rows), 2);
    json_decref(out);

    assert_int_equal(store_query_stats(f->s, NULL, &out, err, sizeof(err)), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "total")), 4);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "by_object"),
                                                        "salesforce/Opportunity")),
                     1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "by_user"), "ana")),
                     4);
    json_decref(out);
}

/* Replace records appended earlier (store_audit_update) and wait for the commit. */
static void update(struct fixture *f, json_t *records)
{
    f->done = 0;
    assert_int_equal(store_audit_update(f->port, records, donecb, f), 0);
    while (!f->done)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(f->st, STORE_OK);
}

/*
 * An outcome naming a record its intent did not (a create's new id) joins
 * the record index; one whose record is indexed already leaves exactly that
 * entry (the writer reads it rather than putting it again).
 */
static void test_store_update_index(void **state)
{
    struct fixture *f = *state;
    json_t *r = rec("u", NULL, NULL, "hubspot", "contacts", "x", "unknown", 0), *out, *got;
    struct store_query byws = {.workspace = "u", .limit = 10};
    struct store_query byrec = {.crm = "hubspot", .object = "contacts", .record = "77"};
    uint64_t next;
    char err[256];

    json_object_set_new(r, "record", json_null());
    append(f, json_pack("[o]", r));
    assert_int_equal(count(f, byrec), 0);
    assert_int_equal(store_query_audit(f->s, &byws, &out, &next, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(out), 1);
    got = json_deep_copy(json_array_get(out, 0));
    json_decref(out);
    json_object_set_new(got, "record", json_string("77"));
    json_object_set_new(got, "outcome", json_string("allowed"));
    update(f, json_pack("[O]", got));
    assert_int_equal(count(f, byrec), 1);
    json_object_set_new(got, "outcome", json_string("upstream_error"));
    update(f, json_pack("[o]", got));
    assert_int_equal(count(f, byrec), 1);
    assert_int_equal(store_query_audit(f->s, &byrec, &out, &next, err, sizeof(err)), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "outcome")),
                        "upstream_error");
    json_decref(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_query_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_query_far_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_query_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_query_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_update_index, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
