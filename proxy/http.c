/*
 * http.c - header lists, the header-block pre-scan, hop-by-hop rules.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../policy/crm.h"
#include "http.h"

void http_fields_free(struct http_fields *fs)
{
    free(fs->buf);
    fs->buf = NULL;
    free(fs->f);
    fs->f = NULL;
    fs->len = fs->cap = fs->n = fs->fcap = 0;
}

int http_fields_copy(struct http_fields *dst, const struct http_fields *src)
{
    for (size_t k = 0; k < src->n; k++) {
        size_t nl, vl;
        const char *n = http_field_name(src, k, &nl);
        const char *v = http_field_value(src, k, &vl);
        if (http_fields_add(dst, n, nl, v, vl) < 0)
            return -1;
    }
    return 0;
}

void http_fields_cleanse(struct http_fields *fs)
{
    if (fs->buf != NULL) {
        volatile char *p = fs->buf;
        for (size_t i = 0; i < fs->cap; i++)
            p[i] = 0;
    }
    http_fields_free(fs);
}

void http_fields_reset(struct http_fields *fs)
{
    fs->len = 0;
    fs->n = 0;
}

static int http_fields_reserve(struct http_fields *fs, size_t more)
{
    size_t cap = fs->cap ? fs->cap : 512;
    char *nb;

    if (more > UINT32_MAX - fs->len)
        return -1;
    if (fs->len + more <= fs->cap)
        return 0;
    while (cap < fs->len + more)
        cap *= 2;
    nb = realloc(fs->buf, cap);
    if (nb == NULL)
        return -1;
    fs->buf = nb;
    fs->cap = cap;
    return 0;
}

int http_fields_add(struct http_fields *fs, const char *name, size_t nlen, const char *value,
                    size_t vlen)
{
    struct http_field *f;

    if (fs->n == fs->fcap) {
        size_t cap = fs->fcap ? fs->fcap * 2 : 16;
        struct http_field *nf = realloc(fs->f, cap * sizeof(*nf));
        if (nf == NULL)
            return -1;
        fs->f = nf;
        fs->fcap = cap;
    }
    if (http_fields_reserve(fs, nlen + vlen) < 0)
        return -1;
    f = &fs->f[fs->n++];
    f->name = (uint32_t)fs->len;
    f->nlen = (uint32_t)nlen;
    memcpy(fs->buf + fs->len, name, nlen);
    fs->len += nlen;
    f->value = (uint32_t)fs->len;
    f->vlen = (uint32_t)vlen;
    if (vlen > 0)
        memcpy(fs->buf + fs->len, value, vlen);
    fs->len += vlen;
    return 0;
}

int http_fields_add_u64(struct http_fields *fs, const char *name, size_t nlen, uint64_t v)
{
    char digits[CRM_DEC_MAX];
    size_t n;
    const char *p = crm_dec_u64(v, digits, &n);

    return http_fields_add(fs, name, nlen, p, n);
}

int http_fields_append_value(struct http_fields *fs, const char *p, size_t n)
{
    struct http_field *f;

    if (fs->n == 0)
        return -1;
    f = &fs->f[fs->n - 1];
    /* The value is always the last span in buf, so it can grow in place. */
    if (http_fields_reserve(fs, n) < 0)
        return -1;
    memcpy(fs->buf + fs->len, p, n);
    fs->len += n;
    f->vlen += (uint32_t)n;
    return 0;
}

int http_fields_append_name(struct http_fields *fs, const char *p, size_t n)
{
    struct http_field *f;

    if (fs->n == 0)
        return -1;
    f = &fs->f[fs->n - 1];
    if (f->vlen != 0) /* names only grow before their value starts */
        return -1;
    if (http_fields_reserve(fs, n) < 0)
        return -1;
    memcpy(fs->buf + fs->len, p, n);
    fs->len += n;
    f->nlen += (uint32_t)n;
    f->value = (uint32_t)fs->len;
    return 0;
}

const char *http_field_name(const struct http_fields *fs, size_t i, size_t *len)
{
    *len = fs->f[i].nlen;
    return fs->buf + fs->f[i].name;
}

const char *http_field_value(const struct http_fields *fs, size_t i, size_t *len)
{
    *len = fs->f[i].vlen;
    return fs->buf + fs->f[i].value;
}

int http_name_eq(const char *name, size_t nlen, const char *want)
{
    return strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
}

long http_fields_find(const struct http_fields *fs, const char *name, size_t from)
{
    for (size_t i = from; i < fs->n; i++) {
        if (http_name_eq(fs->buf + fs->f[i].name, fs->f[i].nlen, name))
            return (long)i;
    }
    return -1;
}

size_t http_fields_count(const struct http_fields *fs, const char *name)
{
    size_t n = 0;
    long i = -1;

    while ((i = http_fields_find(fs, name, (size_t)(i + 1))) >= 0)
        n++;
    return n;
}

void http_fields_trim(struct http_fields *fs)
{
    for (size_t i = 0; i < fs->n; i++) {
        struct http_field *f = &fs->f[i];
        while (f->vlen > 0 && (fs->buf[f->value] == ' ' || fs->buf[f->value] == '\t')) {
            f->value++;
            f->vlen--;
        }
        while (f->vlen > 0 &&
               (fs->buf[f->value + f->vlen - 1] == ' ' || fs->buf[f->value + f->vlen - 1] == '\t'))
            f->vlen--;
    }
}

int http_list_has(const char *value, size_t vlen, const char *token)
{
    size_t tl = strlen(token), i = 0;

    while (i < vlen) {
        size_t start, end;
        while (i < vlen && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        start = i;
        while (i < vlen && value[i] != ',')
            i++;
        end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end - start == tl && strncasecmp(value + start, token, tl) == 0)
            return 1;
    }
    return 0;
}

int http_is_hop_by_hop(const struct http_fields *fs, const char *name, size_t nlen)
{
    static const char *const fixed[] = {"connection",
                                        "keep-alive",
                                        "proxy-connection",
                                        "proxy-authenticate",
                                        "proxy-authorization",
                                        "te",
                                        "trailer",
                                        "transfer-encoding",
                                        "upgrade",
                                        NULL};
    char tok[128];
    long i = -1;

    for (size_t k = 0; fixed[k] != NULL; k++) {
        if (http_name_eq(name, nlen, fixed[k]))
            return 1;
    }
    if (nlen >= sizeof(tok))
        return 0;
    memcpy(tok, name, nlen);
    tok[nlen] = '\0';
    while ((i = http_fields_find(fs, "connection", (size_t)(i + 1))) >= 0) {
        size_t vlen;
        const char *v = http_field_value(fs, (size_t)i, &vlen);
        if (http_list_has(v, vlen, tok))
            return 1;
    }
    return 0;
}

enum { PS_BOL, PS_LINE, PS_CR };

void http_prescan_init(struct http_prescan *ps)
{
    ps->pos = 0;
    ps->state = PS_BOL;
    ps->line_empty = 1;
}

enum http_prescan_result http_prescan_run(struct http_prescan *ps, const char *buf, size_t len,
                                          size_t *end, const char **why)
{
    for (; ps->pos < len; ps->pos++) {
        char ch = buf[ps->pos];

        switch (ps->state) {
        case PS_BOL:
            if (ch == ' ' || ch == '\t') {
                *why = ps->pos == 0 ? "whitespace before the request line"
                                    : "obsolete line folding in a header";
                return HTTP_PRESCAN_ERROR;
            }
            if (ch == '\r') {
                ps->state = PS_CR;
                ps->line_empty = 1;
            } else if (ch == '\n') {
                *why = "bare LF line ending";
                return HTTP_PRESCAN_ERROR;
            } else {
                ps->state = PS_LINE;
                ps->line_empty = 0;
            }
            break;
        case PS_LINE:
            if (ch == '\r') {
                ps->state = PS_CR;
            } else if (ch == '\n') {
                *why = "bare LF line ending";
                return HTTP_PRESCAN_ERROR;
            }
            break;
        case PS_CR:
            if (ch != '\n') {
                *why = "bare CR in the request head";
                return HTTP_PRESCAN_ERROR;
            }
            if (ps->line_empty) {
                if (ps->pos == 1) {
                    /* the first line must be the request line, never empty */
                    *why = "empty request line";
                    return HTTP_PRESCAN_ERROR;
                }
                *end = ++ps->pos;
                return HTTP_PRESCAN_DONE;
            }
            ps->state = PS_BOL;
            ps->line_empty = 1;
            break;
        }
    }
    return HTTP_PRESCAN_MORE;
}
