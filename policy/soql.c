/*
 * soql.c - recursive-descent parser for the safe subset of SOQL (see soql.h
 * and reference/salesforce-api.md section 12.2).
 *
 * The parser is the read-whitelisting boundary for Salesforce: every field
 * a query could read or infer (SELECT, WHERE, GROUP BY, HAVING, ORDER BY, in
 * the query and in every subquery) must come out as a soql_ref, so anything
 * the grammar below does not know is rejected rather than skipped. Two
 * stages: a hand-written tokenizer that also validates the bytes (length,
 * UTF-8, control characters, comments, binds), then the grammar over the
 * token array. Recursion (parenthesised conditions, NOT, function
 * arguments, subqueries) is bounded by SOQL_MAX_DEPTH.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crm.h"
#include "soql.h"

enum soql_tok_kind {
    SOQL_TOK_EOF,
    SOQL_TOK_IDENT,
    SOQL_TOK_STRING,
    SOQL_TOK_NUMBER,
    SOQL_TOK_DATE,
    SOQL_TOK_DATETIME,
    SOQL_TOK_DATE_N,   /* LAST_N_DAYS:30 */
    SOQL_TOK_CURRENCY, /* USD100.50 (USD100 alone lexes as an identifier) */
    SOQL_TOK_COMMA,
    SOQL_TOK_DOT,
    SOQL_TOK_LPAREN,
    SOQL_TOK_RPAREN,
    SOQL_TOK_OP, /* = != <> < <= > >= */
};

struct soql_tok {
    enum soql_tok_kind kind;
    size_t off;
    size_t len;
};

struct soql_parser {
    const char *text;
    size_t len;
    struct soql_tok *toks;
    size_t ntoks;
    size_t cap;
    size_t pos;
    int depth;
    char *err;
    size_t errlen;
    int failed;
};

/* Date literals that stand alone (TODAY) and those that take ":n". */
static const char *const soql_date_literals[] = {
    "YESTERDAY",
    "TODAY",
    "TOMORROW",
    "LAST_WEEK",
    "THIS_WEEK",
    "NEXT_WEEK",
    "LAST_MONTH",
    "THIS_MONTH",
    "NEXT_MONTH",
    "LAST_90_DAYS",
    "NEXT_90_DAYS",
    "THIS_QUARTER",
    "LAST_QUARTER",
    "NEXT_QUARTER",
    "THIS_YEAR",
    "LAST_YEAR",
    "NEXT_YEAR",
    "THIS_FISCAL_QUARTER",
    "LAST_FISCAL_QUARTER",
    "NEXT_FISCAL_QUARTER",
    "THIS_FISCAL_YEAR",
    "LAST_FISCAL_YEAR",
    "NEXT_FISCAL_YEAR",
    NULL,
};

static const char *const soql_date_n_literals[] = {
    "LAST_N_DAYS",
    "NEXT_N_DAYS",
    "N_DAYS_AGO",
    "LAST_N_WEEKS",
    "NEXT_N_WEEKS",
    "N_WEEKS_AGO",
    "LAST_N_MONTHS",
    "NEXT_N_MONTHS",
    "N_MONTHS_AGO",
    "LAST_N_QUARTERS",
    "NEXT_N_QUARTERS",
    "N_QUARTERS_AGO",
    "LAST_N_YEARS",
    "NEXT_N_YEARS",
    "N_YEARS_AGO",
    "LAST_N_FISCAL_QUARTERS",
    "NEXT_N_FISCAL_QUARTERS",
    "N_FISCAL_QUARTERS_AGO",
    "LAST_N_FISCAL_YEARS",
    "NEXT_N_FISCAL_YEARS",
    "N_FISCAL_YEARS_AGO",
    NULL,
};

/* Functions whose only argument is a field (or another of these). */
static const char *const soql_functions[] = {
    "COUNT",
    "COUNT_DISTINCT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "toLabel",
    "FORMAT",
    "convertCurrency",
    "convertTimezone",
    "CALENDAR_MONTH",
    "CALENDAR_QUARTER",
    "CALENDAR_YEAR",
    "DAY_IN_MONTH",
    "DAY_IN_WEEK",
    "DAY_IN_YEAR",
    "DAY_ONLY",
    "FISCAL_MONTH",
    "FISCAL_QUARTER",
    "FISCAL_YEAR",
    "HOUR_IN_DAY",
    "WEEK_IN_MONTH",
    "WEEK_IN_YEAR",
    "GROUPING",
    NULL,
};

/*
 * Functions Salesforce refuses at the top of a GROUP BY or ORDER BY item
 * (convertTimezone is only valid inside a date function).
 */
static const char *const soql_not_in_group_by[] = {
    "toLabel",
    "FORMAT",
    "convertCurrency",
    "convertTimezone",
    "COUNT",
    "COUNT_DISTINCT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "GROUPING",
    NULL,
};

static const char *const soql_not_in_order_by[] = {
    "toLabel", "FORMAT", "convertCurrency", "convertTimezone", NULL,
};

/*
 * Words that can never be a field or object name (Salesforce's reserved
 * list, without GROUP and ORDER, which are also object names).
 */
static const char *const soql_reserved[] = {
    "AND",  "ASC",  "DESC",  "EXCLUDES", "FIRST",  "FROM",  "HAVING", "IN",     "INCLUDES",
    "LAST", "LIKE", "LIMIT", "NOT",      "NULL",   "NULLS", "OR",     "SELECT", "WHERE",
    "WITH", "TRUE", "FALSE", "TYPEOF",   "OFFSET", "USING", NULL,
};

/* Words that may follow the FROM object; any other identifier there is an alias. */
static const char *const soql_after_from[] = {
    "WHERE", "WITH", "GROUP", "ORDER", "LIMIT", "OFFSET", "FOR", "UPDATE", "USING", "ALL", NULL,
};

static void soql_fail(struct soql_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records the first error only: later ones are consequences of it. */
static void soql_fail(struct soql_parser *p, const char *fmt, ...)
{
    va_list ap;

    if (p->failed)
        return;
    p->failed = 1;
    if (p->errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(p->err, p->errlen, fmt, ap);
    va_end(ap);
}

static void soql_oom(struct soql_parser *p)
{
    if (p->failed)
        return;
    p->failed = 1;
    if (p->errlen > 0)
        p->err[0] = '\0';
}

static int soql_is_alpha(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int soql_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int soql_is_identc(int c)
{
    return soql_is_alpha(c) || soql_is_digit(c) || c == '_';
}

static int soql_in_list(const char *s, size_t n, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strlen(list[i]) == n && strncasecmp(s, list[i], n) == 0)
            return 1;
    return 0;
}

/*
 * Rejects what must never reach the tokenizer: over-long text, NUL and other
 * control characters (a proxy and Salesforce may disagree on where the query
 * ends) and invalid UTF-8 (overlong forms, surrogates, > U+10FFFF).
 */
static int soql_check_bytes(struct soql_parser *p)
{
    const unsigned char *s = (const unsigned char *)p->text;
    size_t i = 0, n = p->len;

    if (n > SOQL_MAX_LEN) {
        soql_fail(p, "query longer than %d characters", SOQL_MAX_LEN);
        return -1;
    }
    while (i < n) {
        unsigned c = s[i];
        size_t need;

        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
                soql_fail(p, "control character 0x%02x at offset %zu", c, i);
                return -1;
            }
            i++;
            continue;
        }
        need = crm_utf8_seq(s + i, n - i);
        if (need == 0)
            goto fail;
        i += need;
    }
    return 0;
fail:
    soql_fail(p, "invalid UTF-8 at offset %zu", i);
    return -1;
}

static int soql_push(struct soql_parser *p, enum soql_tok_kind kind, size_t off, size_t len)
{
    if (p->ntoks == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 64;
        struct soql_tok *t = realloc(p->toks, ncap * sizeof(*t));

        if (t == NULL) {
            soql_oom(p);
            return -1;
        }
        p->toks = t;
        p->cap = ncap;
    }
    p->toks[p->ntoks].kind = kind;
    p->toks[p->ntoks].off = off;
    p->toks[p->ntoks].len = len;
    p->ntoks++;
    return 0;
}

/* Number of ASCII digits at s[i..n), at most max. */
static size_t soql_digits(const char *s, size_t i, size_t n, size_t max)
{
    size_t k = 0;

    while (i + k < n && k < max && soql_is_digit((unsigned char)s[i + k]))
        k++;
    return k;
}

/* Two digits at s[i] with a value in [lo, hi]; 0 if not. */
static int soql_two(const char *s, size_t i, size_t n, int lo, int hi)
{
    int v;

    if (soql_digits(s, i, n, 2) != 2)
        return 0;
    v = (s[i] - '0') * 10 + (s[i + 1] - '0');
    return v >= lo && v <= hi;
}

/*
 * A date (YYYY-MM-DD) or datetime (YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm|-hh:mm))
 * at s[i]; returns its length, or 0 with the error set.
 */
static size_t soql_lex_date(struct soql_parser *p, size_t i, enum soql_tok_kind *kind)
{
    const char *s = p->text;
    size_t n = p->len, j = i;

    if (!(soql_digits(s, j, n, 4) == 4 && j + 4 < n && s[j + 4] == '-' &&
          soql_two(s, j + 5, n, 1, 12) && j + 7 < n && s[j + 7] == '-' &&
          soql_two(s, j + 8, n, 1, 31)))
        goto fail;
    j += 10;
    *kind = SOQL_TOK_DATE;
    if (j < n && s[j] == 'T') {
        j++;
        if (!(soql_two(s, j, n, 0, 23) && j + 2 < n && s[j + 2] == ':' &&
              soql_two(s, j + 3, n, 0, 59) && j + 5 < n && s[j + 5] == ':' &&
              soql_two(s, j + 6, n, 0, 60)))
            goto fail;
        j += 8;
        if (j < n && s[j] == '.') {
            size_t k = soql_digits(s, j + 1, n, 9);

            if (k == 0)
                goto fail;
            j += 1 + k;
        }
        if (j < n && s[j] == 'Z') {
            j++;
        } else if (j < n && (s[j] == '+' || s[j] == '-')) {
            if (!(soql_two(s, j + 1, n, 0, 23) && j + 3 < n && s[j + 3] == ':' &&
                  soql_two(s, j + 4, n, 0, 59)))
                goto fail;
            j += 6;
        } else {
            goto fail;
        }
        *kind = SOQL_TOK_DATETIME;
    }
    if (j < n && soql_is_identc((unsigned char)s[j]))
        goto fail;
    return j - i;
fail:
    soql_fail(p, "malformed date or datetime at offset %zu", i);
    return 0;
}

/* A single-quoted string at s[i]; returns its length including quotes, or 0. */
static size_t soql_lex_string(struct soql_parser *p, size_t i)
{
    const char *s = p->text;
    size_t n = p->len, j = i + 1;

    while (j < n && s[j] != '\'') {
        if (s[j] != '\\') {
            j++;
            continue;
        }
        if (j + 1 >= n)
            break;
        switch (s[j + 1]) {
        case '\'':
        case '"':
        case '\\':
        case 'n':
        case 'r':
        case 't':
        case 'b':
        case 'f':
        case '_':
        case '%':
            j += 2;
            break;
        case 'u':
            for (size_t k = 2; k < 6; k++) {
                char c = j + k < n ? s[j + k] : '\0';

                if (!(soql_is_digit((unsigned char)c) || (c >= 'a' && c <= 'f') ||
                      (c >= 'A' && c <= 'F'))) {
                    soql_fail(p, "malformed \\u escape at offset %zu", j);
                    return 0;
                }
            }
            j += 6;
            break;
        default:
            soql_fail(p, "invalid escape sequence at offset %zu", j);
            return 0;
        }
    }
    if (j >= n) {
        soql_fail(p, "unterminated string starting at offset %zu", i);
        return 0;
    }
    return j + 1 - i;
}

/* A number at s[i]: [+-]digits[.digits]; returns its length, or 0. */
static size_t soql_lex_number(struct soql_parser *p, size_t i)
{
    const char *s = p->text;
    size_t n = p->len, j = i;

    if (s[j] == '+' || s[j] == '-')
        j++;
    j += soql_digits(s, j, n, n);
    if (j < n && s[j] == '.') {
        size_t k = soql_digits(s, j + 1, n, n);

        if (k == 0)
            goto fail;
        j += 1 + k;
    }
    if (j < n && (soql_is_identc((unsigned char)s[j]) || s[j] == '.'))
        goto fail;
    return j - i;
fail:
    soql_fail(p, "malformed number at offset %zu", i);
    return 0;
}

/* USD100: three letters, then digits (a currency literal's shape). */
static int soql_currency_shape(const char *s, size_t n)
{
    if (n < 4 || !soql_is_alpha((unsigned char)s[0]) || !soql_is_alpha((unsigned char)s[1]) ||
        !soql_is_alpha((unsigned char)s[2]))
        return 0;
    for (size_t i = 3; i < n; i++)
        if (!soql_is_digit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* An identifier at s[i], possibly a date-N literal or a decimal currency literal. */
static int soql_lex_ident(struct soql_parser *p, size_t i, size_t *out)
{
    const char *s = p->text;
    size_t n = p->len, j = i;

    while (j < n && soql_is_identc((unsigned char)s[j]))
        j++;
    if (j < n && s[j] == ':') {
        size_t k;

        if (!soql_in_list(s + i, j - i, soql_date_n_literals)) {
            if (j + 1 < n && soql_is_alpha((unsigned char)s[j + 1]))
                soql_fail(p, "construct not allowed: bind variable at offset %zu", j);
            else
                soql_fail(p, "unexpected ':' at offset %zu", j);
            return -1;
        }
        k = soql_digits(s, j + 1, n, 9);
        if (k == 0 || (j + 1 + k < n && soql_is_identc((unsigned char)s[j + 1 + k]))) {
            soql_fail(p, "date literal %.*s needs ':n' with a number n, at offset %zu",
                      (int)(j - i), s + i, i);
            return -1;
        }
        *out = j + 1 + k;
        return soql_push(p, SOQL_TOK_DATE_N, i, *out - i);
    }
    if (soql_currency_shape(s + i, j - i) && j + 1 < n && s[j] == '.' &&
        soql_is_digit((unsigned char)s[j + 1])) {
        size_t k = soql_digits(s, j + 1, n, n);

        if (j + 1 + k < n && (soql_is_identc((unsigned char)s[j + 1 + k]) || s[j + 1 + k] == '.')) {
            soql_fail(p, "malformed currency literal at offset %zu", i);
            return -1;
        }
        *out = j + 1 + k;
        return soql_push(p, SOQL_TOK_CURRENCY, i, *out - i);
    }
    *out = j;
    return soql_push(p, SOQL_TOK_IDENT, i, j - i);
}

/*
 * Splits the text into tokens. Comments, ';', binds and brackets are refused
 * here, by name, so that an agent learns which construct to drop.
 */
static int soql_lex(struct soql_parser *p)
{
    const char *s = p->text;
    size_t n = p->len, i = 0;

    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        unsigned char d = i + 1 < n ? (unsigned char)s[i + 1] : '\0';
        size_t k;
        enum soql_tok_kind kind;

        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            i++;
        } else if (soql_is_alpha(c)) {
            if (soql_lex_ident(p, i, &i) < 0)
                return -1;
        } else if (c == '-' && d == '-') {
            soql_fail(p, "construct not allowed: comment ('--') at offset %zu", i);
            return -1;
        } else if (c == '/' && d == '*') {
            soql_fail(p, "construct not allowed: comment ('/*') at offset %zu", i);
            return -1;
        } else if (soql_is_digit(c) || ((c == '-' || c == '+') && soql_is_digit(d))) {
            if (soql_is_digit(c) && soql_digits(s, i, n, 5) == 4 && i + 4 < n && s[i + 4] == '-') {
                if ((k = soql_lex_date(p, i, &kind)) == 0)
                    return -1;
            } else {
                if ((k = soql_lex_number(p, i)) == 0)
                    return -1;
                kind = SOQL_TOK_NUMBER;
            }
            if (soql_push(p, kind, i, k) < 0)
                return -1;
            i += k;
        } else if (c == '\'') {
            if ((k = soql_lex_string(p, i)) == 0 || soql_push(p, SOQL_TOK_STRING, i, k) < 0)
                return -1;
            i += k;
        } else if (c == ',' || c == '.' || c == '(' || c == ')') {
            kind = c == ','   ? SOQL_TOK_COMMA
                   : c == '.' ? SOQL_TOK_DOT
                   : c == '(' ? SOQL_TOK_LPAREN
                              : SOQL_TOK_RPAREN;
            if (soql_push(p, kind, i, 1) < 0)
                return -1;
            i++;
        } else if (c == '=' || c == '<' || c == '>' || (c == '!' && d == '=')) {
            k = (c == '!' || (c == '<' && (d == '=' || d == '>')) || (c == '>' && d == '=')) ? 2
                                                                                             : 1;
            if (soql_push(p, SOQL_TOK_OP, i, k) < 0)
                return -1;
            i += k;
        } else if (c == ':') {
            soql_fail(p, "construct not allowed: bind variable at offset %zu", i);
            return -1;
        } else if (c == ';') {
            soql_fail(p, "construct not allowed: ';' at offset %zu (one statement only)", i);
            return -1;
        } else if (c == '"') {
            soql_fail(p, "unexpected '\"' at offset %zu (strings are single-quoted)", i);
            return -1;
        } else if (c >= 0x80) {
            soql_fail(p, "unexpected non-ASCII character at offset %zu", i);
            return -1;
        } else {
            soql_fail(p, "unexpected '%c' at offset %zu", c, i);
            return -1;
        }
    }
    return soql_push(p, SOQL_TOK_EOF, n, 0);
}

static const struct soql_tok *soql_peek(struct soql_parser *p, size_t k)
{
    size_t i = p->pos + k;

    return &p->toks[i < p->ntoks ? i : p->ntoks - 1];
}

static const struct soql_tok *soql_next(struct soql_parser *p)
{
    const struct soql_tok *t = soql_peek(p, 0);

    if (p->pos + 1 < p->ntoks)
        p->pos++;
    return t;
}

static int soql_is(struct soql_parser *p, size_t k, enum soql_tok_kind kind)
{
    return soql_peek(p, k)->kind == kind;
}

/* Is token k the keyword kw (case-insensitive)? */
static int soql_kw(struct soql_parser *p, size_t k, const char *kw)
{
    const struct soql_tok *t = soql_peek(p, k);

    return t->kind == SOQL_TOK_IDENT && t->len == strlen(kw) &&
           strncasecmp(p->text + t->off, kw, t->len) == 0;
}

/* "unexpected 'x' at offset n (expected what)": the message an agent rewrites from. */
static void soql_unexpected(struct soql_parser *p, const struct soql_tok *t, const char *what)
{
    size_t len = t->len;

    if (t->kind == SOQL_TOK_EOF) {
        soql_fail(p, "unexpected end of query at offset %zu (expected %s)", t->off, what);
        return;
    }
    if (len > 40) {
        len = 40;
        while (len > 0 && ((unsigned char)p->text[t->off + len] & 0xc0) == 0x80)
            len--;
    }
    soql_fail(p, "unexpected '%.*s%s' at offset %zu (expected %s)", (int)len, p->text + t->off,
              len < t->len ? "..." : "", t->off, what);
}

static int soql_expect(struct soql_parser *p, enum soql_tok_kind kind, const char *what)
{
    if (!soql_is(p, 0, kind)) {
        soql_unexpected(p, soql_peek(p, 0), what);
        return -1;
    }
    soql_next(p);
    return 0;
}

static int soql_expect_kw(struct soql_parser *p, const char *kw)
{
    if (!soql_kw(p, 0, kw)) {
        soql_unexpected(p, soql_peek(p, 0), kw);
        return -1;
    }
    soql_next(p);
    return 0;
}

static int soql_enter(struct soql_parser *p)
{
    if (++p->depth > SOQL_MAX_DEPTH) {
        soql_fail(p, "query nested deeper than %d levels at offset %zu", SOQL_MAX_DEPTH,
                  soql_peek(p, 0)->off);
        return -1;
    }
    return 0;
}

static struct soql_query *soql_query_new(void)
{
    struct soql_query *q = calloc(1, sizeof(*q));

    if (q == NULL)
        return NULL;
    q->limit = -1;
    q->offset = -1;
    return q;
}

void soql_free(struct soql_query *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < q->nrefs; i++) {
        free(q->refs[i].path);
        q->refs[i].path = NULL;
        free(q->refs[i].field);
        q->refs[i].field = NULL;
    }
    free(q->refs);
    q->refs = NULL;
    for (size_t i = 0; i < q->nsubs; i++)
        soql_free(q->subs[i]);
    free(q->subs);
    q->subs = NULL;
    free(q->from);
    q->from = NULL;
    free(q);
}

const char *soql_clause_name(enum soql_clause clause)
{
    switch (clause) {
    case SOQL_SELECT:
        return "SELECT";
    case SOQL_WHERE:
        return "WHERE";
    case SOQL_GROUP_BY:
        return "GROUP BY";
    case SOQL_HAVING:
        return "HAVING";
    case SOQL_ORDER_BY:
        return "ORDER BY";
    }
    return "?";
}

static char *soql_dup_tok(struct soql_parser *p, const struct soql_tok *t)
{
    char *s = strndup(p->text + t->off, t->len);

    if (s == NULL)
        soql_oom(p);
    return s;
}

static int soql_add_sub(struct soql_parser *p, struct soql_query *q, struct soql_query *sub)
{
    struct soql_query **v = realloc(q->subs, (q->nsubs + 1) * sizeof(*v));

    if (v == NULL) {
        soql_oom(p);
        return -1;
    }
    q->subs = v;
    q->subs[q->nsubs++] = sub;
    return 0;
}

/*
 * A field path: ident ('.' ident)*. The last segment is the field, the rest
 * the relationship path. Adds one ref to q.
 */
static int soql_parse_path(struct soql_parser *p, struct soql_query *q, enum soql_clause clause)
{
    const struct soql_tok *first = soql_peek(p, 0), *last, *dot, *t;
    struct soql_ref *v;
    char *path = NULL, *field = NULL;

    if (first->kind != SOQL_TOK_IDENT ||
        soql_in_list(p->text + first->off, first->len, soql_reserved)) {
        soql_unexpected(p, first, "a field name");
        return -1;
    }
    last = soql_next(p);
    while (soql_is(p, 0, SOQL_TOK_DOT)) {
        dot = soql_next(p);
        t = soql_peek(p, 0);
        /*
         * "Account. Name" is not one path to Salesforce, and parsers disagree
         * on what it is (soql-parser-js reads a path with an empty field):
         * a path is written without spaces.
         */
        if (dot->off != last->off + last->len ||
            (t->kind != SOQL_TOK_EOF && t->off != dot->off + 1)) {
            soql_fail(p, "space around '.' in a field path at offset %zu", dot->off);
            return -1;
        }
        if (t->kind != SOQL_TOK_IDENT || soql_in_list(p->text + t->off, t->len, soql_reserved)) {
            soql_unexpected(p, t, "a field name after '.'");
            return -1;
        }
        last = soql_next(p);
    }
    if (last != first && (path = strndup(p->text + first->off, last->off - 1 - first->off)) == NULL)
        goto fail;
    if ((field = strndup(p->text + last->off, last->len)) == NULL)
        goto fail;
    if ((v = realloc(q->refs, (q->nrefs + 1) * sizeof(*v))) == NULL)
        goto fail;
    q->refs = v;
    q->refs[q->nrefs].path = path;
    q->refs[q->nrefs].field = field;
    q->refs[q->nrefs].clause = clause;
    q->nrefs++;
    return 0;
fail:
    free(path);
    path = NULL;
    free(field);
    field = NULL;
    soql_oom(p);
    return -1;
}

/*
 * A field or an allow-listed function of one: path | func '(' expr ')'.
 * *count_empty is set for COUNT() when the caller allows it (may be NULL).
 */
static int soql_parse_expr(struct soql_parser *p, struct soql_query *q, enum soql_clause clause,
                           int *count_empty)
{
    const struct soql_tok *name = soql_peek(p, 0);
    const char *s = p->text + name->off;

    if (name->kind != SOQL_TOK_IDENT || !soql_is(p, 1, SOQL_TOK_LPAREN))
        return soql_parse_path(p, q, clause);
    if (name->len == 6 && strncasecmp(s, "FIELDS", 6) == 0) {
        const struct soql_tok *arg = soql_peek(p, 2);

        if (arg->kind == SOQL_TOK_IDENT && arg->len <= 16)
            soql_fail(p, "construct not allowed: FIELDS(%.*s) at offset %zu (list the fields)",
                      (int)arg->len, p->text + arg->off, name->off);
        else
            soql_fail(p, "construct not allowed: FIELDS() at offset %zu (list the fields)",
                      name->off);
        return -1;
    }
    if (!soql_in_list(s, name->len, soql_functions)) {
        soql_fail(p, "construct not allowed: function %.*s() at offset %zu",
                  (int)(name->len > 40 ? 40 : name->len), s, name->off);
        return -1;
    }
    if (soql_enter(p) < 0)
        return -1;
    soql_next(p);
    soql_next(p);
    if (soql_is(p, 0, SOQL_TOK_RPAREN) && name->len == 5 && strncasecmp(s, "COUNT", 5) == 0 &&
        count_empty != NULL)
        *count_empty = 1;
    else if (soql_parse_expr(p, q, clause, NULL) < 0)
        return -1;
    if (soql_expect(p, SOQL_TOK_RPAREN, "')'") < 0)
        return -1;
    p->depth--;
    return 0;
}

/* A literal on the right of a comparison. SOQL never compares two fields. */
static int soql_parse_value(struct soql_parser *p)
{
    const struct soql_tok *t = soql_peek(p, 0);
    const char *s = p->text + t->off;

    switch (t->kind) {
    case SOQL_TOK_STRING:
    case SOQL_TOK_NUMBER:
    case SOQL_TOK_DATE:
    case SOQL_TOK_DATETIME:
    case SOQL_TOK_DATE_N:
    case SOQL_TOK_CURRENCY:
        soql_next(p);
        return 0;
    case SOQL_TOK_IDENT:
        if (soql_in_list(s, t->len, soql_date_literals) || soql_currency_shape(s, t->len) ||
            soql_kw(p, 0, "TRUE") || soql_kw(p, 0, "FALSE") || soql_kw(p, 0, "NULL")) {
            soql_next(p);
            return 0;
        }
        if (soql_in_list(s, t->len, soql_date_n_literals)) {
            soql_fail(p, "date literal %.*s needs ':n' at offset %zu", (int)t->len, s, t->off);
            return -1;
        }
        soql_unexpected(p, t, "a literal value; SOQL cannot compare a field with a field");
        return -1;
    default:
        soql_unexpected(p, t, "a literal value");
        return -1;
    }
}

/* '(' value (',' value)* ')' */
static int soql_parse_value_list(struct soql_parser *p)
{
    if (soql_parse_value(p) < 0)
        return -1;
    while (soql_is(p, 0, SOQL_TOK_COMMA)) {
        soql_next(p);
        if (soql_parse_value(p) < 0)
            return -1;
    }
    return soql_expect(p, SOQL_TOK_RPAREN, "',' or ')'");
}

static struct soql_query *soql_parse_query(struct soql_parser *p, int kind);

#define SOQL_TOP      0
#define SOQL_CHILD    1
#define SOQL_SEMIJOIN 2

static int soql_parse_cond(struct soql_parser *p, struct soql_query *q, enum soql_clause clause);

/* After "[NOT] IN (": a semi-join (WHERE only) or a list of literals. */
static int soql_parse_in(struct soql_parser *p, struct soql_query *q, enum soql_clause clause)
{
    struct soql_query *sub;

    if (!soql_kw(p, 0, "SELECT"))
        return soql_parse_value_list(p);
    if (clause != SOQL_WHERE) {
        soql_fail(p, "construct not allowed: semi-join in %s at offset %zu",
                  soql_clause_name(clause), soql_peek(p, 0)->off);
        return -1;
    }
    if ((sub = soql_parse_query(p, SOQL_SEMIJOIN)) == NULL)
        return -1;
    if (soql_add_sub(p, q, sub) < 0) {
        soql_free(sub);
        return -1;
    }
    return soql_expect(p, SOQL_TOK_RPAREN, "')'");
}

/*
 * term := NOT term | '(' cond ')' | expr op value | expr LIKE value
 *       | expr [NOT] IN '(' (values | semijoin) ')' | expr (INCLUDES|EXCLUDES) '(' values ')'
 * Every term is one nesting level (NOT and parentheses recurse).
 */
static int soql_parse_term(struct soql_parser *p, struct soql_query *q, enum soql_clause clause)
{
    const struct soql_tok *t;

    if (soql_enter(p) < 0)
        return -1;
    if (soql_kw(p, 0, "NOT")) {
        soql_next(p);
        if (soql_parse_term(p, q, clause) < 0)
            return -1;
    } else if (soql_is(p, 0, SOQL_TOK_LPAREN)) {
        soql_next(p);
        if (soql_parse_cond(p, q, clause) < 0 || soql_expect(p, SOQL_TOK_RPAREN, "')'") < 0)
            return -1;
    } else if (soql_kw(p, 0, "DISTANCE") || soql_kw(p, 0, "GEOLOCATION")) {
        soql_fail(p, "construct not allowed: DISTANCE/GEOLOCATION at offset %zu",
                  soql_peek(p, 0)->off);
        return -1;
    } else {
        if (soql_parse_expr(p, q, clause, NULL) < 0)
            return -1;
        t = soql_peek(p, 0);
        if (t->kind == SOQL_TOK_OP) {
            soql_next(p);
            if (soql_parse_value(p) < 0)
                return -1;
        } else if (soql_kw(p, 0, "LIKE")) {
            soql_next(p);
            if (!soql_is(p, 0, SOQL_TOK_STRING)) {
                soql_unexpected(p, soql_peek(p, 0), "a string after LIKE");
                return -1;
            }
            soql_next(p);
        } else if (soql_kw(p, 0, "INCLUDES") || soql_kw(p, 0, "EXCLUDES")) {
            soql_next(p);
            if (soql_expect(p, SOQL_TOK_LPAREN, "'('") < 0 || soql_parse_value_list(p) < 0)
                return -1;
        } else if (soql_kw(p, 0, "IN") || (soql_kw(p, 0, "NOT") && soql_kw(p, 1, "IN"))) {
            if (soql_kw(p, 0, "NOT"))
                soql_next(p);
            soql_next(p);
            if (soql_expect(p, SOQL_TOK_LPAREN, "'('") < 0 || soql_parse_in(p, q, clause) < 0)
                return -1;
        } else {
            soql_unexpected(p, t, "a comparison operator");
            return -1;
        }
    }
    /* Depth is only restored on success: a failure abandons the parse. */
    p->depth--;
    return 0;
}

/* cond := term ((AND|OR) term)* */
static int soql_parse_cond(struct soql_parser *p, struct soql_query *q, enum soql_clause clause)
{
    if (soql_parse_term(p, q, clause) < 0)
        return -1;
    while (soql_kw(p, 0, "AND") || soql_kw(p, 0, "OR")) {
        soql_next(p);
        if (soql_parse_term(p, q, clause) < 0)
            return -1;
    }
    return 0;
}

/* The token after a SELECT item or after the FROM object: an identifier there is an alias. */
static int soql_reject_alias(struct soql_parser *p, const char *where)
{
    const struct soql_tok *t = soql_peek(p, 0);

    /* A keyword out of place is a syntax error reported later, not an alias. */
    if (t->kind != SOQL_TOK_IDENT || soql_in_list(p->text + t->off, t->len, soql_reserved) ||
        soql_in_list(p->text + t->off, t->len, soql_after_from))
        return 0;
    soql_fail(p, "construct not allowed: %s alias '%.*s' at offset %zu", where,
              (int)(t->len > 40 ? 40 : t->len), p->text + t->off, t->off);
    return -1;
}

/*
 * item := '(' subquery ')' | TYPEOF ... (rejected) | expr
 * A top-level or child SELECT list; COUNT() must stand alone.
 */
static int soql_parse_select_list(struct soql_parser *p, struct soql_query *q)
{
    size_t nitems = 0;
    int count_empty = 0;
    size_t count_off = 0;

    for (;;) {
        const struct soql_tok *t = soql_peek(p, 0);

        if (t->kind == SOQL_TOK_LPAREN) {
            struct soql_query *sub;

            if (soql_enter(p) < 0)
                return -1;
            soql_next(p);
            if (!soql_kw(p, 0, "SELECT")) {
                soql_unexpected(p, soql_peek(p, 0), "SELECT to start a subquery");
                return -1;
            }
            if ((sub = soql_parse_query(p, SOQL_CHILD)) == NULL)
                return -1;
            if (soql_add_sub(p, q, sub) < 0) {
                soql_free(sub);
                return -1;
            }
            if (soql_expect(p, SOQL_TOK_RPAREN, "')'") < 0)
                return -1;
            p->depth--;
        } else if (soql_kw(p, 0, "TYPEOF")) {
            soql_fail(p, "construct not allowed: TYPEOF at offset %zu", t->off);
            return -1;
        } else if (soql_kw(p, 0, "DISTANCE") || soql_kw(p, 0, "GEOLOCATION")) {
            soql_fail(p, "construct not allowed: DISTANCE/GEOLOCATION at offset %zu", t->off);
            return -1;
        } else {
            int ce = 0;

            if (soql_parse_expr(p, q, SOQL_SELECT, &ce) < 0)
                return -1;
            if (ce) {
                count_empty = 1;
                count_off = t->off;
            }
            if (soql_reject_alias(p, "column") < 0)
                return -1;
        }
        nitems++;
        if (!soql_is(p, 0, SOQL_TOK_COMMA))
            break;
        soql_next(p);
    }
    if (count_empty && nitems > 1) {
        soql_fail(p, "COUNT() at offset %zu must be the only item in SELECT", count_off);
        return -1;
    }
    q->count_only = count_empty;
    return 0;
}

/* LIMIT and OFFSET take a plain non-negative integer. */
static int soql_parse_int(struct soql_parser *p, const char *what, long *out)
{
    const struct soql_tok *t = soql_peek(p, 0);
    long v = 0;

    if (t->kind != SOQL_TOK_NUMBER || !soql_is_digit((unsigned char)p->text[t->off])) {
        soql_unexpected(p, t, "a non-negative integer");
        return -1;
    }
    for (size_t i = 0; i < t->len; i++) {
        char c = p->text[t->off + i];

        if (!soql_is_digit((unsigned char)c)) {
            soql_unexpected(p, t, "a non-negative integer");
            return -1;
        }
        if (v > (2000000000L - (c - '0')) / 10) {
            soql_fail(p, "%s at offset %zu is out of range", what, t->off);
            return -1;
        }
        v = v * 10 + (c - '0');
    }
    soql_next(p);
    *out = v;
    return 0;
}

/* GROUP BY list, ORDER BY list (with ASC/DESC and NULLS FIRST/LAST). */
static int soql_parse_expr_list(struct soql_parser *p, struct soql_query *q,
                                enum soql_clause clause)
{
    const struct soql_tok *t;

    for (;;) {
        if (soql_kw(p, 0, "DISTANCE") || soql_kw(p, 0, "GEOLOCATION")) {
            soql_fail(p, "construct not allowed: DISTANCE/GEOLOCATION at offset %zu",
                      soql_peek(p, 0)->off);
            return -1;
        }
        t = soql_peek(p, 0);
        if (t->kind == SOQL_TOK_IDENT && soql_is(p, 1, SOQL_TOK_LPAREN) &&
            soql_in_list(p->text + t->off, t->len,
                         clause == SOQL_GROUP_BY ? soql_not_in_group_by : soql_not_in_order_by)) {
            soql_fail(p, "construct not allowed: %.*s() in %s at offset %zu", (int)t->len,
                      p->text + t->off, soql_clause_name(clause), t->off);
            return -1;
        }
        if (soql_parse_expr(p, q, clause, NULL) < 0)
            return -1;
        if (clause == SOQL_ORDER_BY) {
            if (soql_kw(p, 0, "ASC") || soql_kw(p, 0, "DESC"))
                soql_next(p);
            if (soql_kw(p, 0, "NULLS")) {
                soql_next(p);
                if (!soql_kw(p, 0, "FIRST") && !soql_kw(p, 0, "LAST")) {
                    soql_unexpected(p, soql_peek(p, 0), "FIRST or LAST");
                    return -1;
                }
                soql_next(p);
            }
        }
        if (!soql_is(p, 0, SOQL_TOK_COMMA))
            return 0;
        soql_next(p);
    }
}

/*
 * query := SELECT list FROM name [WHERE cond] [WITH SECURITY_ENFORCED|USER_MODE]
 *          [GROUP BY list [HAVING cond]] [ORDER BY list] [LIMIT n] [OFFSET n]
 *          [FOR VIEW|REFERENCE] [UPDATE TRACKING|VIEWSTAT]
 * A child subquery allows WHERE, ORDER BY, LIMIT and OFFSET; a semi-join
 * selects one field and allows WHERE only (Salesforce's own restrictions).
 */
static struct soql_query *soql_parse_query(struct soql_parser *p, int kind)
{
    struct soql_query *q = soql_query_new();
    const struct soql_tok *t;

    if (q == NULL) {
        soql_oom(p);
        return NULL;
    }
    q->is_child = kind == SOQL_CHILD;
    if (soql_expect_kw(p, "SELECT") < 0)
        goto fail;
    if (soql_kw(p, 0, "FROM")) {
        soql_unexpected(p, soql_peek(p, 0), "a field after SELECT");
        goto fail;
    }
    if (kind == SOQL_SEMIJOIN) {
        t = soql_peek(p, 0);
        if (t->kind != SOQL_TOK_IDENT || soql_is(p, 1, SOQL_TOK_LPAREN)) {
            soql_fail(p,
                      "semi-join at offset %zu must select one field (no functions or "
                      "subqueries)",
                      t->off);
            goto fail;
        }
        if (soql_parse_path(p, q, SOQL_SELECT) < 0)
            goto fail;
        if (soql_is(p, 0, SOQL_TOK_COMMA)) {
            soql_fail(p, "semi-join at offset %zu must select exactly one field",
                      soql_peek(p, 0)->off);
            goto fail;
        }
        if (soql_reject_alias(p, "column") < 0)
            goto fail;
    } else if (soql_parse_select_list(p, q) < 0) {
        goto fail;
    }
    if (soql_expect_kw(p, "FROM") < 0)
        goto fail;
    t = soql_peek(p, 0);
    if (t->kind != SOQL_TOK_IDENT || soql_in_list(p->text + t->off, t->len, soql_reserved)) {
        soql_unexpected(p, t, kind == SOQL_CHILD ? "a child relationship name" : "an object name");
        goto fail;
    }
    if ((q->from = soql_dup_tok(p, t)) == NULL)
        goto fail;
    soql_next(p);
    if (soql_is(p, 0, SOQL_TOK_DOT)) {
        soql_fail(p, "construct not allowed: relationship path in FROM at offset %zu",
                  soql_peek(p, 0)->off);
        goto fail;
    }
    if (soql_is(p, 0, SOQL_TOK_COMMA)) {
        soql_fail(p, "construct not allowed: more than one object in FROM at offset %zu",
                  soql_peek(p, 0)->off);
        goto fail;
    }
    if (soql_kw(p, 0, "USING")) {
        soql_fail(p, "construct not allowed: USING SCOPE at offset %zu", soql_peek(p, 0)->off);
        goto fail;
    }
    if (soql_reject_alias(p, "FROM") < 0)
        goto fail;

    if (soql_kw(p, 0, "WHERE")) {
        soql_next(p);
        if (soql_parse_cond(p, q, SOQL_WHERE) < 0)
            goto fail;
    }
    if (soql_kw(p, 0, "WITH") && kind == SOQL_TOP) {
        t = soql_next(p);
        if (soql_kw(p, 0, "SECURITY_ENFORCED") || soql_kw(p, 0, "USER_MODE")) {
            soql_next(p);
        } else if (soql_kw(p, 0, "DATA")) {
            soql_fail(p, "construct not allowed: WITH DATA CATEGORY at offset %zu", t->off);
            goto fail;
        } else if (soql_kw(p, 0, "SYSTEM_MODE")) {
            soql_fail(p, "construct not allowed: WITH SYSTEM_MODE at offset %zu", t->off);
            goto fail;
        } else {
            soql_unexpected(p, soql_peek(p, 0), "SECURITY_ENFORCED or USER_MODE");
            goto fail;
        }
    }
    if (soql_kw(p, 0, "GROUP") && soql_kw(p, 1, "BY") && kind == SOQL_TOP) {
        soql_next(p);
        soql_next(p);
        if (soql_kw(p, 0, "ROLLUP") || soql_kw(p, 0, "CUBE")) {
            t = soql_peek(p, 0);
            soql_fail(p, "construct not allowed: GROUP BY %s at offset %zu",
                      soql_kw(p, 0, "ROLLUP") ? "ROLLUP" : "CUBE", t->off);
            goto fail;
        }
        if (soql_parse_expr_list(p, q, SOQL_GROUP_BY) < 0)
            goto fail;
        if (soql_kw(p, 0, "HAVING")) {
            soql_next(p);
            if (soql_parse_cond(p, q, SOQL_HAVING) < 0)
                goto fail;
        }
    }
    if (soql_kw(p, 0, "ORDER") && soql_kw(p, 1, "BY") && kind != SOQL_SEMIJOIN) {
        soql_next(p);
        soql_next(p);
        if (soql_parse_expr_list(p, q, SOQL_ORDER_BY) < 0)
            goto fail;
    }
    if (soql_kw(p, 0, "LIMIT") && kind != SOQL_SEMIJOIN) {
        soql_next(p);
        if (soql_parse_int(p, "LIMIT", &q->limit) < 0)
            goto fail;
    }
    if (soql_kw(p, 0, "OFFSET") && kind != SOQL_SEMIJOIN) {
        soql_next(p);
        if (soql_parse_int(p, "OFFSET", &q->offset) < 0)
            goto fail;
    }
    if (soql_kw(p, 0, "FOR") && kind == SOQL_TOP) {
        t = soql_next(p);
        if (soql_kw(p, 0, "VIEW") || soql_kw(p, 0, "REFERENCE")) {
            soql_next(p);
        } else if (soql_kw(p, 0, "UPDATE")) {
            soql_fail(p, "construct not allowed: FOR UPDATE at offset %zu", t->off);
            goto fail;
        } else {
            soql_unexpected(p, soql_peek(p, 0), "VIEW or REFERENCE");
            goto fail;
        }
    }
    if (soql_kw(p, 0, "UPDATE") && kind == SOQL_TOP) {
        soql_next(p);
        if (!soql_kw(p, 0, "TRACKING") && !soql_kw(p, 0, "VIEWSTAT")) {
            soql_unexpected(p, soql_peek(p, 0), "TRACKING or VIEWSTAT");
            goto fail;
        }
        soql_next(p);
    }
    if (soql_kw(p, 0, "ALL") && soql_kw(p, 1, "ROWS")) {
        soql_fail(p, "construct not allowed: ALL ROWS at offset %zu (use /queryAll)",
                  soql_peek(p, 0)->off);
        goto fail;
    }
    return q;
fail:
    soql_free(q);
    return NULL;
}

struct soql_query *soql_parse(const char *text, size_t len, char *err, size_t errlen)
{
    struct soql_parser p;
    struct soql_query *q = NULL;

    memset(&p, 0, sizeof(p));
    p.text = text;
    p.len = len;
    p.err = err;
    p.errlen = errlen;
    if (errlen > 0)
        err[0] = '\0';
    if (text == NULL) {
        soql_fail(&p, "no query");
        goto fail;
    }
    if (soql_check_bytes(&p) < 0 || soql_lex(&p) < 0)
        goto fail;
    if (!soql_kw(&p, 0, "SELECT")) {
        soql_unexpected(&p, soql_peek(&p, 0), "SELECT");
        goto fail;
    }
    if ((q = soql_parse_query(&p, SOQL_TOP)) == NULL)
        goto fail;
    if (!soql_is(&p, 0, SOQL_TOK_EOF)) {
        const struct soql_tok *t = soql_peek(&p, 0);

        if (t->kind == SOQL_TOK_RPAREN)
            soql_unexpected(&p, t, "end of query; unbalanced ')'");
        else
            soql_unexpected(&p, t, "end of query");
        goto fail;
    }
    free(p.toks);
    p.toks = NULL;
    return q;
fail:
    soql_free(q);
    q = NULL;
    free(p.toks);
    p.toks = NULL;
    return NULL;
}
