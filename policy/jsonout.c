/*
 * jsonout.c - compact, key-sorted JSON into one buffer (see jsonout.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crm.h"
#include "jsonout.h"

#define JSONOUT_STACK_KEYS 32 /* members sorted without an allocation */

struct jsonout_member {
    const char *key;
    size_t klen;
    json_t *val;
};

int jsonout_reserve(struct jsonout *out, size_t n)
{
    size_t need = out->len + n + 1, cap;
    char *b;

    if (need <= out->cap)
        return 0;
    cap = out->cap < 256 ? 256 : out->cap;
    while (cap < need)
        cap *= 2;
    b = realloc(out->buf, cap);
    if (b == NULL)
        return -1;
    out->buf = b;
    out->cap = cap;
    return 0;
}

/*
 * One byte, without the copy loop (separators and brackets are most puts).
 * Not NUL-terminated: the entry points terminate what they wrote (reserve
 * always leaves room for the NUL).
 */
static int jsonout_putc(struct jsonout *out, char c)
{
    if (out->len + 2 > out->cap && jsonout_reserve(out, 1) < 0)
        return -1;
    out->buf[out->len++] = c;
    return 0;
}

static int jsonout_put(struct jsonout *out, const void *p, size_t n)
{
    if (jsonout_reserve(out, n) < 0)
        return -1;
    memcpy(out->buf + out->len, p, n);
    out->len += n;
    out->buf[out->len] = '\0';
    return 0;
}

/* 1 for the bytes a JSON string escapes: controls, '"' and '\\' (one load per byte). */
/* clang-format off */
static const unsigned char jsonout_escaped[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 - 0x0f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 - 0x1f */
    ['"'] = 1, ['\\'] = 1,
};
/* clang-format on */

/*
 * Whether any of the 8 bytes of w is escaped (a control, '"' or '\\'): the
 * bytes below 0x20 and those equal to either, found a word at a time (bytes
 * of 0x80 and above never are).
 */
static int jsonout_word_escapes(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');

    return ((((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high) != 0;
}

/*
 * A JSON string: what jansson escapes without JSON_ENSURE_ASCII /
 * JSON_ESCAPE_SLASH. Plain runs are copied as they are scanned, 8 bytes at
 * a time while no byte of a word is escaped (the room for the worst case is
 * reserved first).
 */
static int jsonout_string(struct jsonout *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i = 0, len;
    char *buf;

    /* at most 6 bytes per input byte, plus the quotes */
    if (jsonout_reserve(out, n * 6 + 2) < 0)
        return -1;
    buf = out->buf;
    len = out->len;
    buf[len++] = '"';
    for (;;) {
        unsigned char c;
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (jsonout_word_escapes(w))
                break;
            memcpy(buf + len, &w, 8);
            len += 8;
            i += 8;
        }
        while (i < n && !jsonout_escaped[(unsigned char)s[i]])
            buf[len++] = s[i++];
        if (i == n)
            break;
        c = (unsigned char)s[i++];
        buf[len++] = '\\';
        switch (c) {
        case '"':
        case '\\':
            buf[len++] = (char)c;
            break;
        case '\b':
            buf[len++] = 'b';
            break;
        case '\f':
            buf[len++] = 'f';
            break;
        case '\n':
            buf[len++] = 'n';
            break;
        case '\r':
            buf[len++] = 'r';
            break;
        case '\t':
            buf[len++] = 't';
            break;
        default:
            buf[len++] = 'u';
            buf[len++] = '0';
            buf[len++] = '0';
            buf[len++] = hex[c >> 4];
            buf[len++] = hex[c & 15];
            break;
        }
    }
    buf[len++] = '"';
    buf[len] = '\0';
    out->len = len;
    return 0;
}

int jsonout_raw(struct jsonout *out, const void *p, size_t n)
{
    return jsonout_put(out, p, n);
}

int jsonout_str(struct jsonout *out, const char *s, size_t n)
{
    return jsonout_string(out, s, n);
}

int jsonout_int(struct jsonout *out, long long v)
{
    /* the magnitude as unsigned, so LLONG_MIN works; room for the sign before it */
    char num[1 + CRM_DEC_MAX];
    uint64_t u = v < 0 ? 0ull - (uint64_t)v : (uint64_t)v;
    size_t n;
    char *p = crm_dec_u64(u, num + 1, &n);

    if (v < 0) {
        *--p = '-';
        n++;
    }
    return jsonout_put(out, p, n);
}

/* As jansson orders keys: bytewise, a prefix first. */
static int jsonout_cmp(const struct jsonout_member *a, const struct jsonout_member *b)
{
    int r;

    /* most keys differ in their first byte: no call for those */
    if (a->klen > 0 && b->klen > 0 && a->key[0] != b->key[0])
        return (unsigned char)a->key[0] < (unsigned char)b->key[0] ? -1 : 1;
    r = memcmp(a->key, b->key, a->klen < b->klen ? a->klen : b->klen);

    if (r != 0)
        return r;
    return a->klen < b->klen ? -1 : a->klen > b->klen;
}

static int jsonout_qcmp(const void *a, const void *b)
{
    return jsonout_cmp(a, b);
}

static void jsonout_sort(struct jsonout_member *m, size_t n)
{
    if (n > JSONOUT_STACK_KEYS) {
        qsort(m, n, sizeof(*m), jsonout_qcmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        struct jsonout_member t = m[i];
        size_t j = i;
        while (j > 0 && jsonout_cmp(&m[j - 1], &t) > 0) {
            m[j] = m[j - 1];
            j--;
        }
        m[j] = t;
    }
}

static int jsonout_value(struct jsonout *out, const json_t *v, int depth, size_t *id_at,
                         int sorted);

static int jsonout_object(struct jsonout *out, const json_t *v, int depth, size_t *id_at,
                          int sorted)
{
    struct jsonout_member stack[JSONOUT_STACK_KEYS], *m = stack;
    size_t n = json_object_size(v), k = 0;
    int add_id = id_at != NULL, rc = -1;
    void *it;

    if (n + 1 > JSONOUT_STACK_KEYS) {
        m = malloc((n + 1) * sizeof(*m));
        if (m == NULL)
            return -1;
    }
    for (it = json_object_iter((json_t *)v); it != NULL && k < n;
         it = json_object_iter_next((json_t *)v, it)) {
        m[k].key = json_object_iter_key(it);
        m[k].klen = json_object_iter_key_len(it);
        m[k].val = json_object_iter_value(it);
        if (add_id && m[k].klen == 2 && memcmp(m[k].key, "id", 2) == 0)
            continue; /* replaced by the placeholder */
        k++;
    }
    if (add_id) {
        m[k].key = "id";
        m[k].klen = 2;
        m[k].val = NULL; /* the placeholder */
        k++;
    }
    if (id_at != NULL)
        *id_at = 0;
    if (sorted)
        jsonout_sort(m, k);
    if (jsonout_putc(out, '{') < 0)
        goto fail;
    for (size_t i = 0; i < k; i++) {
        if ((i > 0 && jsonout_putc(out, ',') < 0) || jsonout_string(out, m[i].key, m[i].klen) < 0 ||
            jsonout_putc(out, ':') < 0)
            goto fail;
        if (m[i].val == NULL) {
            if (jsonout_put(out, "\"\"", 2) < 0)
                goto fail;
            *id_at = out->len - 1;
        } else if (jsonout_value(out, m[i].val, depth + 1, NULL, sorted) < 0) {
            goto fail;
        }
    }
    rc = jsonout_putc(out, '}');
fail:
    if (m != stack)
        free(m);
    return rc;
}

static int jsonout_value(struct jsonout *out, const json_t *v, int depth, size_t *id_at, int sorted)
{

    if (depth > JSONOUT_MAX_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return jsonout_object(out, v, depth, id_at, sorted);
    case JSON_ARRAY: {
        size_t len = json_array_size(v);
        if (jsonout_putc(out, '[') < 0)
            return -1;
        for (size_t i = 0; i < len; i++) {
            if ((i > 0 && jsonout_putc(out, ',') < 0) ||
                jsonout_value(out, json_array_get(v, i), depth + 1, NULL, sorted) < 0)
                return -1;
        }
        return jsonout_putc(out, ']');
    }
    case JSON_STRING:
        return jsonout_string(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return jsonout_int(out, json_integer_value(v));
    case JSON_REAL: {
        /* jansson's own: %.17g, a locale-proof point, ".0" where it would read as an integer */
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        int rc = s != NULL ? jsonout_put(out, s, strlen(s)) : -1;
        free(s);
        return rc;
    }
    case JSON_TRUE:
        return jsonout_put(out, "true", 4);
    case JSON_FALSE:
        return jsonout_put(out, "false", 5);
    case JSON_NULL:
        return jsonout_put(out, "null", 4);
    }
    return -1;
}

static int jsonout_append_as(struct jsonout *out, const json_t *v, int sorted)
{
    size_t start = out->len;

    if (v == NULL || jsonout_value(out, v, 0, NULL, sorted) < 0) {
        out->len = start;
        if (out->buf != NULL)
            out->buf[start] = '\0';
        return -1;
    }
    out->buf[out->len] = '\0';
    return 0;
}

int jsonout_append(struct jsonout *out, const json_t *v)
{
    return jsonout_append_as(out, v, 1);
}

int jsonout_record(struct jsonout *out, const json_t *rec, size_t *id_at)
{
    size_t start = out->len;

    if (!json_is_object(rec) || jsonout_value(out, rec, 0, id_at, 1) < 0) {
        out->len = start;
        if (out->buf != NULL)
            out->buf[start] = '\0';
        return -1;
    }
    out->buf[out->len] = '\0';
    return 0;
}

static char *jsonout_dumps_as(const json_t *v, size_t *len, int sorted)
{
    struct jsonout out = {0};

    if (jsonout_append_as(&out, v, sorted) < 0) {
        jsonout_free(&out);
        return NULL;
    }
    if (len != NULL)
        *len = out.len;
    return out.buf;
}

char *jsonout_dumps(const json_t *v, size_t *len)
{
    return jsonout_dumps_as(v, len, 1);
}

char *jsonout_dumps_ordered(const json_t *v, size_t *len)
{
    return jsonout_dumps_as(v, len, 0);
}

void jsonout_free(struct jsonout *out)
{
    free(out->buf);
    out->buf = NULL;
    out->len = out->cap = 0;
}
