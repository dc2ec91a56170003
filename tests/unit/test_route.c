/*
 * test_route.c - reverse prefixes and upstream URLs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "route.h"

static void test_route_table(void **state)
{
    static const struct {
        const char *target;
        enum crm crm;
        const char *rest;
    } cases[] = {
        {"/hubspot/crm/v3/objects/contacts/1", CRM_HUBSPOT, "/crm/v3/objects/contacts/1"},
        {"/hubspot", CRM_HUBSPOT, ""},
        {"/hubspot?x=1", CRM_HUBSPOT, "?x=1"},
        {"/hubspot//crm/v3", CRM_HUBSPOT, "//crm/v3"},
        {"/salesforce/services/data/v62.0/", CRM_SALESFORCE, "/services/data/v62.0/"},
        {"/hubspotx/crm", CRM_NONE, NULL},
        {"/HubSpot/crm", CRM_NONE, NULL},
        {"/", CRM_NONE, NULL},
        {"/foo/hubspot/crm", CRM_NONE, NULL},
        {"/salesforcex", CRM_NONE, NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *rest = NULL;
        enum crm got = route_reverse(cases[i].target, &rest);
        if (got != cases[i].crm)
            fail_msg("%s: crm %d, want %d", cases[i].target, (int)got, (int)cases[i].crm);
        if (cases[i].rest != NULL)
            assert_string_equal(rest, cases[i].rest);
        else
            assert_null(rest);
    }
}

static void test_upstream_url(void **state)
{
    static const struct {
        const char *base, *rest, *want;
    } cases[] = {
        {"https://api.hubapi.com", "/crm/v3/objects/contacts/1",
         "https://api.hubapi.com/crm/v3/objects/contacts/1"},
        {"https://api.hubapi.com", "//crm//v3/objects", "https://api.hubapi.com/crm/v3/objects"},
        {"https://api.hubapi.com", "", "https://api.hubapi.com/"},
        {"https://api.hubapi.com", "?a=1", "https://api.hubapi.com/?a=1"},
        {"http://127.0.0.1:9/base", "/x?next=//y", "http://127.0.0.1:9/base/x?next=//y"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = route_upstream_url(cases[i].base, cases[i].rest);
        assert_non_null(got);
        assert_string_equal(got, cases[i].want);
        free(got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_table),
        cmocka_unit_test(test_upstream_url),
    };
    return cmocka_run_group_tests_name("route", tests, NULL, NULL);
}
