/*
 * test_query.c - audit filters from text: times (absolute, relative, epoch
 * milliseconds) and the parameter set of GET /v1/audit and `crmgate diffs`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "query.h"

#define NOW 1796647600559LL /* 2026-12-07T12:46:40.559Z */

static void test_query_times(void **state)
{
    static const struct {
        const char *in;
        long long want;
    } ok[] = {
        {"1970-01-01", 0},
        {"2026-12-07", 1796601600000LL},
        {"2026-12-07T00:00:00Z", 1796601600000LL},
        {"2026-12-07t12:30z", 1796601600000LL + 45000000LL},
        {"2026-12-07 12:30:05", 1796601600000LL + 45005000LL},
        {"2026-12-07T12:30:05.25Z", 1796601600000LL + 45005250LL},
        {"2026-12-07T12:30:05.123456Z", 1796601600000LL + 45005123LL},
        {"2026-12-07T14:30:05+02:00", 1796601600000LL + 45005000LL},
        {"2026-12-07T10:30:05-0200", 1796601600000LL + 45005000LL},
        {"2024-02-29", 1709164800000LL},
        {"2000-02-29T23:59:59Z", 951868799000LL},
        {"1796647600559", 1796647600559LL},
        {"0", 0},
        {"15", 15}, /* digits are always milliseconds */
        {"90s", NOW - 90000},
        {"15m", NOW - 900000},
        {"2h", NOW - 7200000},
        {"7d", NOW - 7 * 86400000LL},
    };
    static const char *const bad[] = {
        "",
        "yesterday",
        "2026-13-01",
        "2026-02-30",
        "2025-02-29",
        "2026-12-7",
        "2026/12/07",
        "2026-12-07T24:00",
        "2026-12-07T12:60",
        "2026-12-07T12:30:61",
        "2026-12-07T12",
        "2026-12-07T12:30:05.",
        "2026-12-07T12:30+25:00",
        "2026-12-07Z",
        "1969-12-31",
        "15x",
        "-5m",
        "1.5h",
        "99999999999999999",
        "9999999999d",
        "5 m",
        " 2026-12-07",
        "2026-12-07T12:30:05Zjunk",
    };
    char err[256];
    long long out;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        out = -1;
        if (query_parse_time(ok[i].in, NOW, &out, err, sizeof(err)) < 0)
            fail_msg("\"%s\": refused: %s", ok[i].in, err);
        if (out != ok[i].want)
            fail_msg("\"%s\": %lld, want %lld", ok[i].in, out, ok[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (query_parse_time(bad[i], NOW, &out, err, sizeof(err)) == 0)
            fail_msg("\"%s\": accepted as %lld", bad[i], out);
        if (err[0] == '\0')
            fail_msg("\"%s\": refused without a reason", bad[i]);
    }
}

static int parse(const char *const *kv, size_t n, struct store_query *q, const char **bad,
                 char *err, size_t errlen)
{
    const char *names[16], *values[16];

    for (size_t i = 0; i < n; i++) {
        names[i] = kv[2 * i];
        values[i] = kv[2 * i + 1];
    }
    return query_audit_from_params(names, values, n, NOW, q, bad, err, errlen);
}

static void test_query_params(void **state)
{
    const char *all[] = {"workspace", "acme",
                         "crm",       "hubspot",
                         "object",    "deals",
                         "record",    "123",
                         "workflow",  "wf",
                         "call",      "c1",
                         "outcome",   "dry_run",
                         "since",     "2026-12-07",
                         "until",     "1h",
                         "limit",     "1000",
                         "cursor",    "18446744073709551615"};
    struct store_query q;
    const char *bad;
    char err[512];

    (void)state;
    assert_int_equal(parse(all, 11, &q, &bad, err, sizeof(err)), 0);
    assert_string_equal(q.workspace, "acme");
    assert_string_equal(q.crm, "hubspot");
    assert_string_equal(q.object, "deals");
    assert_string_equal(q.record, "123");
    assert_string_equal(q.workflow, "wf");
    assert_string_equal(q.call, "c1");
    assert_string_equal(q.outcome, "dry_run");
    assert_true(q.since_ms == 1796601600000LL);
    assert_true(q.until_ms == NOW - 3600000LL);
    assert_int_equal(q.limit, 1000);
    assert_true(q.cursor == UINT64_MAX);
    assert_null(bad);

    assert_int_equal(parse(NULL, 0, &q, &bad, err, sizeof(err)), 0);
    assert_int_equal(q.limit, 0);
    assert_null(q.workspace);
}

static void test_query_params_bad(void **state)
{
    static const struct {
        const char *kv[4];
        size_t n;
        const char *param;
    } cases[] = {
        {{"limit", "0"}, 1, "limit"},
        {{"limit", "1001"}, 1, "limit"},
        {{"limit", "-1"}, 1, "limit"},
        {{"limit", "10x"}, 1, "limit"},
        {{"limit", "+5"}, 1, "limit"},
        {{"cursor", "0"}, 1, "cursor"},
        {{"cursor", "18446744073709551616"}, 1, "cursor"},
        {{"cursor", " 5"}, 1, "cursor"},
        {{"crm", "HubSpot"}, 1, "crm"},
        {{"outcome", "allow"}, 1, "outcome"},
        {{"since", "soon"}, 1, "since"},
        {{"until", "0"}, 1, "until"},
        {{"since", "2026-12-08", "until", "2026-12-07"}, 2, "since"},
        {{"workspace", ""}, 1, "workspace"},
        {{"workspace", "a", "workspace", "b"}, 2, "workspace"},
        {{"Workspace", "a"}, 1, "Workspace"},
        {{"fields", "x"}, 1, "fields"},
    };
    char longv[QUERY_MAX_VALUE + 2];
    struct store_query q;
    const char *bad;
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bad = NULL;
        err[0] = '\0';
        if (parse(cases[i].kv, cases[i].n, &q, &bad, err, sizeof(err)) == 0)
            fail_msg("case %zu (%s=%s) accepted", i, cases[i].kv[0], cases[i].kv[1]);
        if (bad == NULL || strcmp(bad, cases[i].param) != 0)
            fail_msg("case %zu: blamed %s, want %s", i, bad ? bad : "(none)", cases[i].param);
        if (strstr(err, cases[i].param) == NULL)
            fail_msg("case %zu: the message does not name %s: %s", i, cases[i].param, err);
    }
    memset(longv, 'x', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    {
        const char *kv[] = {"object", longv};
        assert_int_equal(parse(kv, 1, &q, &bad, err, sizeof(err)), -1);
        assert_string_equal(bad, "object");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_times),
        cmocka_unit_test(test_query_params),
        cmocka_unit_test(test_query_params_bad),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
