/*
 * test_http.c - header pre-scan, header lists and hop-by-hop rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"

static const struct prescan_case {
    const char *name;
    const char *head;
    enum http_prescan_result want;
    size_t end;      /* for DONE */
    const char *why; /* substring, for ERROR */
} prescan_cases[] = {
    {"simple GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_PRESCAN_DONE, 27, NULL},
    {"no headers (1.0)", "GET / HTTP/1.0\r\n\r\n", HTTP_PRESCAN_DONE, 18, NULL},
    {"body bytes after head are not scanned", "POST / HTTP/1.1\r\nHost: x\r\n\r\n\rraw\n",
     HTTP_PRESCAN_DONE, 28, NULL},
    {"incomplete head", "GET / HTTP/1.1\r\nHost: x\r\n", HTTP_PRESCAN_MORE, 0, NULL},
    {"incomplete, ends in CR", "GET / HTTP/1.1\r", HTTP_PRESCAN_MORE, 0, NULL},
    {"obs-fold with SP", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", HTTP_PRESCAN_ERROR, 0, "folding"},
    {"obs-fold with HTAB", "GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", HTTP_PRESCAN_ERROR, 0,
     "folding"},
    {"obs-fold hiding Content-Length", "GET / HTTP/1.1\r\nX: y\r\n Content-Length: 3\r\n\r\n",
     HTTP_PRESCAN_ERROR, 0, "folding"},
    {"whitespace before request line", " GET / HTTP/1.1\r\n\r\n", HTTP_PRESCAN_ERROR, 0,
     "request line"},
    {"bare CR inside a value", "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", HTTP_PRESCAN_ERROR, 0,
     "bare CR"},
    {"bare CR ends the head (CVE-2023-30589)", "GET / HTTP/1.1\r\nHost: x\r\n\rGET /x HTTP/1.1",
     HTTP_PRESCAN_ERROR, 0, "bare CR"},
    {"bare LF line ending", "GET / HTTP/1.1\nHost: x\r\n\r\n", HTTP_PRESCAN_ERROR, 0, "bare LF"},
    {"bare LF empty line", "GET / HTTP/1.1\r\nHost: x\r\n\n", HTTP_PRESCAN_ERROR, 0, "bare LF"},
    {"empty line first (a split CR, LF)", "\r\nGET / HTTP/1.1\r\n\r\n", HTTP_PRESCAN_ERROR, 0,
     "empty request line"},
};

static void test_prescan_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(prescan_cases) / sizeof(prescan_cases[0]); i++) {
        const struct prescan_case *tc = &prescan_cases[i];
        struct http_prescan ps;
        const char *why = NULL;
        size_t end = 0;
        enum http_prescan_result r;

        http_prescan_init(&ps);
        r = http_prescan_run(&ps, tc->head, strlen(tc->head), &end, &why);
        if (r != tc->want)
            fail_msg("case \"%s\": got %d, want %d", tc->name, (int)r, (int)tc->want);
        if (r == HTTP_PRESCAN_DONE && end != tc->end)
            fail_msg("case \"%s\": end %zu, want %zu", tc->name, end, tc->end);
        if (r == HTTP_PRESCAN_ERROR && strstr(why, tc->why) == NULL)
            fail_msg("case \"%s\": reason \"%s\" lacks \"%s\"", tc->name, why, tc->why);
    }
}

/* Fed one byte at a time, the incremental scan must agree with one pass. */
static void test_prescan_incremental(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(prescan_cases) / sizeof(prescan_cases[0]); i++) {
        const struct prescan_case *tc = &prescan_cases[i];
        size_t len = strlen(tc->head), end = 0;
        struct http_prescan ps;
        const char *why = NULL;
        enum http_prescan_result r = HTTP_PRESCAN_MORE;

        http_prescan_init(&ps);
        for (size_t n = 1; n <= len && r == HTTP_PRESCAN_MORE; n++)
            r = http_prescan_run(&ps, tc->head, n, &end, &why);
        if (r != tc->want)
            fail_msg("case \"%s\" (bytewise): got %d, want %d", tc->name, (int)r, (int)tc->want);
        if (r == HTTP_PRESCAN_DONE)
            assert_int_equal(end, tc->end);
    }
}

static void test_fields_spans(void **state)
{
    struct http_fields fs = {0};
    size_t n;
    const char *v;

    (void)state;
    /* llhttp delivers names and values in pieces across reads */
    assert_int_equal(http_fields_add(&fs, "Ho", 2, "", 0), 0);
    assert_int_equal(http_fields_append_name(&fs, "st", 2), 0);
    assert_int_equal(http_fields_append_value(&fs, "exa", 3), 0);
    assert_int_equal(http_fields_append_value(&fs, "mple ", 5), 0);
    assert_int_equal(http_fields_append_name(&fs, "x", 1), -1); /* value already started */
    assert_int_equal(http_fields_add(&fs, "Accept", 6, "  */*\t", 6), 0);
    http_fields_trim(&fs);
    assert_int_equal(http_fields_find(&fs, "HOST", 0), 0);
    v = http_field_value(&fs, 0, &n);
    assert_int_equal(n, 7);
    assert_memory_equal(v, "example", 7);
    v = http_field_value(&fs, 1, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(v, "*/*", 3);
    assert_int_equal(http_fields_find(&fs, "accept-encoding", 0), -1);
    assert_int_equal(http_fields_count(&fs, "host"), 1);
    /* decimal values: 0, a count, the largest id */
    assert_int_equal(http_fields_add_u64(&fs, "X-A", 3, 0), 0);
    assert_int_equal(http_fields_add_u64(&fs, "X-B", 3, 42), 0);
    assert_int_equal(http_fields_add_u64(&fs, "X-C", 3, UINT64_MAX), 0);
    v = http_field_value(&fs, 2, &n);
    assert_int_equal(n, 1);
    assert_memory_equal(v, "0", 1);
    v = http_field_value(&fs, 3, &n);
    assert_int_equal(n, 2);
    assert_memory_equal(v, "42", 2);
    v = http_field_value(&fs, 4, &n);
    assert_int_equal(n, 20);
    assert_memory_equal(v, "18446744073709551615", 20);
    http_fields_reset(&fs);
    assert_int_equal(fs.n, 0);
    http_fields_free(&fs);
}

static void test_hop_by_hop(void **state)
{
    struct http_fields fs = {0};
    static const struct {
        const char *name;
        int hop;
    } cases[] = {
        {"Connection", 1},       {"keep-alive", 1},
        {"Proxy-Connection", 1}, {"TE", 1},
        {"Trailer", 1},          {"Transfer-Encoding", 1},
        {"Upgrade", 1},          {"Proxy-Authorization", 1},
        {"X-Secret-Hop", 1},     {"x-other-hop", 1},
        {"Authorization", 0},    {"Content-Type", 0},
        {"X-Secret", 0},
    };

    (void)state;
    assert_int_equal(http_fields_add(&fs, "Connection", 10, "keep-alive, X-Secret-Hop", 24), 0);
    assert_int_equal(http_fields_add(&fs, "Connection", 10, "x-other-hop", 11), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = http_is_hop_by_hop(&fs, cases[i].name, strlen(cases[i].name));
        if (got != cases[i].hop)
            fail_msg("%s: hop-by-hop %d, want %d", cases[i].name, got, cases[i].hop);
    }
    http_fields_free(&fs);
}

static void test_list_has(void **state)
{
    (void)state;
    assert_true(http_list_has("gzip, chunked", 13, "chunked"));
    assert_true(http_list_has(" Keep-Alive ,close", 18, "close"));
    assert_false(http_list_has("chunkedx", 8, "chunked"));
    assert_false(http_list_has("", 0, "close"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prescan_table), cmocka_unit_test(test_prescan_incremental),
        cmocka_unit_test(test_fields_spans),  cmocka_unit_test(test_hop_by_hop),
        cmocka_unit_test(test_list_has),
    };
    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
