/*
 * test_jsonfilter.c - the streaming response filter: the filter table cases
 * (cases/filter.jsonl) in several spellings, a differential test against
 * the tree filter on generated CRM answers and their mutations, the fuzz
 * corpus, escaped and duplicate keys, depth and size limits, and inputs
 * jansson refuses. Run from the repository root.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "../fuzz/fuzz_jsonfilter.c"

/* A growable text buffer and a deterministic generator (xorshift). */
struct gen {
    char *buf;
    size_t len, cap;
    uint64_t rng;
};

static unsigned gen_rand(struct gen *g, unsigned n)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return (unsigned)(g->rng % n);
}

static void gen_add(struct gen *g, const char *s, size_t n)
{
    if (g->cap - g->len < n + 1) {
        while (g->cap - g->len < n + 1)
            g->cap = g->cap > 0 ? g->cap * 2 : 256;
        g->buf = realloc(g->buf, g->cap);
        assert_non_null(g->buf);
    }
    memcpy(g->buf + g->len, s, n);
    g->len += n;
    g->buf[g->len] = '\0';
}

static void gen_str(struct gen *g, const char *s)
{
    gen_add(g, s, strlen(s));
}

/* Whitespace between tokens: mostly none. */
static void gen_ws(struct gen *g)
{
    static const char *const ws[] = {" ", "\n", "\t", "\r\n", "  "};

    while (gen_rand(g, 5) == 0)
        gen_str(g, ws[gen_rand(g, 5)]);
}

static void gen_hex(char *u, size_t n, uint32_t cp, int upper)
{
    if (upper)
        snprintf(u, n, "\\u%04X", (unsigned)cp);
    else
        snprintf(u, n, "\\u%04x", (unsigned)cp);
}

/* s (UTF-8) as a JSON string, some characters escaped. */
static void gen_string(struct gen *g, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    char u[16];

    gen_str(g, "\"");
    while (*p != '\0') {
        uint32_t cp;
        size_t n;

        if (*p < 0x80) {
            cp = *p;
            n = 1;
        } else if (*p < 0xE0) {
            cp = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
            n = 2;
        } else if (*p < 0xF0) {
            cp = (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
            n = 3;
        } else {
            cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
                 (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
            n = 4;
        }
        if (cp == '"' || cp == '\\' || cp < 0x20 || gen_rand(g, 6) == 0) {
            int upper = (int)gen_rand(g, 2);

            if (cp == '/' && gen_rand(g, 2)) {
                gen_str(g, "\\/");
            } else if (cp == '\n' && gen_rand(g, 2)) {
                gen_str(g, "\\n");
            } else if (cp > 0xFFFF) {
                gen_hex(u, sizeof(u), 0xD800 + ((cp - 0x10000) >> 10), upper);
                gen_str(g, u);
                gen_hex(u, sizeof(u), 0xDC00 + ((cp - 0x10000) & 0x3FF), upper);
                gen_str(g, u);
            } else {
                gen_hex(u, sizeof(u), cp, upper);
                gen_str(g, u);
            }
        } else {
            gen_add(g, (const char *)p, n);
        }
        p += n;
    }
    gen_str(g, "\"");
}

static const char *const gen_keys[] = {
    "id",
    "properties",
    "propertiesWithHistory",
    "associations",
    "results",
    "email",
    "firstname",
    "phone",
    "dealname",
    "amount",
    "name",
    "Name",
    "Id",
    "ID",
    "iD",
    "attributes",
    "type",
    "records",
    "totalSize",
    "done",
    "Account",
    "Owner",
    "Contacts",
    "compositeResponse",
    "body",
    "companies",
    "tickets",
    "contacts",
    "deals",
    "secret",
    "Email",
    "Phone",
    "StageName",
    "url",
    "paging",
    "Secret__c",
    "caf\xc3\xa9",
    "\xf0\x9f\x98\x80",
    "a/b",
    "",
};
#define GEN_NKEYS (sizeof(gen_keys) / sizeof(gen_keys[0]))

static const char *const gen_types[] = {"Opportunity", "Account", "Contact", "Lead",
                                        "User",        "account", "CONTACT"};

static const char *const gen_scalars[] = {
    "0",
    "-0",
    "17",
    "-12",
    "3.5",
    "1e5",
    "-2.5E-3",
    "1E+2",
    "1e-400",
    "123456789012345678",
    "9223372036854775807",
    "-9223372036854775808",
    "1.7976931348623157e308",
    "true",
    "false",
    "null",
    "\"\"",
    "\"x\"",
    "\"caf\\u00e9\"",
    "\"\\ud83d\\ude00\"",
    "\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\"",
};
#define GEN_NSCALARS (sizeof(gen_scalars) / sizeof(gen_scalars[0]))

static void gen_value(struct gen *g, int depth, int salesforce);

static void gen_key(struct gen *g, const char *k)
{
    gen_ws(g);
    gen_string(g, k);
    gen_ws(g);
    gen_str(g, ":");
    gen_ws(g);
}

static void gen_scalar(struct gen *g)
{
    unsigned r = gen_rand(g, GEN_NSCALARS + 4);

    if (r < GEN_NSCALARS)
        gen_str(g, gen_scalars[r]);
    else
        gen_string(g, gen_keys[gen_rand(g, GEN_NKEYS)]);
}

/* Members given as a list of kinds, shuffled, emitted in order. */
static void gen_shuffle(struct gen *g, int *k, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int r = (int)gen_rand(g, (unsigned)i + 1), t = k[i];

        k[i] = k[r];
        k[r] = t;
    }
}

static void gen_sf_record(struct gen *g, int depth, const char *type);

static void gen_sf_query(struct gen *g, int depth)
{
    int n = (int)gen_rand(g, 4);

    gen_str(g, "{");
    gen_key(g, "totalSize");
    gen_str(g, "3,");
    gen_key(g, "done");
    gen_str(g, "true,");
    gen_key(g, "records");
    gen_str(g, "[");
    for (int i = 0; i < n; i++) {
        if (i > 0)
            gen_str(g, ",");
        gen_ws(g);
        gen_sf_record(g, depth + 2, NULL);
    }
    gen_str(g, "]}");
}

enum { SF_ATTR, SF_ID, SF_FIELD, SF_NESTED, SF_CHILD, SF_RANDOM, SF_DUP };

static void gen_sf_record(struct gen *g, int depth, const char *type)
{
    static const char *const fields[] = {"Name",      "Phone",    "Email",
                                         "StageName", "Amount",   "Secret__c",
                                         "AccountId", "Contacts", "Owner"};
    int k[10], n = 0;

    if (type == NULL)
        type = gen_types[gen_rand(g, sizeof(gen_types) / sizeof(gen_types[0]))];
    if (gen_rand(g, 10) > 0)
        k[n++] = SF_ATTR;
    if (gen_rand(g, 3) > 0)
        k[n++] = SF_ID;
    for (int i = (int)gen_rand(g, 4); i > 0; i--)
        k[n++] = SF_FIELD;
    if (depth < 6 && gen_rand(g, 3) == 0)
        k[n++] = SF_NESTED;
    if (depth < 6 && gen_rand(g, 4) == 0)
        k[n++] = SF_CHILD;
    if (gen_rand(g, 4) == 0)
        k[n++] = SF_RANDOM;
    if (gen_rand(g, 6) == 0)
        k[n++] = SF_DUP;
    gen_shuffle(g, k, n);
    gen_str(g, "{");
    for (int i = 0; i < n; i++) {
        const char *f = fields[gen_rand(g, sizeof(fields) / sizeof(fields[0]))];

        if (i > 0)
            gen_str(g, ",");
        switch (k[i]) {
        case SF_ATTR:
            gen_key(g, "attributes");
            gen_str(g, "{");
            if (gen_rand(g, 2)) {
                gen_key(g, "url");
                gen_str(g, "\"/services/data/v62.0/x\",");
            }
            gen_key(g, "type");
            gen_string(g, type);
            gen_str(g, "}");
            break;
        case SF_ID:
            gen_key(g, gen_rand(g, 4) ? "Id" : "ID");
            gen_str(g, "\"001x\"");
            break;
        case SF_FIELD:
            gen_key(g, f);
            gen_scalar(g);
            break;
        case SF_NESTED:
            gen_key(g, gen_rand(g, 2) ? "Account" : f);
            gen_sf_record(g, depth + 1, NULL);
            break;
        case SF_CHILD:
            gen_key(g, gen_rand(g, 2) ? "Contacts" : f);
            gen_sf_query(g, depth + 1);
            break;
        case SF_DUP:
            /* A key that also appears elsewhere, with a value of another kind. */
            gen_key(g, gen_rand(g, 3) ? f : "attributes");
            if (gen_rand(g, 2))
                gen_scalar(g);
            else
                gen_value(g, depth + 1, 1);
            break;
        default:
            gen_key(g, gen_keys[gen_rand(g, GEN_NKEYS)]);
            gen_value(g, depth + 1, 1);
            break;
        }
        gen_ws(g);
    }
    gen_str(g, "}");
}

enum { HS_ID, HS_PROPS, HS_HIST, HS_ASSOC, HS_DATE, HS_RANDOM, HS_DUP };

static void gen_hs_props(struct gen *g, int hist)
{
    static const char *const names[] = {"email",       "firstname", "phone",  "dealname",
                                        "amount",      "name",      "domain", "hs_object_id",
                                        "caf\xc3\xa9", "EMAIL"};
    int n = (int)gen_rand(g, 5);

    gen_str(g, "{");
    for (int i = 0; i < n; i++) {
        if (i > 0)
            gen_str(g, ",");
        gen_key(g, names[gen_rand(g, sizeof(names) / sizeof(names[0]))]);
        if (hist)
            gen_str(g, "[{\"value\":\"1\",\"timestamp\":\"t\"}]");
        else
            gen_scalar(g);
    }
    gen_str(g, "}");
}

static void gen_hs_record(struct gen *g, int depth)
{
    static const char *const types[] = {"companies", "tickets", "contacts", "deals", "notes"};
    int k[10], n = 0;

    k[n++] = HS_ID;
    if (gen_rand(g, 8) > 0)
        k[n++] = HS_PROPS;
    if (gen_rand(g, 4) == 0)
        k[n++] = HS_HIST;
    if (gen_rand(g, 3) == 0)
        k[n++] = HS_ASSOC;
    if (gen_rand(g, 2) == 0)
        k[n++] = HS_DATE;
    if (gen_rand(g, 4) == 0)
        k[n++] = HS_RANDOM;
    if (gen_rand(g, 6) == 0)
        k[n++] = HS_DUP;
    gen_shuffle(g, k, n);
    gen_str(g, "{");
    for (int i = 0; i < n; i++) {
        if (i > 0)
            gen_str(g, ",");
        switch (k[i]) {
        case HS_ID:
            gen_key(g, "id");
            gen_str(g, "\"1\"");
            break;
        case HS_PROPS:
            gen_key(g, "properties");
            gen_hs_props(g, 0);
            break;
        case HS_HIST:
            gen_key(g, "propertiesWithHistory");
            gen_hs_props(g, 1);
            break;
        case HS_ASSOC:
            gen_key(g, "associations");
            gen_str(g, "{");
            for (int a = (int)gen_rand(g, 4); a > 0; a--) {
                gen_key(g, types[gen_rand(g, 5)]);
                gen_str(g, "{\"results\":[{\"id\":\"9\",\"type\":\"x\"}]}");
                if (a > 1)
                    gen_str(g, ",");
            }
            gen_str(g, "}");
            break;
        case HS_DATE:
            gen_key(g, "createdAt");
            gen_str(g, "\"2024-01-02T03:04:05.678Z\"");
            break;
        case HS_DUP: {
            static const char *const dk[] = {"properties", "propertiesWithHistory", "associations",
                                             "results"};
            gen_key(g, dk[gen_rand(g, 4)]);
            if (gen_rand(g, 2))
                gen_scalar(g);
            else
                gen_hs_props(g, 0);
            break;
        }
        default:
            gen_key(g, gen_keys[gen_rand(g, GEN_NKEYS)]);
            gen_value(g, depth + 1, 0);
            break;
        }
        gen_ws(g);
    }
    gen_str(g, "}");
}

static void gen_value(struct gen *g, int depth, int salesforce)
{
    unsigned r = gen_rand(g, depth > 5 ? 4 : 9);

    gen_ws(g);
    if (r < 4) {
        gen_scalar(g);
    } else if (r == 4 || r == 5) {
        int n = (int)gen_rand(g, 4);

        gen_str(g, r == 4 ? "[" : "{");
        for (int i = 0; i < n; i++) {
            if (i > 0)
                gen_str(g, ",");
            if (r == 5)
                gen_key(g, gen_keys[gen_rand(g, GEN_NKEYS)]);
            gen_value(g, depth + 1, salesforce);
        }
        gen_ws(g);
        gen_str(g, r == 4 ? "]" : "}");
    } else if (salesforce) {
        if (r == 8)
            gen_sf_query(g, depth);
        else
            gen_sf_record(g, depth, NULL);
    } else {
        gen_hs_record(g, depth);
    }
    gen_ws(g);
}

/* A whole answer in one of the shapes the CRMs send, or anything. */
static void gen_answer(struct gen *g, int salesforce)
{
    unsigned r = gen_rand(g, 6);

    g->len = 0;
    gen_ws(g);
    if (!salesforce) {
        if (r <= 1) {
            gen_hs_record(g, 0);
        } else if (r <= 3) {
            int n = (int)gen_rand(g, 4);

            gen_str(g, "{");
            if (r == 3)
                gen_str(g, "\"status\":\"COMPLETE\",");
            gen_key(g, "results");
            gen_str(g, "[");
            for (int i = 0; i < n; i++) {
                if (i > 0)
                    gen_str(g, ",");
                if (gen_rand(g, 8) == 0)
                    gen_value(g, 2, 0);
                else
                    gen_hs_record(g, 2);
            }
            gen_str(g, "]");
            if (gen_rand(g, 2))
                gen_str(g, ",\"paging\":{\"next\":{\"after\":\"2\"}}");
            gen_str(g, "}");
        } else if (r == 4) {
            gen_str(g, "[");
            gen_hs_record(g, 1);
            gen_str(g, "]");
        } else {
            gen_str(g, "{");
            gen_key(g, gen_keys[gen_rand(g, GEN_NKEYS)]);
            gen_value(g, 1, 0);
            gen_str(g, "}");
        }
    } else {
        if (r <= 1) {
            gen_sf_record(g, 0, NULL);
        } else if (r == 2) {
            gen_sf_query(g, 0);
        } else if (r == 3) {
            gen_str(g, "{\"compositeResponse\":[");
            for (int i = (int)gen_rand(g, 3); i >= 0; i--) {
                gen_str(g, "{\"body\":");
                gen_value(g, 3, 1);
                gen_str(g, ",\"httpStatusCode\":200,\"referenceId\":\"r\"}");
                if (i > 0)
                    gen_str(g, ",");
            }
            gen_str(g, "]}");
        } else if (r == 4) {
            gen_str(g, "[");
            gen_sf_record(g, 1, NULL);
            gen_str(g, ",null]");
        } else {
            gen_str(g, "[");
            gen_value(g, 1, 1);
            gen_str(g, "]");
        }
    }
    gen_ws(g);
}

static const char *const test_objects[] = {"contacts", "deals", "companies", "tickets"};

static struct rules_ws *test_ws[FUZZ_NRULES];

static int test_setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < FUZZ_NRULES; i++)
        test_ws[i] = fuzz_ws(i);
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < FUZZ_NRULES; i++)
        rules_ws_free(test_ws[i]);
    return 0;
}

/* Filter in, expect success, and return the output parsed (the caller frees). */
static json_t *filter_ok(const struct rules_ws *ws, int salesforce, const char *object,
                         const char *in, size_t *removed)
{
    struct jsonfilter_out out = {NULL, 0, 0};
    char err[256];
    json_error_t jerr;
    json_t *got;
    int rc = salesforce ? jsonfilter_salesforce(ws, in, strlen(in), &out, removed, err, sizeof(err))
                        : jsonfilter_hubspot(ws, object, FILTER_HS_RECORDS, in, strlen(in), &out,
                                             removed, err, sizeof(err));

    if (rc != 0)
        fail_msg("%s: %s", in, err);
    got = json_loadb(out.buf, out.len, 0, &jerr);
    if (got == NULL)
        fail_msg("%s: output %.*s is not JSON: %s", in, (int)out.len, out.buf, jerr.text);
    jsonfilter_out_free(&out);
    return got;
}

static void expect(const struct rules_ws *ws, int salesforce, const char *object, const char *in,
                   const char *want)
{
    json_error_t jerr;
    json_t *w = json_loads(want, 0, &jerr), *got;
    size_t removed;

    assert_non_null(w);
    got = filter_ok(ws, salesforce, object, in, &removed);
    if (!json_equal(got, w)) {
        char *s = json_dumps(got, JSON_COMPACT);

        fail_msg("%s: got %s, want %s", in, s, want);
    }
    json_decref(got);
    json_decref(w);
}

/*
 * Write v as JSON with every key's characters \u-escaped and whitespace
 * around every token: the same document as far as a parser can tell.
 */
static void dump_escaped(struct gen *g, json_t *v)
{
    char u[8];

    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        int first = 1;

        gen_str(g, "{ ");
        json_object_foreach(v, k, x)
        {
            if (!first)
                gen_str(g, " ,\n");
            first = 0;
            gen_str(g, "\"");
            for (const unsigned char *p = (const unsigned char *)k; *p != '\0'; p++) {
                if (*p < 0x80) {
                    snprintf(u, sizeof(u), "\\u%04x", *p);
                    gen_str(g, u);
                } else {
                    gen_add(g, (const char *)p, 1);
                }
            }
            gen_str(g, "\"\t: ");
            dump_escaped(g, x);
        }
        gen_str(g, " }");
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;

        gen_str(g, "[ ");
        json_array_foreach(v, i, x)
        {
            if (i > 0)
                gen_str(g, " , ");
            dump_escaped(g, x);
        }
        gen_str(g, " ]");
    } else {
        char *s = json_dumps(v, JSON_ENCODE_ANY);

        gen_str(g, s);
        free(s);
    }
}

/* (a) The table cases of the tree filter, spelled four ways. */
static void test_filter_cases(void **state)
{
    FILE *f = fopen("tests/unit/cases/filter.jsonl", "r");
    char *line = NULL;
    size_t cap = 0, ncases = 0;
    ssize_t n;
    struct gen g = {NULL, 0, 0, 1};

    (void)state;
    assert_non_null(f);
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *c = json_loads(line, 0, &jerr), *body, *want;
        char err[512], *rules;
        struct rules_ws *ws;
        const char *object;
        int salesforce, deep;
        enum filter_hs_shape shape;

        assert_non_null(c);
        rules = json_dumps(json_object_get(c, "rules"), JSON_COMPACT);
        ws = rules_ws_parse("t.json", rules, strlen(rules), err, sizeof(err));
        assert_non_null(ws);
        body = json_object_get(c, "body");
        want = json_object_get(c, "want");
        object = json_string_value(json_object_get(c, "object"));
        salesforce = strcmp(json_string_value(json_object_get(c, "crm")), "salesforce") == 0;
        deep = json_is_true(json_object_get(c, "too_deep")) ||
               json_is_true(json_object_get(c, "refused"));
        shape = json_object_get(c, "shape") == NULL ? FILTER_HS_RECORDS
                : strcmp(json_string_value(json_object_get(c, "shape")), "links") == 0
                    ? FILTER_HS_LINKS
                    : FILTER_HS_SCHEMA;
        for (int style = 0; style < 4; style++) {
            struct jsonfilter_out out = {NULL, 0, 0};
            size_t removed = 0;
            char *text = NULL;
            json_t *got;
            int rc;

            if (style < 3) {
                static const size_t flags[] = {JSON_COMPACT, JSON_INDENT(2),
                                               JSON_INDENT(1) | JSON_ENSURE_ASCII};

                text = json_dumps(body, flags[style]);
            } else {
                g.len = 0;
                dump_escaped(&g, body);
                text = strdup(g.buf);
            }
            assert_non_null(text);
            rc = salesforce ? jsonfilter_salesforce(ws, text, strlen(text), &out, &removed, err,
                                                    sizeof(err))
                            : jsonfilter_hubspot(ws, object, shape, text, strlen(text), &out,
                                                 &removed, err, sizeof(err));
            if (deep) {
                if (rc != -1)
                    fail_msg("%s: refused by the tree filter, yet accepted",
                             json_string_value(json_object_get(c, "name")));
            } else {
                if (rc != 0)
                    fail_msg("%s (style %d): %s", json_string_value(json_object_get(c, "name")),
                             style, err);
                got = json_loadb(out.buf, out.len, 0, &jerr);
                assert_non_null(got);
                if (!json_equal(got, want))
                    fail_msg("%s (style %d): got %.*s",
                             json_string_value(json_object_get(c, "name")), style, (int)out.len,
                             out.buf);
                /* Nothing removed exactly when the tree filter's answer is the body. */
                assert_int_equal(removed == 0, json_equal(body, want));
                json_decref(got);
            }
            free(text);
            jsonfilter_out_free(&out);
        }
        ncases++;
        free(rules);
        rules_ws_free(ws);
        json_decref(c);
    }
    free(line);
    free(g.buf);
    fclose(f);
    printf("filter.jsonl: %zu cases x 4 spellings\n", ncases);
    assert_true(ncases >= 16);
}

/* (b) Generated answers, then their mutations: the tree filter is the oracle. */
/*
 * jsonfilter_parse against json_loadb: the same tree, or both refuse (but where the input
 * nests deeper than the filters go, or holds a NUL byte, which jansson skips). Returns
 * whether the input was parsed.
 */
static int parse_same(const char *in, size_t len)
{
    char err[256];
    json_t *want = json_loadb(in, len, 0, NULL), *got = jsonfilter_parse(in, len, err, sizeof(err));
    int ok = got != NULL;

    if (want == NULL && got != NULL)
        fail_msg("jsonfilter_parse took what jansson refuses: %.*s", (int)len, in);
    if (want != NULL && got == NULL && strstr(err, "deeper") == NULL && memchr(in, 0, len) == NULL)
        fail_msg("jsonfilter_parse refused (%s) what jansson parses: %.*s", err, (int)len, in);
    if (want != NULL && got != NULL && !json_equal(want, got))
        fail_msg("jsonfilter_parse and jansson disagree on: %.*s", (int)len, in);
    json_decref(want);
    json_decref(got);
    return ok;
}

static void test_differential(void **state)
{
    struct gen g = {NULL, 0, 0, 0x9E3779B97F4A7C15ULL};
    char why[8192], *mut = NULL;
    size_t nvalid = 0, nmut = 0, nrefused = 0, nremoved = 0, nuninspectable = 0;

    (void)state;
    for (int i = 0; i < 4000; i++) {
        int salesforce = i & 1;
        const struct rules_ws *ws = test_ws[(i >> 1) % FUZZ_NRULES];
        const char *object = test_objects[gen_rand(&g, 4)];
        enum filter_hs_shape shape = (enum filter_hs_shape)((i >> 2) % 3);
        json_error_t jerr;
        json_t *tree;

        gen_answer(&g, salesforce);
        tree = json_loadb(g.buf, g.len, 0, &jerr);
        if (tree == NULL)
            fail_msg("generator wrote invalid JSON (%s): %s", jerr.text, g.buf);
        json_decref(tree);
        assert_true(parse_same(g.buf, g.len));
        if (fuzz_check(ws, salesforce, object, shape, g.buf, g.len, why, sizeof(why)) < 0)
            fail_msg("%s\ninput: %s", why, g.buf);
        {
            struct jsonfilter_out out = {NULL, 0, 0};
            size_t removed = 0;
            char err[256];
            int rc = salesforce
                         ? jsonfilter_salesforce(ws, g.buf, g.len, &out, &removed, err, sizeof(err))
                         : jsonfilter_hubspot(ws, object, shape, g.buf, g.len, &out, &removed, err,
                                              sizeof(err));

            nremoved += rc == 0 && removed > 0;
            nuninspectable += rc < 0; /* record data where none may be: both filters refuse */
            jsonfilter_out_free(&out);
        }
        nvalid++;
        /* Mutations: a byte changed, dropped, duplicated; a cut; a splice. */
        for (int m = 0; m < 3; m++) {
            size_t len = g.len, at = gen_rand(&g, (unsigned)len);
            static const char bytes[] = "{}[]\",:\\ 0-1eE.tfn\x80\xc3\xe2\xf0\x01u";

            mut = realloc(mut, len + 2);
            assert_non_null(mut);
            memcpy(mut, g.buf, len);
            switch (gen_rand(&g, 4)) {
            case 0:
                mut[at] = bytes[gen_rand(&g, sizeof(bytes) - 1)];
                break;
            case 1:
                memmove(mut + at, mut + at + 1, len - at - 1);
                len--;
                break;
            case 2:
                memmove(mut + at + 1, mut + at, len - at);
                len++;
                break;
            default:
                len = at;
                break;
            }
            if (fuzz_check(ws, salesforce, object, shape, mut, len, why, sizeof(why)) < 0)
                fail_msg("%s\nmutated input: %.*s", why, (int)len, mut);
            (void)parse_same(mut, len);
            {
                json_t *t = json_loadb(mut, len, 0, &jerr);

                nrefused += t == NULL;
                json_decref(t);
            }
            nmut++;
        }
    }
    printf("differential: %zu generated answers (%zu filtered, %zu uninspectable), %zu mutations "
           "(%zu invalid)\n",
           nvalid, nremoved, nuninspectable, nmut, nrefused);
    /* The generator must exercise every outcome, or the comparison proves little. */
    assert_true(nremoved > nvalid / 4 && nremoved + nuninspectable < nvalid);
    assert_true(nuninspectable > 0 && nuninspectable < nvalid / 2);
    assert_true(nrefused > nmut / 4 && nrefused < nmut);
    free(mut);
    free(g.buf);
}

/* The fuzz corpus, as the fuzzer runs it. */
static void test_fuzz_corpus(void **state)
{
    DIR *d = opendir("tests/fuzz/corpus/jsonfilter");
    struct dirent *e;
    size_t n = 0;

    (void)state;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[512], buf[1 << 16];
        FILE *f;
        size_t len;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "tests/fuzz/corpus/jsonfilter/%s", e->d_name);
        f = fopen(path, "rb");
        assert_non_null(f);
        len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
        (void)parse_same(buf, len);
        n++;
    }
    closedir(d);
    printf("fuzz corpus: %zu inputs\n", n);
    assert_true(n >= 20);
}

/* An escaped key is the key it spells: it neither escapes the filter nor is lost. */
static void test_escaped_keys(void **state)
{
    const struct rules_ws *ws = test_ws[0];

    (void)state;
    expect(ws, 0, "contacts",
           "{\"id\":\"1\",\"properties\":{\"\\u0070hone\":\"x\",\"\\u0065mail\":\"a\","
           "\"caf\\u00E9\":\"c\",\"\\ud83d\\ude00\":1}}",
           "{\"id\":\"1\",\"properties\":{\"email\":\"a\",\"caf\\u00e9\":\"c\"}}");
    expect(ws, 0, "contacts",
           "{\"id\":\"1\",\"\\u0070roperties\":{\"phone\":\"x\"},\"assoc\\u0069ations\":"
           "{\"t\\u0069ckets\":{},\"companies\":{}}}",
           "{\"id\":\"1\",\"properties\":{},\"associations\":{\"companies\":{}}}");
    expect(ws, 0, "contacts", "{\"r\\u0065sults\":[{\"properties\":{\"phone\":\"x\"}}]}",
           "{\"results\":[{\"properties\":{}}]}");
    expect(ws, 1, NULL,
           "{\"\\u0050hone\":\"1\",\"attr\\u0069butes\":{\"t\\u0079pe\":\"Acc\\u006funt\"},"
           "\"N\\u0061me\":\"n\",\"\\u0049\\u0044\":\"i\"}",
           "{\"attributes\":{\"type\":\"Account\"},\"Name\":\"n\",\"ID\":\"i\"}");
    expect(ws, 1, NULL,
           "{\"attributes\":{\"type\":\"Account\"},\"Owner\":{\"\\u0061ttributes\":"
           "{\"type\":\"User\"},\"Name\":\"o\"},\"Contacts\":{\"rec\\u006frds\":[{\"attributes\":"
           "{\"type\":\"Lead\"},\"Email\":\"e\"}]}}",
           "{\"attributes\":{\"type\":\"Account\"},\"Owner\":null,\"Contacts\":{\"records\":"
           "[{\"attributes\":{\"type\":\"Lead\"}}]}}");
    /* Keys longer than the on-stack buffer. */
    {
        char in[2048], want[2048], k[600];

        memset(k, 'q', sizeof(k) - 1);
        k[sizeof(k) - 1] = '\0';
        snprintf(in, sizeof(in), "{\"properties\":{\"%s\":1,\"email\":2},\"%s\":{\"phone\":3}}", k,
                 k);
        /* (the unknown member is a record's: cut) */
        snprintf(want, sizeof(want), "{\"properties\":{\"email\":2}}");
        expect(ws, 0, "contacts", in, want);
        snprintf(in, sizeof(in), "{\"status\":\"error\",\"%s\":{\"phone\":3}}", k);
        expect(ws, 0, "contacts", in, "{\"status\":\"error\"}");
    }
}

/* Duplicate keys: the last occurrence decides, and no occurrence leaks. */
static void test_duplicate_keys(void **state)
{
    const struct rules_ws *ws = test_ws[0];
    struct jsonfilter_out out = {NULL, 0, 0};
    size_t removed;
    char err[256];
    const char *in;

    (void)state;
    /* An unreadable key: a child query first, a plain value last. */
    expect(ws, 1, NULL,
           "{\"attributes\":{\"type\":\"Account\"},\"Phone\":{\"records\":[]},\"Phone\":\"s\"}",
           "{\"attributes\":{\"type\":\"Account\"}}");
    /* The last attributes names the type. */
    expect(ws, 1, NULL,
           "{\"attributes\":{\"type\":\"Contact\"},\"Phone\":\"1\",\"attributes\":{\"type\":"
           "\"Account\"},\"Name\":\"n\"}",
           "{\"attributes\":{\"type\":\"Account\"},\"Name\":\"n\"}");
    /* The last type is not a string: a record that cannot be typed, refused (as the tree does). */
    in = "{\"attributes\":{\"type\":\"Account\",\"type\":5},\"Phone\":\"1\"}";
    assert_int_equal(jsonfilter_salesforce(ws, in, strlen(in), &out, &removed, err, sizeof(err)),
                     -1);
    assert_int_equal(out.len, 0);
    /* Within a record, an earlier duplicate is removed entirely. */
    in = "{\"attributes\":{\"type\":\"Account\"},\"Name\":\"secret\",\"Name\":\"n\"}";
    assert_int_equal(jsonfilter_salesforce(ws, in, strlen(in), &out, &removed, err, sizeof(err)),
                     0);
    assert_int_equal(removed, 1);
    assert_null(memmem(out.buf, out.len, "secret", 6));
    /* HubSpot: every properties object is filtered, whichever occurrence a parser keeps. */
    in = "{\"properties\":{\"phone\":\"secret\"},\"properties\":2,\"associations\":{\"tickets\":1},"
         "\"associations\":{\"tickets\":2}}";
    assert_int_equal(jsonfilter_hubspot(ws, "contacts", FILTER_HS_RECORDS, in, strlen(in), &out,
                                        &removed, err, sizeof(err)),
                     0);
    assert_null(memmem(out.buf, out.len, "secret", 6));
    /* The root is no record, yet the replaced associations are filtered: */
    assert_null(memmem(out.buf, out.len, "\"tickets\":1", 11));
    /* the last one stays, as in the tree. */
    assert_non_null(memmem(out.buf, out.len, "\"tickets\":2", 11));
    expect(ws, 0, "contacts", in, "{\"properties\":2,\"associations\":{\"tickets\":2}}");
    in = "{\"properties\":{\"phone\":\"secret\",\"phone\":\"x\"},\"properties\":{\"email\":1}}";
    expect(ws, 0, "contacts", in, "{\"properties\":{\"email\":1}}");
    /* Many members, many duplicates: the table grows. */
    {
        struct gen g = {NULL, 0, 0, 7};
        char k[32];

        gen_str(&g, "{\"attributes\":{\"type\":\"Account\"}");
        for (int i = 0; i < 600; i++) {
            snprintf(k, sizeof(k), ",\"F%d\":%d", i % 300, i);
            gen_str(&g, k);
        }
        gen_str(&g, ",\"Name\":1,\"Name\":2}");
        expect(ws, 1, NULL, g.buf, "{\"attributes\":{\"type\":\"Account\"},\"Name\":2}");
        free(g.buf);
    }
    jsonfilter_out_free(&out);
}

/* A document with a member key (value 1): the text before it, and after it. */
struct hs_doc {
    const char *pre, *post;
};

/*
 * Whether the HubSpot filter keeps member key, with the value value, in doc: 1 kept, 0 cut,
 * -1 the answer refused.
 */
static int hs_keeps_value(const struct hs_doc *doc, const char *key, const char *value,
                          enum filter_hs_shape shape)
{
    struct jsonfilter_out out = {NULL, 0, 0};
    char in[256], err[256];
    size_t removed = 9;
    int rc;

    snprintf(in, sizeof(in), "%s\"%s\":%s%s", doc->pre, key, value, doc->post);
    rc = jsonfilter_hubspot(test_ws[0], "contacts", shape, in, strlen(in), &out, &removed, err,
                            sizeof(err));
    jsonfilter_out_free(&out);
    return rc < 0 ? -1 : removed == 0;
}

static int hs_keeps(const struct hs_doc *doc, const char *key, enum filter_hs_shape shape)
{
    return hs_keeps_value(doc, key, "1", shape);
}

/*
 * The members a HubSpot record and an answer's root keep are filter.h's lists, and only those
 * (jsonfilter.c looks them up by length): each name of each list, in each place.
 */
static void test_hs_known_members(void **state)
{
    static const struct hs_doc rec = {"{\"properties\":{},", "}"};
    static const struct hs_doc elem = {"{\"results\":[{\"properties\":{},", "}]}"};
    static const struct hs_doc links = {"{", "}"};
    char twin[64];
    size_t n = 0;

    (void)state;
    for (const struct filter_name *k = filter_hs_record_keys; k->s != NULL; k++, n++) {
        assert_true(hs_keeps(&rec, k->s, FILTER_HS_RECORDS));
        assert_true(hs_keeps(&elem, k->s, FILTER_HS_RECORDS));
        assert_true(hs_keeps(&links, k->s, FILTER_HS_LINKS));
        snprintf(twin, sizeof(twin), "%sx", k->s);
        assert_false(hs_keeps(&rec, twin, FILTER_HS_RECORDS));
        snprintf(twin, sizeof(twin), "%.*s", (int)k->n - 1, k->s);
        assert_false(hs_keeps(&elem, twin, FILTER_HS_RECORDS));
        /* an identity member holding an object or an array refuses the answer */
        if (k->scalar) {
            assert_int_equal(hs_keeps_value(&elem, k->s, "{\"a\":1}", FILTER_HS_RECORDS), -1);
            assert_int_equal(hs_keeps_value(&links, k->s, "[2]", FILTER_HS_LINKS), -1);
            assert_int_equal(hs_keeps_value(&rec, k->s, "null", FILTER_HS_RECORDS), 1);
        }
    }
    for (const struct filter_name *k = filter_hs_root_keys; k->s != NULL; k++, n++) {
        assert_true(hs_keeps(&rec, k->s, FILTER_HS_RECORDS));
        assert_true(hs_keeps(&links, k->s, FILTER_HS_LINKS));
        assert_false(hs_keeps(&elem, k->s, FILTER_HS_RECORDS)); /* not a record's */
        twin[0] = (char)(k->s[0] ^ 0x20);                       /* names are case-sensitive */
        snprintf(twin + 1, sizeof(twin) - 1, "%s", k->s + 1);
        assert_false(hs_keeps(&rec, twin, FILTER_HS_RECORDS));
        assert_false(hs_keeps(&links, twin, FILTER_HS_LINKS));
    }
    assert_int_equal(n, 45);
}

/* Nothing to remove: the output is the input, byte for byte (whitespace included). */
static void test_untouched(void **state)
{
    static const char *const in[] = {
        " {\"id\" : \"1\",\n \"properties\" : { \"email\" : \"a\" } }\r\n",
        "[1, 2,{\"x\":{\"phone\":1}}]",
        "{\"results\":[ ]}",
    };
    struct jsonfilter_out out = {NULL, 0, 0};
    size_t removed;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        assert_int_equal(jsonfilter_hubspot(test_ws[0], "contacts", FILTER_HS_RECORDS, in[i],
                                            strlen(in[i]), &out, &removed, err, sizeof(err)),
                         0);
        assert_int_equal(removed, 0);
        assert_int_equal(out.len, strlen(in[i]));
        assert_memory_equal(out.buf, in[i], out.len);
    }
    /* An unlisted object keeps no property; the record stays well-formed. */
    expect(test_ws[0], 0, "tickets", "{ \"properties\" : { \"a\" : 1 , \"b\" : [2] } , \"id\":1}",
           "{\"properties\":{},\"id\":1}");
    expect(test_ws[0], 0, "contacts",
           "{\"properties\":{\"a\":1,\"email\":2,\"b\":3,\"c\":4,\"firstname\":5,\"d\":6}}",
           "{\"properties\":{\"email\":2,\"firstname\":5}}");
    jsonfilter_out_free(&out);
}

static void expect_refused(const struct rules_ws *ws, int salesforce, const char *in, size_t len,
                           int jansson_too)
{
    struct jsonfilter_out out = {NULL, 0, 0};
    json_error_t jerr;
    json_t *t = json_loadb(in, len, 0, &jerr);
    size_t removed = 5;
    char err[256] = "";
    int rc = salesforce ? jsonfilter_salesforce(ws, in, len, &out, &removed, err, sizeof(err))
                        : jsonfilter_hubspot(ws, "contacts", FILTER_HS_RECORDS, in, len, &out,
                                             &removed, err, sizeof(err));

    if (jansson_too && t != NULL)
        fail_msg("jansson accepts %.*s: not a refusal test", (int)len, in);
    json_decref(t);
    if (rc != -1)
        fail_msg("accepted: %.*s", (int)len, in);
    assert_int_equal(out.len, 0);
    assert_int_equal(removed, 0);
    assert_true(err[0] != '\0');
    jsonfilter_out_free(&out);
}

/* (c) What jansson refuses, the filter refuses. */
static void test_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "   ",
        "\"x\"",
        "1",
        "null",
        "{",
        "[",
        "{\"a\":1",
        "{\"a\":1,}",
        "[1,]",
        "[,1]",
        "{,}",
        "{\"a\" 1}",
        "{\"a\":}",
        "{a:1}",
        "{'a':1}",
        "{\"a\":1}}",
        "{\"a\":1} x",
        "{} {}",
        "[01]",
        "[-]",
        "[1.]",
        "[.5]",
        "[1e]",
        "[1e+]",
        "[+1]",
        "[0x10]",
        "[1.5.3]",
        "[NaN]",
        "[Infinity]",
        "[tru]",
        "[truex]",
        "[nul]",
        "[True]",
        "[9223372036854775808]",
        "[-9223372036854775809]",
        "[123456789012345678901234567890]",
        "[1e309]",
        "[-1.8e308]",
        "[1.7976931348623159e308]",
        "[0.00001e314]",
        "[\"\\x\"]",
        "[\"\\u12\"]",
        "[\"\\u12G4\"]",
        "[\"\\ud800\"]",
        "[\"\\ud800\\u0041\"]",
        "[\"\\udc00\"]",
        "[\"\\u0000\"]",
        "{\"a\\u0000b\":1}",
        "[\"a\tb\"]",
        "[\"a\nb\"]",
        "[\"abc]",
        "[\"\\\"]",
        "[\"\x80\"]",
        "[\"\xc0\xaf\"]",
        "[\"\xc3\"]",
        "[\"\xe0\x80\xaf\"]",
        "[\"\xed\xa0\x80\"]",
        "[\"\xf4\x90\x80\x80\"]",
        "[\"\xf5\x80\x80\x80\"]",
        "[\"\xff\"]",
        "[\xc3\xa9]",
        "\xef\xbb\xbf{}",
        "{\"attributes\":{\"type\":\"Account\"},\"Phone\":[1,}",
        "{\"attributes\":{\"type\":\"Account\"},\"Owner\":{\"attributes\":{\"type\":\"User\"},}}",
        "{\"properties\":{\"phone\":\"\xff\"}}",
        "{\"results\":[{\"properties\":{\"email\":01}}]}",
        "{\"attributes\":{\"type\":\"Acc\\u0000ount\"}}",
        "{\"attributes\":{\"type\":\"Account\"},\"Name\":\"a\"\"b\"}",
        "[1]\x00",
    };
    char nul[] = "[\"a\0b\"]";

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = strlen(bad[i]) + (i == sizeof(bad) / sizeof(bad[0]) - 1);

        for (int sf = 0; sf < 2; sf++)
            expect_refused(test_ws[0], sf, bad[i], len, 1);
    }
    expect_refused(test_ws[0], 1, nul, sizeof(nul) - 1, 1);
    /* jansson skips a NUL byte right after a number or literal; no JSON holds one. */
    expect_refused(test_ws[0], 0, "{\"e\":5\0}", 8, 0);
    expect_refused(test_ws[0], 1, "[true\0]", 7, 0);
    printf("invalid: %zu inputs x 2 filters\n", sizeof(bad) / sizeof(bad[0]) + 1);
}

/*
 * Every cut of answers in each shape the filters walk is refused, read from a buffer of
 * exactly its length (under make asan, a read past the end is caught).
 */
static void test_truncated(void **state)
{
    static const char *const docs[] = {
        "{\"results\":[{\"id\":\"1\",\"properties\":{\"email\":\"a\"},\"associations\":{"
        "\"companies\":{\"results\":[{\"id\":\"2\"}]}}},[1,{\"x\":null}]],\"errors\":[{"
        "\"context\":{\"ids\":[\"9\"]}}],\"paging\":{\"next\":{\"after\":\"1\"}},\"extra\":[]}",
        "{\"fromObjectTypeId\":\"0-1\",\"labels\":[],\"results\":[{\"properties\":[]}]}",
        "{\"totalSize\":1,\"records\":[null,{\"attributes\":{\"type\":\"Contact\"},\"Id\":\"1\","
        "\"MailingAddress\":{\"city\":\"c\",\"latitude\":1.5},\"Tags\":[],\"Account\":{"
        "\"attributes\":{\"type\":\"Account\"},\"Name\":\"n\"},\"Contacts\":{\"records\":[]}}],"
        "\"searchRecords\":[]}",
    };
    static const enum filter_hs_shape shapes[] = {FILTER_HS_RECORDS, FILTER_HS_LINKS,
                                                  FILTER_HS_SCHEMA};
    size_t n = 0;

    (void)state;
    for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
        for (size_t len = 0; len < strlen(docs[d]); len++) {
            struct jsonfilter_out out = {NULL, 0, 0};
            char *in = malloc(len > 0 ? len : 1), err[256];
            size_t removed;

            assert_non_null(in);
            memcpy(in, docs[d], len);
            assert_int_equal(
                jsonfilter_salesforce(test_ws[0], in, len, &out, &removed, err, sizeof(err)), -1);
            for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++)
                assert_int_equal(jsonfilter_hubspot(test_ws[0], "contacts", shapes[k], in, len,
                                                    &out, &removed, err, sizeof(err)),
                                 -1);
            jsonfilter_out_free(&out);
            free(in);
            n++;
        }
    }
    printf("truncated: %zu cuts x 4 filters\n", n);
}

/* Edge cases jansson accepts: so must the filter. */
static void test_valid_edges(void **state)
{
    static const char *const good[] = {
        "[9223372036854775807, -9223372036854775808, -0, 0.0, 1e-400, -1e-99999999999]",
        "[1.7976931348623157e308, 1.7976931348623158e308, 0.17976931348623157e309]",
        "[1E2, 1e+2, 1e-2, 0e99999]",
        "[\"\\ud83d\\ude00\", \"\\uDBFF\\uDFFF\", \"\\uffff\", \"\xf4\x8f\xbf\xbf\", "
        "\"\xef\xbf\xbf\"]",
        "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\x7f\"]",
        " \t\r\n{}\n",
        "[[], {}, [[]], {\"\": {\"\": null}}]",
        "{\"attributes\":{\"type\":\"Account\"}, \"Name\": true, \"Phone\": false}",
    };
    char why[4096], big[400];

    (void)state;
    /* Long integer parts near DBL_MAX: 309 digits, below and above the overflow bound. */
    snprintf(big, sizeof(big), "[17976931348623157%0292d.5]", 0);
    json_decref(filter_ok(test_ws[0], 1, NULL, big, &(size_t){0}));
    snprintf(big, sizeof(big), "[17976931348623159%0292d.5]", 0);
    expect_refused(test_ws[0], 1, big, strlen(big), 1);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        json_error_t jerr;
        json_t *t = json_loads(good[i], 0, &jerr);
        size_t removed;

        if (t == NULL)
            fail_msg("jansson refuses %s: %s", good[i], jerr.text);
        json_decref(t);
        for (int sf = 0; sf < 2; sf++) {
            json_decref(filter_ok(test_ws[0], sf, "contacts", good[i], &removed));
            if (fuzz_check(test_ws[0], sf, "contacts", FILTER_HS_RECORDS, good[i], strlen(good[i]),
                           why, sizeof(why)) < 0)
                fail_msg("%s: %s", good[i], why);
        }
    }
}

/* Depth: a value inside 64 containers passes, inside 65 it is refused. */
static void test_depth(void **state)
{
    struct gen g = {NULL, 0, 0, 3};
    char why[4096];

    (void)state;
    for (int n = 63; n <= 66; n++) {
        for (int scalar = 0; scalar < 2; scalar++) {
            size_t removed;

            g.len = 0;
            for (int i = 0; i < n; i++)
                gen_str(&g, i % 2 ? "[" : "{\"x\":");
            if (scalar)
                gen_str(&g, "1");
            else
                gen_str(&g, "[]");
            for (int i = n - 1; i >= 0; i--)
                gen_str(&g, i % 2 ? "]" : "}");
            /* The innermost value sits at depth n (scalar) or n (empty array). */
            for (int sf = 0; sf < 2; sf++) {
                if (n <= JSONFILTER_MAX_DEPTH)
                    json_decref(filter_ok(test_ws[0], sf, "contacts", g.buf, &removed));
                else
                    expect_refused(test_ws[0], sf, g.buf, g.len, 0);
                if (fuzz_check(test_ws[0], sf, "contacts", FILTER_HS_RECORDS, g.buf, g.len, why,
                               sizeof(why)) < 0)
                    fail_msg("depth %d: %s", n, why);
            }
        }
    }
    /* Far deeper than jansson goes: refused without exhausting the stack. */
    g.len = 0;
    for (int i = 0; i < 100000; i++)
        gen_str(&g, "[");
    expect_refused(test_ws[0], 1, g.buf, g.len, 1);
    expect_refused(test_ws[0], 0, g.buf, g.len, 1);
    free(g.buf);
}

/*
 * jsonfilter_member: the span of the root's (last) member, found only in
 * valid JSON; and jsonfilter_member_value: the same verdict, and the value
 * jsonfilter_parse makes of that span.
 */
static void member_is(const char *doc, const char *key, int want, const char *value)
{
    size_t off = 0, vlen = 0;
    char err[128];
    int rc = jsonfilter_member(doc, strlen(doc), key, &off, &vlen, err, sizeof(err));
    json_t *v = (json_t *)1, *want_v;

    if (rc != want)
        fail_msg("%s: got %d (%s), want %d", doc, rc, err, want);
    if (want == 1) {
        assert_int_equal(vlen, strlen(value));
        assert_memory_equal(doc + off, value, vlen);
    }
    if (want == -1)
        assert_true(err[0] != '\0');
    err[0] = '\0';
    assert_int_equal(jsonfilter_member_value(doc, strlen(doc), key, &v, err, sizeof(err)), want);
    if (want != 1) {
        assert_null(v);
        if (want == -1)
            assert_true(err[0] != '\0');
        return;
    }
    want_v = json_loadb(value, strlen(value), JSON_DECODE_ANY, NULL);
    assert_non_null(want_v);
    assert_true(json_equal(v, want_v));
    json_decref(want_v);
    json_decref(v);
}

static void test_member(void **state)
{
    (void)state;
    member_is("{\"id\":\"2\",\"properties\":{\"a\":\"1\"},\"propertiesWithHistory\":{}}",
              "properties", 1, "{\"a\":\"1\"}");
    member_is(" { \"properties\" : [1, {\"x\":null}] } ", "properties", 1, "[1, {\"x\":null}]");
    member_is("{\"properties\":\"s\"}", "properties", 1, "\"s\"");
    /* escaped key, duplicates (the last counts, as jansson keeps it), nested ones ignored */
    member_is("{\"\\u0070roperties\":1}", "properties", 1, "1");
    member_is("{\"properties\":1,\"properties\":{\"b\":true}}", "properties", 1, "{\"b\":true}");
    member_is("{\"x\":{\"properties\":1}}", "properties", 0, NULL);
    member_is("{}", "properties", 0, NULL);
    /* invalid anywhere, even after the member, or a root that is not an object */
    member_is("{\"properties\":{},\"x\":tru}", "properties", -1, NULL);
    member_is("{\"properties\":{},\"x\":\"\\u0000\"}", "properties", -1, NULL);
    member_is("{\"properties\":{}} x", "properties", -1, NULL);
    member_is("{\"properties\":{}", "properties", -1, NULL);
    member_is("{\"properties\":01}", "properties", -1, NULL);
    member_is("[{\"properties\":{}}]", "properties", -1, NULL);
    member_is("", "properties", -1, NULL);
}

/* jsonfilter_parse_without: the tree without the named members, which are still validated. */
static void test_parse_without(void **state)
{
    static const struct {
        const char *in, *want; /* want NULL: refused */
    } rows[] = {
        {"{\"a\":1,\"h\":{\"x\":[1,{\"y\":2}]}}", "{\"a\":1}"},
        {"[{\"h\":1,\"b\":{\"h\":[true],\"c\":\"h\"}},{\"h\":null}]", "[{\"b\":{\"c\":\"h\"}},{}]"},
        {"{\"\\u0068\":[1,2],\"hh\":3,\"H\":4}", "{\"hh\":3,\"H\":4}"},
        {"{\"h\":1,\"h\":2}", "{}"},
        {"[\"h\",{\"k\":\"h\"}]", "[\"h\",{\"k\":\"h\"}]"},
        /* what is left out must still be JSON, within the depth limit */
        {"{\"a\":1,\"h\":[1,]}", NULL},
        {"{\"h\":\"\\ud800\"}", NULL},
        {"{\"h\":[tru]}", NULL},
        {"{\"h\":1e309}", NULL},
        {"{\"h\":1} x", NULL},
    };
    char err[128], deep[2 * JSONFILTER_MAX_DEPTH + 16];
    size_t n = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        json_t *got =
            jsonfilter_parse_without(rows[i].in, strlen(rows[i].in), "h", err, sizeof(err));
        json_t *want = rows[i].want != NULL ? json_loads(rows[i].want, 0, NULL) : NULL;
        if (rows[i].want == NULL && got != NULL)
            fail_msg("row %zu: took %s", i, rows[i].in);
        if (rows[i].want != NULL && (got == NULL || !json_equal(got, want)))
            fail_msg("row %zu: %s gave %s (%s)", i, rows[i].in,
                     got != NULL ? "another tree" : "nothing", err);
        json_decref(got);
        json_decref(want);
    }
    /* {"h": [[[...]]]} nested past the limit inside the skipped member */
    n += (size_t)snprintf(deep, sizeof(deep), "{\"h\":");
    for (int d = 0; d < JSONFILTER_MAX_DEPTH + 1; d++)
        deep[n++] = '[';
    for (int d = 0; d < JSONFILTER_MAX_DEPTH + 1; d++)
        deep[n++] = ']';
    deep[n++] = '}';
    assert_null(jsonfilter_parse_without(deep, n, "h", err, sizeof(err)));
    assert_non_null(strstr(err, "deep"));
}

/* jsonfilter_parse: numbers, escapes and structure as jansson makes them. */
static void test_parse(void **state)
{
    static const char *const same[] = {
        "{}",
        "[]",
        " [ 1 , -0 , 0.5 , -1.25e-3 , 1E+2 , 9223372036854775807 ] ",
        "[-9223372036854775808, 1e308, 4.9e-324, 1e-400]",
        "{\"a\":1,\"a\":{\"b\":[true,false,null]}}",
        "{\"\\u0070\\u00e9\\ud83d\\ude00\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
        "[\"caf\xc3\xa9 \xe6\x97\xa5\xf0\x9f\x98\x80\"]",
        "{\"long key long key long key long key long key long key long key long key\":\"v\"}",
        /* refused by both */
        "",
        "1",
        "\"s\"",
        "[9223372036854775808]",
        "[-9223372036854775809]",
        "[1e309]",
        "[01]",
        "[1.]",
        "[.5]",
        "[+1]",
        "[\"\\u0000\"]",
        "[\"\\ud800\"]",
        "[\"\x01\"]",
        "[\"\xc3\"]",
        "{\"a\" 1}",
        "{\"a\":1,}",
        "[1,]",
        "[1] [2]",
        "[tru]",
        "[nul]",
        "{a:1}",
        "[1e]",
    };
    char err[128];
    size_t parsed = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
        parsed += (size_t)parse_same(same[i], strlen(same[i]));
    assert_int_equal(parsed, 8);
    assert_null(jsonfilter_parse("[1", 2, err, sizeof(err)));
    assert_true(err[0] != '\0');
}

static void test_too_large(void **state)
{
    size_t len = JSONFILTER_MAX_BYTES + 1;
    char *big = malloc(len);

    (void)state;
    assert_non_null(big);
    memset(big, ' ', len);
    big[0] = '[';
    big[len - 1] = ']';
    expect_refused(test_ws[0], 0, big, len, 0);
    expect_refused(test_ws[0], 1, big, len, 0);
    free(big);
}

/* The output buffer is reused across calls, and the result does not depend on it. */
static void test_out_reuse(void **state)
{
    struct jsonfilter_out out = {NULL, 0, 0};
    const char *a = "{\"properties\":{\"phone\":\"1\",\"email\":\"a\"}}", *b = "[1]";
    size_t removed;
    char err[256];

    (void)state;
    assert_int_equal(jsonfilter_hubspot(test_ws[0], "contacts", FILTER_HS_RECORDS, a, strlen(a),
                                        &out, &removed, err, sizeof(err)),
                     0);
    assert_int_equal(removed, 1);
    assert_int_equal(jsonfilter_hubspot(test_ws[0], "contacts", FILTER_HS_RECORDS, b, strlen(b),
                                        &out, &removed, err, sizeof(err)),
                     0);
    assert_int_equal(removed, 0);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.buf, "[1]", 3);
    jsonfilter_out_free(&out);
    assert_null(out.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_cases),
        cmocka_unit_test(test_differential),
        cmocka_unit_test(test_fuzz_corpus),
        cmocka_unit_test(test_escaped_keys),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_untouched),
        cmocka_unit_test(test_hs_known_members),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_valid_edges),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_out_reuse),
        cmocka_unit_test(test_member),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_without),
    };

    return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
