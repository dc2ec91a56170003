/*
 * fuzz_jsonout.c - libFuzzer target for the JSON writer of jsonout.h,
 * differential against jansson's json_dumps.
 *
 * Input layout: byte 0: bit 0 builds the value from the rest with a small
 * stack machine (below), else parses the rest with json_loadb
 * (JSON_DECODE_ANY | JSON_ALLOW_NUL); bit 1 also appends the value to a
 * buffer holding a prefix.
 * The machine, one op per byte (b % 8), operands from the next bytes:
 *   0 null/true/false (1 byte)   1 integer (8 bytes)   2 real from the bits
 *   (8 bytes; NaN and infinities become an integer)   3 string (length byte
 *   % 40, then the bytes; invalid UTF-8 becomes "")   4 array of the top
 *   n values (n = byte % 8)   5 object of the top n values, each with a key
 *   (length byte % 8, then the bytes; invalid UTF-8 is skipped)
 *   6 the top value again (a shared subtree)   7 an array around the top.
 * At the end the stack, bottom first, becomes one array (or the one value).
 * Invariants: jsonout_dumps gives the bytes of json_dumps(v, JSON_COMPACT |
 * JSON_SORT_KEYS | JSON_ENCODE_ANY), jsonout_dumps_ordered those of
 * json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY), with *len their length;
 * both refuse only a value nested deeper than JSONOUT_MAX_DEPTH; for an
 * object, jsonout_record gives the sorted bytes of v with "id" set to "",
 * and *id_at points between that member's quotes; jsonout_append after a
 * prefix leaves the prefix and adds the same bytes, and a refused append
 * leaves the buffer as it was; nothing leaks.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonout.h"

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_STACK 64
/* Values a shared subtree may add in all (repeated copies of copies grow exponentially). */
#define FUZZ_SHARED_BUDGET 4096

struct fuzz_in {
    const uint8_t *p, *end;
};

static uint8_t fuzz_byte(struct fuzz_in *in)
{
    return in->p < in->end ? *in->p++ : 0;
}

static uint64_t fuzz_u64(struct fuzz_in *in)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | fuzz_byte(in);
    return v;
}

/* The number of values in v, counting a shared subtree each time it appears. */
static size_t fuzz_weight(const json_t *v)
{
    size_t w = 1, i;
    const char *k;
    json_t *x;

    if (json_is_array(v)) {
        json_array_foreach((json_t *)v, i, x) w += fuzz_weight(x);
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, x) w += fuzz_weight(x);
    }
    return w;
}

static json_t *fuzz_push(json_t **st, size_t *n, json_t *v)
{
    if (v == NULL)
        abort();
    if (*n == FUZZ_STACK) {
        json_decref(v);
        return NULL;
    }
    st[(*n)++] = v;
    return v;
}

/* The value the stack machine builds from in (see the top). */
static json_t *fuzz_build(struct fuzz_in *in)
{
    json_t *st[FUZZ_STACK], *v;
    size_t n = 0, k, shared = 0;
    uint8_t op, b;
    char s[256];

    while (in->p < in->end) {
        op = fuzz_byte(in) % 8;
        switch (op) {
        case 0:
            b = fuzz_byte(in) % 3;
            fuzz_push(st, &n, b == 0 ? json_null() : b == 1 ? json_true() : json_false());
            break;
        case 1:
            fuzz_push(st, &n, json_integer((json_int_t)fuzz_u64(in)));
            break;
        case 2: {
            uint64_t bits = fuzz_u64(in);
            double d;
            memcpy(&d, &bits, sizeof(d));
            fuzz_push(st, &n, isfinite(d) ? json_real(d) : json_integer((json_int_t)bits));
            break;
        }
        case 3:
            k = fuzz_byte(in) % 40;
            for (size_t i = 0; i < k; i++)
                s[i] = (char)fuzz_byte(in);
            v = json_stringn(s, k);
            fuzz_push(st, &n, v != NULL ? v : json_string(""));
            break;
        case 4:
        case 5:
            k = fuzz_byte(in) % 8;
            k = k < n ? k : n;
            v = op == 4 ? json_array() : json_object();
            if (v == NULL)
                abort();
            for (size_t i = n - k; i < n; i++) {
                if (op == 4) {
                    json_array_append_new(v, st[i]);
                    continue;
                }
                size_t kl = fuzz_byte(in) % 8;
                for (size_t j = 0; j < kl; j++)
                    s[j] = (char)fuzz_byte(in);
                /* takes the reference even when it fails (a key that is not UTF-8) */
                json_object_setn_new(v, s, kl, st[i]);
            }
            n -= k;
            fuzz_push(st, &n, v);
            break;
        case 6:
            if (n > 0 && (k = fuzz_weight(st[n - 1])) <= FUZZ_SHARED_BUDGET - shared) {
                shared += k;
                fuzz_push(st, &n, json_incref(st[n - 1]));
            }
            break;
        default:
            if (n > 0) {
                v = json_array();
                if (v == NULL || json_array_append_new(v, st[n - 1]) < 0)
                    abort();
                st[n - 1] = v;
            }
            break;
        }
    }
    if (n == 1)
        return st[0];
    v = json_array();
    if (v == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(v, st[i]);
    return v;
}

static void fuzz_fail(const char *what, const char *want, const char *got)
{
    fprintf(stderr, "fuzz_jsonout: %s\n  json_dumps: %s\n  jsonout:    %s\n", what,
            want ? want : "NULL", got ? got : "NULL");
    abort();
}

/* jsonout's bytes (got, glen) against jansson's (want), where jansson may dump what is too deep. */
static void fuzz_same(const char *what, const char *want, const char *got, size_t glen, int deep)
{
    if (got == NULL && deep)
        return;
    if (deep && got != NULL)
        fuzz_fail("accepted a value nested deeper than JSONOUT_MAX_DEPTH", want, got);
    if (want == NULL || got == NULL || glen != strlen(want) || memcmp(want, got, glen) != 0)
        fuzz_fail(what, want, got);
}

static void fuzz_record(const json_t *v, int deep)
{
    struct jsonout out = {0};
    json_t *c = json_object();
    size_t id_at = 0;
    char *want;
    int rc;

    /* not json_copy: it drops what follows a NUL in a key */
    for (void *it = json_object_iter((json_t *)v); c != NULL && it != NULL;
         it = json_object_iter_next((json_t *)v, it)) {
        if (json_object_setn(c, json_object_iter_key(it), json_object_iter_key_len(it),
                             json_object_iter_value(it)) < 0)
            abort();
    }
    if (c == NULL || json_object_set_new(c, "id", json_string("")) < 0)
        abort();
    want = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    rc = jsonout_record(&out, v, &id_at);
    fuzz_same("jsonout_record", want, rc == 0 ? out.buf : NULL, out.len, deep);
    if (rc == 0 && (id_at < 6 || id_at >= out.len || memcmp(out.buf + id_at - 6, "\"id\":\"\"", 7)))
        fuzz_fail("jsonout_record: id_at is not inside \"id\":\"\"", want, out.buf);
    free(want);
    json_decref(c);
    jsonout_free(&out);
}

static void fuzz_append(const json_t *v, const char *want, int deep)
{
    struct jsonout out = {0};
    size_t wlen = want ? strlen(want) : 0;

    if (jsonout_append(&out, json_null()) < 0)
        abort();
    if (jsonout_append(&out, v) < 0) {
        if (!deep)
            fuzz_fail("jsonout_append refused", want, NULL);
        if (out.len != 4 || strcmp(out.buf, "null") != 0)
            fuzz_fail("a refused jsonout_append changed the buffer", "null", out.buf);
    } else if (out.len != 4 + wlen || memcmp(out.buf, "null", 4) != 0 ||
               memcmp(out.buf + 4, want, wlen) != 0 || out.buf[out.len] != '\0') {
        fuzz_fail("jsonout_append after a prefix", want, out.buf);
    }
    jsonout_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in;
    json_t *v;
    char *want, *got;
    size_t glen = 0;
    int deep;

    if (size == 0)
        return 0;
    in = (struct fuzz_in){data + 1, data + size};
    if (data[0] & 1)
        v = fuzz_build(&in);
    else
        v = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (v == NULL)
        return 0;
    deep = fuzz_height(v) > JSONOUT_MAX_DEPTH;

    want = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    got = jsonout_dumps(v, &glen);
    fuzz_same("jsonout_dumps", want, got, glen, deep);
    if (data[0] & 2)
        fuzz_append(v, want, deep);
    free(want);
    free(got);

    want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    got = jsonout_dumps_ordered(v, &glen);
    fuzz_same("jsonout_dumps_ordered", want, got, glen, deep);
    free(want);
    free(got);

    if (json_is_object(v))
        fuzz_record(v, deep);
    json_decref(v);
    return 0;
}
