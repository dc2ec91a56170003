/*
 * test_policy.c - rules validation, decisions and response filtering, driven
 * by three data files (one case per line):
 *
 *   cases/rules.jsonl   {"name", "rules": {...} | "raw": "text", "error": "substring" | null}
 *   cases/decide.jsonl  {"name", "rules": {...}, "ops": [op...], "allow": bool,
 *                        "rule": "substring", "reason": "substring", "fields": "exact"}
 *   cases/filter.jsonl  {"name", "rules": {...}, "crm": "hubspot"|"salesforce",
 *                        "object": "deals", "body": {...}, "want": {...}}
 *
 * An op is written as crm_ops_to_json prints it: {"crm","verb","object","id",
 * "reads":[...],"writes":{...},"to_object","detail","save_duplicates","lookups":[{"object","field"}]}.
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

#include "decide.h"
#include "filter.h"
#include "rules.h"

typedef int (*case_fn)(json_t *c, char *why, size_t whylen);

static int run_cases(const char *file, case_fn fn)
{
    FILE *f = fopen(file, "r");
    char *line = NULL;
    size_t cap = 0, ncases = 0;
    ssize_t len;
    int failures = 0, lineno = 0;

    if (f == NULL)
        fail_msg("cannot open %s", file);
    while ((len = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *c;
        char why[1024] = "";

        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        c = json_loads(line, 0, &jerr);
        if (c == NULL) {
            printf("%s:%d: bad case: %s\n", file, lineno, jerr.text);
            failures++;
            continue;
        }
        ncases++;
        if (fn(c, why, sizeof(why)) != 0) {
            printf("FAIL %s:%d \"%s\": %s\n", file, lineno,
                   json_string_value(json_object_get(c, "name")), why);
            failures++;
        }
        json_decref(c);
    }
    free(line);
    fclose(f);
    printf("%s: %zu cases, %d failed\n", file, ncases, failures);
    return failures;
}

static struct rules_ws *parse_ws(json_t *c, const char *key, char *err, size_t errlen)
{
    json_t *raw = json_object_get(c, "raw");
    char *text;
    struct rules_ws *ws;

    if (raw == NULL && json_is_null(json_object_get(c, key))) {
        snprintf(err, errlen, "no rules");
        return NULL;
    }
    text = raw != NULL ? strdup(json_string_value(raw))
                       : json_dumps(json_object_get(c, key), JSON_COMPACT);
    ws = rules_ws_parse("t.json", text, strlen(text), err, errlen);

    free(text);
    return ws;
}

static int case_rules(json_t *c, char *why, size_t whylen)
{
    const char *want = json_string_value(json_object_get(c, "error"));
    char err[1024] = "";
    struct rules_ws *ws = parse_ws(c, "rules", err, sizeof(err));
    int rc = 0;

    if (want == NULL && ws == NULL) {
        snprintf(why, whylen, "rejected: %s", err);
        rc = -1;
    } else if (want != NULL && ws != NULL) {
        snprintf(why, whylen, "accepted, want error \"%s\"", want);
        rc = -1;
    } else if (want != NULL && strstr(err, want) == NULL) {
        snprintf(why, whylen, "error \"%s\" lacks \"%s\"", err, want);
        rc = -1;
    }
    rules_ws_free(ws);
    return rc;
}

static enum crm_verb verb_of(const char *name)
{
    for (int v = CRM_VERB_UNKNOWN; v < CRM_VERB_COUNT; v++) {
        if (strcmp(crm_verb_name((enum crm_verb)v), name) == 0)
            return (enum crm_verb)v;
    }
    fail_msg("unknown verb %s", name);
    return CRM_VERB_UNKNOWN;
}

static void ops_from_json(json_t *arr, struct crm_ops *ops)
{
    size_t i;
    json_t *o;

    json_array_foreach(arr, i, o)
    {
        const char *crm = json_string_value(json_object_get(o, "crm"));
        struct crm_op *op =
            crm_ops_add(ops, crm && strcmp(crm, "salesforce") == 0 ? CRM_SALESFORCE : CRM_HUBSPOT,
                        verb_of(json_string_value(json_object_get(o, "verb"))));
        const char *keys[] = {"object", "id", "to_object", "detail", "locator", "id_property"};
        char **members[] = {&op->object, &op->record_id, &op->to_object,
                            &op->detail, &op->locator,   &op->id_property};
        json_t *v;
        size_t k;
        const char *key;

        for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            const char *s = json_string_value(json_object_get(o, keys[k]));
            if (s != NULL)
                crm_op_set(members[k], s, strlen(s));
        }
        json_array_foreach(json_object_get(o, "reads"), k, v)
            crm_op_add_read(op, json_string_value(v), json_string_length(v));
        json_object_foreach(json_object_get(o, "writes"), key, v) crm_op_add_write(op, key, v);
        op->save_duplicates = json_is_true(json_object_get(o, "save_duplicates"));
        json_array_foreach(json_object_get(o, "lookups"), k, v)
            crm_op_add_lookup(op, json_string_value(json_object_get(v, "object")),
                              json_string_value(json_object_get(v, "field")));
    }
}

static int case_decide(json_t *c, char *why, size_t whylen)
{
    char err[1024] = "";
    struct rules_ws *ws = parse_ws(c, "rules", err, sizeof(err));
    struct crm_ops ops = {0};
    struct policy_verdict v;
    size_t denied = 0;
    const char *rule = json_string_value(json_object_get(c, "rule"));
    const char *reason = json_string_value(json_object_get(c, "reason"));
    const char *fields = json_string_value(json_object_get(c, "fields"));
    int allow, rc = -1;

    if (ws == NULL && !json_is_null(json_object_get(c, "rules"))) {
        snprintf(why, whylen, "rules rejected: %s", err);
        return -1;
    }
    ops_from_json(json_object_get(c, "ops"), &ops);
    allow = policy_decide(ws, &ops, &v, &denied);
    if (allow != json_is_true(json_object_get(c, "allow")))
        snprintf(why, whylen, "decision %s (%s: %s)", allow ? "allow" : "deny", v.rule, v.reason);
    else if (rule != NULL && strstr(v.rule, rule) == NULL)
        snprintf(why, whylen, "rule \"%s\" lacks \"%s\"", v.rule, rule);
    else if (reason != NULL && strstr(v.reason, reason) == NULL)
        snprintf(why, whylen, "reason \"%s\" lacks \"%s\"", v.reason, reason);
    else if (fields != NULL && strcmp(v.fields, fields) != 0)
        snprintf(why, whylen, "fields \"%s\", want \"%s\"", v.fields, fields);
    else
        rc = 0;
    crm_ops_free(&ops);
    rules_ws_free(ws);
    return rc;
}

/* A filter case's HubSpot answer shape: "shape": "records" (the default), "links" or "schema". */
static enum filter_hs_shape filter_case_shape(json_t *c)
{
    const char *s = json_string_value(json_object_get(c, "shape"));

    if (s != NULL && strcmp(s, "links") == 0)
        return FILTER_HS_LINKS;
    if (s != NULL && strcmp(s, "schema") == 0)
        return FILTER_HS_SCHEMA;
    return FILTER_HS_RECORDS;
}

static int case_filter(json_t *c, char *why, size_t whylen)
{
    char err[1024] = "";
    struct rules_ws *ws = parse_ws(c, "rules", err, sizeof(err));
    json_t *body = json_deep_copy(json_object_get(c, "body"));
    const char *crm = json_string_value(json_object_get(c, "crm"));
    size_t removed = 0;
    int rc = -1;

    if (ws == NULL) {
        snprintf(why, whylen, "rules rejected: %s", err);
        json_decref(body);
        return -1;
    }
    {
        int refused =
            strcmp(crm, "salesforce") == 0
                ? policy_filter_salesforce(ws, body, &removed)
                : policy_filter_hubspot(ws, json_string_value(json_object_get(c, "object")),
                                        filter_case_shape(c), body, &removed);
        int want = json_is_true(json_object_get(c, "too_deep")) ||
                           json_is_true(json_object_get(c, "refused"))
                       ? -1
                       : 0;
        if (refused != want) {
            snprintf(why, whylen, "refused: got %d, want %d", refused, want);
            goto done;
        }
        if (refused < 0) {
            rc = 0; /* a refused answer is not relayed: its remains do not matter */
            goto done;
        }
    }
    if (json_object_get(c, "want") != NULL && !json_equal(body, json_object_get(c, "want"))) {
        char *got = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
        snprintf(why, whylen, "got %s", got);
        free(got);
        goto done;
    }
    rc = 0;
done:
    json_decref(body);
    rules_ws_free(ws);
    return rc;
}

static void test_rules_cases(void **state)
{
    (void)state;
    assert_int_equal(run_cases("tests/unit/cases/rules.jsonl", case_rules), 0);
}

static void test_decide_cases(void **state)
{
    (void)state;
    assert_int_equal(run_cases("tests/unit/cases/decide.jsonl", case_decide), 0);
}

static void test_filter_cases(void **state)
{
    (void)state;
    assert_int_equal(run_cases("tests/unit/cases/filter.jsonl", case_filter), 0);
}

/* The shipped rule files must load, and keep loading. */
static void test_shipped_rules(void **state)
{
    const char *files[] = {"rules/default.json", "rules/examples/acme-hubspot.json",
                           "rules/examples/globex-salesforce.json"};

    (void)state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        FILE *f = fopen(files[i], "r");
        char buf[65536], err[1024];
        size_t n;
        struct rules_ws *ws;

        assert_non_null(f);
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        ws = rules_ws_parse(files[i], buf, n, err, sizeof(err));
        if (ws == NULL)
            fail_msg("%s", err);
        rules_ws_free(ws);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_cases),
        cmocka_unit_test(test_decide_cases),
        cmocka_unit_test(test_filter_cases),
        cmocka_unit_test(test_shipped_rules),
    };
    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
