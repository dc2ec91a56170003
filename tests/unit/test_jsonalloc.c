/*
 * test_jsonalloc.c - jansson's per-thread free lists (proxy/jsonalloc.c): a
 * freed block is handed out again for its size class and no larger one, a
 * class keeps at most JSONALLOC_PER_CLASS blocks, large sizes and blocks
 * malloc'd elsewhere work, free() releases what jansson allocated through
 * it, and jansson trees built and freed through it stay intact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../proxy/jsonalloc.c"

static void test_classes(void **state)
{
    void *a, *b, *big, *kept[JSONALLOC_PER_CLASS + 8];

    (void)state;
    assert_int_equal(pthread_key_create(&jsonalloc_key, jsonalloc_thread_exit), 0);
    a = jsonalloc_malloc(30); /* class 1: 40 bytes */
    assert_non_null(a);
    assert_true(malloc_usable_size(a) >= 40);
    memset(a, 0x5a, 40);
    jsonalloc_free(a);
    assert_int_equal(jsonalloc_tls.count[1], 1);
    /* a smaller size's class does not take it; its own class does, last freed first */
    b = jsonalloc_malloc(10);
    assert_ptr_not_equal(b, a);
    assert_ptr_equal(jsonalloc_malloc(40), a);
    assert_int_equal(jsonalloc_tls.count[1], 0);
    jsonalloc_free(a);
    jsonalloc_free(b);
    /* a block malloc'd elsewhere serves the largest class it holds */
    a = malloc(100);
    {
        size_t k = (malloc_usable_size(a) - JSONALLOC_MIN) / JSONALLOC_STEP;
        jsonalloc_free(a);
        assert_int_equal(jsonalloc_tls.count[k], 1);
        assert_ptr_equal(jsonalloc_malloc(JSONALLOC_MIN + k * JSONALLOC_STEP), a);
    }
    free(a); /* plain free of a block it handed out */
    /* beyond the classes: plain malloc and free */
    big = jsonalloc_malloc(JSONALLOC_MIN + JSONALLOC_CLASSES * JSONALLOC_STEP + 1);
    assert_non_null(big);
    jsonalloc_free(big);
    assert_int_equal(jsonalloc_tls.count[JSONALLOC_CLASSES - 1], 0);
    jsonalloc_free(NULL);
    /* at most JSONALLOC_PER_CLASS kept per class; the rest go back to malloc */
    for (size_t i = 0; i < JSONALLOC_PER_CLASS + 8; i++)
        kept[i] = jsonalloc_malloc(200);
    for (size_t i = 0; i < JSONALLOC_PER_CLASS + 8; i++)
        jsonalloc_free(kept[i]);
    assert_int_equal(
        jsonalloc_tls.count[(200 - JSONALLOC_MIN + JSONALLOC_STEP - 1) / JSONALLOC_STEP],
        JSONALLOC_PER_CLASS);
    jsonalloc_thread_exit(&jsonalloc_tls);
    for (size_t k = 0; k < JSONALLOC_CLASSES; k++) {
        assert_null(jsonalloc_tls.head[k]);
        assert_int_equal(jsonalloc_tls.count[k], 0);
    }
    pthread_key_delete(jsonalloc_key);
}

/* jansson through it: trees built, dumped (freed with free()) and dropped, many times over. */
static void test_jansson(void **state)
{
    (void)state;
    if (!jsonalloc_install())
        skip(); /* AddressSanitizer build: it stands aside */
    for (int round = 0; round < 200; round++) {
        json_t *o = json_pack("{s:s, s:i, s:[s, s, {s:b}]}", "name", "Ada Bench", "n", round, "h",
                              "2026-12-07T19:55:43.271Z", "x", "deep", round & 1);
        char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        json_t *back = json_loads(s, 0, NULL);
        assert_non_null(s);
        assert_true(json_equal(o, back));
        free(s);
        json_decref(back);
        json_decref(o);
    }
    json_set_alloc_funcs(malloc, free);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_jansson),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
