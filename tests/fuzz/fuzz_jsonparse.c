/*
 * fuzz_jsonparse.c - libFuzzer target for jsonfilter_parse and
 * jsonfilter_member, differential against jansson's json_loadb(.., 0, ..).
 *
 * Input layout: byte 0 chooses the member jsonfilter_member looks for
 * (b % 4 into "properties" "a" "caf\u00e9" ""); the rest is the JSON text.
 * Invariants:
 *   - jsonfilter_parse accepts exactly what json_loadb accepts, and then the
 *     trees are json_equal (duplicate keys: both keep the last), their
 *     members in the same order (synth's answers are dumped in it); the only
 *     allowed differences are a tree nested deeper than
 *     JSONFILTER_MAX_DEPTH, and an input holding a NUL byte (jansson skips
 *     one after a number or literal; no JSON holds one), which
 *     jsonfilter_parse refuses and jansson may accept;
 *   - jsonfilter_parse_unique accepts exactly what json_loadb(..,
 *     JSON_REJECT_DUPLICATES, ..) accepts (the same excuses), to an equal tree;
 *   - a refusal comes with an error text;
 *   - jsonfilter_member refuses what jsonfilter_parse refuses or what has
 *     no object root; otherwise it finds the member exactly when jansson's
 *     tree has it, and its span parses (JSON_DECODE_ANY) to jansson's value;
 *   - jsonfilter_member_value gives jsonfilter_member's verdict, and its
 *     value is jansson's;
 *   - no crash, no leak, no undefined behaviour.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ipolicy \
 *       tests/fuzz/fuzz_jsonparse.c policy/jsonfilter.c policy/filter.c policy/rules.c \
 *       policy/crm.c -ljansson -o build-fuzz/fuzz_jsonparse
 *   build-fuzz/fuzz_jsonparse -dict=tests/fuzz/jsonparse.dict tests/fuzz/corpus/jsonparse
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonfilter.h"

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *fuzz_show(const json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;

    return s ? s : strdup("NULL");
}

/* jansson may accept what jsonfilter refuses only for these reasons. */
static int fuzz_excused(const json_t *tree, const char *in, size_t len)
{
    return fuzz_height(tree) > JSONFILTER_MAX_DEPTH || memchr(in, '\0', len) != NULL;
}

static int fuzz_check_member(const char *in, size_t len, const char *key, const json_t *tree,
                             int parsed, char *why, size_t whylen)
{
    size_t off = 0, vlen = 0;
    char err[256] = "";
    int rc = jsonfilter_member(in, len, key, &off, &vlen, err, sizeof(err));
    json_t *want, *got, *value = NULL;
    int res = -1, vrc = jsonfilter_member_value(in, len, key, &value, NULL, 0);

    if (vrc != rc || (vrc != 1) != (value == NULL) ||
        (vrc == 1 && (want = json_object_get(tree, key)) != NULL && !json_equal(value, want))) {
        snprintf(why, whylen, "member_value: %d where member says %d, or another value", vrc, rc);
        json_decref(value);
        return -1;
    }
    json_decref(value);

    if (rc < 0) {
        if (err[0] == '\0')
            snprintf(why, whylen, "member: refused without an error");
        else if (tree == NULL || !json_is_object(tree) || !parsed)
            res = 0;
        else
            snprintf(why, whylen, "member: refused (%s) what jansson and the parser accept", err);
        return res;
    }
    if (!parsed || !json_is_object(tree)) {
        snprintf(why, whylen, "member: answered %d where the parser refuses or no object root", rc);
        return -1;
    }
    want = json_object_get(tree, key);
    if (rc == 0) {
        if (want != NULL)
            snprintf(why, whylen, "member: \"%s\" not found, jansson has it", key);
        return want == NULL ? 0 : -1;
    }
    if (want == NULL || off > len || vlen > len - off) {
        snprintf(why, whylen, "member: found \"%s\" at %zu+%zu, jansson %s", key, off, vlen,
                 want ? "has it" : "does not");
        return -1;
    }
    got = json_loadb(in + off, vlen, JSON_DECODE_ANY, NULL);
    if (got == NULL || !json_equal(got, want)) {
        snprintf(why, whylen, "member: span %.*s is not jansson's value", (int)vlen, in + off);
        json_decref(got);
        return -1;
    }
    json_decref(got);
    return 0;
}

/* jsonfilter_parse_unique against json_loadb(.., JSON_REJECT_DUPLICATES, ..): the same verdict. */
static int fuzz_check_unique(const char *in, size_t len, char *why, size_t whylen)
{
    json_t *tree = json_loadb(in, len, JSON_REJECT_DUPLICATES, NULL);
    char err[256] = "";
    json_t *got = jsonfilter_parse_unique(in, len, err, sizeof(err));
    int res = -1;

    if (got == NULL && err[0] == '\0')
        snprintf(why, whylen, "unique: refused without an error");
    else if (tree == NULL && got != NULL)
        snprintf(why, whylen, "unique: jansson refuses, jsonfilter_parse_unique accepts");
    else if (tree != NULL && got == NULL && !fuzz_excused(tree, in, len))
        snprintf(why, whylen, "unique: jansson accepts, jsonfilter_parse_unique refuses: %s", err);
    else if (tree != NULL && got != NULL && !json_equal(tree, got))
        snprintf(why, whylen, "unique: the trees differ");
    else
        res = 0;
    json_decref(got);
    json_decref(tree);
    return res;
}

static int fuzz_check(const char *in, size_t len, const char *key, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *tree = json_loadb(in, len, 0, &jerr);
    char err[256] = "";
    json_t *got = jsonfilter_parse(in, len, err, sizeof(err));
    int res = -1;

    if (got == NULL && err[0] == '\0') {
        snprintf(why, whylen, "parse: refused without an error");
        goto done;
    }
    if (tree == NULL && got != NULL) {
        char *s = fuzz_show(got);
        snprintf(why, whylen, "parse: jansson refuses (%s), jsonfilter_parse gives %s", jerr.text,
                 s);
        free(s);
        goto done;
    }
    if (tree != NULL && got == NULL && !fuzz_excused(tree, in, len)) {
        snprintf(why, whylen, "parse: jansson accepts, jsonfilter_parse refuses: %s", err);
        goto done;
    }
    if (tree != NULL && got != NULL && !json_equal(tree, got)) {
        char *a = fuzz_show(tree), *b = fuzz_show(got);
        snprintf(why, whylen, "parse: differs: jansson %s, jsonfilter_parse %s", a, b);
        free(a);
        free(b);
        goto done;
    }
    if (tree != NULL && got != NULL) {
        /* and the members in the same order (what an ordered dump, as synth's answers are
         * written, sees): both insert in document order, a duplicate where it first stood */
        char *a = json_dumps(tree, JSON_COMPACT | JSON_ENCODE_ANY);
        char *b = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        int same = a != NULL && b != NULL && strcmp(a, b) == 0;
        if (!same)
            snprintf(why, whylen,
                     "parse: members in another order: jansson %.200s, "
                     "jsonfilter_parse %.200s",
                     a ? a : "?", b ? b : "?");
        free(a);
        free(b);
        if (!same)
            goto done;
    }
    if (fuzz_check_unique(in, len, why, whylen) < 0)
        goto done;
    res = fuzz_check_member(in, len, key, tree, got != NULL, why, whylen);
done:
    json_decref(got);
    json_decref(tree);
    return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"properties", "a", "caf\xc3\xa9", ""};
    char why[4096];

    if (size == 0)
        return 0;
    if (fuzz_check((const char *)data + 1, size - 1, keys[data[0] % 4], why, sizeof(why)) < 0) {
        fprintf(stderr, "fuzz_jsonparse: %s\n", why);
        abort();
    }
    return 0;
}
