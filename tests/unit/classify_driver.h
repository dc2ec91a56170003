/*
 * classify_driver.h - runs classifier cases from a data file, one case per
 * line (JSON Lines, '#' lines and blank lines skipped):
 *
 *   {"name": "read one contact",
 *    "method": "GET", "path": "/crm/v3/objects/contacts/1", "query": "properties=email",
 *    "body": {...} | "body_raw": "not json",   (optional)
 *    "content_type": "...", "content_encoding": "gzip", "method_override": "PATCH",  (optional)
 *    "duplicate_rule": "allowSave=true",  (optional: Sforce-Duplicate-Rule-Header)
 *    "ops": [{"verb": "read", "object": "contacts", "id": "1", "reads": ["email"]}]}
 *
 * Every key of an expected op must match the actual one; keys the expected op
 * omits must be absent from the actual one, except "crm", "detail" and
 * "malformed", which are checked only when given ("detail" as a substring). "reads" compare as
 * sets. "secret" is the token a revocation carries (crm_op.secret, never in the ops' JSON):
 * absent means the op carries none. Included by test_classify_<crm>.c, which defines
 * CLASSIFY(req, ops).
 */
#ifndef CRMGATE_CLASSIFY_DRIVER_H
#define CRMGATE_CLASSIFY_DRIVER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crm.h"

typedef int (*classify_fn)(const struct crm_request *req, struct crm_ops *out);

static int driver_str_cmp(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* A sorted copy of an array of strings, for set comparison. */
static json_t *driver_sorted(json_t *arr)
{
    size_t n = json_array_size(arr);
    json_t **v = calloc(n ? n : 1, sizeof(*v)), *out = json_array();

    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(arr, i);
    qsort(v, n, sizeof(*v), driver_str_cmp);
    for (size_t i = 0; i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    return out;
}

/* 0 when actual matches expected; otherwise writes why into why. */
static int driver_match_op(json_t *want, json_t *got, char *why, size_t whylen)
{
    const char *key;
    json_t *wv;

    json_object_foreach(want, key, wv)
    {
        json_t *gv = json_object_get(got, key);
        if (strcmp(key, "secret") == 0)
            continue; /* driver_match_secret */
        if (strcmp(key, "detail") == 0) {
            if (!json_is_string(gv) ||
                strstr(json_string_value(gv), json_string_value(wv)) == NULL) {
                snprintf(why, whylen, "detail \"%s\" lacks \"%s\"",
                         gv ? json_string_value(gv) : "(none)", json_string_value(wv));
                return -1;
            }
            continue;
        }
        if (strcmp(key, "reads") == 0 && json_is_array(gv) && json_is_array(wv)) {
            json_t *a = driver_sorted(wv), *b = driver_sorted(gv);
            int eq = json_equal(a, b);
            json_decref(a);
            json_decref(b);
            if (eq)
                continue;
        } else if (gv != NULL && json_equal(wv, gv)) {
            continue;
        }
        {
            char *ws = json_dumps(wv, JSON_COMPACT | JSON_ENCODE_ANY);
            char *gs = gv ? json_dumps(gv, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            snprintf(why, whylen, "\"%s\": want %s, got %s", key, ws, gs ? gs : "(absent)");
            free(ws);
            free(gs);
        }
        return -1;
    }
    json_object_foreach(got, key, wv)
    {
        if (strcmp(key, "crm") == 0 || strcmp(key, "detail") == 0 || strcmp(key, "malformed") == 0)
            continue;
        if (json_object_get(want, key) == NULL) {
            char *gs = json_dumps(wv, JSON_COMPACT | JSON_ENCODE_ANY);
            snprintf(why, whylen, "unexpected \"%s\": %s", key, gs);
            free(gs);
            return -1;
        }
    }
    return 0;
}

/* 0 when op carries the secret want names (none when want has no "secret"); else why. */
static int driver_match_secret(json_t *want, const struct crm_op *op, char *why, size_t whylen)
{
    const char *w = json_string_value(json_object_get(want, "secret"));

    if (w == NULL && op->secret == NULL)
        return 0;
    if (w != NULL && op->secret != NULL && op->secret_len == strlen(w) &&
        memcmp(op->secret, w, op->secret_len) == 0)
        return 0;
    snprintf(why, whylen, "\"secret\": want %s, got %s", w != NULL ? w : "(none)",
             op->secret != NULL ? op->secret : "(none)");
    return -1;
}

/* Run every case in file; returns the number of failures (printed). */
static int driver_run_file(const char *file, classify_fn classify, size_t *ncases)
{
    FILE *f = fopen(file, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int failures = 0, lineno = 0;

    *ncases = 0;
    if (f == NULL) {
        printf("cannot open %s\n", file);
        return 1;
    }
    while ((len = getline(&line, &cap, f)) > 0) {
        struct crm_request req = {0};
        struct crm_ops ops = {0};
        json_error_t jerr;
        json_t *c, *want, *got = NULL, *body;
        char *body_text = NULL, why[1024] = "";
        const char *name;
        int ok = 1;

        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        c = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
        if (c == NULL) {
            printf("%s:%d: bad case line: %s\n", file, lineno, jerr.text);
            failures++;
            continue;
        }
        (*ncases)++;
        name = json_string_value(json_object_get(c, "name"));
        req.method = json_string_value(json_object_get(c, "method"));
        req.path = json_string_value(json_object_get(c, "path"));
        req.query = json_string_value(json_object_get(c, "query"));
        req.content_type = json_string_value(json_object_get(c, "content_type"));
        req.content_encoding = json_string_value(json_object_get(c, "content_encoding"));
        req.method_override = json_string_value(json_object_get(c, "method_override"));
        req.duplicate_rule = json_string_value(json_object_get(c, "duplicate_rule"));
        body = json_object_get(c, "body");
        if (json_is_string(json_object_get(c, "body_raw"))) {
            req.body = json_string_value(json_object_get(c, "body_raw"));
            req.body_len = json_string_length(json_object_get(c, "body_raw"));
        } else if (body != NULL) {
            body_text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
            req.body = body_text;
            req.body_len = strlen(body_text);
            if (req.content_type == NULL)
                req.content_type = "application/json";
        }
        want = json_object_get(c, "ops");
        if (classify(&req, &ops) != 0) {
            snprintf(why, sizeof(why), "classifier returned an error");
            ok = 0;
        } else {
            got = crm_ops_to_json(&ops);
            if (json_array_size(got) != json_array_size(want)) {
                char *gs = json_dumps(got, JSON_COMPACT);
                snprintf(why, sizeof(why), "want %zu ops, got %zu: %s", json_array_size(want),
                         json_array_size(got), gs);
                free(gs);
                ok = 0;
            }
            for (size_t i = 0; ok && i < json_array_size(want); i++) {
                char sub[900];
                if (driver_match_op(json_array_get(want, i), json_array_get(got, i), sub,
                                    sizeof(sub)) != 0 ||
                    driver_match_secret(json_array_get(want, i), &ops.v[i], sub, sizeof(sub)) !=
                        0) {
                    snprintf(why, sizeof(why), "op %zu: %s", i, sub);
                    ok = 0;
                }
            }
        }
        if (!ok) {
            printf("FAIL %s:%d \"%s\": %s\n", file, lineno, name ? name : "?", why);
            failures++;
        }
        json_decref(got);
        crm_ops_free(&ops);
        free(body_text);
        json_decref(c);
    }
    free(line);
    fclose(f);
    return failures;
}

#endif
