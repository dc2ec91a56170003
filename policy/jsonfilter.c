/*
 * jsonfilter.c - single-pass response filtering (see jsonfilter.h).
 *
 * One recursive-descent pass validates the answer and decides, member by
 * member, what to keep. The output is the input with holes: jf_emit copies
 * the bytes since the last edit, so an answer with nothing to remove costs
 * one memcpy on top of the scan. A decision that depends on a member that
 * may come later in the same object (a Salesforce object's "attributes", a
 * HubSpot root's "properties") is taken from a look-ahead over that object
 * first (jf_prescan), which reads the keys and skips the values without
 * validating them; the main pass validates everything.
 *
 * Recursion is bounded by JSONFILTER_MAX_DEPTH. Memory: the output, and
 * only for keys longer than 255 bytes, objects with more than 32 members or
 * duplicate keys, a little scratch.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "crm.h"
#include "jsonfilter.h"

#define JF_NONE        ((size_t)-1)
#define JF_SMALL_SLOTS 64 /* duplicate-key table for objects of up to 32 members */
#define JF_SMALL_WORDS 4  /* superseded-member bits for objects of up to 256 members */

/* Bytes that may stand for themselves inside a string: printable ASCII but '"' and '\\'. */
static const unsigned char jf_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20: '"' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50: '\\' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x70 */
};

/* An unescaped string, NUL-terminated; short ones stay in small. */
struct jf_str {
    char small[256];
    char *heap;
    size_t cap; /* of heap */
    char *s;    /* small or heap */
    size_t len;
};

/* Duplicate-key table entry: the latest member (ord) with this key. */
struct jf_slot {
    uint64_t hash;
    size_t koff; /* the key's opening quote */
    uint32_t gen, ord;
};

struct jf {
    const unsigned char *in;
    size_t len, pos;
    size_t copied; /* in[0..copied) is in the output or cut */
    size_t removed;
    struct jsonfilter_out *out;
    const struct rules_crm *rc;
    char *err;
    size_t errlen;
    int failed;
    int oom;          /* the failure was memory running out */
    int unique;       /* jsonfilter_parse_unique: a repeated key fails the parse */
    const char *skip; /* jsonfilter_parse_without: members of this name are not built */
    size_t skiplen;
    enum filter_hs_shape hs_shape;
    struct jf_str key, aux;
    struct jf_slot *slots; /* small_slots or heap; NULL until first used */
    size_t nslots;
    uint32_t gen;
    uint64_t *bits; /* small_bits or heap */
    size_t nwords;
    struct jf_slot small_slots[JF_SMALL_SLOTS];
    uint64_t small_bits[JF_SMALL_WORDS];
};

/* What the look-ahead found in one object (the last occurrence of each key counts). */
struct jf_info {
    size_t type_off;   /* quote of attributes.type when both are the right kind, else JF_NONE */
    size_t assoc_koff; /* key of the last "associations", else JF_NONE */
    int records;       /* "records" is an array */
    int props, hist;   /* "properties" / "propertiesWithHistory" are objects */
    int attrs;         /* has "attributes" (a record when type_off is set) */
    int has_id;        /* has an "Id" member */
    uint64_t *dropped; /* bit per member superseded by a later duplicate; NULL: none */
};

/* Iteration over one object's members, cutting some. */
struct jf_members {
    size_t ks;       /* current member's key */
    size_t last_end; /* end of the previous member's value */
    size_t kept;
    uint32_t ord;
};

static int jf_fail(struct jf *j, size_t at, const char *what)
{
    if (!j->failed && j->err != NULL && j->errlen > 0)
        snprintf(j->err, j->errlen, "%s at byte %zu", what, at);
    j->failed = 1;
    return -1;
}

static int jf_oom(struct jf *j)
{
    if (!j->failed)
        j->oom = 1;
    return jf_fail(j, j->pos, "out of memory");
}

static size_t jf_ws(const struct jf *j, size_t p)
{
    while (p < j->len &&
           (j->in[p] == ' ' || j->in[p] == '\n' || j->in[p] == '\r' || j->in[p] == '\t'))
        p++;
    return p;
}

static int jf_isdigit(size_t p, const struct jf *j)
{
    return p < j->len && j->in[p] >= '0' && j->in[p] <= '9';
}

/* Output: append n bytes. */
static int jf_put(struct jf *j, const void *p, size_t n)
{
    struct jsonfilter_out *o = j->out;

    if (o->cap - o->len < n) {
        size_t cap = o->cap > 0 ? o->cap : 256;
        char *b;

        while (cap - o->len < n)
            cap *= 2;
        b = realloc(o->buf, cap);
        if (b == NULL)
            return jf_oom(j);
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return 0;
}

/* Output: copy the input up to upto. */
static int jf_emit(struct jf *j, size_t upto)
{
    int rc = jf_put(j, j->in + j->copied, upto - j->copied);

    j->copied = upto;
    return rc;
}

/* Output: leave in[from..to) out, writing s instead. */
static int jf_cut(struct jf *j, size_t from, size_t to, const char *s)
{
    if (jf_emit(j, from) < 0 || (s != NULL && jf_put(j, s, strlen(s)) < 0))
        return -1;
    j->copied = to;
    return 0;
}

static int jf_str_add(struct jf *j, struct jf_str *s, const void *p, size_t n)
{
    size_t cap = s->s == s->small ? sizeof(s->small) : s->cap;

    if (cap - s->len < n + 1) {
        char *b;

        while (cap - s->len < n + 1)
            cap *= 2;
        b = realloc(s->heap, cap);
        if (b == NULL)
            return jf_oom(j);
        if (s->s == s->small)
            memcpy(b, s->small, s->len);
        s->heap = s->s = b;
        s->cap = cap;
    }
    memcpy(s->s + s->len, p, n);
    s->len += n;
    s->s[s->len] = '\0';
    return 0;
}

/*
 * The end of the run of plain string bytes from p: eight at a time while no
 * byte of the word is '"', '\\', a control character or non-ASCII.
 */
static size_t jf_plain_run(const unsigned char *in, size_t p, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;

    while (p < n && n - p >= 8) {
        uint64_t w, q, b;

        memcpy(&w, in + p, 8);
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');
        if ((((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | w) & high)
            break;
        p += 8;
    }
    while (p < n && jf_plain[in[p]])
        p++;
    return p;
}

static long jf_hex4(const struct jf *j, size_t p)
{
    long v = 0;

    if (j->len - p < 4)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        unsigned c = j->in[p + i];

        v <<= 4;
        if (c >= '0' && c <= '9')
            v += c - '0';
        else if (c >= 'a' && c <= 'f')
            v += c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v += c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

static size_t jf_encode(uint32_t cp, char *u)
{
    if (cp < 0x80) {
        u[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * The string whose opening quote is at *pp: refuse what jansson refuses
 * (control characters, unknown escapes, broken surrogate pairs, \u0000,
 * invalid UTF-8) and leave *pp after the closing quote. When s is not NULL
 * it receives the unescaped text.
 */
static int jf_string(struct jf *j, size_t *pp, struct jf_str *s)
{
    const unsigned char *in = j->in;
    size_t p = *pp + 1, seg = p, n = j->len;

    if (s != NULL) {
        s->len = 0;
        s->s[0] = '\0';
    }
    for (;;) {
        unsigned c;

        p = jf_plain_run(in, p, n);
        if (p >= n)
            return jf_fail(j, p, "unterminated string");
        c = in[p];
        if (c == '"')
            break;
        if (c == '\\') {
            char u[4];
            size_t ulen = 1;
            long cp, lo;

            if (s != NULL && jf_str_add(j, s, in + seg, p - seg) < 0)
                return -1;
            if (p + 1 >= n)
                return jf_fail(j, p, "unterminated string");
            switch (in[p + 1]) {
            case '"':
            case '\\':
            case '/':
                u[0] = (char)in[p + 1];
                break;
            case 'b':
                u[0] = '\b';
                break;
            case 'f':
                u[0] = '\f';
                break;
            case 'n':
                u[0] = '\n';
                break;
            case 'r':
                u[0] = '\r';
                break;
            case 't':
                u[0] = '\t';
                break;
            case 'u':
                cp = jf_hex4(j, p + 2);
                if (cp < 0)
                    return jf_fail(j, p, "invalid escape");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    /* A high surrogate must be followed by an escaped low one. */
                    if (j->len - (p + 6) < 2 || in[p + 6] != '\\' || in[p + 7] != 'u')
                        return jf_fail(j, p, "invalid Unicode escape");
                    lo = jf_hex4(j, p + 8);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return jf_fail(j, p, "invalid Unicode escape");
                    cp = ((cp - 0xD800) << 10) + (lo - 0xDC00) + 0x10000;
                    p += 6;
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return jf_fail(j, p, "invalid Unicode escape");
                } else if (cp == 0) {
                    /* jansson refuses NUL without JSON_ALLOW_NUL; so do we. */
                    return jf_fail(j, p, "\\u0000 in a string");
                }
                ulen = jf_encode((uint32_t)cp, u);
                p += 4;
                break;
            default:
                return jf_fail(j, p, "invalid escape");
            }
            p += 2;
            if (s != NULL && jf_str_add(j, s, u, ulen) < 0)
                return -1;
            seg = p;
            continue;
        }
        if (c < 0x20)
            return jf_fail(j, p, "control character in a string");
        c = (unsigned)crm_utf8_seq(in + p, n - p); /* jansson's rules too */
        if (c == 0)
            return jf_fail(j, p, "invalid UTF-8");
        p += c;
    }
    if (s != NULL && jf_str_add(j, s, in + seg, p - seg) < 0)
        return -1;
    *pp = p + 1;
    return 0;
}

/*
 * Whether the real number in[start..end) (already checked against the
 * grammar) overflows a double, which jansson refuses. The decimal exponent
 * of its first significant digit settles every case but 1e308..1e309,
 * which strtod settles.
 */
static int jf_real_overflows(const struct jf *j, size_t start, size_t end)
{
    const unsigned char *in = j->in;
    size_t p = start, d0;
    long long e10, x = 0;
    int xneg = 0;
    double v;

    if (in[p] == '-')
        p++;
    d0 = p;
    while (p < end && in[p] >= '0' && in[p] <= '9')
        p++;
    if (p - d0 > 1 || in[d0] != '0') {
        e10 = (long long)(p - d0) - 1;
    } else {
        /* 0.000ddd: the first non-zero digit of the fraction, if any. */
        size_t q = p + 1;

        if (p >= end || in[p] != '.')
            return 0;
        while (q < end && in[q] == '0')
            q++;
        if (q >= end || in[q] < '1' || in[q] > '9')
            return 0;
        e10 = -(long long)(q - p);
    }
    while (p < end && in[p] != 'e' && in[p] != 'E')
        p++;
    if (p < end) {
        p++;
        if (in[p] == '+' || in[p] == '-')
            xneg = in[p++] == '-';
        for (; p < end; p++) {
            if (x < 1000000000LL) /* beyond any input length: saturate */
                x = x * 10 + (in[p] - '0');
        }
        e10 += xneg ? -x : x;
    }
    if (e10 < 308)
        return 0;
    if (e10 > 308)
        return 1;
    /* The caller made sure a byte that ends the number follows it in the buffer. */
    errno = 0;
    v = strtod((const char *)in + start, NULL);
    return (v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE;
}

/* The number at *pp, with jansson's grammar and range (integers fit in 64 bits). */
static int jf_number(struct jf *j, size_t *pp)
{
    const unsigned char *in = j->in;
    size_t p = *pp, start = p, d0, nd;
    int neg = 0, real = 0;

    if (in[p] == '-') {
        neg = 1;
        p++;
    }
    if (!jf_isdigit(p, j))
        return jf_fail(j, p, "invalid number");
    d0 = p;
    if (in[p] == '0') {
        p++;
        if (jf_isdigit(p, j))
            return jf_fail(j, p, "invalid number");
    } else {
        while (jf_isdigit(p, j))
            p++;
    }
    nd = p - d0;
    if (p < j->len && in[p] == '.') {
        real = 1;
        p++;
        if (!jf_isdigit(p, j))
            return jf_fail(j, p, "invalid number");
        while (jf_isdigit(p, j))
            p++;
    }
    if (p < j->len && (in[p] == 'e' || in[p] == 'E')) {
        real = 1;
        p++;
        if (p < j->len && (in[p] == '+' || in[p] == '-'))
            p++;
        if (!jf_isdigit(p, j))
            return jf_fail(j, p, "invalid number");
        while (jf_isdigit(p, j))
            p++;
    }
    if (p >= j->len)
        return jf_fail(j, p, "premature end of input");
    if (!real) {
        const char *max = neg ? "9223372036854775808" : "9223372036854775807";

        if (nd > 19 || (nd == 19 && memcmp(in + d0, max, 19) > 0))
            return jf_fail(j, start, "integer out of range");
    } else if (jf_real_overflows(j, start, p)) {
        return jf_fail(j, start, "real number overflow");
    }
    *pp = p;
    return 0;
}

static int jf_literal(struct jf *j, const char *lit)
{
    size_t n = strlen(lit), p = j->pos;

    if (j->len - p < n || memcmp(j->in + p, lit, n) != 0)
        return jf_fail(j, p, "invalid token");
    p += n;
    if (p < j->len && ((j->in[p] | 0x20) >= 'a' && (j->in[p] | 0x20) <= 'z'))
        return jf_fail(j, p, "invalid token");
    j->pos = p;
    return 0;
}

static int jf_depth(struct jf *j, int depth)
{
    if (depth > JSONFILTER_MAX_DEPTH)
        return jf_fail(j, j->pos, "nests deeper than 64 levels");
    if (j->pos >= j->len)
        return jf_fail(j, j->pos, "premature end of input");
    return 0;
}

/* Arrays and objects: after '[' or '{' (at pos), whether a first element follows. */
static int jf_open(struct jf *j, char close)
{
    j->pos = jf_ws(j, j->pos + 1);
    if (j->pos < j->len && j->in[j->pos] == close) {
        j->pos++;
        return 0;
    }
    if (close == '}' && (j->pos >= j->len || j->in[j->pos] != '"'))
        return jf_fail(j, j->pos, "string or '}' expected");
    return 1;
}

/*
 * After an element: whether another follows (pos on it), 0 at the closing
 * bracket (consumed). cut_comma: no member kept yet, so the comma goes too.
 */
static int jf_next(struct jf *j, char close, int cut_comma)
{
    size_t p = jf_ws(j, j->pos);

    if (p < j->len && j->in[p] == ',') {
        if (cut_comma && jf_cut(j, p, p + 1, NULL) < 0)
            return -1;
        j->pos = jf_ws(j, p + 1);
        if (close == '}' && (j->pos >= j->len || j->in[j->pos] != '"'))
            return jf_fail(j, j->pos, "string expected");
        return 1;
    }
    if (p < j->len && j->in[p] == close) {
        j->pos = p + 1;
        return 0;
    }
    return jf_fail(j, p, close == '}' ? "',' or '}' expected" : "',' or ']' expected");
}

/* A member's key (unescaped into s when not NULL) and ':'; pos ends on the value. */
static int jf_key(struct jf *j, struct jf_members *m, struct jf_str *s)
{
    m->ks = j->pos;
    if (jf_string(j, &j->pos, s) < 0)
        return -1;
    j->pos = jf_ws(j, j->pos);
    if (j->pos >= j->len || j->in[j->pos] != ':')
        return jf_fail(j, j->pos, "':' expected");
    j->pos = jf_ws(j, j->pos + 1);
    return 0;
}

static void jf_keep(struct jf *j, struct jf_members *m)
{
    m->kept++;
    m->last_end = j->pos;
}

/* Cut the member just read: with the comma before it, or (first) the one after. */
static int jf_drop(struct jf *j, struct jf_members *m)
{
    if (jf_cut(j, m->kept > 0 ? m->last_end : m->ks, j->pos, NULL) < 0)
        return -1;
    m->last_end = j->pos;
    j->removed++;
    return 0;
}

/* Validate the value at pos, at depth, and step over it. */
static int jf_skip(struct jf *j, int depth)
{
    int more;

    if (jf_depth(j, depth) < 0)
        return -1;
    switch (j->in[j->pos]) {
    case '{':
        for (more = jf_open(j, '}'); more > 0; more = jf_next(j, '}', 0)) {
            struct jf_members m;

            if (jf_key(j, &m, NULL) < 0 || jf_skip(j, depth + 1) < 0)
                return -1;
        }
        return more;
    case '[':
        for (more = jf_open(j, ']'); more > 0; more = jf_next(j, ']', 0)) {
            if (jf_skip(j, depth + 1) < 0)
                return -1;
        }
        return more;
    case '"':
        return jf_string(j, &j->pos, NULL);
    case 't':
        return jf_literal(j, "true");
    case 'f':
        return jf_literal(j, "false");
    case 'n':
        return jf_literal(j, "null");
    default:
        if (j->in[j->pos] == '-' || jf_isdigit(j->pos, j))
            return jf_number(j, &j->pos);
        return jf_fail(j, j->pos, "invalid token");
    }
}

/*
 * Look-ahead: step over the value at *pp without validating it (the main
 * pass does). Exact on valid JSON; on invalid JSON it only has to stop.
 */
static int jf_fast_skip(struct jf *j, size_t *pp)
{
    const unsigned char *in = j->in;
    size_t p = *pp, n = j->len, depth = 0;

    do {
        if (p >= n)
            return jf_fail(j, p, "premature end of input");
        switch (in[p]) {
        case '"':
            p++;
            for (;;) {
                p = jf_plain_run(in, p, n);
                while (p < n && in[p] != '"' && in[p] != '\\')
                    p++;
                if (p >= n)
                    return jf_fail(j, p, "unterminated string");
                if (in[p] == '"')
                    break;
                p += 2; /* the backslash and the byte it escapes */
            }
            p++;
            break;
        case '{':
        case '[':
            depth++;
            p++;
            break;
        case '}':
        case ']':
            if (depth == 0)
                return jf_fail(j, p, "unexpected bracket");
            depth--;
            p++;
            break;
        default:
            if (depth > 0) {
                p++;
                break;
            }
            /* A scalar: up to the next delimiter. */
            while (p < n && in[p] != ',' && in[p] != '}' && in[p] != ']' && in[p] != ' ' &&
                   in[p] != '\n' && in[p] != '\r' && in[p] != '\t')
                p++;
            break;
        }
    } while (depth > 0);
    *pp = p;
    return 0;
}

static int jf_is(const struct jf_str *s, const char *lit, size_t n)
{
    return s->len == n && memcmp(s->s, lit, n) == 0;
}

/* FNV-1a: keys are short and the table checks equality anyway. */
static uint64_t jf_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

static int jf_slots_grow(struct jf *j)
{
    size_t n = j->nslots * 2;
    struct jf_slot *t = calloc(n, sizeof(*t));

    if (t == NULL)
        return jf_oom(j);
    for (size_t i = 0; i < j->nslots; i++) {
        size_t k;

        if (j->slots[i].gen != j->gen)
            continue;
        for (k = j->slots[i].hash & (n - 1); t[k].gen == j->gen; k = (k + 1) & (n - 1))
            ;
        t[k] = j->slots[i];
    }
    if (j->slots != j->small_slots)
        free(j->slots);
    j->slots = t;
    j->nslots = n;
    return 0;
}

/*
 * Record member ord (key in j->key, quote at koff) in the current object's
 * table; when an earlier member had the same key, mark that one superseded.
 */
static int jf_dup_add(struct jf *j, size_t koff, uint32_t ord, size_t *ndup)
{
    uint64_t h = jf_hash(j->key.s, j->key.len);
    size_t w = ord / 64, k;

    if (ord % 64 == 0) {
        if (w >= j->nwords) {
            size_t nw = j->nwords * 2;
            uint64_t *b = j->bits == j->small_bits ? malloc(nw * sizeof(*b))
                                                   : realloc(j->bits, nw * sizeof(*b));

            if (b == NULL)
                return jf_oom(j);
            if (j->bits == j->small_bits)
                memcpy(b, j->small_bits, sizeof(j->small_bits));
            j->bits = b;
            j->nwords = nw;
        }
        j->bits[w] = 0;
    }
    if (((size_t)ord + 1) * 2 > j->nslots && jf_slots_grow(j) < 0)
        return -1;
    for (k = h & (j->nslots - 1); j->slots[k].gen == j->gen; k = (k + 1) & (j->nslots - 1)) {
        struct jf_slot *e = &j->slots[k];
        size_t q = e->koff;

        if (e->hash != h)
            continue;
        if (jf_string(j, &q, &j->aux) < 0)
            return -1;
        if (j->aux.len != j->key.len || memcmp(j->aux.s, j->key.s, j->key.len) != 0)
            continue;
        j->bits[e->ord / 64] |= (uint64_t)1 << (e->ord % 64);
        e->ord = ord;
        e->koff = koff;
        (*ndup)++;
        return 0;
    }
    j->slots[k].hash = h;
    j->slots[k].koff = koff;
    j->slots[k].gen = j->gen;
    j->slots[k].ord = ord;
    return 0;
}

/* Look-ahead into attributes (the object at at): the quote of its last "type", if a string. */
static int jf_peek_type(struct jf *j, size_t at, size_t *type_off)
{
    size_t p = jf_ws(j, at + 1);

    *type_off = JF_NONE;
    if (p < j->len && j->in[p] == '}')
        return 0;
    for (;;) {
        int is_type;

        if (p >= j->len || j->in[p] != '"')
            return jf_fail(j, p, "string or '}' expected");
        if (jf_string(j, &p, &j->key) < 0)
            return -1;
        is_type = jf_is(&j->key, "type", 4);
        p = jf_ws(j, p);
        if (p >= j->len || j->in[p] != ':')
            return jf_fail(j, p, "':' expected");
        p = jf_ws(j, p + 1);
        if (is_type)
            *type_off = p < j->len && j->in[p] == '"' ? p : JF_NONE;
        if (jf_fast_skip(j, &p) < 0)
            return -1;
        p = jf_ws(j, p);
        if (p < j->len && j->in[p] == ',') {
            p = jf_ws(j, p + 1);
            continue;
        }
        if (p < j->len && j->in[p] == '}')
            return 0;
        return jf_fail(j, p, "',' or '}' expected");
    }
}

/*
 * Look-ahead over the object at at: what decides how it is filtered, and
 * with dups, which members a later duplicate supersedes (info->dropped,
 * malloc'ed, for the caller to free).
 */
static int jf_prescan(struct jf *j, size_t at, struct jf_info *info, int dups)
{
    size_t p = jf_ws(j, at + 1), ndup = 0;
    uint32_t ord = 0;

    info->type_off = info->assoc_koff = JF_NONE;
    info->records = info->props = info->hist = info->attrs = info->has_id = 0;
    info->dropped = NULL;
    if (dups) {
        if (j->slots == NULL) {
            memset(j->small_slots, 0, sizeof(j->small_slots));
            j->slots = j->small_slots;
            j->nslots = JF_SMALL_SLOTS;
        }
        j->gen++;
    }
    if (p < j->len && j->in[p] == '}')
        return 0;
    for (;; ord++) {
        size_t koff = p;
        unsigned char c;

        if (p >= j->len || j->in[p] != '"')
            return jf_fail(j, p, "string or '}' expected");
        if (jf_string(j, &p, &j->key) < 0)
            return -1;
        p = jf_ws(j, p);
        if (p >= j->len || j->in[p] != ':')
            return jf_fail(j, p, "':' expected");
        p = jf_ws(j, p + 1);
        if (p >= j->len)
            return jf_fail(j, p, "premature end of input");
        c = j->in[p];
        if (dups && jf_dup_add(j, koff, ord, &ndup) < 0)
            return -1;
        if (jf_is(&j->key, "attributes", 10)) {
            info->type_off = JF_NONE;
            info->attrs = 1;
            if (c == '{' && jf_peek_type(j, p, &info->type_off) < 0)
                return -1;
        } else if (jf_is(&j->key, "records", 7)) {
            info->records = c == '[';
        } else if (jf_is(&j->key, "properties", 10)) {
            info->props = c == '{';
        } else if (jf_is(&j->key, "propertiesWithHistory", 21)) {
            info->hist = c == '{';
        } else if (jf_is(&j->key, "associations", 12)) {
            info->assoc_koff = koff;
        } else if (jf_is(&j->key, "Id", 2)) {
            info->has_id = 1;
        }
        if (jf_fast_skip(j, &p) < 0)
            return -1;
        p = jf_ws(j, p);
        if (p < j->len && j->in[p] == ',') {
            p = jf_ws(j, p + 1);
            continue;
        }
        if (p < j->len && j->in[p] == '}')
            break;
        return jf_fail(j, p, "',' or '}' expected");
    }
    if (ndup > 0) {
        size_t nw = (size_t)ord / 64 + 1;

        info->dropped = malloc(nw * sizeof(uint64_t));
        if (info->dropped == NULL)
            return jf_oom(j);
        memcpy(info->dropped, j->bits, nw * sizeof(uint64_t));
    }
    return 0;
}

/* The elements of the array at pos, each handled by each at depth + 1. */
static int jf_elements(struct jf *j, int depth, int (*each)(struct jf *, int))
{
    int more;

    for (more = jf_open(j, ']'); more > 0; more = jf_next(j, ']', 0)) {
        if (each(j, depth + 1) < 0)
            return -1;
    }
    return more;
}

/* ---- HubSpot ---- */

/*
 * Fail closed: a record is an object with a "properties" or
 * "propertiesWithHistory" bag, and records are expected only at the root
 * and in the root's "results" (FILTER_HS_RECORDS). A bag anywhere else
 * (under a new key, in associations, in a batch error, in an association or
 * schema answer) refuses the whole answer; a member of a record or of the
 * root that crmgate does not know is cut (filter.h).
 */

static int jf_is_bag_key(const struct jf_str *k)
{
    return jf_is(k, "properties", 10) || jf_is(k, "propertiesWithHistory", 21);
}

/* Whether k is one of names (filter.h). */
static int jf_in(const struct jf_str *k, const struct filter_name *names)
{
    for (; names->s != NULL; names++) {
        if (k->len == names->n && memcmp(k->s, names->s, k->len) == 0)
            return 1;
    }
    return 0;
}

/*
 * What k is: 0 in neither filter_hs_record_keys nor, at the root,
 * filter_hs_root_keys; 2 a record's scalar member (FILTER_SCALAR); 1 any
 * other of theirs. jf_in on both lists, by length (this runs for every
 * member of every HubSpot record; a loop over the lists cost a read 3% of
 * the filter's time). test_jsonfilter.c holds it to the lists.
 */
static int jf_hs_known(const struct jf_str *k, int root)
{
#define JF_K(lit) (memcmp(k->s, lit, sizeof(lit) - 1) == 0)
    switch (k->len) {
    case 2:
        return JF_K("id") ? 2 : 0;
    case 3:
        return JF_K("url") || JF_K("new") || JF_K("vid") ? 2 : 0;
    case 5:
        return root && (JF_K("total") || JF_K("links") || JF_K("error") || JF_K("isNew"));
    case 6:
        if (JF_K("dealId"))
            return 2;
        return root && (JF_K("paging") || JF_K("status") || JF_K("errors") || JF_K("reason") ||
                        JF_K("labels"));
    case 7:
        return root && (JF_K("results") || JF_K("message") || JF_K("context") || JF_K("deleted"));
    case 8:
        if (JF_K("archived") || JF_K("portalId"))
            return 2;
        return JF_K("warnings") || (root && JF_K("category"));
    case 9:
        if (JF_K("createdAt") || JF_K("updatedAt") || JF_K("companyId") || JF_K("isDeleted"))
            return 2;
        return root && (JF_K("startedAt") || JF_K("numErrors") || JF_K("errorType") ||
                        JF_K("groupName") || JF_K("requestId"));
    case 10:
        if (JF_K("archivedAt"))
            return 2;
        return JF_K("properties") || (root && (JF_K("policyName") || JF_K("toObjectId")));
    case 11:
        return root && (JF_K("requestedAt") || JF_K("completedAt") || JF_K("subCategory"));
    case 12:
        return JF_K("associations") || (root && JF_K("fromObjectId"));
    case 13:
        return root && JF_K("correlationId");
    case 14:
        return root && JF_K("toObjectTypeId");
    case 16:
        return root && JF_K("fromObjectTypeId");
    case 18:
        return JF_K("objectWriteTraceId") ? 2 : 0;
    case 21:
        return JF_K("propertiesWithHistory");
    default:
        return 0;
    }
#undef JF_K
}

/*
 * Whether the member whose key is in j->key and whose value is at pos is
 * kept (1; 0: cut), or fails the answer (-1: a record's scalar member that
 * holds an object or array, which may be record data).
 */
static int jf_hs_keeps(struct jf *j, int root)
{
    int kind = jf_hs_known(&j->key, root);

    if (kind == 2 && (j->in[j->pos] == '{' || j->in[j->pos] == '['))
        return jf_fail(j, j->pos, "an object where a record has a scalar");
    return kind != 0;
}

/*
 * A bag-named member whose value is at pos, outside a record position:
 * fails the answer unless the value is null or [] (HubSpot answers a
 * malformed batch update with "properties": []), or, in a schema answer,
 * an array (an object schema's property definitions).
 */
static int jf_hs_stray_bag(struct jf *j)
{
    unsigned char c = j->in[j->pos];
    size_t p;

    if (c == '[') {
        if (j->hs_shape == FILTER_HS_SCHEMA)
            return 0;
        p = jf_ws(j, j->pos + 1);
        if (p < j->len && j->in[p] == ']')
            return 0;
    } else if (c != '{') {
        return 0;
    }
    return jf_fail(j, j->pos, "record data where crmgate expects none");
}

/*
 * A member's key (into j->key) outside a record position; fails on a
 * bag-named member holding record data (jf_hs_stray_bag).
 */
static int jf_hs_key(struct jf *j, struct jf_members *m)
{
    if (jf_key(j, m, &j->key) < 0)
        return -1;
    if (j->pos >= j->len)
        return jf_fail(j, j->pos, "premature end of input");
    return jf_is_bag_key(&j->key) ? jf_hs_stray_bag(j) : 0;
}

/* Validate the value at pos and step over it, failing on any record data in it. */
static int jf_hs_walk(struct jf *j, int depth)
{
    int more;

    if (j->pos >= j->len || (j->in[j->pos] != '[' && j->in[j->pos] != '{'))
        return jf_skip(j, depth); /* a scalar, or the end: jf_skip validates or fails */
    if (jf_depth(j, depth) < 0)
        return -1;
    if (j->in[j->pos] == '[')
        return jf_elements(j, depth, jf_hs_walk);
    for (more = jf_open(j, '}'); more > 0; more = jf_next(j, '}', 0)) {
        struct jf_members m;

        if (jf_hs_key(j, &m) < 0 || jf_hs_walk(j, depth + 1) < 0)
            return -1;
    }
    return more;
}

/*
 * properties / propertiesWithHistory (members readable under o; none when
 * o is NULL), or with listed, associations (members naming a listed type,
 * whose values must hold no record data).
 */
static int jf_hs_members(struct jf *j, const struct rules_object *o, int listed, int depth)
{
    struct jf_members m = {0, 0, 0, 0};
    int more;

    if (jf_depth(j, depth) < 0)
        return -1;
    for (more = jf_open(j, '}'); more > 0; more = jf_next(j, '}', m.kept == 0)) {
        int keep, rc;

        if (jf_key(j, &m, &j->key) < 0)
            return -1;
        if (j->pos >= j->len)
            return jf_fail(j, j->pos, "premature end of input");
        if (listed)
            keep = rules_object_find(j->rc, j->key.s) != NULL;
        else
            keep = o != NULL && rules_can_read(o, j->key.s);
        rc = keep && listed ? jf_hs_walk(j, depth + 1) : jf_skip(j, depth + 1);
        if (rc < 0)
            return -1;
        if (keep)
            jf_keep(j, &m);
        else if (jf_drop(j, &m) < 0)
            return -1;
    }
    return more;
}

static int jf_hs_results(struct jf *j, const struct rules_object *o, int depth);

/*
 * The root object. Whether it is a record matters only for its
 * associations, so the look-ahead runs only when there are some.
 */
struct jf_hs_root {
    size_t start;
    int scanned;
    struct jf_info info;
};

/*
 * Whether the root's associations at key ks are filtered: when the root is
 * a record, and always for an occurrence a later duplicate replaces.
 */
static int jf_hs_root_filters(struct jf *j, struct jf_hs_root *root, size_t ks)
{
    if (!root->scanned) {
        if (jf_prescan(j, root->start, &root->info, 0) < 0)
            return -1;
        root->scanned = 1;
    }
    return root->info.props || root->info.hist || ks != root->info.assoc_koff;
}

/*
 * A record (root NULL: an element of the root's results) or the root. As
 * filter_hubspot_record; the root's associations only when the root is a
 * record, and its results. A bag that is not an object (or null, or [])
 * fails the answer; members neither a record's nor (at the root) a
 * collection's or an error's are cut.
 */
static int jf_hs_record(struct jf *j, const struct rules_object *o, int depth,
                        struct jf_hs_root *root)
{
    struct jf_members m = {0, 0, 0, 0};
    int more;

    if (jf_depth(j, depth) < 0)
        return -1;
    for (more = jf_open(j, '}'); more > 0; more = jf_next(j, '}', m.kept == 0)) {
        unsigned char c;
        int rc;

        if (jf_key(j, &m, &j->key) < 0)
            return -1;
        if (j->pos >= j->len)
            return jf_fail(j, j->pos, "premature end of input");
        c = j->in[j->pos];
        /*
         * At the root, properties objects are filtered even when the root is
         * not a record: that happens only to occurrences a later duplicate
         * replaces, which a first-wins parser would otherwise see whole.
         */
        if (jf_is_bag_key(&j->key)) {
            rc = c == '{'                 ? jf_hs_members(j, o, 0, depth + 1)
                 : jf_hs_stray_bag(j) < 0 ? -1
                                          : jf_skip(j, depth + 1);
        } else if (c == '[' && root != NULL && jf_is(&j->key, "results", 7)) {
            rc = jf_hs_results(j, o, depth + 1);
        } else if ((rc = jf_hs_keeps(j, root != NULL)) != 0) {
            if (rc < 0)
                return -1;
            /* (the root's look-ahead reuses j->key: the key is not compared after it) */
            rc = c == '{' && jf_is(&j->key, "associations", 12)
                     ? (root == NULL ? 1 : jf_hs_root_filters(j, root, m.ks))
                     : 0;
            if (rc > 0)
                rc = jf_hs_members(j, NULL, 1, depth + 1);
            else if (rc == 0)
                rc = jf_hs_walk(j, depth + 1);
        } else {
            if (jf_skip(j, depth + 1) < 0 || jf_drop(j, &m) < 0)
                return -1;
            continue;
        }
        if (rc < 0)
            return -1;
        jf_keep(j, &m);
    }
    return more;
}

static int jf_hs_results(struct jf *j, const struct rules_object *o, int depth)
{
    int more;

    if (jf_depth(j, depth) < 0)
        return -1;
    for (more = jf_open(j, ']'); more > 0; more = jf_next(j, ']', 0)) {
        int rc = j->pos < j->len && j->in[j->pos] == '{' ? jf_hs_record(j, o, depth + 1, NULL)
                                                         : jf_hs_walk(j, depth + 1);
        if (rc < 0)
            return -1;
    }
    return more;
}

/*
 * The root of an answer that carries no records (FILTER_HS_LINKS): known
 * members are walked (record data in them fails the answer), others cut.
 */
static int jf_hs_links(struct jf *j)
{
    struct jf_members m = {0, 0, 0, 0};
    int more, keep;

    for (more = jf_open(j, '}'); more > 0; more = jf_next(j, '}', m.kept == 0)) {
        if (jf_hs_key(j, &m) < 0 || (keep = jf_hs_keeps(j, 1)) < 0)
            return -1;
        if (keep) {
            if (jf_hs_walk(j, 1) < 0)
                return -1;
            jf_keep(j, &m);
        } else if (jf_skip(j, 1) < 0 || jf_drop(j, &m) < 0) {
            return -1;
        }
    }
    return more;
}

/* ---- Salesforce ---- */

static int jf_sf_object(struct jf *j, const struct jf_info *info, int depth);

static int jf_sf_value(struct jf *j, int depth)
{
    struct jf_info info;
    int rc;

    if (jf_depth(j, depth) < 0)
        return -1;
    if (j->in[j->pos] == '[')
        return jf_elements(j, depth, jf_sf_value);
    if (j->in[j->pos] != '{')
        return jf_skip(j, depth);
    if (jf_prescan(j, j->pos, &info, 1) < 0) {
        free(info.dropped);
        return -1;
    }
    rc = jf_sf_object(j, &info, depth);
    free(info.dropped);
    return rc;
}

/* Whether the record type whose quote is at type_off has rules; its rules in *o. */
static int jf_sf_type(struct jf *j, size_t type_off, const struct rules_object **o)
{
    if (jf_string(j, &type_off, &j->aux) < 0)
        return -1;
    *o = rules_object_find(j->rc, j->aux.s);
    return 0;
}

/* The elements of records / searchRecords: each a record or null. */
static int jf_sf_records(struct jf *j, int depth)
{
    struct jf_info info;
    int more, rc;

    if (jf_depth(j, depth) < 0)
        return -1;
    for (more = jf_open(j, ']'); more > 0; more = jf_next(j, ']', 0)) {
        if (j->pos >= j->len)
            return jf_fail(j, j->pos, "premature end of input");
        if (j->in[j->pos] == 'n') {
            if (jf_literal(j, "null") < 0)
                return -1;
            continue;
        }
        if (j->in[j->pos] != '{')
            return jf_fail(j, j->pos, "a query result that is not a record");
        if (jf_prescan(j, j->pos, &info, 1) < 0) {
            free(info.dropped);
            return -1;
        }
        if (info.type_off == JF_NONE) {
            free(info.dropped);
            return jf_fail(j, j->pos, "a query result that is not a typed record");
        }
        rc = jf_sf_object(j, &info, depth + 1);
        free(info.dropped);
        if (rc < 0)
            return -1;
    }
    return more;
}

/*
 * An object kept whole (at pos): a readable field's compound value (an
 * address, a location: names of filter_sf_compound_keys) or a record's
 * attributes. Its members must be scalars with the given names; anything
 * else (a parent record without attributes, record data in attributes)
 * fails the answer.
 */
static int jf_sf_flat(struct jf *j, const struct filter_name *names, int depth)
{
    struct jf_members m;
    int more;

    if (jf_depth(j, depth) < 0)
        return -1;
    for (more = jf_open(j, '}'); more > 0; more = jf_next(j, '}', 0)) {
        if (jf_key(j, &m, &j->key) < 0)
            return -1;
        if (j->pos >= j->len)
            return jf_fail(j, j->pos, "premature end of input");
        if (!jf_in(&j->key, names) || j->in[j->pos] == '{' || j->in[j->pos] == '[')
            return jf_fail(j, m.ks, "an object that is neither a record nor a compound value");
        if (jf_skip(j, depth + 1) < 0)
            return -1;
    }
    return more;
}

/* A readable field's array value: only [] passes. */
static int jf_sf_empty_array(struct jf *j)
{
    size_t p = jf_ws(j, j->pos + 1);

    if (p < j->len && j->in[p] == ']') {
        j->pos = p + 1;
        return 0;
    }
    return jf_fail(j, j->pos, "an array field");
}

/*
 * A record of the type at info->type_off, as filter_sf_record: attributes,
 * Id, nested records and child-query results (filtered by their own type,
 * null when that type has no rules) and readable fields stay.
 */
static int jf_sf_record(struct jf *j, const struct jf_info *info, int depth)
{
    const struct rules_object *o, *no;
    struct jf_members m = {0, 0, 0, 0};
    struct jf_info ni;
    int more;

    ni.dropped = NULL;
    if (jf_sf_type(j, info->type_off, &o) < 0)
        return -1;
    for (more = jf_open(j, '}'); more > 0; more = jf_next(j, '}', m.kept == 0), m.ord++) {
        size_t vs;
        int readable;

        if (jf_key(j, &m, &j->key) < 0)
            goto fail;
        if (j->pos >= j->len) {
            jf_fail(j, j->pos, "premature end of input");
            goto fail;
        }
        vs = j->pos;
        if (info->dropped != NULL && (info->dropped[m.ord / 64] >> (m.ord % 64) & 1)) {
            /* A later member has this key: it alone counts, as in a parsed tree. */
            if (jf_skip(j, depth + 1) < 0 || jf_drop(j, &m) < 0)
                goto fail;
            continue;
        }
        if (jf_is(&j->key, "attributes", 10) || strcasecmp(j->key.s, "Id") == 0) {
            /* kept whole, so they must hold no record data: an Id is a scalar, attributes
             * only the names of filter_sf_attributes_keys, with scalar values */
            if (j->in[vs] == '[' || (j->in[vs] == '{' && j->key.len == 2)) {
                jf_fail(j, vs, "an Id that is not a scalar");
                goto fail;
            }
            if ((j->in[vs] == '{' ? jf_sf_flat(j, filter_sf_attributes_keys, depth + 1)
                                  : jf_skip(j, depth + 1)) < 0)
                goto fail;
            jf_keep(j, &m);
            continue;
        }
        readable = o != NULL && rules_can_read(o, j->key.s);
        if (j->in[vs] == '{') {
            if (jf_prescan(j, vs, &ni, 1) < 0)
                goto fail;
            if (ni.attrs && ni.type_off == JF_NONE) {
                jf_fail(j, vs, "a record without a type");
                goto fail;
            }
            if (ni.type_off != JF_NONE || ni.records) {
                if (ni.type_off != JF_NONE && jf_sf_type(j, ni.type_off, &no) < 0)
                    goto fail;
                if (ni.type_off != JF_NONE && no == NULL) {
                    if (jf_skip(j, depth + 1) < 0 || jf_cut(j, vs, j->pos, "null") < 0)
                        goto fail;
                    j->removed++;
                } else if (jf_sf_object(j, &ni, depth + 1) < 0) {
                    goto fail;
                }
                free(ni.dropped);
                ni.dropped = NULL;
                jf_keep(j, &m);
                continue;
            }
            free(ni.dropped);
            ni.dropped = NULL;
            /* Kept whole only as a compound value (an address, a location). */
            if (readable && jf_sf_flat(j, filter_sf_compound_keys, depth + 1) < 0)
                goto fail;
        } else if (j->in[vs] == '[' && readable && jf_sf_empty_array(j) < 0) {
            goto fail; /* no field holds an array: records in it would pass unfiltered */
        }
        if (j->pos == vs && jf_skip(j, depth + 1) < 0)
            goto fail;
        if (readable)
            jf_keep(j, &m);
        else if (jf_drop(j, &m) < 0)
            goto fail;
    }
    return more;

fail:
    free(ni.dropped);
    return -1;
}

/*
 * An object: a record when it has attributes.type, else every member is
 * walked. Fails closed on what is a record but cannot be typed: attributes
 * without a type, an "Id" without attributes, an element of "records" or
 * "searchRecords" that is not a record or null.
 */
static int jf_sf_object(struct jf *j, const struct jf_info *info, int depth)
{
    struct jf_members m = {0, 0, 0, 0};
    int more;

    if (jf_depth(j, depth) < 0)
        return -1;
    if (info->type_off != JF_NONE)
        return jf_sf_record(j, info, depth);
    if (info->attrs)
        return jf_fail(j, j->pos, "a record without a type");
    if (info->has_id)
        return jf_fail(j, j->pos, "a record without attributes");
    for (more = jf_open(j, '}'); more > 0; more = jf_next(j, '}', 0)) {
        if (jf_key(j, &m, &j->key) < 0)
            return -1;
        if (j->pos >= j->len)
            return jf_fail(j, j->pos, "premature end of input");
        if (j->in[j->pos] == '[' &&
            (jf_is(&j->key, "records", 7) || jf_is(&j->key, "searchRecords", 13))) {
            if (jf_sf_records(j, depth + 1) < 0)
                return -1;
        } else if (jf_sf_value(j, depth + 1) < 0) {
            return -1;
        }
    }
    return more;
}

/* ---- entry points ---- */

static void jf_init(struct jf *j, const char *in, size_t len, struct jsonfilter_out *out,
                    const struct rules_crm *rc, char *err, size_t errlen)
{
    j->in = (const unsigned char *)in;
    j->len = len;
    j->pos = j->copied = j->removed = 0;
    j->out = out;
    j->rc = rc;
    j->err = err;
    j->errlen = errlen;
    j->failed = 0;
    j->oom = 0;
    j->unique = 0;
    j->skip = NULL;
    j->skiplen = 0;
    j->hs_shape = FILTER_HS_RECORDS;
    j->key.heap = j->aux.heap = NULL;
    j->key.s = j->key.small;
    j->aux.s = j->aux.small;
    j->key.len = j->aux.len = j->key.cap = j->aux.cap = 0;
    j->slots = NULL;
    j->nslots = 0;
    j->gen = 0;
    j->bits = j->small_bits;
    j->nwords = JF_SMALL_WORDS;
    out->len = 0;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
}

/* Check what surrounds the root, run filter on it, finish the output. */
static int jf_run(struct jf *j, int salesforce, const struct rules_object *o, size_t *removed)
{
    int rc;

    *removed = 0;
    if (j->len > JSONFILTER_MAX_BYTES) {
        jf_fail(j, 0, "answer larger than 64 MiB");
        goto fail;
    }
    j->pos = jf_ws(j, 0);
    if (j->pos >= j->len || (j->in[j->pos] != '{' && j->in[j->pos] != '[')) {
        jf_fail(j, j->pos, "'[' or '{' expected");
        goto fail;
    }
    /* The output is never longer than the input: one allocation. */
    if (j->out->cap < j->len) {
        char *b = realloc(j->out->buf, j->len);

        if (b == NULL) {
            jf_oom(j);
            goto fail;
        }
        j->out->buf = b;
        j->out->cap = j->len;
    }
    if (salesforce) {
        rc = jf_sf_value(j, 0);
    } else if (j->in[j->pos] == '{' && j->hs_shape == FILTER_HS_RECORDS) {
        struct jf_hs_root root = {j->pos, 0, {JF_NONE, JF_NONE, 0, 0, 0, 0, 0, NULL}};

        rc = jf_hs_record(j, o, 0, &root);
    } else if (j->in[j->pos] == '{' && j->hs_shape == FILTER_HS_LINKS) {
        rc = jf_hs_links(j);
    } else {
        rc = jf_hs_walk(j, 0); /* a root array, or a schema answer: no record anywhere */
    }
    if (rc < 0)
        goto fail;
    j->pos = jf_ws(j, j->pos);
    if (j->pos != j->len) {
        jf_fail(j, j->pos, "end of input expected");
        goto fail;
    }
    if (jf_emit(j, j->len) < 0)
        goto fail;
    *removed = j->removed;
    rc = 0;
    goto done;

fail:
    j->out->len = 0;
    rc = -1;
done:
    if (j->slots != j->small_slots)
        free(j->slots);
    if (j->bits != j->small_bits)
        free(j->bits);
    free(j->key.heap);
    free(j->aux.heap);
    return rc;
}

int jsonfilter_hubspot(const struct rules_ws *ws, const char *object, enum filter_hs_shape shape,
                       const char *in, size_t len, struct jsonfilter_out *out, size_t *removed,
                       char *err, size_t errlen)
{
    const struct rules_crm *rc = rules_crm_of(ws, CRM_HUBSPOT);
    struct jf j;

    jf_init(&j, in, len, out, rc, err, errlen);
    j.hs_shape = shape;
    return jf_run(&j, 0, object != NULL ? rules_object_find(rc, object) : NULL, removed);
}

int jsonfilter_salesforce(const struct rules_ws *ws, const char *in, size_t len,
                          struct jsonfilter_out *out, size_t *removed, char *err, size_t errlen)
{
    struct jf j;

    jf_init(&j, in, len, out, rules_crm_of(ws, CRM_SALESFORCE), err, errlen);
    return jf_run(&j, 1, NULL, removed);
}

static json_t *jf_build(struct jf *j, int depth);

/*
 * jsonfilter_member and jsonfilter_member_value: with value NULL, the
 * member's span in *off, *vlen; else each occurrence of the member is
 * built into *value (the last kept), in the same single pass that
 * validates the rest. 1, 0 or -1 (-2 for memory when building).
 */
static int jf_member(const char *in, size_t len, const char *key, size_t *off, size_t *vlen,
                     json_t **value, char *err, size_t errlen)
{
    struct jsonfilter_out none = {0}; /* nothing is written: no member is cut */
    size_t klen = strlen(key);
    struct jf j;
    int more, rc = -1, found = 0;

    jf_init(&j, in, len, &none, NULL, err, errlen);
    if (len > JSONFILTER_MAX_BYTES) {
        jf_fail(&j, 0, "answer larger than 64 MiB");
        goto done;
    }
    j.pos = jf_ws(&j, 0);
    if (j.pos >= j.len || j.in[j.pos] != '{') {
        jf_fail(&j, j.pos, "'{' expected");
        goto done;
    }
    for (more = jf_open(&j, '}'); more > 0; more = jf_next(&j, '}', 0)) {
        struct jf_members m;
        size_t start;

        if (jf_key(&j, &m, &j.key) < 0)
            goto done;
        start = j.pos;
        if (value != NULL && jf_is(&j.key, key, klen)) {
            /* built where it stands (its nested keys reuse j.key: compared first) */
            json_t *v = jf_build(&j, 1);
            if (v == NULL)
                goto done;
            json_decref(*value);
            *value = v;
            found = 1;
            continue;
        }
        if (jf_skip(&j, 1) < 0)
            goto done;
        if (value == NULL && jf_is(&j.key, key, klen)) {
            *off = start;
            *vlen = j.pos - start;
            found = 1;
        }
    }
    if (more < 0)
        goto done;
    j.pos = jf_ws(&j, j.pos);
    if (j.pos != j.len) {
        jf_fail(&j, j.pos, "end of input expected");
        goto done;
    }
    rc = found;
done:
    if (rc < 0 && value != NULL) {
        json_decref(*value);
        *value = NULL;
        if (j.oom)
            rc = -2;
    }
    free(j.key.heap);
    free(j.aux.heap);
    return rc;
}

int jsonfilter_member(const char *in, size_t len, const char *key, size_t *off, size_t *vlen,
                      char *err, size_t errlen)
{
    return jf_member(in, len, key, off, vlen, NULL, err, errlen);
}

int jsonfilter_member_value(const char *in, size_t len, const char *key, json_t **value, char *err,
                            size_t errlen)
{
    size_t off, vlen;

    *value = NULL;
    return jf_member(in, len, key, &off, &vlen, value, err, errlen);
}

/* A number already checked by jf_number, in[start..end), as jansson makes it. */
static json_t *jf_number_value(struct jf *j, size_t start, size_t end)
{
    char small[64], *buf = small, *stop;
    size_t n = end - start;
    int real = 0;
    json_t *v;

    for (size_t p = start; p < end; p++)
        real |= j->in[p] == '.' || j->in[p] == 'e' || j->in[p] == 'E';
    if (n >= sizeof(small) && (buf = malloc(n + 1)) == NULL)
        return NULL;
    memcpy(buf, j->in + start, n);
    buf[n] = '\0';
    /* the range was checked: neither overflows */
    v = real ? json_real(strtod(buf, &stop)) : json_integer(strtoll(buf, &stop, 10));
    if (buf != small)
        free(buf);
    return v;
}

/* Build the value at pos (at depth) as json_loadb would; NULL with j failed. */
static json_t *jf_build(struct jf *j, int depth)
{
    json_t *v = NULL, *item;
    size_t start = j->pos;
    int more;

    if (jf_depth(j, depth) < 0)
        return NULL;
    switch (j->in[j->pos]) {
    case '{':
        if ((v = json_object()) == NULL)
            break;
        for (more = jf_open(j, '}'); more > 0; more = jf_next(j, '}', 0)) {
            struct jf_members m;
            char small[64], *key = small;
            size_t klen;
            int rc;

            if (jf_key(j, &m, &j->key) < 0)
                goto fail;
            if (j->skip != NULL && jf_is(&j->key, j->skip, j->skiplen)) {
                if (jf_skip(j, depth + 1) < 0)
                    goto fail;
                continue;
            }
            /* nested members reuse j->key */
            klen = j->key.len;
            if (klen >= sizeof(small) && (key = malloc(klen + 1)) == NULL)
                goto oom;
            memcpy(key, j->key.s, klen + 1);
            if (j->unique && json_object_getn(v, key, klen) != NULL) {
                jf_fail(j, j->pos, "duplicate object key");
                if (key != small)
                    free(key);
                goto fail;
            }
            item = jf_build(j, depth + 1);
            /* valid UTF-8 without NUL (jf_string); a later duplicate replaces, as in jansson */
            rc = item != NULL ? json_object_setn_new_nocheck(v, key, klen, item) : -1;
            if (key != small)
                free(key);
            if (item == NULL)
                goto fail;
            if (rc < 0)
                goto oom;
        }
        if (more < 0)
            goto fail;
        return v;
    case '[':
        if ((v = json_array()) == NULL)
            break;
        for (more = jf_open(j, ']'); more > 0; more = jf_next(j, ']', 0)) {
            if ((item = jf_build(j, depth + 1)) == NULL)
                goto fail;
            if (json_array_append_new(v, item) < 0)
                goto oom;
        }
        if (more < 0)
            goto fail;
        return v;
    case '"':
        if (jf_string(j, &j->pos, &j->aux) < 0)
            return NULL;
        v = json_stringn_nocheck(j->aux.s, j->aux.len);
        break;
    case 't':
        if (jf_literal(j, "true") < 0)
            return NULL;
        v = json_true();
        break;
    case 'f':
        if (jf_literal(j, "false") < 0)
            return NULL;
        v = json_false();
        break;
    case 'n':
        if (jf_literal(j, "null") < 0)
            return NULL;
        v = json_null();
        break;
    default:
        if (j->in[j->pos] != '-' && !jf_isdigit(j->pos, j)) {
            jf_fail(j, j->pos, "invalid token");
            return NULL;
        }
        if (jf_number(j, &j->pos) < 0)
            return NULL;
        v = jf_number_value(j, start, j->pos);
        break;
    }
    if (v == NULL)
        jf_oom(j);
    return v;
oom:
    jf_oom(j);
fail:
    json_decref(v);
    return NULL;
}

static json_t *jf_parse(const char *in, size_t len, int unique, const char *skip, char *err,
                        size_t errlen)
{
    struct jsonfilter_out none = {0}; /* nothing is written */
    json_t *root = NULL;
    struct jf j;

    jf_init(&j, in, len, &none, NULL, err, errlen);
    j.unique = unique;
    j.skip = skip;
    j.skiplen = skip != NULL ? strlen(skip) : 0;
    if (len > JSONFILTER_MAX_BYTES) {
        jf_fail(&j, 0, "input larger than 64 MiB");
        goto done;
    }
    j.pos = jf_ws(&j, 0);
    if (j.pos >= j.len || (j.in[j.pos] != '{' && j.in[j.pos] != '[')) {
        jf_fail(&j, j.pos, "'[' or '{' expected");
        goto done;
    }
    root = jf_build(&j, 0);
    if (root == NULL)
        goto done;
    j.pos = jf_ws(&j, j.pos);
    if (j.pos != j.len) {
        jf_fail(&j, j.pos, "end of input expected");
        json_decref(root);
        root = NULL;
    }
done:
    free(j.key.heap);
    free(j.aux.heap);
    return root;
}

json_t *jsonfilter_parse(const char *in, size_t len, char *err, size_t errlen)
{
    return jf_parse(in, len, 0, NULL, err, errlen);
}

json_t *jsonfilter_parse_without(const char *in, size_t len, const char *skip, char *err,
                                 size_t errlen)
{
    return jf_parse(in, len, 0, skip, err, errlen);
}

json_t *jsonfilter_parse_unique(const char *in, size_t len, char *err, size_t errlen)
{
    return jf_parse(in, len, 1, NULL, err, errlen);
}

void jsonfilter_out_free(struct jsonfilter_out *out)
{
    free(out->buf);
    out->buf = NULL;
    out->len = out->cap = 0;
}
