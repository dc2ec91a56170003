/*
 * test_classify_hubspot.c - the HubSpot classifier against the cases in
 * tests/unit/cases/hubspot.jsonl (run from the repository root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "classify_driver.h"
#include "hubspot.h"

/* Fewer cases than this means the file was truncated or mis-read. */
#define HUBSPOT_MIN_CASES 170

static void test_hubspot_cases(void **state)
{
    size_t n = 0;
    int failures;

    (void)state;
    failures = driver_run_file("tests/unit/cases/hubspot.jsonl", hubspot_classify, &n);
    printf("hubspot classifier: %zu cases, %d failures\n", n, failures);
    assert_int_equal(failures, 0);
    assert_true(n >= HUBSPOT_MIN_CASES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hubspot_cases),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
