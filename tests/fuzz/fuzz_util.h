/*
 * fuzz_util.h - helpers the libFuzzer targets share (static: each target is
 * one translation unit).
 */
#ifndef CRMGATE_FUZZ_UTIL_H
#define CRMGATE_FUZZ_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* The height of v: a scalar is 0, a container one more than its deepest child. */
static inline int fuzz_height(const json_t *v)
{
    int h = 0, c;
    size_t i;
    const char *k;
    json_t *x;

    if (json_is_array(v)) {
        json_array_foreach((json_t *)v, i, x)
        {
            c = fuzz_height(x) + 1;
            h = c > h ? c : h;
        }
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, x)
        {
            c = fuzz_height(x) + 1;
            h = c > h ? c : h;
        }
    }
    return h;
}

/* p[0..n) as a new NUL-terminated string; aborts when out of memory. */
static inline char *fuzz_dup(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s == NULL)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* A request's raw parts from the fuzz input "path \n query \n body" (missing parts empty). */
struct fuzz_parts {
    char *path, *query;
    char *body; /* exactly body_len bytes (no terminator), so ASan catches a read past it */
    size_t body_len;
};

static inline void fuzz_parts_split(const uint8_t *p, const uint8_t *end, struct fuzz_parts *out)
{
    const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));

    out->path = fuzz_dup(p, (size_t)((nl ? nl : end) - p));
    p = nl ? nl + 1 : end;
    nl = memchr(p, '\n', (size_t)(end - p));
    out->query = fuzz_dup(p, (size_t)((nl ? nl : end) - p));
    p = nl ? nl + 1 : end;
    out->body_len = (size_t)(end - p);
    out->body = malloc(out->body_len ? out->body_len : 1);
    if (out->body == NULL)
        abort();
    memcpy(out->body, p, out->body_len);
}

static inline void fuzz_parts_free(struct fuzz_parts *parts)
{
    free(parts->path);
    free(parts->query);
    free(parts->body);
}

#endif
