/*
 * test_metrics.c - the Prometheus text of metrics.c: counters by label,
 * cumulative histogram buckets, own calls, registered families (names
 * checked, label values escaped, a failing collector left out whole).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static char *render(void)
{
    struct evbuffer *b = evbuffer_new();
    size_t n;
    char *out;

    assert_non_null(b);
    assert_int_equal(metrics_render(b, NULL, NULL), 0);
    n = evbuffer_get_length(b);
    out = malloc(n + 1);
    assert_non_null(out);
    evbuffer_copyout(b, out, n);
    out[n] = '\0';
    evbuffer_free(b);
    return out;
}

static void has_line(const char *text, const char *line)
{
    const char *p = text;
    size_t n = strlen(line);

    while ((p = strstr(p, line)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
        p += n;
    }
    fail_msg("missing line: %s\n---\n%s", line, text);
}

static void test_metrics_counters(void **state)
{
    char *t;

    (void)state;
    metrics_request(CRM_HUBSPOT, CRM_VERB_UPDATE, METRICS_ALLOW);
    metrics_request(CRM_HUBSPOT, CRM_VERB_UPDATE, METRICS_ALLOW);
    metrics_request(CRM_SALESFORCE, CRM_VERB_CREATE, METRICS_DRY_RUN);
    metrics_request(CRM_HUBSPOT, (enum crm_verb)999, METRICS_DENY); /* out of range: unknown */
    metrics_request(CRM_HUBSPOT, CRM_VERB_READ, (enum metrics_decision)7); /* ignored */
    metrics_request(CRM_SALESFORCE, CRM_VERB_UPDATE, METRICS_REFUSED);
    metrics_request(CRM_NONE, CRM_VERB_UNKNOWN, METRICS_REFUSED); /* no route */
    metrics_own_call(CRM_SALESFORCE, METRICS_PURPOSE_BEFORE_STATE);
    metrics_own_call(CRM_HUBSPOT, METRICS_PURPOSE_OAUTH_REFRESH);
    metrics_upstream_latency(CRM_HUBSPOT, 3000);     /* 3 ms: le 0.005 */
    metrics_upstream_latency(CRM_HUBSPOT, 300000);   /* 0.3 s: le 0.5 */
    metrics_upstream_latency(CRM_HUBSPOT, 90000000); /* 90 s: only +Inf */
    t = render();
    has_line(t, "# TYPE crmgate_requests_total counter");
    has_line(t, "crmgate_requests_total{crm=\"hubspot\",verb=\"update\",decision=\"allow\"} 2");
    has_line(t,
             "crmgate_requests_total{crm=\"salesforce\",verb=\"create\",decision=\"dry_run\"} 1");
    has_line(t, "crmgate_requests_total{crm=\"hubspot\",verb=\"unknown\",decision=\"deny\"} 1");
    has_line(t,
             "crmgate_requests_total{crm=\"salesforce\",verb=\"update\",decision=\"refused\"} 1");
    has_line(t, "crmgate_requests_total{crm=\"none\",verb=\"unknown\",decision=\"refused\"} 1");
    assert_null(strstr(t, "crm=\"none\",verb=\"unknown\",decision=\"allow\""));
    assert_null(strstr(t, "verb=\"read\""));
    has_line(t, "crmgate_own_upstream_calls_total{crm=\"salesforce\",purpose=\"before_state\"} 1");
    has_line(t, "crmgate_own_upstream_calls_total{crm=\"hubspot\",purpose=\"oauth_refresh\"} 1");
    has_line(t, "crmgate_own_upstream_calls_total{crm=\"hubspot\",purpose=\"before_state\"} 0");
    has_line(t, "# TYPE crmgate_upstream_latency_seconds histogram");
    has_line(t, "crmgate_upstream_latency_seconds_bucket{crm=\"hubspot\",le=\"0.005\"} 1");
    has_line(t, "crmgate_upstream_latency_seconds_bucket{crm=\"hubspot\",le=\"0.25\"} 1");
    has_line(t, "crmgate_upstream_latency_seconds_bucket{crm=\"hubspot\",le=\"0.5\"} 2");
    has_line(t, "crmgate_upstream_latency_seconds_bucket{crm=\"hubspot\",le=\"30\"} 2");
    has_line(t, "crmgate_upstream_latency_seconds_bucket{crm=\"hubspot\",le=\"+Inf\"} 3");
    has_line(t, "crmgate_upstream_latency_seconds_count{crm=\"hubspot\"} 3");
    has_line(t, "crmgate_upstream_latency_seconds_sum{crm=\"hubspot\"} 90.303");
    has_line(t, "crmgate_upstream_latency_seconds_count{crm=\"salesforce\"} 0");
    assert_null(strstr(t, "crmgate_lmdb_map_bytes")); /* no store given */
    free(t);
}

static int collect_ok(struct metrics_out *out, void *arg)
{
    const char *l1[] = {"workspace", "acme \"west\"\\\n", "integration", "hubspot"};
    const char *l2[] = {"workspace", "globex", "integration", "salesforce"};

    assert_string_equal(arg, "ctx");
    if (metrics_sample(out, 1, l1, 2) < 0 || metrics_sample(out, 0, l2, 2) < 0)
        return -1;
    return 0;
}

static int collect_fail(struct metrics_out *out, void *arg)
{
    const char *l[] = {"a", "b"};

    (void)arg;
    metrics_sample(out, 5, l, 1);
    return -1;
}

static int collect_bad_label(struct metrics_out *out, void *arg)
{
    const char *l[] = {"bad-label", "x"};

    (void)arg;
    return metrics_sample(out, 1, l, 1) == -1 ? 0 : -1;
}

static void test_metrics_families(void **state)
{
    char *t;

    (void)state;
    assert_int_equal(metrics_family_add("crmgate_integration_needs_attention", METRICS_GAUGE,
                                        "Integrations whose credentials need a human.", collect_ok,
                                        "ctx"),
                     0);
    assert_int_equal(metrics_family_add("crmgate_integration_needs_attention", METRICS_GAUGE,
                                        "again", collect_ok, "ctx"),
                     -1);
    assert_int_equal(metrics_family_add("9bad", METRICS_GAUGE, "x", collect_ok, NULL), -1);
    assert_int_equal(metrics_family_add("bad-name", METRICS_GAUGE, "x", collect_ok, NULL), -1);
    assert_int_equal(metrics_family_add("crmgate_x", METRICS_GAUGE, "two\nlines", collect_ok, NULL),
                     -1);
    assert_int_equal(metrics_family_add("crmgate_x", METRICS_GAUGE, "x", NULL, NULL), -1);
    assert_int_equal(
        metrics_family_add("crmgate_broken_total", METRICS_COUNTER, "fails", collect_fail, NULL),
        0);
    assert_int_equal(metrics_family_add("crmgate_labels", METRICS_GAUGE, "bad label refused",
                                        collect_bad_label, NULL),
                     0);
    t = render();
    has_line(t, "# HELP crmgate_integration_needs_attention Integrations whose credentials need a "
                "human.");
    has_line(t, "# TYPE crmgate_integration_needs_attention gauge");
    has_line(t, "crmgate_integration_needs_attention{workspace=\"acme \\\"west\\\"\\\\\\n\","
                "integration=\"hubspot\"} 1");
    has_line(t,
             "crmgate_integration_needs_attention{workspace=\"globex\",integration=\"salesforce\"} "
             "0");
    assert_null(strstr(t, "crmgate_broken_total")); /* a failing collector leaves nothing */
    has_line(t, "# TYPE crmgate_labels gauge");
    assert_null(strstr(t, "bad-label"));
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_counters),
        cmocka_unit_test(test_metrics_families),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
