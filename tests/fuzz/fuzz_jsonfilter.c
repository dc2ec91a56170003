/*
 * fuzz_jsonfilter.c - libFuzzer target for the streaming response filter,
 * differential against the tree filter.
 *
 * Input layout: byte 0 chooses the call: bit 0 Salesforce, bit 1 the
 * workspace (acme, or one with catch-all entries), bits 2-3 the HubSpot
 * object (contacts deals companies tickets), bits 4-5 the HubSpot answer
 * shape (records links schema records); the rest is the CRM's answer.
 * Invariants (fuzz_check): when jansson parses the answer the
 * streaming filter succeeds and its output parses to what the tree filter
 * leaves (or both refuse a too-deep answer; or the answer nests deeper than
 * the streaming filter inspects, or holds a NUL byte that jansson skips,
 * or repeats a key: the streaming filter alone refuses record data in any
 * occurrence);
 * when jansson refuses it, so does the streaming filter; no crash, no leak.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ipolicy \
 *       tests/fuzz/fuzz_jsonfilter.c policy/jsonfilter.c policy/filter.c policy/rules.c \
 *       policy/crm.c -ljansson -o build/fuzz_jsonfilter
 *   build/fuzz_jsonfilter -max_total_time=600 tests/fuzz/corpus/jsonfilter
 *
 * tests/unit/test_jsonfilter.c includes this file for fuzz_check and
 * runs the corpus through LLVMFuzzerTestOneInput.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "filter.h"
#include "jsonfilter.h"
#include "rules.h"

#include "fuzz_util.h"

/* The filter cases' workspace, and one with catch-all entries. */
static const char *const fuzz_rules[] = {
    "{\"workspace\":\"acme\",\"hubspot\":{\"schema_read\":true,\"objects\":{\"deals\":{\"read\":"
    "[\"dealname\",\"amount\",\"dealstage\",\"closedate\"]},\"contacts\":{\"read\":[\"email\","
    "\"firstname\",\"caf\\u00e9\"]},\"companies\":{\"read\":[\"name\"]},\"notes\":{\"write\":["
    "\"hs_note_body\"],\"actions\":{\"create\":true}}}},\"salesforce\":{\"objects\":{"
    "\"Opportunity\":{\"read\":[\"Name\",\"StageName\",\"Amount\",\"AccountId\"]},\"Account\":{"
    "\"read\":[\"Name\",\"Contacts\"]},\"Contact\":{\"read\":\"*\"}}}}",
    "{\"workspace\":\"star\",\"hubspot\":{\"objects\":{\"*\":{\"read\":[\"email\",\"name\"]},"
    "\"deals\":{\"read\":\"*\"}}},\"salesforce\":{\"objects\":{\"*\":{\"read\":[\"Name\"]},"
    "\"Lead\":{\"read\":[\"Email\",\"Owner\"]}}}}",
};
#define FUZZ_NRULES (sizeof(fuzz_rules) / sizeof(fuzz_rules[0]))

static struct rules_ws *fuzz_ws(size_t i)
{
    char err[512];
    struct rules_ws *ws =
        rules_ws_parse("t.json", fuzz_rules[i], strlen(fuzz_rules[i]), err, sizeof(err));

    if (ws == NULL) {
        fprintf(stderr, "fuzz_jsonfilter: rules %zu: %s\n", i, err);
        abort();
    }
    return ws;
}

/*
 * Whether in repeats a key in some object: the tree filter sees only the
 * last occurrence, the streaming filter refuses record data in any (fail
 * closed), so there it may refuse what the tree accepts.
 */
static int fuzz_has_duplicates(const char *in, size_t len)
{
    json_t *t = jsonfilter_parse_unique(in, len, NULL, 0);

    json_decref(t);
    return t == NULL;
}

/*
 * Run both filters on in. Returns 0 when they agree: jansson refuses and
 * the streaming filter fails; or the tree filter refuses (too deep) and so
 * does the streaming filter; or the streaming filter fails only because a
 * value is nested deeper than it inspects; or its output parses to what the
 * tree filter left, and it reports a removal whenever its bytes differ from
 * the input. Else -1 with why.
 */
static int fuzz_check(const struct rules_ws *ws, int salesforce, const char *object,
                      enum filter_hs_shape shape, const char *in, size_t len, char *why,
                      size_t whylen)
{
    struct jsonfilter_out out = {NULL, 0, 0};
    json_error_t jerr;
    json_t *tree = json_loadb(in, len, 0, &jerr), *got = NULL;
    size_t removed = 99, tremoved = 0;
    char err[256] = "";
    int rc, trc = 0, res = -1;

    rc = salesforce
             ? jsonfilter_salesforce(ws, in, len, &out, &removed, err, sizeof(err))
             : jsonfilter_hubspot(ws, object, shape, in, len, &out, &removed, err, sizeof(err));
    if (rc < 0 && (out.len != 0 || err[0] == '\0')) {
        snprintf(why, whylen, "failed without an error, or with output");
        goto done;
    }
    if (tree == NULL) {
        if (rc == 0)
            snprintf(why, whylen, "jansson refuses (%s), streaming accepts", jerr.text);
        else
            res = 0;
        goto done;
    }
    if (salesforce)
        trc = policy_filter_salesforce(ws, tree, &tremoved);
    else
        trc = policy_filter_hubspot(ws, object, shape, tree, &tremoved);
    if (trc < 0 || rc < 0) {
        /*
         * jansson skips one NUL byte after a number or literal (its lexer's
         * unget leaves a 0 that reads as an empty buffer); no JSON holds a
         * NUL byte, and the streaming filter refuses it.
         */
        if (rc < 0 && (trc < 0 || fuzz_height(tree) > JSONFILTER_MAX_DEPTH ||
                       memchr(in, '\0', len) != NULL || fuzz_has_duplicates(in, len)))
            res = 0;
        else
            snprintf(why, whylen, "tree %d, streaming %d (%s)", trc, rc, err);
        goto done;
    }
    got = json_loadb(out.buf, out.len, 0, &jerr);
    if (got == NULL) {
        snprintf(why, whylen, "output is not JSON: %s: %.*s", jerr.text, (int)out.len, out.buf);
        goto done;
    }
    if (!json_equal(got, tree)) {
        char *t = json_dumps(tree, JSON_COMPACT | JSON_SORT_KEYS);

        snprintf(why, whylen, "differs: streaming %.*s, tree %s", (int)out.len, out.buf,
                 t != NULL ? t : "?");
        free(t);
        goto done;
    }
    if (removed == 0 && (out.len != len || memcmp(out.buf, in, len) != 0)) {
        snprintf(why, whylen, "removed 0 but the output differs from the input");
        goto done;
    }
    if (removed > 0 && out.len == len && memcmp(out.buf, in, len) == 0) {
        snprintf(why, whylen, "removed %zu but the output is the input", removed);
        goto done;
    }
    if (tremoved > 0 && removed == 0) {
        snprintf(why, whylen, "the tree removed %zu, streaming nothing", tremoved);
        goto done;
    }
    res = 0;
done:
    json_decref(got);
    json_decref(tree);
    jsonfilter_out_free(&out);
    return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fuzz_objects[] = {"contacts", "deals", "companies", "tickets"};
static const enum filter_hs_shape fuzz_shapes[] = {FILTER_HS_RECORDS, FILTER_HS_LINKS,
                                                   FILTER_HS_SCHEMA, FILTER_HS_RECORDS};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct rules_ws *ws[FUZZ_NRULES];
    char why[4096];

    if (size == 0)
        return 0;
    if (ws[0] == NULL) {
        for (size_t i = 0; i < FUZZ_NRULES; i++)
            ws[i] = fuzz_ws(i);
    }
    if (fuzz_check(ws[(data[0] >> 1) & 1], data[0] & 1, fuzz_objects[(data[0] >> 2) & 3],
                   fuzz_shapes[(data[0] >> 4) & 3], (const char *)data + 1, size - 1, why,
                   sizeof(why)) < 0) {
        fprintf(stderr, "fuzz_jsonfilter: %s\n", why);
        abort();
    }
    return 0;
}
