/*
 * salesforce.c - classify Salesforce REST requests into CRM operations.
 *
 * The classifier knows the URL shapes of reference/salesforce-api.md §3 and
 * denies everything else. Every helper returns SF_OK, SF_REJECT (with the
 * reason in ctx->why) or SF_NOMEM; salesforce_classify() turns a rejection
 * into exactly one CRM_VERB_UNKNOWN operation, so a request is either
 * classified whole or denied whole (a composite with one bad subrequest is
 * denied entirely).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "crm.h"
#include "jsonfilter.h"
#include "salesforce.h"
#include "salesforce_internal.h"
#include "soql.h"

#define SF_MAX_SEGS      16    /* path segments; the deepest route has 7 */
#define SF_MAX_PARAMS    32    /* query parameters */
#define SF_MAX_OPS       10000 /* composite of collections: 25 x 200, with headroom */
#define SF_MAX_SUBREQ    500   /* composite/batch subrequests, graph nodes */
#define SF_MAX_RECORDS   2000  /* collections retrieve by POST allows 2000 ids */
#define SF_MAX_TREE      5     /* sObject tree levels */
#define SF_MAX_SOQL_NEST 16    /* subquery/semi-join nesting we follow */

enum { SF_OK = 0, SF_REJECT = -1, SF_NOMEM = -2 };

struct sf_ctx {
    const struct sf_schema *schema;
    struct crm_ops *ops;
    size_t merge_from; /* sf_op_for merges only ops of the current query or search */
    char why[512];
    int malformed; /* the rejection is the SOQL parser's */
};

/* A request body: raw bytes from the client, or a JSON value from a subrequest. */
struct sf_body {
    const char *raw;
    size_t len;
    const char *content_type;
    json_t *json; /* parsed (owned when raw) or given (borrowed) */
    int from_raw;
};

struct sf_path {
    char *buf;
    const char *seg[SF_MAX_SEGS];
    size_t len[SF_MAX_SEGS];
    size_t n;
};

struct sf_param {
    const char *key, *val;
    size_t vlen;
};

struct sf_query {
    char *buf;
    struct sf_param v[SF_MAX_PARAMS];
    size_t n;
};

/* Binary fields served by GET /sobjects/S/id/field. */
static const struct {
    const char *object, *field;
} sf_blob_fields[] = {
    {"Attachment", "Body"},
    {"Document", "Body"},
    {"ContentVersion", "VersionData"},
};

/* ------------------------------------------------------------------ */
/* context, ops                                                        */

__attribute__((format(printf, 2, 3))) static int sf_reject(struct sf_ctx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
    /* The reason quotes request bytes: keep it printable ASCII for JSON and logs. */
    for (char *p = c->why; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    }
    return SF_REJECT;
}

/* Prefix the rejection reason with "what i: " (truncating the reason if need be). */
static void sf_why_prefix(struct sf_ctx *c, const char *what, size_t i)
{
    char inner[sizeof(c->why)];
    int n;

    memcpy(inner, c->why, sizeof(inner));
    n = snprintf(c->why, sizeof(c->why), "%s %zu: ", what, i);
    if (n > 0 && (size_t)n < sizeof(c->why)) {
        size_t il = strnlen(inner, sizeof(c->why) - (size_t)n - 1);
        memcpy(c->why + n, inner, il);
        c->why[(size_t)n + il] = '\0';
    }
}

/* A new op (object may be NULL); NULL when out of memory or over SF_MAX_OPS (why set). */
static struct crm_op *sf_op(struct sf_ctx *c, enum crm_verb verb, const char *object, size_t len)
{
    struct crm_op *op;

    if (c->ops->n >= SF_MAX_OPS) {
        sf_reject(c, "request has more than %d operations", SF_MAX_OPS);
        return NULL;
    }
    op = crm_ops_add(c->ops, CRM_SALESFORCE, verb);
    if (op == NULL)
        return NULL;
    if (object != NULL && crm_op_set(&op->object, object, len) < 0)
        return NULL;
    return op;
}

/* SF_NOMEM unless sf_op refused for size (then SF_REJECT). */
static int sf_op_fail(struct sf_ctx *c)
{
    return c->ops->n >= SF_MAX_OPS ? SF_REJECT : SF_NOMEM;
}

/* ------------------------------------------------------------------ */
/* decoding                                                            */

/* Whitespace inside SOQL/SOSL text (multi-line queries arrive as %0A). */
static int sf_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/*
 * Percent-decode src[0..len) into dst (room for len bytes), once. form: '+'
 * is a space and tab/CR/LF are allowed (query strings). Returns the decoded
 * length, or -1 on a bad escape, a NUL or another control character, or
 * a result that is not UTF-8.
 */
static long sf_decode(const char *src, size_t len, char *dst, int form)
{
    size_t o = 0;
    int high = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)src[i];
        if (ch == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return -1;
            hi = crm_hex(src[i + 1]);
            lo = crm_hex(src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            ch = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (form && ch == '+') {
            ch = ' ';
        }
        if ((ch < 0x20 && !(form && sf_space((char)ch))) || ch == 0x7f)
            return -1;
        high |= ch & 0x80;
        dst[o++] = (char)ch;
    }
    /* Names, ids and values end up in JSON (audit, explain): UTF-8 only. */
    if (high && !crm_utf8_valid((const unsigned char *)dst, o))
        return -1;
    return (long)o;
}

/*
 * Split a raw path into percent-decoded segments. Rejected: no leading '/',
 * empty segments (a single trailing '/' is allowed), '.' and '..' (raw or
 * encoded), encoded '/' or '\', raw ';', '\', '#', whitespace and control
 * characters, bad escapes, more than SF_MAX_SEGS segments.
 */
static int sf_path_parse(struct sf_ctx *c, const char *path, struct sf_path *p)
{
    const char *s;
    size_t len;
    char *d;

    if (path == NULL || path[0] != '/')
        return sf_reject(c, "path does not start with '/'");
    len = strlen(path);
    p->buf = malloc(len + 1);
    if (p->buf == NULL)
        return SF_NOMEM;
    d = p->buf;
    s = path + 1;
    for (;;) {
        const char *e = strchr(s, '/');
        size_t sl = e ? (size_t)(e - s) : strlen(s);
        long dl;

        if (sl == 0) {
            if (e == NULL)
                break;
            return sf_reject(c, "empty path segment");
        }
        for (size_t i = 0; i < sl; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch <= 0x20 || ch == 0x7f || ch == ';' || ch == '\\' || ch == '#')
                return sf_reject(c, "character 0x%02x not allowed in the path", ch);
        }
        if (p->n == SF_MAX_SEGS)
            return sf_reject(c, "path has more than %d segments", SF_MAX_SEGS);
        dl = sf_decode(s, sl, d, 0);
        if (dl < 0)
            return sf_reject(c, "bad percent-encoding in the path");
        if (memchr(d, '/', (size_t)dl) != NULL || memchr(d, '\\', (size_t)dl) != NULL)
            return sf_reject(c, "encoded '/' or '\\' in the path");
        if ((dl == 1 && d[0] == '.') || (dl == 2 && d[0] == '.' && d[1] == '.'))
            return sf_reject(c, "dot segment in the path");
        d[dl] = '\0';
        p->seg[p->n] = d;
        p->len[p->n] = (size_t)dl;
        p->n++;
        d += dl + 1;
        if (e == NULL)
            break;
        s = e + 1;
    }
    return SF_OK;
}

/*
 * Split a raw query string into form-decoded parameters. Rejected: raw ';'
 * (a separator to some servers), bad escapes, control characters, more
 * than SF_MAX_PARAMS parameters, and a parameter given twice (compared
 * case-insensitively: which copy the upstream uses is unknowable).
 */
static int sf_query_parse(struct sf_ctx *c, const char *query, struct sf_query *q)
{
    const char *s;
    size_t len;
    char *d;

    if (query == NULL || query[0] == '\0')
        return SF_OK;
    len = strlen(query);
    if (memchr(query, ';', len) != NULL)
        return sf_reject(c, "';' in the query string");
    /* Each parameter may grow by two NULs (no "=": an empty value). */
    q->buf = malloc(len + 2 * SF_MAX_PARAMS + 2);
    if (q->buf == NULL)
        return SF_NOMEM;
    d = q->buf;
    s = query;
    while (*s != '\0') {
        const char *e = strchr(s, '&'), *eq;
        size_t sl = e ? (size_t)(e - s) : strlen(s), kl;
        long dk, dv;

        if (sl > 0) {
            eq = memchr(s, '=', sl);
            kl = eq ? (size_t)(eq - s) : sl;
            if (q->n == SF_MAX_PARAMS)
                return sf_reject(c, "more than %d query parameters", SF_MAX_PARAMS);
            dk = sf_decode(s, kl, d, 1);
            if (dk < 0)
                return sf_reject(c, "bad encoding in a query parameter name");
            d[dk] = '\0';
            q->v[q->n].key = d;
            d += dk + 1;
            dv = eq ? sf_decode(eq + 1, sl - kl - 1, d, 1) : 0;
            if (dv < 0)
                return sf_reject(c, "bad encoding in query parameter '%s'", q->v[q->n].key);
            d[dv] = '\0';
            q->v[q->n].val = d;
            q->v[q->n].vlen = (size_t)dv;
            d += dv + 1;
            for (size_t i = 0; i < q->n; i++) {
                if (strcasecmp(q->v[i].key, q->v[q->n].key) == 0)
                    return sf_reject(c, "query parameter '%s' given twice", q->v[i].key);
            }
            q->n++;
        }
        if (e == NULL)
            break;
        s = e + 1;
    }
    return SF_OK;
}

static const struct sf_param *sf_param(const struct sf_query *q, const char *key)
{
    for (size_t i = 0; i < q->n; i++) {
        if (strcasecmp(q->v[i].key, key) == 0)
            return &q->v[i];
    }
    return NULL;
}

/*
 * The effective method. _HttpMethod (documented by Salesforce, POST only)
 * replaces the method; an X-HTTP-Method-Override header or any other
 * override parameter that would change it is denied, since whether the
 * upstream honours it is unknown and guessing wrong could hide a write.
 */
static int sf_method(struct sf_ctx *c, const char *method, const char *hdr,
                     const struct sf_query *q, const char **out)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"};
    static const char *const others[] = {"_method", "x-http-method-override", "x-http-method",
                                         "x-method-override"};
    const struct sf_param *p = sf_param(q, "_HttpMethod");
    const char *m = NULL;

    for (size_t i = 0; method != NULL && i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(method, methods[i]) == 0)
            m = methods[i];
    }
    if (m == NULL)
        return sf_reject(c, "method %s not classified", method ? method : "(none)");
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        if (sf_param(q, others[i]) != NULL)
            return sf_reject(c, "method override parameter %s not honoured", others[i]);
    }
    if (p != NULL) {
        const char *o = NULL;
        if (strcmp(m, "POST") != 0)
            return sf_reject(c, "_HttpMethod on a %s request", m);
        for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
            if (strcasecmp(p->val, methods[i]) == 0)
                o = methods[i];
        }
        if (o == NULL)
            return sf_reject(c, "_HttpMethod=%s not classified", p->val);
        m = o;
    }
    if (hdr != NULL && strcasecmp(hdr, m) != 0)
        return sf_reject(c, "X-HTTP-Method-Override: %s differs from the effective method %s", hdr,
                         m);
    *out = m;
    return SF_OK;
}

/* ------------------------------------------------------------------ */
/* bodies                                                              */

/* The body as JSON (NULL when absent). Only JSON bodies are classified. */
static int sf_body_json(struct sf_ctx *c, struct sf_body *b, json_t **out)
{
    json_error_t jerr;

    if (b->from_raw && b->json == NULL && b->len > 0) {
        const char *ct = b->content_type;
        if (ct != NULL) {
            size_t n = strlen("application/json");
            while (*ct == ' ')
                ct++;
            if (strncasecmp(ct, "application/json", n) != 0 ||
                (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' '))
                return sf_reject(c, "body of type %s not classified", b->content_type);
        }
        /* the fast parser, else jansson: deeper than it goes, and the refusal's words */
        b->json = jsonfilter_parse_unique(b->raw, b->len, NULL, 0);
        if (b->json == NULL)
            b->json = json_loadb(b->raw, b->len, JSON_REJECT_DUPLICATES, &jerr);
        if (b->json == NULL)
            return sf_reject(c, "body is not valid JSON: %s", jerr.text);
    }
    *out = b->json;
    return SF_OK;
}

static int sf_body_absent(struct sf_ctx *c, const struct sf_body *b, const char *m)
{
    if ((b->from_raw && b->len > 0) || (!b->from_raw && b->json != NULL))
        return sf_reject(c, "unexpected body on %s", m);
    return SF_OK;
}

/* A JSON object body, required. */
static int sf_body_object(struct sf_ctx *c, struct sf_body *b, json_t **out)
{
    int rc = sf_body_json(c, b, out);

    if (rc != SF_OK)
        return rc;
    if (!json_is_object(*out))
        return sf_reject(c, "body is not a JSON object");
    return SF_OK;
}

static int sf_key_cmp(const void *a, const void *b)
{
    return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Keys of a record body must be non-empty and distinct ignoring case:
 * Salesforce field names are case-insensitive, so "Name" and "name" would
 * race for the same field.
 */
static int sf_check_keys(struct sf_ctx *c, json_t *rec)
{
    size_t n = json_object_size(rec), i = 0;
    const char **keys, *key;
    json_t *v;
    int rc = SF_OK;

    if (n < 2) {
        json_object_foreach(rec, key, v)
        {
            if (key[0] == '\0')
                return sf_reject(c, "empty field name in the body");
        }
        return SF_OK;
    }
    keys = malloc(n * sizeof(*keys));
    if (keys == NULL)
        return SF_NOMEM;
    json_object_foreach(rec, key, v)
    {
        keys[i++] = key;
    }
    qsort(keys, n, sizeof(*keys), sf_key_cmp);
    for (i = 0; i < n && rc == SF_OK; i++) {
        if (keys[i][0] == '\0')
            rc = sf_reject(c, "empty field name in the body");
        else if (i > 0 && strcasecmp(keys[i - 1], keys[i]) == 0)
            rc = sf_reject(c, "field %s given twice (ignoring case)", keys[i]);
    }
    free(keys);
    return rc;
}

/*
 * One written field of object. A value that is an object sets a lookup by
 * the parent's external id ("Account": {"Ext__c": "A1"}; a polymorphic one
 * names the parent's type in attributes.type): Salesforce finds the parent
 * with an equality filter on that field, which tells whether a record with
 * the value exists, so the op also gets a lookup (decided as a read of the
 * parent's field). A relationship crmgate cannot resolve, or a value it
 * cannot read as one external-id field, is rejected.
 */
static int sf_add_write(struct sf_ctx *c, struct crm_op *op, const char *object, const char *key,
                        json_t *v)
{
    if (json_is_object(v)) {
        json_t *attrs = json_object_get(v, "attributes"), *type = json_object_get(attrs, "type"),
               *x;
        const char *target = NULL, *field = NULL, *k;
        int res =
            object != NULL ? sf_schema_resolve(c->schema, object, key, strlen(key), 0, &target) : 0;

        json_object_foreach(v, k, x)
        {
            if (strcmp(k, "attributes") == 0)
                continue;
            if (field != NULL || k[0] == '\0' || json_is_object(x) || json_is_array(x))
                return sf_reject(c, "%s: a lookup names exactly one external-id field", key);
            field = k;
        }
        if (field == NULL)
            return sf_reject(c, "%s: a lookup names exactly one external-id field", key);
        if (attrs != NULL && (!json_is_object(attrs) || (type != NULL && !json_is_string(type))))
            return sf_reject(c, "%s: attributes of a lookup not classified", key);
        if (res < 0 && type != NULL)
            target = json_string_value(type); /* polymorphic: the type says which parent */
        else if (res <= 0)
            return sf_reject(c, "%s relationship %s on %s in the body",
                             res < 0 ? "polymorphic" : "unknown", key, object ? object : "-");
        else if (type != NULL && strcasecmp(json_string_value(type), target) != 0)
            return sf_reject(c, "%s: attributes.type is not %s", key, target);
        if (crm_op_add_lookup(op, target, field) < 0)
            return SF_NOMEM;
    }
    return crm_op_add_write(op, key, v) < 0 ? SF_NOMEM : SF_OK;
}

/*
 * Every key of rec except skip becomes a write (keys checked by
 * sf_check_keys). "attributes", when present, must be an object whose type
 * (if any) names object.
 */
static int sf_add_writes(struct sf_ctx *c, struct crm_op *op, json_t *rec, const char *object,
                         const char *skip)
{
    const char *key;
    json_t *v;
    int rc = sf_check_keys(c, rec);

    if (rc != SF_OK)
        return rc;
    json_object_foreach(rec, key, v)
    {
        if (strcmp(key, "attributes") == 0) {
            json_t *type = json_object_get(v, "type");
            if (!json_is_object(v))
                return sf_reject(c, "attributes is not an object");
            if (type != NULL && (!json_is_string(type) || object == NULL ||
                                 strcasecmp(json_string_value(type), object) != 0))
                return sf_reject(c, "attributes.type does not match %s",
                                 object ? object : "the path");
            continue;
        }
        if (skip != NULL && strcmp(key, skip) == 0)
            continue;
        if ((rc = sf_add_write(c, op, object, key, v)) != SF_OK)
            return rc;
    }
    return SF_OK;
}

/* ------------------------------------------------------------------ */
/* field lists                                                         */

/* Add the comma-separated field names of s[0..len) as reads. */
static int sf_add_field_list(struct sf_ctx *c, struct crm_op *op, const char *s, size_t len)
{
    size_t i = 0;

    if (len == 0)
        return sf_reject(c, "empty field list");
    while (i <= len) {
        size_t st = i, en;
        while (i < len && s[i] != ',')
            i++;
        en = i;
        while (st < en && s[st] == ' ')
            st++;
        while (en > st && s[en - 1] == ' ')
            en--;
        if (!sf_ident(s + st, en - st))
            return sf_reject(c, "'%.*s' is not a field name", (int)(en - st), s + st);
        if (crm_op_add_read(op, s + st, en - st) < 0)
            return SF_NOMEM;
        i++;
    }
    return SF_OK;
}

/* ?fields= as reads, else reads_default. */
static int sf_fields_param(struct sf_ctx *c, struct crm_op *op, const struct sf_query *q)
{
    const struct sf_param *f = sf_param(q, "fields");

    if (f == NULL) {
        op->reads_default = 1;
        return SF_OK;
    }
    return sf_add_field_list(c, op, f->val, f->vlen);
}

/* A JSON array of field-name strings as reads. */
static int sf_add_field_array(struct sf_ctx *c, struct crm_op *op, json_t *arr)
{
    size_t i;
    json_t *v;

    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return sf_reject(c, "fields is not a non-empty array");
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v) || !sf_ident(json_string_value(v), json_string_length(v)))
            return sf_reject(c, "fields[%zu] is not a field name", i);
        if (crm_op_add_read(op, json_string_value(v), json_string_length(v)) < 0)
            return SF_NOMEM;
    }
    return SF_OK;
}

/* ------------------------------------------------------------------ */
/* SOQL                                                                */

/* The op for (verb, object), merging case-insensitively; its index, or -1 (see sf_op). */
static long sf_op_for(struct sf_ctx *c, enum crm_verb verb, const char *object)
{
    for (size_t i = c->merge_from; i < c->ops->n; i++) {
        struct crm_op *op = &c->ops->v[i];
        if (op->verb == verb && op->object != NULL && strcasecmp(op->object, object) == 0)
            return (long)i;
    }
    if (sf_op(c, verb, object, strlen(object)) == NULL)
        return -1;
    return (long)c->ops->n - 1;
}

/* The lookup field behind a relationship: X__r -> X__c, Account -> AccountId. */
static int sf_lookup_field(const char *rel, size_t len, char *out, size_t outlen)
{
    if (len + 3 > outlen)
        return -1;
    memcpy(out, rel, len);
    if (len > 3 && strncasecmp(rel + len - 3, "__r", 3) == 0) {
        out[len - 1] = rel[len - 1] == 'R' ? 'C' : 'c';
        out[len] = '\0';
    } else {
        memcpy(out + len, "Id", 3);
    }
    return 0;
}

/*
 * Add the reads of q (resolved to object) under verb: path-less fields on
 * object, each relationship path hop as a read of its lookup field on the
 * object it leaves plus the final field on the object it reaches, child
 * subqueries via child relationships, semi-joins on their own FROM.
 * skip_select: ignore q's own SELECT refs (parameterizedSearch where).
 */
static int sf_soql_walk(struct sf_ctx *c, enum crm_verb verb, const struct soql_query *q,
                        const char *object, int skip_select, int nest)
{
    long idx;

    if (nest > SF_MAX_SOQL_NEST)
        return sf_reject(c, "query nested deeper than %d levels", SF_MAX_SOQL_NEST);
    idx = sf_op_for(c, verb, object);
    if (idx < 0)
        return sf_op_fail(c);
    for (size_t i = 0; i < q->nrefs; i++) {
        const struct soql_ref *r = &q->refs[i];
        const char *cur = object, *p = r->path;
        long cidx = idx;

        if (skip_select && r->clause == SOQL_SELECT)
            continue;
        while (p != NULL && *p != '\0') {
            const char *dot = strchr(p, '.'), *target = NULL;
            size_t hl = dot ? (size_t)(dot - p) : strlen(p);
            char lf[SF_MAX_NAME + 4];
            int res;

            if (!sf_ident(p, hl))
                return sf_reject(c, "bad relationship name '%.*s'", (int)hl, p);
            res = sf_schema_resolve(c->schema, cur, p, hl, 0, &target);
            if (res == 0)
                return sf_reject(c, "unknown relationship %.*s on %s", (int)hl, p, cur);
            if (res < 0)
                return sf_reject(c, "polymorphic relationship %.*s on %s not resolvable", (int)hl,
                                 p, cur);
            if (sf_lookup_field(p, hl, lf, sizeof(lf)) < 0)
                return sf_reject(c, "relationship name too long");
            if (crm_op_add_read(&c->ops->v[cidx], lf, strlen(lf)) < 0)
                return SF_NOMEM;
            cidx = sf_op_for(c, verb, target);
            if (cidx < 0)
                return sf_op_fail(c);
            cur = target;
            p = dot ? dot + 1 : NULL;
        }
        if (crm_op_add_read(&c->ops->v[cidx], r->field, strlen(r->field)) < 0)
            return SF_NOMEM;
    }
    for (size_t i = 0; i < q->nsubs; i++) {
        const struct soql_query *s = q->subs[i];
        const char *target = s->from;
        int rc;

        if (s->is_child) {
            int res = sf_schema_resolve(c->schema, object, s->from, strlen(s->from), 1, &target);
            if (res == 0)
                return sf_reject(c, "unknown child relationship %s on %s", s->from, object);
            if (res < 0)
                return sf_reject(c, "ambiguous child relationship %s on %s", s->from, object);
        }
        rc = sf_soql_walk(c, verb, s, target, 0, nest + 1);
        if (rc != SF_OK)
            return rc;
    }
    return SF_OK;
}

/*
 * Parse text as SOQL and add its ops. prefix names the context in the
 * rejection (NULL: the parser's message alone, as the lead's
 * MALFORMED_QUERY answer expects).
 */
static int sf_soql(struct sf_ctx *c, enum crm_verb verb, const char *text, size_t len,
                   const char *prefix, int skip_select)
{
    char err[256] = "";
    struct soql_query *q;
    int rc;

    if (memchr(text, '\0', len) != NULL)
        return sf_reject(c, "NUL in the query");
    q = soql_parse(text, len, err, sizeof(err));
    if (q == NULL) {
        if (err[0] == '\0')
            return SF_NOMEM;
        c->malformed = 1;
        if (prefix != NULL)
            return sf_reject(c, "%s: %s", prefix, err);
        return sf_reject(c, "%s", err);
    }
    if (q->is_child) {
        soql_free(q);
        return sf_reject(c, "query has no object");
    }
    rc = sf_soql_walk(c, verb, q, q->from, skip_select, 0);
    soql_free(q);
    return rc;
}

/* ------------------------------------------------------------------ */
/* SOSL                                                                */

struct sf_lex {
    const char *s;
    size_t len, i;
};

static void sf_lex_ws(struct sf_lex *l)
{
    while (l->i < l->len && sf_space(l->s[l->i]))
        l->i++;
}

/* The next identifier-like word; its length (0 when none). */
static size_t sf_lex_word(struct sf_lex *l, const char **w)
{
    size_t st;

    sf_lex_ws(l);
    st = l->i;
    while (l->i < l->len) {
        char ch = l->s[l->i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            break;
        l->i++;
    }
    *w = l->s + st;
    return l->i - st;
}

static int sf_lex_kw(struct sf_lex *l, const char *kw)
{
    size_t save = l->i;
    const char *w;
    size_t n = sf_lex_word(l, &w);

    if (n > 0 && sf_eq(kw, w, n))
        return 1;
    l->i = save;
    return 0;
}

/* Skip a parenthesised group starting at l->i == '('; index just after its ')' or 0. */
static size_t sf_lex_group(struct sf_lex *l)
{
    int depth = 0, quote = 0;

    for (size_t i = l->i; i < l->len; i++) {
        char ch = l->s[i];
        if (quote) {
            if (ch == '\\')
                i++;
            else if (ch == '\'')
                quote = 0;
        } else if (ch == '\'') {
            quote = 1;
        } else if (ch == '(') {
            depth++;
        } else if (ch == ')' && --depth == 0) {
            return i + 1;
        }
    }
    return 0;
}

/*
 * One RETURNING item's field list and clauses, "Name, Email WHERE ... ORDER
 * BY ... LIMIT n", rewritten as SOQL "SELECT <fields> FROM Obj <clauses>"
 * so the SOQL parser checks it with the same rules.
 */
static int sf_sosl_item(struct sf_ctx *c, const char *obj, size_t olen, const char *in,
                        size_t inlen)
{
    static const char *const kws[] = {"WHERE", "ORDER", "LIMIT", "OFFSET", "USING", "WITH"};
    size_t k = inlen, total;
    int quote = 0, depth = 0, rc;
    char *soql, prefix[SF_MAX_NAME + 32];

    for (size_t i = 0; i < inlen && k == inlen; i++) {
        char ch = in[i];
        if (quote) {
            if (ch == '\\')
                i++;
            else if (ch == '\'')
                quote = 0;
            continue;
        }
        if (ch == '\'')
            quote = 1;
        else if (ch == '(')
            depth++;
        else if (ch == ')')
            depth--;
        else if (depth == 0 && (i == 0 || sf_space(in[i - 1]) || in[i - 1] == ')')) {
            for (size_t j = 0; j < sizeof(kws) / sizeof(kws[0]); j++) {
                size_t n = strlen(kws[j]);
                if (i + n <= inlen && strncasecmp(in + i, kws[j], n) == 0 &&
                    (i + n == inlen || sf_space(in[i + n]) || in[i + n] == '('))
                    k = i;
            }
        }
    }
    total = 7 + k + 6 + olen + 1 + (inlen - k);
    soql = malloc(total + 1);
    if (soql == NULL)
        return SF_NOMEM;
    memcpy(soql, "SELECT ", 7);
    memcpy(soql + 7, in, k);
    memcpy(soql + 7 + k, " FROM ", 6);
    memcpy(soql + 13 + k, obj, olen);
    soql[13 + k + olen] = ' ';
    memcpy(soql + 14 + k + olen, in + k, inlen - k);
    soql[total] = '\0';
    snprintf(prefix, sizeof(prefix), "SOSL RETURNING %.*s", (int)olen, obj);
    rc = sf_soql(c, CRM_VERB_SEARCH, soql, total, prefix, 0);
    free(soql);
    return rc;
}

/*
 * FIND {term} [IN ALL|NAME|EMAIL|PHONE|SIDEBAR FIELDS] RETURNING item, ...
 * [WITH SPELL_CORRECTION = true|false] [LIMIT n] [UPDATE TRACKING|VIEWSTAT].
 * Without RETURNING a search returns any object: rejected. Other WITH
 * clauses (snippets, metadata, networks, divisions) are rejected too.
 */
static int sf_sosl(struct sf_ctx *c, const char *text, size_t len)
{
    struct sf_lex l = {text, len, 0};
    const char *w;
    size_t n;
    int returning = 0;

    if (memchr(text, '\0', len) != NULL)
        return sf_reject(c, "NUL in the search");
    if (!sf_lex_kw(&l, "FIND"))
        return sf_reject(c, "SOSL does not start with FIND");
    sf_lex_ws(&l);
    if (l.i >= len || text[l.i] != '{')
        return sf_reject(c, "SOSL search term is not in braces");
    for (l.i++; l.i < len && text[l.i] != '}'; l.i++) {
        if (text[l.i] == '\\')
            l.i++;
    }
    if (l.i >= len)
        return sf_reject(c, "SOSL search term is not closed");
    l.i++;
    if (sf_lex_kw(&l, "IN")) {
        n = sf_lex_word(&l, &w);
        if (!(sf_eq("ALL", w, n) || sf_eq("NAME", w, n) || sf_eq("EMAIL", w, n) ||
              sf_eq("PHONE", w, n) || sf_eq("SIDEBAR", w, n)) ||
            !sf_lex_kw(&l, "FIELDS"))
            return sf_reject(c, "SOSL IN clause not understood");
    }
    if (sf_lex_kw(&l, "RETURNING")) {
        returning = 1;
        for (;;) {
            const char *obj;
            size_t olen = sf_lex_word(&l, &obj);
            int rc;

            if (!sf_ident(obj, olen))
                return sf_reject(c, "SOSL RETURNING expects an object name");
            sf_lex_ws(&l);
            if (l.i < len && text[l.i] == '(') {
                size_t end = sf_lex_group(&l);
                if (end == 0)
                    return sf_reject(c, "SOSL RETURNING %.*s: unbalanced parentheses", (int)olen,
                                     obj);
                rc = sf_sosl_item(c, obj, olen, text + l.i + 1, end - l.i - 2);
                l.i = end;
            } else {
                char name[SF_MAX_NAME + 1];
                long idx;
                memcpy(name, obj, olen);
                name[olen] = '\0';
                idx = sf_op_for(c, CRM_VERB_SEARCH, name);
                if (idx < 0)
                    return sf_op_fail(c);
                c->ops->v[idx].reads_default = 1;
                rc = SF_OK;
            }
            if (rc != SF_OK)
                return rc;
            sf_lex_ws(&l);
            if (l.i < len && text[l.i] == ',') {
                l.i++;
                continue;
            }
            break;
        }
    }
    if (!returning)
        return sf_reject(c, "SOSL without RETURNING searches every object");
    for (;;) {
        n = sf_lex_word(&l, &w);
        if (n == 0)
            break;
        if (sf_eq("WITH", w, n)) {
            if (!sf_lex_kw(&l, "SPELL_CORRECTION"))
                return sf_reject(c, "SOSL WITH clause not allowed");
            sf_lex_ws(&l);
            if (l.i >= len || text[l.i] != '=')
                return sf_reject(c, "SOSL WITH SPELL_CORRECTION expects '='");
            l.i++;
            if (!sf_lex_kw(&l, "true") && !sf_lex_kw(&l, "false"))
                return sf_reject(c, "SOSL WITH SPELL_CORRECTION expects true or false");
        } else if (sf_eq("LIMIT", w, n)) {
            n = sf_lex_word(&l, &w);
            if (n == 0 || n > 9 || strspn(w, "0123456789") < n)
                return sf_reject(c, "SOSL LIMIT expects a number");
        } else if (sf_eq("UPDATE", w, n)) {
            if (!sf_lex_kw(&l, "TRACKING") && !sf_lex_kw(&l, "VIEWSTAT"))
                return sf_reject(c, "SOSL UPDATE clause not understood");
        } else {
            return sf_reject(c, "SOSL construct not allowed: %.*s", (int)n, w);
        }
    }
    sf_lex_ws(&l);
    if (l.i != len)
        return sf_reject(c, "unexpected '%c' in SOSL at offset %zu", text[l.i], l.i);
    return SF_OK;
}

/* ------------------------------------------------------------------ */
/* routes                                                              */

struct sf_req {
    const char *m; /* effective method */
    const char *const *seg;
    const size_t *len;
    size_t n;
    const struct sf_query *q;
    struct sf_body *body;
    int depth;   /* 0: the client's request; 1: a composite subrequest */
    int refs_ok; /* composite/graph: @{ref.field} allowed in the id position */
};

static int sf_is(const struct sf_req *r, size_t i, const char *name)
{
    return i < r->n && sf_eq(name, r->seg[i], r->len[i]);
}

static int sf_get(const struct sf_req *r)
{
    return strcmp(r->m, "GET") == 0 || strcmp(r->m, "HEAD") == 0;
}

static int sf_m(const struct sf_req *r, const char *m)
{
    return strcmp(r->m, m) == 0;
}

/* @{refId.field...}: a composite reference, resolved by Salesforce before it runs the subrequest.
 */
static int sf_is_ref(const char *s, size_t len)
{
    if (len < 4 || s[0] != '@' || s[1] != '{' || s[len - 1] != '}')
        return 0;
    for (size_t i = 2; i < len - 1; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '[' || ch == ']'))
            return 0;
    }
    return 1;
}

static int sf_simple(struct sf_ctx *c, const struct sf_req *r, enum crm_verb verb,
                     const char *object, size_t olen)
{
    int rc = sf_body_absent(c, r->body, r->m);

    if (rc != SF_OK)
        return rc;
    if (sf_op(c, verb, object, olen) == NULL)
        return sf_op_fail(c);
    return SF_OK;
}

enum sf_idkind { SF_ID, SF_ID_UNVERIFIED, SF_ID_REF, SF_ID_WRONG, SF_ID_NAME, SF_ID_BAD };

/*
 * What a segment after /sobjects/S is (reference §3): a valid id whose key
 * prefix is S's; a valid id for an object without a known prefix; a
 * composite reference; a valid id of another object; an API name (an
 * external-id field); or neither.
 */
static enum sf_idkind sf_idkind(struct sf_ctx *c, const struct sf_req *r, const char *obj,
                                size_t olen, const char *s, size_t len, const char **other)
{
    if (sf_id_valid(s, len)) {
        const char *o = sf_object_for_id(c->schema, s);
        *other = o;
        if (o != NULL)
            return sf_eq(o, obj, olen) ? SF_ID : SF_ID_WRONG;
        return sf_object_has_prefix(c->schema, obj, olen) ? SF_ID_WRONG : SF_ID_UNVERIFIED;
    }
    if (r->refs_ok && sf_is_ref(s, len))
        return SF_ID_REF;
    return sf_ident(s, len) ? SF_ID_NAME : SF_ID_BAD;
}

/*
 * An upsert by external id that inserts sets the external-id field to the
 * value in the URL (as HubSpot's batch upsert sets its idProperty): that is
 * a write of the field, checked and audited like one. A body that names
 * the field already carries the write (Salesforce refuses another value);
 * upserting on Id itself inserts nothing by id and writes no field.
 */
static int sf_upsert_key_write(struct sf_ctx *c, struct crm_op *op, const char *idprop, size_t plen,
                               const char *value, size_t vlen)
{
    json_t *v;
    int rc;

    if (sf_eq("Id", idprop, plen))
        return SF_OK;
    for (size_t i = 0; i < op->nwrites; i++) {
        if (strlen(op->writes[i].name) == plen &&
            strncasecmp(op->writes[i].name, idprop, plen) == 0)
            return SF_OK;
    }
    v = json_stringn(value, vlen);
    if (v == NULL)
        return sf_reject(c, "external id value is not UTF-8");
    rc = crm_op_add_write(op, idprop, v); /* idprop ends the path segment: NUL-terminated */
    json_decref(v);
    return rc < 0 ? SF_NOMEM : SF_OK;
}

/* One record addressed by id: GET/HEAD read, PATCH update, DELETE delete. */
static int sf_row(struct sf_ctx *c, const struct sf_req *r, const char *obj, size_t olen,
                  const char *id, size_t idlen, const char *idprop, size_t plen)
{
    struct crm_op *op;
    json_t *body = NULL;
    int rc;

    if (sf_get(r) || sf_m(r, "DELETE")) {
        rc = sf_body_absent(c, r->body, r->m);
        if (rc != SF_OK)
            return rc;
    } else if (sf_m(r, "PATCH") || (idprop != NULL && sf_m(r, "POST"))) {
        rc = sf_body_object(c, r->body, &body);
        if (rc != SF_OK)
            return rc;
    } else {
        return sf_reject(c, "%s on a %.*s record not classified", r->m, (int)olen, obj);
    }
    op = sf_op(c,
               sf_get(r)           ? CRM_VERB_READ
               : sf_m(r, "DELETE") ? CRM_VERB_DELETE
               : idprop != NULL    ? CRM_VERB_UPSERT
                                   : CRM_VERB_UPDATE,
               obj, olen);
    if (op == NULL || crm_op_set(&op->record_id, id, idlen) < 0 ||
        (idprop != NULL && crm_op_set(&op->id_property, idprop, plen) < 0))
        return sf_op_fail(c);
    if (sf_get(r))
        return sf_fields_param(c, op, r->q);
    if (body != NULL) {
        char o[SF_MAX_NAME + 1];
        memcpy(o, obj, olen);
        o[olen] = '\0';
        rc = sf_add_writes(c, op, body, o, NULL);
        if (rc == SF_OK && idprop != NULL)
            rc = sf_upsert_key_write(c, op, idprop, plen, id, idlen);
        return rc;
    }
    return SF_OK;
}

/*
 * GET /sobjects/S/id/rel: the related record(s). A lookup reads the lookup
 * field on S's record, then the parent's fields; a child relationship
 * reads S's Id, then lists the children. Writes through a relationship are
 * denied: the target record's id is not in the request.
 */
static int sf_traverse(struct sf_ctx *c, const struct sf_req *r, const char *obj, size_t olen,
                       const char *id, size_t idlen, const char *rel, size_t rlen)
{
    const char *target = NULL;
    char o[SF_MAX_NAME + 1], lf[SF_MAX_NAME + 4];
    struct crm_op *op;
    int res, child = 0, rc;

    if (!sf_get(r))
        return sf_reject(c, "%s through relationship %.*s not classified", r->m, (int)rlen, rel);
    rc = sf_body_absent(c, r->body, r->m);
    if (rc != SF_OK)
        return rc;
    if (!sf_ident(rel, rlen))
        return sf_reject(c, "'%.*s' is not a relationship name", (int)rlen, rel);
    memcpy(o, obj, olen);
    o[olen] = '\0';
    for (size_t i = 0; i < sizeof(sf_blob_fields) / sizeof(sf_blob_fields[0]); i++) {
        if (strcasecmp(sf_blob_fields[i].object, o) == 0 &&
            sf_eq(sf_blob_fields[i].field, rel, rlen)) {
            op = sf_op(c, CRM_VERB_READ, obj, olen);
            if (op == NULL || crm_op_set(&op->record_id, id, idlen) < 0)
                return sf_op_fail(c);
            return crm_op_add_read(op, rel, rlen) < 0 ? SF_NOMEM : SF_OK;
        }
    }
    res = sf_schema_resolve(c->schema, o, rel, rlen, 0, &target);
    if (res == 0) {
        res = sf_schema_resolve(c->schema, o, rel, rlen, 1, &target);
        child = 1;
    }
    if (res == 0)
        return sf_reject(c, "unknown relationship %.*s on %s", (int)rlen, rel, o);
    if (res < 0)
        return sf_reject(c, "polymorphic relationship %.*s on %s not resolvable", (int)rlen, rel,
                         o);
    op = sf_op(c, CRM_VERB_READ, obj, olen);
    if (op == NULL || crm_op_set(&op->record_id, id, idlen) < 0)
        return sf_op_fail(c);
    if (child) {
        if (crm_op_add_read(op, "Id", 2) < 0)
            return SF_NOMEM;
    } else {
        if (sf_lookup_field(rel, rlen, lf, sizeof(lf)) < 0)
            return sf_reject(c, "relationship name too long");
        if (crm_op_add_read(op, lf, strlen(lf)) < 0)
            return SF_NOMEM;
    }
    op = sf_op(c, child ? CRM_VERB_LIST : CRM_VERB_READ, target, strlen(target));
    if (op == NULL)
        return sf_op_fail(c);
    return sf_fields_param(c, op, r->q);
}

static int sf_route_sobjects(struct sf_ctx *c, const struct sf_req *r)
{
    static const char *const reserved[] = {
        "listviews",      "quickActions",      "layouts",
        "compactLayouts", "eventSchema",       "richTextImageFields",
        "platformaction", "suggestedArticles", "password"};
    const char *obj, *k, *other = NULL;
    size_t olen, klen;
    struct crm_op *op;
    json_t *body;
    int rc;

    if (r->n == 1) {
        if (!sf_get(r))
            return sf_reject(c, "%s on /sobjects not classified", r->m);
        return sf_simple(c, r, CRM_VERB_SCHEMA_READ, NULL, 0);
    }
    obj = r->seg[1];
    olen = r->len[1];
    if (!sf_ident(obj, olen))
        return sf_reject(c, "'%.*s' is not an object name", (int)olen, obj);
    if (r->n == 2) {
        if (sf_get(r)) {
            /* Basic info: the describe summary plus recentItems (Id, Name of records). */
            rc = sf_simple(c, r, CRM_VERB_SCHEMA_READ, obj, olen);
            if (rc != SF_OK)
                return rc;
            op = sf_op(c, CRM_VERB_LIST, obj, olen);
            if (op == NULL)
                return sf_op_fail(c);
            if (crm_op_add_read(op, "Id", 2) < 0 || crm_op_add_read(op, "Name", 4) < 0)
                return SF_NOMEM;
            return SF_OK;
        }
        if (!sf_m(r, "POST"))
            return sf_reject(c, "%s on /sobjects/%.*s not classified", r->m, (int)olen, obj);
        rc = sf_body_object(c, r->body, &body);
        if (rc != SF_OK)
            return rc;
        op = sf_op(c, CRM_VERB_CREATE, obj, olen);
        if (op == NULL)
            return sf_op_fail(c);
        return sf_add_writes(c, op, body, op->object, NULL);
    }
    k = r->seg[2];
    klen = r->len[2];
    if (sf_is(r, 2, "describe")) {
        if (sf_get(r) &&
            (r->n == 3 || (r->n == 4 && (sf_is(r, 3, "layouts") || sf_is(r, 3, "compactLayouts")))))
            return sf_simple(c, r, CRM_VERB_SCHEMA_READ, obj, olen);
        return sf_reject(c, "describe variant not classified");
    }
    if (sf_is(r, 2, "updated") || sf_is(r, 2, "deleted")) {
        if (!sf_get(r) || r->n != 3)
            return sf_reject(c, "%s on %.*s not classified", r->m, (int)klen, k);
        rc = sf_simple(c, r, CRM_VERB_LIST, obj, olen);
        if (rc != SF_OK)
            return rc;
        return crm_op_add_read(&c->ops->v[c->ops->n - 1], "Id", 2) < 0 ? SF_NOMEM : SF_OK;
    }
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (sf_is(r, 2, reserved[i]))
            return sf_reject(c, "/sobjects/%.*s/%s not classified", (int)olen, obj, reserved[i]);
    }
    if (r->n == 3 && strncmp(k, "Id", klen) == 0 && klen == 2 && sf_m(r, "POST")) {
        /* Create via upsert on Id with a null Id (v37+). */
        rc = sf_body_object(c, r->body, &body);
        if (rc != SF_OK)
            return rc;
        op = sf_op(c, CRM_VERB_CREATE, obj, olen);
        if (op == NULL)
            return sf_op_fail(c);
        return sf_add_writes(c, op, body, op->object, NULL);
    }
    switch (sf_idkind(c, r, obj, olen, k, klen, &other)) {
    case SF_ID:
        if (r->n == 3)
            return sf_row(c, r, obj, olen, k, klen, NULL, 0);
        if (r->n == 4)
            return sf_traverse(c, r, obj, olen, k, klen, r->seg[3], r->len[3]);
        break;
    case SF_ID_UNVERIFIED:
    case SF_ID_REF:
        /*
         * With one segment the alternative reading (an external-id field
         * without a value) is an error upstream, so this is the record. With
         * two it could be an external-id upsert: ambiguous.
         */
        if (r->n == 3)
            return sf_row(c, r, obj, olen, k, klen, NULL, 0);
        if (r->n == 4)
            return sf_reject(c, "cannot tell whether %.*s is a %.*s id or an external-id field",
                             (int)klen, k, (int)olen, obj);
        break;
    case SF_ID_WRONG:
        return sf_reject(c, "id %.*s is not a %.*s id (key prefix of %s)", (int)klen, k, (int)olen,
                         obj, other ? other : "another object");
    case SF_ID_NAME:
        if (r->n == 4) {
            if (r->len[3] == 0)
                return sf_reject(c, "empty external id value");
            return sf_row(c, r, obj, olen, r->seg[3], r->len[3], k, klen);
        }
        if (r->n == 3)
            return sf_reject(c, "'%.*s' is neither a %.*s id nor a complete external-id path",
                             (int)klen, k, (int)olen, obj);
        break;
    case SF_ID_BAD:
        return sf_reject(c, "'%.*s' is neither an id nor a field name", (int)klen, k);
    }
    return sf_reject(c, "sobjects path with %zu segments not classified", r->n);
}

static int sf_route_query(struct sf_ctx *c, const struct sf_req *r)
{
    const struct sf_param *q = sf_param(r->q, "q"), *ex = sf_param(r->q, "explain");
    int rc;

    if (!sf_get(r))
        return sf_reject(c, "%s on %.*s not classified", r->m, (int)r->len[0], r->seg[0]);
    rc = sf_body_absent(c, r->body, r->m);
    if (rc != SF_OK)
        return rc;
    if (r->n == 2) {
        /* queryMore: the proxy checks the locator against the ones it handed out. */
        struct crm_op *op;
        for (size_t i = 0; i < r->len[1]; i++) {
            char ch = r->seg[1][i];
            if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '-'))
                return sf_reject(c, "bad query locator");
        }
        if (q != NULL || ex != NULL)
            return sf_reject(c, "query locator with a query");
        op = sf_op(c, CRM_VERB_LIST, NULL, 0);
        if (op == NULL || crm_op_set(&op->locator, r->seg[1], r->len[1]) < 0)
            return sf_op_fail(c);
        return SF_OK;
    }
    if (r->n != 1)
        return sf_reject(c, "query path not classified");
    if ((q == NULL) == (ex == NULL))
        return sf_reject(c, "query needs exactly one of q and explain");
    if (q == NULL)
        q = ex;
    if (q->vlen > SOQL_MAX_LEN)
        return sf_reject(c, "query longer than %d characters", SOQL_MAX_LEN);
    c->merge_from = c->ops->n;
    return sf_soql(c, CRM_VERB_LIST, q->val, q->vlen, NULL, 0);
}

/*
 * parameterizedSearch for one sObject: GET sobject=S with fields and
 * S.fields/S.where/S.limit, or POST {q, sobjects:[{name, fields, where,
 * limit}], fields, in, overallLimit, defaultLimit, ...}. Without an
 * sobject it searches everything: rejected. where is parsed as a SOQL
 * condition on the object.
 */
static int sf_psearch_one(struct sf_ctx *c, const char *obj, size_t olen, json_t *jfields,
                          const struct sf_param *pfields, json_t *jglobal,
                          const struct sf_param *pglobal, const char *where, size_t wlen)
{
    char name[SF_MAX_NAME + 1];
    long idx;
    int rc = SF_OK;

    if (!sf_ident(obj, olen))
        return sf_reject(c, "'%.*s' is not an object name", (int)olen, obj);
    memcpy(name, obj, olen);
    name[olen] = '\0';
    idx = sf_op_for(c, CRM_VERB_SEARCH, name);
    if (idx < 0)
        return sf_op_fail(c);
    if (jfields != NULL)
        rc = sf_add_field_array(c, &c->ops->v[idx], jfields);
    else if (pfields != NULL)
        rc = sf_add_field_list(c, &c->ops->v[idx], pfields->val, pfields->vlen);
    if (rc == SF_OK && jglobal != NULL)
        rc = sf_add_field_array(c, &c->ops->v[idx], jglobal);
    else if (rc == SF_OK && pglobal != NULL)
        rc = sf_add_field_list(c, &c->ops->v[idx], pglobal->val, pglobal->vlen);
    if (rc != SF_OK)
        return rc;
    if (jfields == NULL && pfields == NULL && jglobal == NULL && pglobal == NULL)
        c->ops->v[idx].reads_default = 1;
    if (where != NULL) {
        size_t total = 16 + olen + 7 + wlen;
        char *soql = malloc(total + 1);
        if (soql == NULL)
            return SF_NOMEM;
        memcpy(soql, "SELECT Id FROM ", 15);
        memcpy(soql + 15, obj, olen);
        memcpy(soql + 15 + olen, " WHERE ", 7);
        memcpy(soql + 22 + olen, where, wlen);
        soql[22 + olen + wlen] = '\0';
        rc = sf_soql(c, CRM_VERB_SEARCH, soql, 22 + olen + wlen, "parameterizedSearch where", 1);
        free(soql);
    }
    return rc;
}

static int sf_route_psearch(struct sf_ctx *c, const struct sf_req *r)
{
    static const char *const get_ok[] = {"q",
                                         "sobject",
                                         "fields",
                                         "in",
                                         "overallLimit",
                                         "defaultLimit",
                                         "spellCorrection",
                                         "updateTracking",
                                         "updateViewStat"};
    static const char *const post_ok[] = {"q",
                                          "sobjects",
                                          "fields",
                                          "in",
                                          "overallLimit",
                                          "defaultLimit",
                                          "spellCorrection",
                                          "updateTracking",
                                          "updateViewStat"};
    json_t *body, *sobjects, *v;
    const char *key;
    int rc;

    if (r->n != 1)
        return sf_reject(c, "parameterizedSearch path not classified");
    c->merge_from = c->ops->n;
    if (sf_get(r)) {
        const struct sf_param *so = sf_param(r->q, "sobject"), *pf = NULL, *pw = NULL;
        rc = sf_body_absent(c, r->body, r->m);
        if (rc != SF_OK)
            return rc;
        if (so == NULL)
            return sf_reject(c, "parameterizedSearch without sobject searches every object");
        if (sf_param(r->q, "q") == NULL)
            return sf_reject(c, "parameterizedSearch without q");
        for (size_t i = 0; i < r->q->n; i++) {
            const char *k = r->q->v[i].key, *dot = strchr(k, '.');
            int ok = 0;
            for (size_t j = 0; j < sizeof(get_ok) / sizeof(get_ok[0]); j++)
                ok |= strcasecmp(k, get_ok[j]) == 0;
            if (dot != NULL && sf_eq(so->val, k, (size_t)(dot - k))) {
                if (strcasecmp(dot + 1, "fields") == 0)
                    pf = &r->q->v[i];
                else if (strcasecmp(dot + 1, "where") == 0)
                    pw = &r->q->v[i];
                ok |= strcasecmp(dot + 1, "fields") == 0 || strcasecmp(dot + 1, "where") == 0 ||
                      strcasecmp(dot + 1, "limit") == 0;
            }
            if (!ok)
                return sf_reject(c, "parameterizedSearch parameter %s not classified", k);
        }
        return sf_psearch_one(c, so->val, so->vlen, NULL, pf, NULL, sf_param(r->q, "fields"),
                              pw ? pw->val : NULL, pw ? pw->vlen : 0);
    }
    if (!sf_m(r, "POST"))
        return sf_reject(c, "%s on parameterizedSearch not classified", r->m);
    rc = sf_body_object(c, r->body, &body);
    if (rc != SF_OK)
        return rc;
    json_object_foreach(body, key, v)
    {
        int ok = 0;
        for (size_t j = 0; j < sizeof(post_ok) / sizeof(post_ok[0]); j++)
            ok |= strcmp(key, post_ok[j]) == 0;
        if (!ok)
            return sf_reject(c, "parameterizedSearch key %s not classified", key);
    }
    sobjects = json_object_get(body, "sobjects");
    if (!json_is_string(json_object_get(body, "q")))
        return sf_reject(c, "parameterizedSearch without q");
    if (!json_is_array(sobjects) || json_array_size(sobjects) == 0)
        return sf_reject(c, "parameterizedSearch without sobjects searches every object");
    for (size_t i = 0; i < json_array_size(sobjects); i++) {
        json_t *so = json_array_get(sobjects, i), *name, *where;
        const char *k2;
        json_t *v2;
        if (!json_is_object(so))
            return sf_reject(c, "sobjects[%zu] is not an object", i);
        json_object_foreach(so, k2, v2)
        {
            if (strcmp(k2, "name") != 0 && strcmp(k2, "fields") != 0 && strcmp(k2, "where") != 0 &&
                strcmp(k2, "limit") != 0)
                return sf_reject(c, "sobjects[%zu].%s not classified", i, k2);
        }
        name = json_object_get(so, "name");
        where = json_object_get(so, "where");
        if (!json_is_string(name))
            return sf_reject(c, "sobjects[%zu] has no name", i);
        if (where != NULL && !json_is_string(where))
            return sf_reject(c, "sobjects[%zu].where is not a string", i);
        rc = sf_psearch_one(c, json_string_value(name), json_string_length(name),
                            json_object_get(so, "fields"), NULL, json_object_get(body, "fields"),
                            NULL, where ? json_string_value(where) : NULL,
                            where ? json_string_length(where) : 0);
        if (rc != SF_OK)
            return rc;
    }
    return SF_OK;
}

/* attributes.type of a collection or tree record; NULL (why set) when missing. */
static const char *sf_record_type(struct sf_ctx *c, json_t *rec, size_t i)
{
    json_t *attrs, *type;

    if (!json_is_object(rec)) {
        sf_reject(c, "records[%zu] is not an object", i);
        return NULL;
    }
    attrs = json_object_get(rec, "attributes");
    type = json_object_get(attrs, "type");
    if (!json_is_object(attrs) || !json_is_string(type) ||
        !sf_ident(json_string_value(type), json_string_length(type))) {
        sf_reject(c, "records[%zu] has no attributes.type", i);
        return NULL;
    }
    return json_string_value(type);
}

/* Check that id is a valid id of object (known prefix) or of an object without one. */
static int sf_check_id(struct sf_ctx *c, const char *object, const char *id, size_t len)
{
    const char *o;

    if (!sf_id_valid(id, len))
        return sf_reject(c, "'%.*s' is not a record id", (int)len, id);
    o = sf_object_for_id(c->schema, id);
    if (o != NULL ? strcasecmp(o, object) != 0
                  : sf_object_has_prefix(c->schema, object, strlen(object)))
        return sf_reject(c, "id %.*s is not a %s id", (int)len, id, object);
    return SF_OK;
}

/* records:[...] of a collections body, with only allowed top-level keys. */
static int sf_records(struct sf_ctx *c, json_t *body, json_t **records)
{
    const char *key;
    json_t *v;

    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "allOrNone") != 0 && strcmp(key, "records") != 0)
            return sf_reject(c, "collections key %s not classified", key);
    }
    *records = json_object_get(body, "records");
    if (!json_is_array(*records) || json_array_size(*records) == 0)
        return sf_reject(c, "records is not a non-empty array");
    if (json_array_size(*records) > SF_MAX_RECORDS)
        return sf_reject(c, "more than %d records", SF_MAX_RECORDS);
    return SF_OK;
}

/* One read/delete op per id of a comma-separated list (object NULL: from the key prefix). */
static int sf_ids_ops(struct sf_ctx *c, enum crm_verb verb, const char *object, const char *ids,
                      size_t len, const struct sf_query *q, json_t *jfields)
{
    size_t i = 0, count = 0;

    if (len == 0)
        return sf_reject(c, "empty ids");
    while (i <= len) {
        size_t st = i;
        const char *obj = object;
        struct crm_op *op;
        int rc;

        while (i < len && ids[i] != ',')
            i++;
        if (++count > SF_MAX_RECORDS)
            return sf_reject(c, "more than %d ids", SF_MAX_RECORDS);
        if (!sf_id_valid(ids + st, i - st))
            return sf_reject(c, "'%.*s' is not a record id", (int)(i - st), ids + st);
        if (obj == NULL) {
            obj = sf_object_for_id(c->schema, ids + st);
            if (obj == NULL)
                return sf_reject(c, "unknown key prefix of id %.*s", (int)(i - st), ids + st);
        } else {
            rc = sf_check_id(c, obj, ids + st, i - st);
            if (rc != SF_OK)
                return rc;
        }
        op = sf_op(c, verb, obj, strlen(obj));
        if (op == NULL || crm_op_set(&op->record_id, ids + st, i - st) < 0)
            return sf_op_fail(c);
        if (verb == CRM_VERB_READ) {
            rc = jfields ? sf_add_field_array(c, op, jfields) : sf_fields_param(c, op, q);
            if (rc != SF_OK)
                return rc;
        }
        i++;
    }
    return SF_OK;
}

/* /composite/sobjects[/S[/Ext]] (reference §7.4). */
static int sf_route_collections(struct sf_ctx *c, const struct sf_req *r)
{
    json_t *body = NULL, *records, *rec;
    size_t i;
    int rc;

    if (r->n == 2) {
        if (sf_m(r, "DELETE")) {
            const struct sf_param *ids = sf_param(r->q, "ids");
            rc = sf_body_absent(c, r->body, r->m);
            if (rc != SF_OK)
                return rc;
            if (ids == NULL)
                return sf_reject(c, "collections delete without ids");
            return sf_ids_ops(c, CRM_VERB_DELETE, NULL, ids->val, ids->vlen, r->q, NULL);
        }
        if (!sf_m(r, "POST") && !sf_m(r, "PATCH"))
            return sf_reject(c, "%s on /composite/sobjects not classified", r->m);
        rc = sf_body_object(c, r->body, &body);
        if (rc == SF_OK)
            rc = sf_records(c, body, &records);
        if (rc != SF_OK)
            return rc;
        json_array_foreach(records, i, rec)
        {
            const char *type = sf_record_type(c, rec, i);
            json_t *id = json_object_get(rec, "id"), *Id = json_object_get(rec, "Id");
            struct crm_op *op;

            if (type == NULL)
                return SF_REJECT;
            if (sf_m(r, "POST")) {
                op = sf_op(c, CRM_VERB_CREATE, type, strlen(type));
                if (op == NULL)
                    return sf_op_fail(c);
                rc = sf_add_writes(c, op, rec, type, NULL);
            } else {
                if ((id == NULL) == (Id == NULL) || !json_is_string(id ? id : Id))
                    return sf_reject(c, "records[%zu] needs exactly one of id and Id", i);
                if (id == NULL)
                    id = Id;
                rc = sf_check_id(c, type, json_string_value(id), json_string_length(id));
                if (rc != SF_OK)
                    return rc;
                op = sf_op(c, CRM_VERB_UPDATE, type, strlen(type));
                if (op == NULL ||
                    crm_op_set(&op->record_id, json_string_value(id), json_string_length(id)) < 0)
                    return sf_op_fail(c);
                rc = sf_add_writes(c, op, rec, type, Id ? "Id" : "id");
            }
            if (rc != SF_OK)
                return rc;
        }
        return SF_OK;
    }
    if (!sf_ident(r->seg[2], r->len[2]))
        return sf_reject(c, "'%.*s' is not an object name", (int)r->len[2], r->seg[2]);
    if (r->n == 3) {
        char obj[SF_MAX_NAME + 1];
        memcpy(obj, r->seg[2], r->len[2]);
        obj[r->len[2]] = '\0';
        if (sf_get(r)) {
            const struct sf_param *ids = sf_param(r->q, "ids");
            rc = sf_body_absent(c, r->body, r->m);
            if (rc != SF_OK)
                return rc;
            if (ids == NULL)
                return sf_reject(c, "collections retrieve without ids");
            return sf_ids_ops(c, CRM_VERB_READ, obj, ids->val, ids->vlen, r->q, NULL);
        }
        if (sf_m(r, "POST")) {
            const char *key;
            json_t *v, *ids, *idv;
            rc = sf_body_object(c, r->body, &body);
            if (rc != SF_OK)
                return rc;
            json_object_foreach(body, key, v)
            {
                if (strcmp(key, "ids") != 0 && strcmp(key, "fields") != 0)
                    return sf_reject(c, "collections retrieve key %s not classified", key);
            }
            ids = json_object_get(body, "ids");
            if (!json_is_array(ids) || json_array_size(ids) == 0 ||
                json_array_size(ids) > SF_MAX_RECORDS)
                return sf_reject(c, "collections retrieve needs 1 to %d ids", SF_MAX_RECORDS);
            if (json_object_get(body, "fields") == NULL)
                return sf_reject(c, "collections retrieve without fields");
            json_array_foreach(ids, i, idv)
            {
                if (!json_is_string(idv))
                    return sf_reject(c, "ids[%zu] is not a string", i);
                rc = sf_ids_ops(c, CRM_VERB_READ, obj, json_string_value(idv),
                                json_string_length(idv), r->q, json_object_get(body, "fields"));
                if (rc != SF_OK)
                    return rc;
            }
            return SF_OK;
        }
        return sf_reject(c, "%s on /composite/sobjects/%s not classified", r->m, obj);
    }
    if (r->n == 4 && sf_m(r, "PATCH")) {
        char obj[SF_MAX_NAME + 1], ext[SF_MAX_NAME + 1];
        if (!sf_ident(r->seg[3], r->len[3]))
            return sf_reject(c, "'%.*s' is not a field name", (int)r->len[3], r->seg[3]);
        memcpy(obj, r->seg[2], r->len[2]);
        obj[r->len[2]] = '\0';
        memcpy(ext, r->seg[3], r->len[3]);
        ext[r->len[3]] = '\0';
        rc = sf_body_object(c, r->body, &body);
        if (rc == SF_OK)
            rc = sf_records(c, body, &records);
        if (rc != SF_OK)
            return rc;
        json_array_foreach(records, i, rec)
        {
            const char *type = sf_record_type(c, rec, i);
            json_t *val;
            struct crm_op *op;
            char num[64];
            const char *vs;
            size_t vl;

            if (type == NULL)
                return SF_REJECT;
            if (strcasecmp(type, obj) != 0)
                return sf_reject(c, "records[%zu] is a %s, not a %s", i, type, obj);
            val = json_object_get(rec, ext);
            if (json_is_string(val)) {
                vs = json_string_value(val);
                vl = json_string_length(val);
            } else if (json_is_integer(val)) {
                snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(val));
                vs = num;
                vl = strlen(num);
            } else {
                return sf_reject(c, "records[%zu] has no %s value", i, ext);
            }
            op = sf_op(c, CRM_VERB_UPSERT, obj, r->len[2]);
            if (op == NULL || crm_op_set(&op->record_id, vs, vl) < 0 ||
                crm_op_set(&op->id_property, ext, r->len[3]) < 0)
                return sf_op_fail(c);
            rc = sf_add_writes(c, op, rec, obj, NULL);
            if (rc != SF_OK)
                return rc;
        }
        return SF_OK;
    }
    return sf_reject(c, "collections path not classified");
}

/*
 * One sObject tree record of type object (level 1..SF_MAX_TREE): a create
 * op with its fields, then its children, found under child relationship
 * names as {"records":[...]}.
 */
static int sf_tree_record(struct sf_ctx *c, json_t *rec, size_t i, const char *object, int level,
                          size_t *count)
{
    const char *type = sf_record_type(c, rec, i), *key;
    size_t opi;
    json_t *v;
    int rc;

    if (type == NULL)
        return SF_REJECT;
    if (strcasecmp(type, object) != 0)
        return sf_reject(c, "tree record is a %s, expected %s", type, object);
    if (++*count > SF_MAX_RECORDS)
        return sf_reject(c, "tree has more than %d records", SF_MAX_RECORDS);
    rc = sf_check_keys(c, rec);
    if (rc != SF_OK)
        return rc;
    if (sf_op(c, CRM_VERB_CREATE, object, strlen(object)) == NULL)
        return sf_op_fail(c);
    opi = c->ops->n - 1;
    json_object_foreach(rec, key, v)
    {
        json_t *kids = json_object_get(v, "records");

        if (strcmp(key, "attributes") == 0)
            continue;
        if (json_is_object(v) && kids != NULL) {
            const char *child = NULL;
            size_t j;
            json_t *kid;
            int res;

            if (json_object_size(v) != 1 || !json_is_array(kids))
                return sf_reject(c, "child relationship %s is not {records:[...]}", key);
            if (level >= SF_MAX_TREE)
                return sf_reject(c, "tree deeper than %d levels", SF_MAX_TREE);
            res = sf_schema_resolve(c->schema, object, key, strlen(key), 1, &child);
            if (res <= 0)
                return sf_reject(c, "unknown child relationship %s on %s", key, object);
            json_array_foreach(kids, j, kid)
            {
                rc = sf_tree_record(c, kid, j, child, level + 1, count);
                if (rc != SF_OK)
                    return rc;
            }
            continue;
        }
        if ((rc = sf_add_write(c, &c->ops->v[opi], object, key, v)) != SF_OK)
            return rc;
    }
    return SF_OK;
}

static int sf_route_tree(struct sf_ctx *c, const struct sf_req *r)
{
    json_t *body, *records, *rec;
    const char *key;
    char obj[SF_MAX_NAME + 1];
    size_t i, count = 0;
    int rc;

    if (r->n != 3 || !sf_m(r, "POST"))
        return sf_reject(c, "%s on composite/tree not classified", r->m);
    if (!sf_ident(r->seg[2], r->len[2]))
        return sf_reject(c, "'%.*s' is not an object name", (int)r->len[2], r->seg[2]);
    memcpy(obj, r->seg[2], r->len[2]);
    obj[r->len[2]] = '\0';
    rc = sf_body_object(c, r->body, &body);
    if (rc != SF_OK)
        return rc;
    json_object_foreach(body, key, rec)
    {
        if (strcmp(key, "records") != 0)
            return sf_reject(c, "tree key %s not classified", key);
    }
    records = json_object_get(body, "records");
    if (!json_is_array(records) || json_array_size(records) == 0)
        return sf_reject(c, "records is not a non-empty array");
    json_array_foreach(records, i, rec)
    {
        rc = sf_tree_record(c, rec, i, obj, 1, &count);
        if (rc != SF_OK)
            return rc;
    }
    return SF_OK;
}

static int sf_route(struct sf_ctx *c, const char *method, const char *path, const char *query,
                    struct sf_body *body, const char *hdr_override, int depth, int refs_ok);

enum sf_sub_kind { SF_SUB_COMPOSITE, SF_SUB_BATCH, SF_SUB_GRAPH };

/*
 * Composite references: Salesforce replaces @{ref.path} with a value from an
 * earlier subrequest's answer before it runs this one, so @{a.Phone} copies
 * a field crmgate never saw being read into the url or the body. Only
 * references to record ids (@{a.id}, @{a.records[0].Id}) are followed; any
 * other reference is refused. SF_OK when s[0..len) is clean.
 */
static int sf_refs_check(struct sf_ctx *c, const char *s, size_t len, size_t i)
{
    const char *end = s + len, *p = s;

    while (p < end && (p = memchr(p, '@', (size_t)(end - p))) != NULL) {
        const char *close, *dot;
        if (p + 1 >= end || p[1] != '{') {
            p++;
            continue;
        }
        close = memchr(p, '}', (size_t)(end - p));
        if (close == NULL)
            return sf_reject(c, "subrequest %zu: unterminated composite reference", i);
        for (dot = close; dot > p && *dot != '.'; dot--)
            ;
        if (*dot != '.' || close - dot - 1 != 2 || strncasecmp(dot + 1, "id", 2) != 0)
            return sf_reject(c,
                             "subrequest %zu: composite reference %.*s reads a field other "
                             "than a record id; crmgate only follows id references",
                             i, (int)(close - p + 1 > 80 ? 80 : close - p + 1), p);
        p = close + 1;
    }
    return SF_OK;
}

/* sf_refs_check on every key and string value of a JSON body. */
static int sf_refs_check_json(struct sf_ctx *c, json_t *v, size_t i, int depth)
{
    const char *key;
    json_t *item;
    size_t k;

    if (depth > 32)
        return sf_reject(c, "subrequest %zu: body nests too deep", i);
    if (json_is_string(v))
        return sf_refs_check(c, json_string_value(v), json_string_length(v), i);
    if (json_is_array(v)) {
        json_array_foreach(v, k, item)
        {
            if (sf_refs_check_json(c, item, i, depth + 1) != SF_OK)
                return SF_REJECT;
        }
    } else if (json_is_object(v)) {
        json_object_foreach(v, key, item)
        {
            if (sf_refs_check(c, key, strlen(key), i) != SF_OK ||
                sf_refs_check_json(c, item, i, depth + 1) != SF_OK)
                return SF_REJECT;
        }
    }
    return SF_OK;
}

/*
 * A key or value of Sforce-Duplicate-Rule-Header: letters, digits and '_'
 * (a value also '.' and '-'). Nothing else: a control byte, a non-ASCII
 * space or an inner blank is something a reader that trims or splits more
 * loosely than crmgate (Java's trim() drops every byte up to ' ') could read
 * as another key, "\vallowSave" as allowSave.
 */
static int sf_duplicate_token(const char *s, size_t len, int value)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || (value && (ch == '.' || ch == '-'))))
            return 0;
    }
    return 1;
}

/*
 * Sforce-Duplicate-Rule-Header ("allowSave=true; includeRecordDetails=true"):
 * *allow_save is 1 when the header asks Salesforce to save past its
 * duplicate rules. Parsed strictly, since the answer decides a policy: every
 * element must be key=value, each a plain token (sf_duplicate_token) with
 * only spaces and tabs around it, and an allowSave that is not true or false
 * is rejected rather than guessed at.
 */
static int sf_duplicate_rule(struct sf_ctx *c, const char *v, int *allow_save)
{
    const char *p = v;

    *allow_save = 0;
    while (*p != '\0') {
        size_t len = strcspn(p, ";,"), kl, vl;
        const char *tok = p, *eq, *val;
        p += len + (p[len] != '\0');
        while (len > 0 && (*tok == ' ' || *tok == '\t'))
            tok++, len--;
        while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
            len--;
        if (len == 0)
            continue;
        eq = memchr(tok, '=', len);
        if (eq == NULL)
            return sf_reject(c, "Sforce-Duplicate-Rule-Header element %.*s is not key=value",
                             (int)(len > 64 ? 64 : len), tok);
        for (kl = (size_t)(eq - tok); kl > 0 && (tok[kl - 1] == ' ' || tok[kl - 1] == '\t');)
            kl--;
        for (val = eq + 1; val < tok + len && (*val == ' ' || *val == '\t'); val++)
            ;
        vl = len - (size_t)(val - tok);
        if (!sf_duplicate_token(tok, kl, 0))
            return sf_reject(c, "Sforce-Duplicate-Rule-Header key is not letters, digits and '_'");
        if (sf_eq("allowSave", tok, kl)) {
            if (vl == 4 && strncasecmp(val, "true", 4) == 0)
                *allow_save = 1;
            else if (vl != 5 || strncasecmp(val, "false", 5) != 0)
                return sf_reject(
                    c, "Sforce-Duplicate-Rule-Header allowSave is neither true nor false");
        } else if (!sf_duplicate_token(val, vl, 1)) {
            return sf_reject(c,
                             "Sforce-Duplicate-Rule-Header value of %.*s is not letters, "
                             "digits, '_', '.' and '-'",
                             (int)kl, tok);
        }
    }
    return SF_OK;
}

/* Mark the writes among ops[first..] as saved past duplicate rules. */
static void sf_mark_save_duplicates(struct crm_ops *ops, size_t first)
{
    for (size_t k = first; k < ops->n; k++) {
        enum crm_verb vb = ops->v[k].verb;
        if (vb == CRM_VERB_CREATE || vb == CRM_VERB_UPDATE || vb == CRM_VERB_UPSERT)
            ops->v[k].save_duplicates = 1;
    }
}

/* One subrequest of composite, batch or graph, classified like a request of its own. */
static int sf_subrequest(struct sf_ctx *c, json_t *sub, size_t i, enum sf_sub_kind kind, int depth)
{
    const char *key, *url, *qm, *override = NULL;
    json_t *v, *method, *jurl, *headers, *b;
    struct sf_body body = {0};
    char *path = NULL;
    size_t ulen, first = c->ops->n;
    int allow_save = 0;
    int rc;

    if (!json_is_object(sub))
        return sf_reject(c, "subrequest %zu is not an object", i);
    json_object_foreach(sub, key, v)
    {
        int ok = strcmp(key, "method") == 0 || strcmp(key, "url") == 0;
        if (kind == SF_SUB_BATCH)
            ok |= strcmp(key, "richInput") == 0;
        else
            ok |= strcmp(key, "referenceId") == 0 || strcmp(key, "body") == 0 ||
                  strcmp(key, "httpHeaders") == 0;
        if (!ok)
            return sf_reject(c, "subrequest %zu: key %s not classified", i, key);
    }
    method = json_object_get(sub, "method");
    jurl = json_object_get(sub, "url");
    if (!json_is_string(method) || !json_is_string(jurl))
        return sf_reject(c, "subrequest %zu needs a method and a url", i);
    headers = json_object_get(sub, "httpHeaders");
    if (headers != NULL) {
        if (!json_is_object(headers))
            return sf_reject(c, "subrequest %zu: httpHeaders is not an object", i);
        json_object_foreach(headers, key, v)
        {
            if (strcasecmp(key, "X-HTTP-Method-Override") == 0 && json_is_string(v))
                override = json_string_value(v);
            else if (strcasecmp(key, "Content-Encoding") == 0 ||
                     strcasecmp(key, "Content-Type") == 0 || strcasecmp(key, "Accept") == 0 ||
                     strcasecmp(key, "X-HTTP-Method-Override") == 0)
                return sf_reject(c, "subrequest %zu: header %s not classified", i, key);
            /* defaultNamespace=NS: an unprefixed name would mean NS's field or object */
            else if (strcasecmp(key, "Sforce-Call-Options") == 0 &&
                     (!json_is_string(v) ||
                      strcasestr(json_string_value(v), "defaultNamespace") != NULL))
                return sf_reject(c, "subrequest %zu: Sforce-Call-Options defaultNamespace", i);
            else if (strcasecmp(key, "Sforce-Duplicate-Rule-Header") == 0 &&
                     (!json_is_string(v) ||
                      sf_duplicate_rule(c, json_string_value(v), &allow_save) != SF_OK))
                return sf_reject(c, "subrequest %zu: Sforce-Duplicate-Rule-Header not classified",
                                 i);
        }
    }
    b = json_object_get(sub, kind == SF_SUB_BATCH ? "richInput" : "body");
    body.json = json_is_null(b) ? NULL : b;
    url = json_string_value(jurl);
    ulen = json_string_length(jurl);
    if (sf_refs_check(c, url, ulen, i) != SF_OK ||
        (b != NULL && sf_refs_check_json(c, b, i, 0) != SF_OK))
        return SF_REJECT;
    if (strcasestr(url, "%40%7B") != NULL || strcasestr(url, "@%7B") != NULL)
        return sf_reject(c, "subrequest %zu: encoded composite reference in the url", i);
    if (memchr(url, '\0', ulen) != NULL)
        return sf_reject(c, "subrequest %zu: NUL in url", i);
    path = malloc(ulen + 16);
    if (path == NULL)
        return SF_NOMEM;
    if (kind == SF_SUB_BATCH && url[0] == 'v') {
        /* Batch urls are relative to /services/data/ (reference §7.2). */
        memcpy(path, "/services/data/", 15);
        memcpy(path + 15, url, ulen + 1);
    } else {
        memcpy(path, url, ulen + 1);
    }
    qm = strchr(path, '?');
    if (qm != NULL)
        path[qm - path] = '\0';
    rc = sf_route(c, json_string_value(method), path, qm ? qm + 1 : NULL, &body, override,
                  depth + 1, kind != SF_SUB_BATCH);
    free(path);
    path = NULL;
    if (rc == SF_REJECT)
        sf_why_prefix(c, "subrequest", i);
    else if (rc == SF_OK && allow_save)
        sf_mark_save_duplicates(c->ops, first);
    return rc;
}

static int sf_subrequests(struct sf_ctx *c, json_t *arr, enum sf_sub_kind kind, int depth,
                          size_t *count)
{
    size_t i;
    json_t *sub;
    int rc;

    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return sf_reject(c, "subrequests are not a non-empty array");
    json_array_foreach(arr, i, sub)
    {
        if (++*count > SF_MAX_SUBREQ)
            return sf_reject(c, "more than %d subrequests", SF_MAX_SUBREQ);
        size_t first = c->ops->n;
        rc = sf_subrequest(c, sub, i, kind, depth);
        if (rc != SF_OK)
            return rc;
        /* a composite's or batch's answer has one entry per subrequest: its records' outcomes */
        for (size_t k = first; kind != SF_SUB_GRAPH && k < c->ops->n; k++)
            c->ops->v[k].subrequest = i + 1;
    }
    return SF_OK;
}

static int sf_route_composite(struct sf_ctx *c, const struct sf_req *r)
{
    json_t *body, *v, *graphs;
    const char *key;
    size_t count = 0, i;
    int rc;

    if (r->n >= 2 && sf_is(r, 1, "sobjects"))
        return sf_route_collections(c, r);
    if (r->depth > 0)
        return sf_reject(c, "nested composite request");
    if (r->n >= 2 && sf_is(r, 1, "tree"))
        return sf_route_tree(c, r);
    if (!sf_m(r, "POST"))
        return sf_reject(c, "%s on composite not classified", r->m);
    if (r->n == 1) {
        rc = sf_body_object(c, r->body, &body);
        if (rc != SF_OK)
            return rc;
        json_object_foreach(body, key, v)
        {
            if (strcmp(key, "allOrNone") != 0 && strcmp(key, "collateSubrequests") != 0 &&
                strcmp(key, "compositeRequest") != 0)
                return sf_reject(c, "composite key %s not classified", key);
        }
        return sf_subrequests(c, json_object_get(body, "compositeRequest"), SF_SUB_COMPOSITE,
                              r->depth, &count);
    }
    if (r->n == 2 && sf_is(r, 1, "batch")) {
        rc = sf_body_object(c, r->body, &body);
        if (rc != SF_OK)
            return rc;
        json_object_foreach(body, key, v)
        {
            if (strcmp(key, "batchRequests") != 0 && strcmp(key, "haltOnError") != 0)
                return sf_reject(c, "batch key %s not classified", key);
        }
        return sf_subrequests(c, json_object_get(body, "batchRequests"), SF_SUB_BATCH, r->depth,
                              &count);
    }
    if (r->n == 2 && sf_is(r, 1, "graph")) {
        rc = sf_body_object(c, r->body, &body);
        if (rc != SF_OK)
            return rc;
        json_object_foreach(body, key, v)
        {
            if (strcmp(key, "graphs") != 0)
                return sf_reject(c, "graph key %s not classified", key);
        }
        graphs = json_object_get(body, "graphs");
        if (!json_is_array(graphs) || json_array_size(graphs) == 0)
            return sf_reject(c, "graphs is not a non-empty array");
        json_array_foreach(graphs, i, v)
        {
            const char *k2;
            json_t *v2;
            if (!json_is_object(v))
                return sf_reject(c, "graphs[%zu] is not an object", i);
            json_object_foreach(v, k2, v2)
            {
                if (strcmp(k2, "graphId") != 0 && strcmp(k2, "compositeRequest") != 0)
                    return sf_reject(c, "graphs[%zu].%s not classified", i, k2);
            }
            size_t first = c->ops->n;
            rc = sf_subrequests(c, json_object_get(v, "compositeRequest"), SF_SUB_GRAPH, r->depth,
                                &count);
            if (rc != SF_OK) {
                if (rc == SF_REJECT)
                    sf_why_prefix(c, "graph", i);
                return rc;
            }
            /* a graph is all or nothing: its answer's isSuccessful is each op's outcome */
            for (size_t k = first; k < c->ops->n; k++)
                c->ops->v[k].graph = i + 1;
        }
        return SF_OK;
    }
    return sf_reject(c, "composite resource not classified");
}

/* Everything under /services/data/vNN.N/. */
static int sf_route_data(struct sf_ctx *c, const struct sf_req *r)
{
    if (r->n == 0) {
        if (!sf_get(r))
            return sf_reject(c, "%s on the version root not classified", r->m);
        return sf_simple(c, r, CRM_VERB_SCHEMA_READ, NULL, 0);
    }
    if (sf_is(r, 0, "sobjects"))
        return sf_route_sobjects(c, r);
    if (sf_is(r, 0, "query") || sf_is(r, 0, "queryAll"))
        return sf_route_query(c, r);
    if (sf_is(r, 0, "search")) {
        const struct sf_param *q = sf_param(r->q, "q");
        int rc;
        if (r->n != 1 || !sf_get(r))
            return sf_reject(c, "%s on search not classified", r->m);
        rc = sf_body_absent(c, r->body, r->m);
        if (rc != SF_OK)
            return rc;
        if (q == NULL)
            return sf_reject(c, "search without q");
        c->merge_from = c->ops->n;
        return sf_sosl(c, q->val, q->vlen);
    }
    if (sf_is(r, 0, "parameterizedSearch"))
        return sf_route_psearch(c, r);
    if (sf_is(r, 0, "composite"))
        return sf_route_composite(c, r);
    if (sf_is(r, 0, "limits")) {
        if (r->n != 1 || !sf_get(r))
            return sf_reject(c, "limits resource not classified");
        return sf_simple(c, r, CRM_VERB_SCHEMA_READ, NULL, 0);
    }
    return sf_reject(c, "resource '%.*s' not classified", (int)r->len[0], r->seg[0]);
}

/* vNN.N */
static int sf_version(const char *s, size_t len)
{
    size_t i = 1, d;

    if (len < 4 || s[0] != 'v')
        return 0;
    for (d = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++, d++)
        ;
    if (d == 0 || d > 3 || i >= len || s[i] != '.')
        return 0;
    for (i++, d = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++, d++)
        ;
    return d >= 1 && d <= 2 && i == len;
}

/*
 * POST /services/oauth2/revoke with token=... in a form body: a REVOKE op,
 * audited as a write (crm_revoke_op). The reference (salesforce-api.md §8)
 * has revocation as this POST only: a GET is not classified.
 */
static int sf_revoke(struct sf_ctx *c, const char *query, const struct sf_body *body)
{
    struct crm_request req = {.query = query,
                              .content_type = body->content_type,
                              .body = body->raw,
                              .body_len = body->len};

    switch (crm_revoke_op(c->ops, CRM_SALESFORCE, &req, "token", NULL, 0, c->why, sizeof(c->why))) {
    case 0:
        return SF_OK;
    case 1:
        return SF_REJECT;
    default:
        return SF_NOMEM;
    }
}

static int sf_route(struct sf_ctx *c, const char *method, const char *path, const char *query,
                    struct sf_body *body, const char *hdr_override, int depth, int refs_ok)
{
    struct sf_path p = {0};
    struct sf_query q = {0};
    struct sf_req r = {0};
    int rc;

    rc = sf_path_parse(c, path, &p);
    if (rc == SF_OK)
        rc = sf_query_parse(c, query, &q);
    if (rc == SF_OK)
        rc = sf_method(c, method, hdr_override, &q, &r.m);
    if (rc != SF_OK)
        goto done;
    r.q = &q;
    r.body = body;
    r.depth = depth;
    r.refs_ok = refs_ok;
    r.seg = p.seg;
    r.len = p.len;
    r.n = p.n;
    if (!sf_is(&r, 0, "services")) {
        rc = sf_reject(c, "path outside /services not classified");
        goto done;
    }
    if (sf_is(&r, 1, "oauth2") && depth == 0) {
        if (p.n == 3 && sf_is(&r, 2, "token") && sf_m(&r, "POST")) {
            rc = sf_op(c, CRM_VERB_AUTH, NULL, 0) ? SF_OK : SF_NOMEM;
        } else if (p.n == 3 && sf_is(&r, 2, "revoke") && sf_m(&r, "POST")) {
            rc = sf_revoke(c, query, body);
        } else {
            rc = sf_reject(c, "oauth2 endpoint not classified");
        }
        goto done;
    }
    if (!sf_is(&r, 1, "data")) {
        rc = sf_reject(c, "/services/%.*s not classified", (int)(p.n > 1 ? p.len[1] : 0),
                       p.n > 1 ? p.seg[1] : "");
        goto done;
    }
    if (p.n == 2) {
        rc = sf_get(&r) ? sf_simple(c, &r, CRM_VERB_SCHEMA_READ, NULL, 0)
                        : sf_reject(c, "%s on /services/data not classified", r.m);
        goto done;
    }
    if (!sf_version(p.seg[2], p.len[2])) {
        rc = sf_reject(c, "'%.*s' is not an API version", (int)p.len[2], p.seg[2]);
        goto done;
    }
    r.seg = p.seg + 3;
    r.len = p.len + 3;
    r.n = p.n - 3;
    rc = sf_route_data(c, &r);
done:
    free(p.buf);
    p.buf = NULL;
    free(q.buf);
    q.buf = NULL;
    return rc;
}

int salesforce_classify(const struct crm_request *req, const struct sf_schema *schema,
                        struct crm_ops *out)
{
    struct crm_ops tmp = {0};
    struct sf_ctx c = {.schema = schema, .ops = &tmp};
    struct sf_body body = {.raw = req->body,
                           .len = req->body ? req->body_len : 0,
                           .content_type = req->content_type,
                           .from_raw = 1};
    struct crm_op *op;
    int rc, allow_save = 0;

    if (req->content_encoding != NULL && req->content_encoding[0] != '\0' &&
        strcasecmp(req->content_encoding, "identity") != 0)
        rc = sf_reject(&c, "Content-Encoding %s not classified", req->content_encoding);
    else if (req->duplicate_rule != NULL &&
             sf_duplicate_rule(&c, req->duplicate_rule, &allow_save) != SF_OK)
        rc = SF_REJECT;
    else
        rc = sf_route(&c, req->method, req->path, req->query, &body, req->method_override, 0, 0);
    /* on a composite too: whether Salesforce applies it to the subrequests or not */
    if (rc == SF_OK && allow_save)
        sf_mark_save_duplicates(&tmp, 0);
    json_decref(body.json);
    body.json = NULL;
    if (rc == SF_OK && tmp.n == 0)
        rc = sf_reject(&c, "request has no operation");
    if (rc == SF_NOMEM)
        goto fail;
    /*
     * A SOSL FIND term (search, parameterizedSearch) matches text in fields the
     * request does not name (ALL FIELDS, PHONE FIELDS, ...): a free-text read,
     * the pseudo-field "*query" as for HubSpot, allowed only by read "*" or an
     * explicit "*query".
     */
    for (size_t k = 0; rc == SF_OK && k < tmp.n; k++) {
        if (tmp.v[k].verb == CRM_VERB_SEARCH && crm_op_add_read(&tmp.v[k], "*query", 6) < 0)
            rc = SF_NOMEM;
    }
    if (rc == SF_NOMEM)
        goto fail;
    if (rc == SF_REJECT) {
        crm_ops_free(&tmp);
        op = crm_ops_add(&tmp, CRM_SALESFORCE, CRM_VERB_UNKNOWN);
        if (op == NULL || crm_op_set(&op->detail, c.why, strlen(c.why)) < 0)
            goto fail;
        op->malformed = c.malformed;
    }
    if (out->n == 0) {
        free(out->v);
        *out = tmp;
        return 0;
    }
    if (out->cap < out->n + tmp.n) {
        struct crm_op *nv = realloc(out->v, (out->n + tmp.n) * sizeof(*nv));
        if (nv == NULL)
            goto fail;
        out->v = nv;
        out->cap = out->n + tmp.n;
    }
    memcpy(out->v + out->n, tmp.v, tmp.n * sizeof(*tmp.v));
    out->n += tmp.n;
    free(tmp.v);
    return 0;
fail:
    crm_ops_free(&tmp);
    return -1;
}
