/*
 * test_config.c - config files, overrides and their errors (file, JSON
 * pointer, problem).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char config_path[64];

static const char *write_config(const char *text)
{
    FILE *f;

    snprintf(config_path, sizeof(config_path), "/tmp/crmgate-test-config-%d.json", (int)getpid());
    f = fopen(config_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return config_path;
}

static void test_default(void **state)
{
    struct config_overrides ov = {0};
    char err[512];
    struct config *cfg;

    (void)state;
    unsetenv("STATE_DIRECTORY");
    cfg = config_load(NULL, &ov, err, sizeof(err));
    assert_non_null(cfg);
    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_string_equal(cfg->listen_port, "8080");
    assert_string_equal(cfg->upstream_hubspot, "https://api.hubapi.com");
    assert_null(cfg->upstream_salesforce);
    assert_string_equal(cfg->state_dir, "./var");
    assert_int_equal(cfg->limits.header_bytes, 64 * 1024);
    assert_int_equal(cfg->before_read_window_ms, 0); /* fold within a turn of the loop */
    /* Salesforce instance URLs: the CA's Salesforce domains, canonical (no leading dot) */
    assert_int_equal(cfg->nsf_domains, 2);
    assert_string_equal(cfg->sf_domains[0], "salesforce.com");
    assert_string_equal(cfg->sf_domains[1], "force.com");
    /* HubSpot token URLs: the CA's HubSpot hosts */
    assert_int_equal(cfg->nhs_domains, 2);
    assert_string_equal(cfg->hs_domains[0], "api.hubapi.com");
    assert_string_equal(cfg->hs_domains[1], "api.hubspot.com");
    assert_int_equal(cfg->vault_backoff_min_ms, CONFIG_BACKOFF_MIN_MS);
    assert_int_equal(cfg->vault_backoff_max_ms, CONFIG_BACKOFF_MAX_MS);
    config_unref(cfg);

    setenv("STATE_DIRECTORY", "/var/lib/crmgate:/var/lib/other", 1);
    cfg = config_load(NULL, &ov, err, sizeof(err));
    assert_string_equal(cfg->state_dir, "/var/lib/crmgate");
    config_unref(cfg);
    unsetenv("STATE_DIRECTORY");
}

static void test_file_and_overrides(void **state)
{
    struct config_overrides ov = {
        .listen = "[::1]:0", .upstream_salesforce = "http://127.0.0.1:9/", .workers = "3"};
    char err[512];
    struct config *cfg;
    const char *path = write_config(
        "{\"listen\":\"0.0.0.0:9000\",\"upstreams\":{\"hubspot\":\"http://127.0.0.1:1/hs/\"},"
        "\"limits\":{\"body_bytes\":2048,\"header_timeout_ms\":500},\"upstream_timeout_ms\":700,"
        "\"before_read_window_ms\":1000}");

    (void)state;
    cfg = config_load(path, &ov, err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_string_equal(cfg->listen_host, "::1");
    assert_string_equal(cfg->listen_port, "0");
    assert_string_equal(cfg->upstream_hubspot, "http://127.0.0.1:1/hs");
    assert_string_equal(cfg->upstream_salesforce, "http://127.0.0.1:9");
    assert_int_equal(cfg->workers, 3);
    assert_int_equal(cfg->limits.body_bytes, 2048);
    assert_int_equal(cfg->limits.header_timeout_ms, 500);
    assert_int_equal(cfg->upstream_timeout_ms, 700);
    assert_int_equal(cfg->before_read_window_ms, 1000);
    config_unref(cfg);
    unlink(path);

    path =
        write_config("{\"vault\":{\"salesforce_domains\":[\".Salesforce.com\",\"sf.corp.example\"],"
                     "\"hubspot_domains\":[\"API-EU1.hubapi.com\"],"
                     "\"refresh_backoff_min_ms\":250,\"refresh_backoff_max_ms\":4000}}");
    cfg = config_load(path, &ov, err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_int_equal(cfg->nsf_domains, 2);
    assert_string_equal(cfg->sf_domains[0], "salesforce.com");
    assert_string_equal(cfg->sf_domains[1], "sf.corp.example");
    assert_int_equal(cfg->nhs_domains, 1);
    assert_string_equal(cfg->hs_domains[0], "api-eu1.hubapi.com");
    assert_int_equal(cfg->vault_backoff_min_ms, 250);
    assert_int_equal(cfg->vault_backoff_max_ms, 4000);
    config_unref(cfg);
    unlink(path);
}

static void test_errors(void **state)
{
    static const struct {
        const char *text;
        const char *want; /* substring of the error */
    } cases[] = {
        {"{\"listen\":\"127.0.0.1:8080\",\"listen\":\"x\"}", "duplicate object key"},
        {"{\"lisen\":\"127.0.0.1:8080\"}", "/lisen: unknown key"},
        {"{\"limits\":{\"body_byte\":1}}", "/limits/body_byte: unknown key"},
        {"{\"limits\":{\"header_bytes\":10}}", "/limits/header_bytes: must be an integer"},
        {"{\"listen\":\"nocolon\"}", "not ADDR:PORT"},
        {"{\"listen\":\"127.0.0.1:70000\"}", "not ADDR:PORT"},
        {"{\"upstreams\":{\"hubspot\":\"ftp://x\"}}", "/upstreams/hubspot"},
        {"{\"upstreams\":{\"hubspot\":\"https://x/?token=1\"}}", "must not carry a query"},
        {"{\"upstreams\":{\"hubspot\":\"https://user:pw@x\"}}", "credentials"},
        {"{\"upstreams\":{\"pipedrive\":\"https://x\"}}", "/upstreams/pipedrive: unknown key"},
        {"{\"workers\":-1}", "/workers: must be an integer"},
        {"{\"before_read_window_ms\":1001}", "/before_read_window_ms: must be an integer"},
        {"{\"before_read_window_ms\":\"10\"}", "/before_read_window_ms: must be an integer"},
        {"{\"log_level\":\"loud\"}", "/log_level"},
        {"{\"vault\":{\"salesforce_domains\":[\"com\"]}}", "/vault/salesforce_domains/0"},
        {"{\"vault\":{\"salesforce_domains\":[\".\"]}}", "is not a domain"},
        {"{\"vault\":{\"salesforce_domains\":[\"x..com\"]}}", "is not a domain"},
        {"{\"vault\":{\"salesforce_domains\":[\"*.salesforce.com\"]}}", "is not a domain"},
        {"{\"vault\":{\"salesforce_domains\":[\"127.0.0.1\"]}}", "is not a domain"},
        {"{\"vault\":{\"salesforce_domains\":[\"force.com\", 7]}}", "/salesforce_domains/1"},
        {"{\"vault\":{\"salesforce_domains\":[]}}", "array of 1 to 16"},
        {"{\"vault\":{\"hubspot_domains\":[\"com\"]}}", "/vault/hubspot_domains/0"},
        {"{\"vault\":{\"hubspot_domains\":[\"10.0.0.1\"]}}", "is not a domain"},
        {"{\"vault\":{\"hubspot_domains\":\"api.hubapi.com\"}}",
         "/vault/hubspot_domains: must be an array"},
        {"{\"vault\":{\"refresh_backoff_min_ms\":5000,\"refresh_backoff_max_ms\":1000}}",
         "must not be below"},
        {"{\"vault\":{\"refresh_backoff_min_ms\":0}}", "/vault/refresh_backoff_min_ms"},
        {"[1]", "top level must be an object"},
        {"{", "invalid JSON"},
    };
    struct config_overrides ov = {0};
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = write_config(cases[i].text);
        struct config *cfg = config_load(path, &ov, err, sizeof(err));
        if (cfg != NULL)
            fail_msg("config %s was accepted", cases[i].text);
        if (strstr(err, cases[i].want) == NULL || strstr(err, path) == NULL)
            fail_msg("config %s: error \"%s\" lacks \"%s\" or the file name", cases[i].text, err,
                     cases[i].want);
    }
    unlink(config_path);
    assert_null(config_load("/nonexistent/crmgate.json", &ov, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open"));
}

/* Errors never quote what may be a secret: an upstream URL's credentials, query or fragment,
 * text jansson could not parse, a key that is not a plain name. */
static void test_errors_quote_no_secret(void **state)
{
    static const struct {
        const char *text;
        const char *want;  /* substring of the error */
        const char *never; /* what it must not quote */
    } cases[] = {
        {"{\"upstreams\":{\"hubspot\":\"https://x/?token=1\"}}", "must not carry a query",
         "token=1"},
        {"{\"upstreams\":{\"hubspot\":\"https://user:pw@x\"}}", "\"https://...\" must not carry",
         "user:pw"},
        {"{\"upstreams\":{\"hubspot\":\"https://x/a#access_token=SECRET\"}}", "\"https://x/a...\"",
         "SECRET"},
        {"{\"upstreams\":{\"hubspot\":\"ftp://u:SECRET@x\"}}", "\"ftp://...\" must be", "SECRET"},
        {"{\"upstreams\":{\"hubspot\":\"https://u:SECRET@\"}}", "https://...", "SECRET"},
        {"{\"admin\":{\"token\":SECRET_unquoted}}", "invalid JSON: invalid token", "SECRET"},
        {"{\"admin\":{\"SECRET-token-x\":1}}", "/admin: an unknown key (14 characters", "SECRET"},
    };
    struct config_overrides ov = {0};
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = write_config(cases[i].text);
        if (config_load(path, &ov, err, sizeof(err)) != NULL)
            fail_msg("config %s was accepted", cases[i].text);
        if (strstr(err, cases[i].want) == NULL || strstr(err, cases[i].never) != NULL)
            fail_msg("config %s: error \"%s\" lacks \"%s\" or quotes \"%s\"", cases[i].text, err,
                     cases[i].want, cases[i].never);
    }
    unlink(config_path);
}

static void test_override_errors(void **state)
{
    char err[512];
    struct config_overrides bad_workers = {.workers = "two"};
    struct config_overrides bad_up = {.upstream_hubspot = "not a url"};

    (void)state;
    assert_null(config_load(NULL, &bad_workers, err, sizeof(err)));
    assert_non_null(strstr(err, "--workers"));
    assert_null(config_load(NULL, &bad_up, err, sizeof(err)));
    assert_non_null(strstr(err, "--upstream hubspot"));
}

/* jansson's errors lose their "near" text but for a member name; names are quoted when plain. */
static void test_json_error_quoting(void **state)
{
    static const struct {
        const char *text, *want;
    } rows[] = {
        {"invalid token near 'pat-na1-SECRET'", "invalid token"},
        {"premature end of input", "premature end of input"},
        {"duplicate object key near '\"token\"'", "duplicate object key near '\"token\"'"},
        {"duplicate object key near '\"Token1\"'", "duplicate object key"},
        {"'}' expected near '\"x\" \"y\"'", "'}' expected"},
        {"string or '}' expected near '''", "string or '}' expected"},
    };
    char out[JSON_ERROR_TEXT_LENGTH];

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        json_error_t e;
        snprintf(e.text, sizeof(e.text), "%s", rows[i].text);
        assert_string_equal(config_json_error(&e, out, sizeof(out)), rows[i].want);
    }
    assert_true(config_name_quotable("acess_token"));
    assert_false(config_name_quotable(""));
    assert_false(config_name_quotable("pat-na1-1234"));
    assert_false(config_name_quotable("SECRET"));
    assert_false(config_name_quotable("abcdefghijklmnopqrstuvwxyzabcdefg")); /* 33 */
    assert_true(config_name_quotable("abcdefghijklmnopqrstuvwxyzabcdef"));   /* 32 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_file_and_overrides),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_override_errors),
        cmocka_unit_test(test_errors_quote_no_secret),
        cmocka_unit_test(test_json_error_quoting),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
