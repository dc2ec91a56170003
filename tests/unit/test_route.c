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

/*
 * CONNECT authorities: what route_authority splits (and how), and what it refuses. Every
 * allow-list bypass vector tried against the forward listener gets a row.
 */
static void test_authority_table(void **state)
{
    static const struct {
        const char *authority;
        int ok;
        const char *host;
        long port;
    } cases[] = {
        {"api.hubapi.com:443", 1, "api.hubapi.com", 443},
        {"API.HubAPI.com:443", 1, "api.hubapi.com", 443},
        {"api.hubapi.com:0443", 1, "api.hubapi.com", 443},  /* RFC 3986: port = *DIGIT */
        {"api.hubapi.com.:443", 1, "api.hubapi.com.", 443}, /* route_forward_host refuses it */
        {"api.hubapi.com:+443", 0, NULL, 0},
        {"api.hubapi.com:-443", 0, NULL, 0},
        {"api.hubapi.com: 443", 0, NULL, 0},
        {"api.hubapi.com:443abc", 0, NULL, 0},
        {"api.hubapi.com:0x1bb", 0, NULL, 0},
        {"api.hubapi.com:99999999999999999999443", 0, NULL, 0},
        {"api.hubapi.com:65536", 0, NULL, 0},
        {"api.hubapi.com:0", 0, NULL, 0},
        {"api.hubapi.com:", 0, NULL, 0},
        {"api.hubapi.com", 0, NULL, 0},
        {":443", 0, NULL, 0},
        {"user@api.hubapi.com:443", 0, NULL, 0},
        {"api.hubapi.com%2e:443", 0, NULL, 0},
        {"api.hubapi.com:443:443", 0, NULL, 0},
        {"[::1]:443", 0, NULL, 0},
        {"[::ffff:127.0.0.1]:443", 0, NULL, 0},
        {"api_hubapi.com:443", 0, NULL, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char host[256] = "";
        long port = 0;
        int rc = route_authority(cases[i].authority, host, sizeof(host), &port);
        if ((rc == 0) != cases[i].ok)
            fail_msg("%s: %s, want %s", cases[i].authority, rc == 0 ? "accepted" : "refused",
                     cases[i].ok ? "accepted" : "refused");
        if (cases[i].ok) {
            assert_string_equal(host, cases[i].host);
            assert_int_equal(port, cases[i].port);
        }
    }
}

/* The forward and transparent allow-list: exact CRM API hosts, never an address. */
static void test_forward_host_table(void **state)
{
    static const struct {
        const char *host;
        enum crm crm;
    } cases[] = {
        {"api.hubapi.com", CRM_HUBSPOT},
        {"API.HUBAPI.COM", CRM_HUBSPOT},
        {"api.hubspot.com", CRM_HUBSPOT},
        {"login.salesforce.com", CRM_SALESFORCE},
        {"test.salesforce.com", CRM_SALESFORCE},
        {"acme.my.salesforce.com", CRM_SALESFORCE},
        {"instance.example.test", CRM_SALESFORCE}, /* the configured upstream's host */
        {"api.hubapi.com.", CRM_NONE},
        {"api.hubapi.com.evil.example", CRM_NONE},
        {"x.api.hubapi.com", CRM_NONE},
        {"hubapi.com", CRM_NONE},
        {"my.salesforce.com", CRM_NONE},
        {".my.salesforce.com", CRM_NONE},
        {"a.b.my.salesforce.com", CRM_NONE},
        {"evilmy.salesforce.com", CRM_NONE},
        {"www.salesforce.com", CRM_NONE},
        {"127.0.0.1", CRM_NONE},
        {"2130706433", CRM_NONE},
        {"::1", CRM_NONE},
        {"::ffff:127.0.0.1", CRM_NONE},
        {"localhost", CRM_NONE},
        {"", CRM_NONE},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum crm got = route_forward_host(cases[i].host, "instance.example.test");
        if (got != cases[i].crm)
            fail_msg("%s: crm %d, want %d", cases[i].host, (int)got, (int)cases[i].crm);
    }
    /* An address as the configured upstream host is still never allowed. */
    assert_int_equal(route_forward_host("127.0.0.1", "127.0.0.1"), CRM_NONE);
    assert_int_equal(route_forward_host("acme.my.salesforce.com", NULL), CRM_SALESFORCE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_table),
        cmocka_unit_test(test_upstream_url),
        cmocka_unit_test(test_authority_table),
        cmocka_unit_test(test_forward_host_table),
    };
    return cmocka_run_group_tests_name("route", tests, NULL, NULL);
}
