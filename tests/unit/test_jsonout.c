/*
 * Unit tests for policy/jsonout.c: every value of a corpus (escapes, control characters,
 * non-ASCII, keys that prefix each other, a key with a NUL, reals, deep nesting) comes out
 * byte for byte as jansson's json_dumps(JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
 * writes it, and in insertion order as json_dumps(JSON_COMPACT | JSON_ENCODE_ANY); a
 * record's "id" placeholder sits in its sorted place and takes any id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../policy/jsonout.c"

/* Both orders: sorted keys, and insertion order (jsonout_dumps_ordered). */
static void same_as_jansson(const json_t *v)
{
    for (int sorted = 0; sorted < 2; sorted++) {
        size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | (sorted ? JSON_SORT_KEYS : 0);
        char *want = json_dumps(v, flags);
        size_t len = 0;
        char *got = sorted ? jsonout_dumps(v, &len) : jsonout_dumps_ordered(v, &len);

        assert_non_null(want);
        assert_non_null(got);
        assert_string_equal(got, want);
        assert_int_equal(len, strlen(want));
        free(want);
        free(got);
    }
}

static void test_corpus(void **state)
{
    static const char *const docs[] = {
        "null",
        "true",
        "false",
        "0",
        "-9223372036854775808",
        "9223372036854775807",
        "1.5",
        "-0.0",
        "1e300",
        "0.1",
        "\"\"",
        "\"plain ascii\"",
        "\"quote \\\" backslash \\\\ slash / tab \\t nl \\n cr \\r bs \\b ff \\f\"",
        "\"ctl \\u0001 \\u001f \\u007f del \\u0000 nul\"",
        "\"caf\\u00e9 \\u2028 \\ud83d\\ude00 \xe6\x97\xa5\xe6\x9c\xac\"",
        "[]",
        "{}",
        "[1,\"a\",null,[],{},[[[]]]]",
        "{\"b\":1,\"a\":2,\"ab\":3,\"a\\u0001\":4,\"\":5,\"B\":6,\"\\u00e9\":7}",
        "{\"properties\":{\"firstname\":\"Ada\",\"email\":\"a@example.com\"},\"id\":\"2\","
        "\"archived\":false,\"propertiesWithHistory\":{\"x\":[{\"value\":\"1\",\"n\":null}]}}",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_error_t e;
        json_t *v = json_loads(docs[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        if (v == NULL)
            fail_msg("doc %zu: %s", i, e.text);
        same_as_jansson(v);
        json_decref(v);
    }
}

static void test_many_keys_and_depth(void **state)
{
    json_t *o = json_object(), *deep = json_array(), *cur = deep;
    char k[32];

    (void)state;
    /* more members than sorted on the stack, inserted in reverse */
    for (int i = 200; i > 0; i--) {
        snprintf(k, sizeof(k), "key%03d", i);
        json_object_set_new(o, k, json_integer(i));
    }
    same_as_jansson(o);
    /* a key with a NUL (jansson's setn; its parser refuses them) sorts after its prefix */
    json_object_setn_new(o, "key001\0x", 8, json_true());
    same_as_jansson(o);
    for (int i = 0; i < 100; i++) {
        json_t *n = json_array();
        json_array_append_new(cur, n);
        cur = n;
    }
    json_object_set_new(o, "deep", deep);
    same_as_jansson(o);
    json_decref(o);
}

/*
 * Strings copied a word at a time: every length up to 40 with one byte that
 * is escaped (each kind) or non-ASCII at every position, and two escapes in
 * one word, as jansson writes them; also as object keys.
 */
static void test_string_words(void **state)
{
    static const char specials[] = {'"', '\\', '\n', '\x01', '\x1f', '\x7f', '/', '\xc3'};

    (void)state;
    for (size_t len = 0; len <= 40; len++) {
        for (size_t pos = 0; pos <= len; pos++) {
            for (size_t k = 0; k < sizeof(specials); k++) {
                char buf[48];
                json_t *v, *o;
                memset(buf, 'a' + (int)(len % 26), len);
                if (pos < len)
                    buf[pos] = specials[k];
                if (specials[k] == '\xc3' && pos + 1 < len)
                    buf[pos + 1] = '\xa9'; /* a whole UTF-8 sequence */
                else if (specials[k] == '\xc3' && pos < len)
                    buf[pos] = 'z';
                if (pos + 3 < len)
                    buf[pos + 3] = '\t';
                v = json_stringn(buf, len);
                assert_non_null(v);
                same_as_jansson(v);
                o = json_object();
                json_object_setn(o, buf, len, v);
                same_as_jansson(o);
                json_decref(o);
                json_decref(v);
            }
        }
    }
}

static void test_too_deep(void **state)
{
    json_t *root = json_array(), *cur = root;
    struct jsonout out = {0};

    (void)state;
    for (int i = 0; i < JSONOUT_MAX_DEPTH + 5; i++) {
        json_t *n = json_array();
        json_array_append_new(cur, n);
        cur = n;
    }
    assert_int_equal(jsonout_append(&out, root), -1);
    assert_int_equal(out.len, 0);
    jsonout_free(&out);
    json_decref(root);
}

static void test_record_id(void **state)
{
    json_t *rec = json_pack("{s:s, s:s, s:[{s:s}], s:n}", "workspace", "acme", "verb", "update",
                            "fields", "name", "id", "call");
    struct jsonout out = {0};
    size_t at = 0;
    char *want, buf[512];

    (void)state;
    assert_int_equal(jsonout_record(&out, rec, &at), 0);
    assert_true(at > 0 && at < out.len);
    assert_memory_equal(out.buf + at - 6, "\"id\":\"\"", 7);
    /* the writer's splice: the same bytes as a record that carried the id */
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)at, out.buf, "123456789", out.buf + at);
    json_object_set_new(rec, "id", json_string("123456789"));
    want = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(buf, want);
    free(want);
    /* an id already there is replaced by the placeholder, not written twice */
    out.len = 0;
    assert_int_equal(jsonout_record(&out, rec, &at), 0);
    assert_null(strstr(out.buf, "123456789"));
    assert_memory_equal(out.buf + at - 6, "\"id\":\"\"", 7);
    /* not an object */
    out.len = 0;
    assert_int_equal(jsonout_record(&out,
                                    json_array_get(json_object_get(rec, "fields"), 0) != NULL
                                        ? json_object_get(rec, "fields")
                                        : rec,
                                    &at),
                     -1);
    jsonout_free(&out);
    json_decref(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),       cmocka_unit_test(test_many_keys_and_depth),
        cmocka_unit_test(test_string_words), cmocka_unit_test(test_too_deep),
        cmocka_unit_test(test_record_id),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
