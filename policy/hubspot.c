/*
 * hubspot.c - classify HubSpot API requests into CRM operations.
 *
 * Every internal step returns HS_OK, HS_DENY (with the reason in c->why) or
 * HS_NOMEM; hubspot_classify() turns a denial into the single
 * CRM_VERB_UNKNOWN op, whatever ops were already added.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "crm.h"
#include "hubspot.h"
#include "jsonfilter.h"

#define HS_OK    0
#define HS_DENY  1
#define HS_NOMEM (-1)

#define HS_MAX_TYPE 128

/* Query parameters the classifier acts on. */
enum hs_param {
    HS_P_PROPERTIES,
    HS_P_PWH,
    HS_P_ASSOC,
    HS_P_IDPROP,
    HS_P_ARCHIVED,
    HS_P_PROPERTY, /* legacy v1 */
    HS_P_COUNT
};

static const char *const hs_param_names[HS_P_COUNT] = {
    [HS_P_PROPERTIES] = "properties", [HS_P_PWH] = "propertiesWithHistory",
    [HS_P_ASSOC] = "associations",    [HS_P_IDPROP] = "idProperty",
    [HS_P_ARCHIVED] = "archived",     [HS_P_PROPERTY] = "property",
};

#define HS_Q(p)       (1u << (p))
#define HS_Q_READ     (HS_Q(HS_P_PROPERTIES) | HS_Q(HS_P_PWH) | HS_Q(HS_P_ASSOC))
#define HS_Q_ARCHIVED HS_Q(HS_P_ARCHIVED)
#define HS_Q_IDPROP   HS_Q(HS_P_IDPROP)

struct hs_qparam {
    enum hs_param kind;
    const char *v;
    size_t len;
};

struct hs_ctx {
    const struct crm_request *req;
    struct crm_ops *out;
    enum { HS_GET, HS_POST, HS_PUT, HS_PATCH, HS_DELETE } method;
    char why[256];
    /* path: decoded segments, NUL-terminated, in pbuf */
    char pbuf[HUBSPOT_MAX_PATH + HUBSPOT_MAX_SEGS];
    const char *seg[HUBSPOT_MAX_SEGS];
    size_t seglen[HUBSPOT_MAX_SEGS];
    size_t nseg;
    /* query: decoded values of the tracked parameters, in qbuf */
    char qbuf[HUBSPOT_MAX_QUERY + 1];
    struct hs_qparam qp[HUBSPOT_MAX_PARAMS];
    size_t nqp;
    unsigned qseen; /* HS_Q() bits of the parameters present */
    json_t *body;
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
hs_deny(struct hs_ctx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
    return HS_DENY;
}

/* ---------------- object types ---------------- */

static const struct hs_type_name {
    const char *plural, *singular, *id;
} hs_types[] = {
    {"contacts", "contact", "0-1"},
    {"companies", "company", "0-2"},
    {"deals", "deal", "0-3"},
    {"tickets", "ticket", "0-5"},
    {"products", "product", "0-7"},
    {"line_items", "line_item", "0-8"},
    {"quotes", "quote", "0-14"},
    {"communications", "communication", "0-18"},
    {"tasks", "task", "0-27"},
    {"notes", "note", "0-46"},
    {"meetings", "meeting", "0-47"},
    {"calls", "call", "0-48"},
    {"emails", "email", "0-49"},
    {"marketing_events", "marketing_event", "0-54"},
    {"subscriptions", "subscription", "0-69"},
    {"users", "user", "0-115"},
    {"postal_mail", "postal_mail", "0-116"},
    {"orders", "order", "0-123"},
    {"leads", "lead", "0-136"},
    {"carts", "cart", "0-142"},
    {"services", "service", "0-162"},
    {"courses", "course", "0-410"},
    {"listings", "listing", "0-420"},
    {"appointments", "appointment", "0-421"},
};

static int hs_eq(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(s, lit, len) == 0;
}

static int hs_is_digits(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return 1;
}

static int hs_is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

/*
 * The canonical name of an object type into buf (HS_MAX_TYPE bytes):
 * standard types by plural, singular or 0-x id; custom 2-<n>, p_<name> and
 * p<portal>_<name> lower-cased. -1 when the spelling is not a type.
 */
static int hs_type_canon(const char *s, size_t len, char *buf)
{
    for (size_t i = 0; i < sizeof(hs_types) / sizeof(hs_types[0]); i++) {
        const struct hs_type_name *t = &hs_types[i];
        if (hs_eq(s, len, t->plural) || hs_eq(s, len, t->singular) || hs_eq(s, len, t->id)) {
            snprintf(buf, HS_MAX_TYPE, "%s", t->plural);
            return 0;
        }
    }
    if (len >= HS_MAX_TYPE)
        return -1;
    if (len > 2 && s[0] == '2' && s[1] == '-' && hs_is_digits(s + 2, len - 2)) {
        /* custom object type id */
    } else if (len > 2 && (s[0] == 'p' || s[0] == 'P')) {
        size_t i = 1;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i >= len || s[i] != '_' || i + 1 >= len)
            return -1;
        for (; i < len; i++) {
            if (!hs_is_name_char(s[i]))
                return -1;
        }
    } else {
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        buf[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    buf[len] = '\0';
    return 0;
}

static int hs_type(struct hs_ctx *c, const char *s, size_t len, char *buf)
{
    if (hs_type_canon(s, len, buf) < 0)
        return hs_deny(c, "unknown HubSpot object type \"%.*s\"", (int)(len > 64 ? 64 : len), s);
    return HS_OK;
}

/*
 * HUBSPOT_DEFINED association type ids (direction-specific), from the
 * npm client's AssociationTypes enum (reference §5).
 */
static const struct hs_assoc_type {
    int id;
    const char *from, *to;
} hs_assoc_types[] = {
    {1, "contacts", "companies"},    {2, "companies", "contacts"},   {279, "contacts", "companies"},
    {280, "companies", "contacts"},  {3, "deals", "contacts"},       {4, "contacts", "deals"},
    {5, "deals", "companies"},       {6, "companies", "deals"},      {341, "deals", "companies"},
    {342, "companies", "deals"},     {15, "contacts", "tickets"},    {16, "tickets", "contacts"},
    {25, "companies", "tickets"},    {26, "tickets", "companies"},   {339, "tickets", "companies"},
    {340, "companies", "tickets"},   {27, "deals", "tickets"},       {28, "tickets", "deals"},
    {19, "deals", "line_items"},     {20, "line_items", "deals"},    {13, "companies", "companies"},
    {14, "companies", "companies"},  {201, "contacts", "notes"},     {202, "notes", "contacts"},
    {189, "companies", "notes"},     {190, "notes", "companies"},    {213, "deals", "notes"},
    {214, "notes", "deals"},         {227, "tickets", "notes"},      {228, "notes", "tickets"},
    {203, "contacts", "tasks"},      {204, "tasks", "contacts"},     {191, "companies", "tasks"},
    {192, "tasks", "companies"},     {215, "deals", "tasks"},        {216, "tasks", "deals"},
    {229, "tickets", "tasks"},       {230, "tasks", "tickets"},      {193, "contacts", "calls"},
    {194, "calls", "contacts"},      {197, "contacts", "emails"},    {198, "emails", "contacts"},
    {199, "contacts", "meetings"},   {200, "meetings", "contacts"},  {181, "companies", "calls"},
    {182, "calls", "companies"},     {185, "companies", "emails"},   {186, "emails", "companies"},
    {187, "companies", "meetings"},  {188, "meetings", "companies"}, {205, "deals", "calls"},
    {206, "calls", "deals"},         {209, "deals", "emails"},       {210, "emails", "deals"},
    {211, "deals", "meetings"},      {212, "meetings", "deals"},     {449, "contacts", "contacts"},
    {450, "companies", "companies"}, {451, "deals", "deals"},        {452, "tickets", "tickets"},
};

static const struct hs_assoc_type *hs_assoc_type_find(json_int_t id)
{
    for (size_t i = 0; i < sizeof(hs_assoc_types) / sizeof(hs_assoc_types[0]); i++) {
        if (hs_assoc_types[i].id == id)
            return &hs_assoc_types[i];
    }
    return NULL;
}

/*
 * A v3 association type: a HUBSPOT_DEFINED numeric id, or a name
 * "<from>_to_<to>" (optionally "_unlabeled") in singular form. It must name
 * the same pair as the path, else HubSpot would act on other object types.
 */
static int hs_v3_assoc_type_ok(struct hs_ctx *c, const char *from, const char *to, const char *s,
                               size_t len)
{
    char a[HS_MAX_TYPE], b[HS_MAX_TYPE];
    const char *mid = NULL;

    if (hs_is_digits(s, len) && len < 10) {
        const struct hs_assoc_type *t = hs_assoc_type_find(strtol(s, NULL, 10));
        if (t != NULL && strcmp(t->from, from) == 0 && strcmp(t->to, to) == 0)
            return HS_OK;
        return hs_deny(c, "association type %.*s does not connect %s to %s", (int)len, s, from, to);
    }
    for (size_t i = 0; i + 4 <= len; i++) {
        if (strncasecmp(s + i, "_to_", 4) == 0) {
            mid = s + i;
            break;
        }
    }
    if (mid != NULL) {
        const char *rest = mid + 4;
        size_t rlen = len - (size_t)(rest - s);
        if (rlen > 10 && strncasecmp(rest + rlen - 10, "_unlabeled", 10) == 0)
            rlen -= 10;
        if (hs_type_canon(s, (size_t)(mid - s), a) == 0 && hs_type_canon(rest, rlen, b) == 0 &&
            strcmp(a, from) == 0 && strcmp(b, to) == 0)
            return HS_OK;
    }
    return hs_deny(c, "association type \"%.*s\" does not connect %s to %s",
                   (int)(len > 64 ? 64 : len), s, from, to);
}

/* ---------------- path and query ---------------- */

/*
 * Make a denial reason safe to put in JSON and logs: bytes that are not
 * part of well-formed UTF-8 (input echoed, or a sequence cut by a %.64s)
 * and control characters become '?'.
 */

static void hs_sanitize(char *s)
{
    size_t len = strlen(s);

    for (size_t i = 0; i < len;) {
        unsigned char b = (unsigned char)s[i];
        size_t n = b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
        if (b < 0x20 || b == 0x7f) {
            s[i++] = '?';
        } else if (b < 0x80) {
            i++;
        } else if (i + n <= len && crm_utf8_valid((const unsigned char *)s + i, n)) {
            i += n;
        } else {
            s[i++] = '?';
        }
    }
}

/*
 * Percent-decode src[0..len) once into dst (room for len bytes); plus_space
 * for query strings. Denies invalid escapes, NUL and control bytes, and a
 * '%' that survives decoding (a double encoding another layer might decode
 * again). Returns the decoded length or -1 with c->why set.
 */
static long hs_pct_decode(struct hs_ctx *c, const char *src, size_t len, char *dst, int plus_space)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)src[i];
        if (ch == '%') {
            int h, l;
            if (i + 2 >= len) {
                hs_deny(c, "invalid percent escape");
                return -1;
            }
            h = crm_hex(src[i + 1]);
            l = crm_hex(src[i + 2]);
            if (h < 0 || l < 0) {
                hs_deny(c, "invalid percent escape");
                return -1;
            }
            ch = (unsigned char)(h * 16 + l);
            i += 2;
            if (ch == '%') {
                hs_deny(c, "double percent-encoding (%%25) is not accepted");
                return -1;
            }
        } else if (ch == '+' && plus_space) {
            ch = ' ';
        }
        if (ch == 0) {
            hs_deny(c, "NUL byte in the URL");
            return -1;
        }
        if (ch < 0x20 || ch == 0x7f) {
            hs_deny(c, "control character in the URL");
            return -1;
        }
        dst[o++] = (char)ch;
    }
    if (!crm_utf8_valid((const unsigned char *)dst, o)) {
        hs_deny(c, "invalid UTF-8 in the URL");
        return -1;
    }
    return (long)o;
}

/* Split the raw path into decoded segments, skipping empty ones. */
static int hs_parse_path(struct hs_ctx *c, const char *path)
{
    size_t plen, o = 0;
    const char *p, *end;

    if (path == NULL || path[0] != '/')
        return hs_deny(c, "the path does not start with /");
    plen = strlen(path);
    if (plen > HUBSPOT_MAX_PATH)
        return hs_deny(c, "path longer than %d bytes", HUBSPOT_MAX_PATH);
    p = path;
    end = path + plen;
    while (p < end) {
        const char *s = p, *e;
        long dlen;
        while (s < end && *s == '/')
            s++;
        if (s == end)
            break;
        e = s;
        while (e < end && *e != '/')
            e++;
        p = e;
        for (const char *k = s; k < e; k++) {
            /* ';' opens path parameters to Java servlet containers ("..;" is ".." to
             * Tomcat): the upstream could route a path other than the one classified */
            if (*k == '?' || *k == '#' || *k == '\\' || *k == ' ' || *k == ';')
                return hs_deny(c, "character '%c' in the path is not accepted", *k);
        }
        if (c->nseg == HUBSPOT_MAX_SEGS)
            return hs_deny(c, "path deeper than %d segments", HUBSPOT_MAX_SEGS);
        dlen = hs_pct_decode(c, s, (size_t)(e - s), c->pbuf + o, 0);
        if (dlen < 0)
            return HS_DENY;
        if (memchr(c->pbuf + o, '/', (size_t)dlen) != NULL)
            return hs_deny(c, "encoded slash (%%2F) in the path");
        if (memchr(c->pbuf + o, '\\', (size_t)dlen) != NULL)
            return hs_deny(c, "encoded backslash (%%5C) in the path");
        if ((dlen == 1 && c->pbuf[o] == '.') ||
            (dlen == 2 && c->pbuf[o] == '.' && c->pbuf[o + 1] == '.'))
            return hs_deny(c, "dot segment (. or ..) in the path");
        c->seg[c->nseg] = c->pbuf + o;
        c->seglen[c->nseg] = (size_t)dlen;
        c->nseg++;
        o += (size_t)dlen;
        c->pbuf[o++] = '\0';
    }
    return HS_OK;
}

/* Parse the query: keep the tracked parameters, deny bad escapes and case tricks. */
static int hs_parse_query(struct hs_ctx *c, const char *q)
{
    size_t qlen, o = 0;
    const char *p, *end;

    if (q == NULL)
        return HS_OK;
    qlen = strlen(q);
    if (qlen > HUBSPOT_MAX_QUERY)
        return hs_deny(c, "query string longer than %d bytes", HUBSPOT_MAX_QUERY);
    /* A parameter separator to some servers: "limit=1;idProperty=phone" would hide a
     * parameter from the classifier (as the Salesforce classifier, which denies it too). */
    if (memchr(q, ';', qlen) != NULL)
        return hs_deny(c, "';' in the query string is not accepted");
    p = q;
    end = q + qlen;
    while (p < end) {
        const char *s = p, *e, *eq;
        char key[64];
        long klen, vlen;
        int kind = -1;

        e = memchr(s, '&', (size_t)(end - s));
        if (e == NULL)
            e = end;
        p = e + 1;
        if (e == s)
            continue;
        eq = memchr(s, '=', (size_t)(e - s));
        if (eq == NULL)
            eq = e;
        if ((size_t)(eq - s) >= sizeof(key)) {
            /* long names are never ones we track; still check their encoding */
            if (hs_pct_decode(c, s, (size_t)(e - s), c->qbuf + o, 1) < 0)
                return HS_DENY;
            continue;
        }
        klen = hs_pct_decode(c, s, (size_t)(eq - s), key, 1);
        if (klen < 0)
            return HS_DENY;
        vlen = hs_pct_decode(c, eq < e ? eq + 1 : e, eq < e ? (size_t)(e - eq - 1) : 0, c->qbuf + o,
                             1);
        if (vlen < 0)
            return HS_DENY;
        for (int k = 0; k < HS_P_COUNT; k++) {
            const char *name = hs_param_names[k];
            if (strlen(name) != (size_t)klen || strncasecmp(key, name, (size_t)klen) != 0)
                continue;
            if (memcmp(key, name, (size_t)klen) != 0)
                return hs_deny(c, "query parameter \"%.*s\" differs in case from \"%s\"", (int)klen,
                               key, name);
            kind = k;
        }
        if (kind < 0)
            continue; /* limit, after, locale, ...: no effect on what is read or written */
        if ((kind == HS_P_IDPROP || kind == HS_P_ARCHIVED) && (c->qseen & HS_Q(kind)))
            return hs_deny(c, "query parameter \"%s\" given twice", hs_param_names[kind]);
        if (c->nqp == HUBSPOT_MAX_PARAMS)
            return hs_deny(c, "more than %d property parameters", HUBSPOT_MAX_PARAMS);
        c->qseen |= HS_Q(kind);
        c->qp[c->nqp].kind = (enum hs_param)kind;
        c->qp[c->nqp].v = c->qbuf + o;
        c->qp[c->nqp].len = (size_t)vlen;
        c->nqp++;
        o += (size_t)vlen;
    }
    return HS_OK;
}

/*
 * A v1 contact profile (GET .../profile, and the answer to a v1 create)
 * carries, beside "properties", identity profiles (every email of the
 * contact), form submissions, list memberships and the associated company's
 * properties: data the response filter cannot cut to the read rules. Those
 * two calls are denied; v3 gives the same records in a shape crmgate filters.
 */
#define HS_V1_PROFILE_DENIED                                                                       \
    "legacy v1 contact profiles carry identity, form and company data crmgate cannot filter: "     \
    "use /crm/v3/objects/contacts"

/* ---------------- op helpers ---------------- */

static struct crm_op *hs_op(struct hs_ctx *c, enum crm_verb verb, const char *object)
{
    struct crm_op *op = crm_ops_add(c->out, CRM_HUBSPOT, verb);

    if (op == NULL)
        return NULL;
    if (object != NULL && crm_op_set(&op->object, object, strlen(object)) < 0)
        return NULL;
    return op;
}

static int hs_set(char **member, const char *s, size_t len)
{
    return crm_op_set(member, s, len) < 0 ? HS_NOMEM : HS_OK;
}

/* A record id from a path segment or a body: no control bytes, no '/', not a dot segment. */
static int hs_id_ok(struct hs_ctx *c, const char *s, size_t len)
{
    if (len == 0)
        return hs_deny(c, "empty record id");
    if (len > HUBSPOT_MAX_ID)
        return hs_deny(c, "record id longer than %d bytes", HUBSPOT_MAX_ID);
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return hs_deny(c, "record id is a dot segment");
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || ch == '/' || ch == '\\')
            return hs_deny(c, "record id contains a control character or a slash");
    }
    return HS_OK;
}

/*
 * A record id in a body: a string or an integer (the wire carries both).
 * Points *s at a string inside v or at buf.
 */
static int hs_json_id(struct hs_ctx *c, json_t *v, const char *what, char *buf, size_t buflen,
                      const char **s, size_t *len)
{
    if (json_is_string(v)) {
        *s = json_string_value(v);
        *len = json_string_length(v);
        if (memchr(*s, '\0', *len) != NULL)
            return hs_deny(c, "%s contains NUL", what);
    } else if (json_is_integer(v)) {
        int n = snprintf(buf, buflen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *s = buf;
        *len = (size_t)n;
    } else {
        return hs_deny(c, "%s is not a string or an integer", what);
    }
    return hs_id_ok(c, *s, *len);
}

static int hs_set_json_id(struct hs_ctx *c, char **member, json_t *v, const char *what)
{
    char buf[32];
    const char *s = NULL;
    size_t len = 0;
    int rc = hs_json_id(c, v, what, buf, sizeof(buf), &s, &len);

    if (rc != HS_OK)
        return rc;
    return hs_set(member, s, len);
}

/* Only the keys in allowed (NULL-terminated) may appear in object o. */
static int hs_keys_ok(struct hs_ctx *c, json_t *o, const char *where, const char *const *allowed)
{
    const char *key;
    json_t *v;

    json_object_foreach(o, key, v)
    {
        size_t i;
        for (i = 0; allowed[i] != NULL; i++) {
            if (strcmp(key, allowed[i]) == 0)
                break;
        }
        if (allowed[i] == NULL)
            return hs_deny(c, "unexpected key \"%.64s\" in %s", key, where);
    }
    return HS_OK;
}

/* A property read: "associations.<type>" is canonicalised like the associations parameter. */
static int hs_add_read(struct crm_op *op, const char *s, size_t len)
{
    char buf[HS_MAX_TYPE + 16];

    if (len > 13 && strncasecmp(s, "associations.", 13) == 0) {
        char t[HS_MAX_TYPE];
        if (hs_type_canon(s + 13, len - 13, t) == 0) {
            int n = snprintf(buf, sizeof(buf), "associations.%s", t);
            return crm_op_add_read(op, buf, (size_t)n) < 0 ? HS_NOMEM : HS_OK;
        }
    }
    return crm_op_add_read(op, s, len) < 0 ? HS_NOMEM : HS_OK;
}

/* Add each comma-separated item of s as a read (empty items skipped). */
static int hs_add_read_list(struct crm_op *op, const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        if (j > i && hs_add_read(op, s + i, j - i) != HS_OK)
            return HS_NOMEM;
        i = j + 1;
    }
    return HS_OK;
}

static int hs_add_assoc_read(struct hs_ctx *c, struct crm_op *op, const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t j = i;
        char t[HS_MAX_TYPE], buf[HS_MAX_TYPE + 16];
        int n;
        while (j < len && s[j] != ',')
            j++;
        if (j > i) {
            if (hs_type_canon(s + i, j - i, t) < 0)
                return hs_deny(c, "unknown association type \"%.*s\"",
                               (int)(j - i > 64 ? 64 : j - i), s + i);
            n = snprintf(buf, sizeof(buf), "associations.%s", t);
            if (crm_op_add_read(op, buf, (size_t)n) < 0)
                return HS_NOMEM;
        }
        i = j + 1;
    }
    return HS_OK;
}

/*
 * Apply the tracked query parameters to op. allowed is a set of HS_Q()
 * bits; a tracked parameter outside it is denied rather than ignored, as
 * HubSpot might honour it where we do not look.
 */
static int hs_apply_query(struct hs_ctx *c, struct crm_op *op, unsigned allowed)
{
    int has_props = 0, rc;

    for (int k = 0; k < HS_P_PROPERTY; k++) {
        if ((c->qseen & HS_Q(k)) && !(allowed & HS_Q(k)))
            return hs_deny(c, "query parameter \"%s\" is not accepted on this endpoint",
                           hs_param_names[k]);
    }
    for (size_t i = 0; i < c->nqp; i++) {
        const struct hs_qparam *p = &c->qp[i];
        switch (p->kind) {
        case HS_P_PROPERTIES:
            for (size_t k = 0; k < p->len; k++) {
                if (p->v[k] != ',') {
                    has_props = 1;
                    break;
                }
            }
            /* fall through */
        case HS_P_PWH:
            if (op != NULL && hs_add_read_list(op, p->v, p->len) != HS_OK)
                return HS_NOMEM;
            break;
        case HS_P_ASSOC:
            rc = op != NULL ? hs_add_assoc_read(c, op, p->v, p->len) : HS_OK;
            if (rc != HS_OK)
                return rc;
            break;
        case HS_P_IDPROP:
            if (p->len == 0)
                return hs_deny(c, "empty idProperty");
            if (op != NULL && hs_set(&op->id_property, p->v, p->len) != HS_OK)
                return HS_NOMEM;
            break;
        case HS_P_ARCHIVED:
            if (!hs_eq(p->v, p->len, "true") && !hs_eq(p->v, p->len, "false"))
                return hs_deny(c, "archived must be true or false");
            break;
        case HS_P_PROPERTY:
        case HS_P_COUNT:
            break;
        }
    }
    if (op != NULL && (op->verb == CRM_VERB_READ || op->verb == CRM_VERB_LIST))
        op->reads_default = !has_props;
    return HS_OK;
}

/* ---------------- bodies ---------------- */

static int hs_no_body(struct hs_ctx *c)
{
    if (c->req->body_len > 0)
        return hs_deny(c, "unexpected request body");
    return HS_OK;
}

/* Parse the JSON body: duplicate keys, bad JSON and non-JSON types are denied. */
static int hs_load_body(struct hs_ctx *c)
{
    json_error_t err;
    const char *ct = c->req->content_type;

    if (c->req->body_len == 0 || c->req->body == NULL)
        return hs_deny(c, "missing request body");
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
        (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' '))
        return hs_deny(c, "request body is not application/json");
    /* the fast parser, else jansson: deeper than it goes, and the refusal's words */
    c->body = jsonfilter_parse_unique(c->req->body, c->req->body_len, NULL, 0);
    if (c->body == NULL)
        c->body = json_loadb(c->req->body, c->req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (c->body == NULL)
        return hs_deny(c, "request body is not valid JSON or repeats a key: %.120s", err.text);
    return HS_OK;
}

static int hs_load_object(struct hs_ctx *c)
{
    int rc = hs_load_body(c);

    if (rc != HS_OK)
        return rc;
    if (!json_is_object(c->body))
        return hs_deny(c, "request body is not a JSON object");
    return HS_OK;
}

static int hs_value_ok(struct hs_ctx *c, const char *name, json_t *v)
{
    if (json_is_object(v) || json_is_array(v))
        return hs_deny(c, "value of property \"%.64s\" is not a scalar", name);
    return HS_OK;
}

/* The writes of a "properties" object. */
static int hs_add_writes(struct hs_ctx *c, struct crm_op *op, json_t *props)
{
    const char *key;
    json_t *v;
    int rc;

    if (!json_is_object(props))
        return hs_deny(c, "\"properties\" is missing or not an object");
    json_object_foreach(props, key, v)
    {
        rc = hs_value_ok(c, key, v);
        if (rc != HS_OK)
            return rc;
        if (crm_op_add_write(op, key, v) < 0)
            return HS_NOMEM;
    }
    return HS_OK;
}

/* An array of strings as reads (batch read properties, search properties). */
static int hs_add_read_array(struct hs_ctx *c, struct crm_op *op, json_t *arr, const char *what)
{
    size_t i;
    json_t *v;

    if (!json_is_array(arr))
        return hs_deny(c, "\"%s\" is not an array", what);
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v))
            return hs_deny(c, "\"%s\" holds a non-string", what);
        if (hs_add_read(op, json_string_value(v), json_string_length(v)) != HS_OK)
            return HS_NOMEM;
    }
    return HS_OK;
}

/* The inputs array of a batch body: non-empty, objects only, bounded. */
static int hs_inputs(struct hs_ctx *c, json_t *body, json_t **inputs)
{
    size_t i;
    json_t *v;

    *inputs = json_object_get(body, "inputs");
    if (!json_is_array(*inputs))
        return hs_deny(c, "\"inputs\" is missing or not an array");
    if (json_array_size(*inputs) == 0)
        return hs_deny(c, "batch has no inputs");
    if (json_array_size(*inputs) > HUBSPOT_MAX_BATCH)
        return hs_deny(c, "batch has more than %d inputs", HUBSPOT_MAX_BATCH);
    json_array_foreach(*inputs, i, v)
    {
        if (!json_is_object(v))
            return hs_deny(c, "batch input %zu is not an object", i);
    }
    return HS_OK;
}

/* ---------------- associations ---------------- */

static struct crm_op *hs_assoc_op(struct hs_ctx *c, enum crm_verb verb, const char *from,
                                  const char *to)
{
    struct crm_op *op = hs_op(c, verb, from);

    if (op == NULL || crm_op_set(&op->to_object, to, strlen(to)) < 0)
        return NULL;
    return op;
}

/*
 * Check an array of AssociationSpec against the pair (from, to); to may be
 * NULL (create body: the target is given only by the type ids), then the
 * resolved target is written to resolved. USER_DEFINED and
 * INTEGRATOR_DEFINED labels are portal-specific and cannot be resolved, so
 * they only pass when the path names the pair. In a create body they are
 * denied even beside HUBSPOT_DEFINED ids: which type id HubSpot takes the
 * target object from is not documented (the fake takes the first), so a
 * label of another pair (deals -> tickets) first and a HUBSPOT_DEFINED id
 * of a listed pair (deals -> companies) after it would link a record of a
 * type the rules were never asked about.
 */
static int hs_assoc_specs(struct hs_ctx *c, json_t *specs, const char *from, const char *to,
                          const char **resolved)
{
    static const char *const keys[] = {"associationCategory", "associationTypeId", NULL};
    size_t i;
    json_t *s;
    int rc;

    *resolved = to;
    if (!json_is_array(specs) || json_array_size(specs) == 0)
        return hs_deny(c, "association types are missing or not a non-empty array");
    json_array_foreach(specs, i, s)
    {
        json_t *cat = json_object_get(s, "associationCategory");
        json_t *tid = json_object_get(s, "associationTypeId");
        const struct hs_assoc_type *t;
        if (!json_is_object(s))
            return hs_deny(c, "association type is not an object");
        rc = hs_keys_ok(c, s, "an association type", keys);
        if (rc != HS_OK)
            return rc;
        if (!json_is_string(cat) || !json_is_integer(tid))
            return hs_deny(c, "association type needs associationCategory and associationTypeId");
        if (strcmp(json_string_value(cat), "HUBSPOT_DEFINED") != 0) {
            if (strcmp(json_string_value(cat), "USER_DEFINED") != 0 &&
                strcmp(json_string_value(cat), "INTEGRATOR_DEFINED") != 0)
                return hs_deny(c, "unknown associationCategory \"%.32s\"", json_string_value(cat));
            if (to == NULL)
                return hs_deny(c,
                               "association labels (%.20s) name a portal-specific pair of "
                               "object types crmgate cannot check in a create body: create "
                               "the record, then label the association with the v4 "
                               "associations API, whose path names both objects",
                               json_string_value(cat));
            continue;
        }
        t = hs_assoc_type_find(json_integer_value(tid));
        if (t == NULL || strcmp(t->from, from) != 0)
            return hs_deny(c, "association type id %" JSON_INTEGER_FORMAT " does not start at %s",
                           json_integer_value(tid), from);
        if (*resolved != NULL && strcmp(*resolved, t->to) != 0)
            return hs_deny(c,
                           "association type id %" JSON_INTEGER_FORMAT " does not connect %s to %s",
                           json_integer_value(tid), from, *resolved);
        *resolved = t->to;
    }
    if (*resolved == NULL)
        return hs_deny(c, "association target type cannot be resolved from user-defined labels");
    return HS_OK;
}

/* "associations" of a create body or a batch create input: one associate op per entry. */
static int hs_create_assocs(struct hs_ctx *c, const char *from, json_t *assocs)
{
    static const char *const keys[] = {"to", "types", NULL};
    size_t i;
    json_t *a;
    int rc;

    if (assocs == NULL)
        return HS_OK;
    if (!json_is_array(assocs))
        return hs_deny(c, "\"associations\" is not an array");
    json_array_foreach(assocs, i, a)
    {
        const char *to;
        json_t *toobj = json_object_get(a, "to");
        struct crm_op *op;
        if (!json_is_object(a))
            return hs_deny(c, "association is not an object");
        rc = hs_keys_ok(c, a, "an association", keys);
        if (rc != HS_OK)
            return rc;
        rc = hs_assoc_specs(c, json_object_get(a, "types"), from, NULL, &to);
        if (rc != HS_OK)
            return rc;
        if (!json_is_object(toobj) || json_object_size(toobj) != 1)
            return hs_deny(c, "association \"to\" must be {\"id\": ...}");
        op = hs_assoc_op(c, CRM_VERB_ASSOCIATE, from, to);
        if (op == NULL)
            return HS_NOMEM;
        rc = hs_set_json_id(c, &op->to_id, json_object_get(toobj, "id"), "association to.id");
        if (rc != HS_OK)
            return rc;
    }
    return HS_OK;
}

/* {"id": x} with nothing else, as in v4 batch from/to. */
static int hs_id_object(struct hs_ctx *c, json_t *o, const char *what, char **member)
{
    if (!json_is_object(o) || json_object_size(o) != 1)
        return hs_deny(c, "%s must be {\"id\": ...}", what);
    return hs_set_json_id(c, member, json_object_get(o, "id"), what);
}

/*
 * Association batches: /crm/v4/associations/{from}/{to}/batch/..., the
 * date-based /crm/associations/2026-03/..., and the v3 ones (v3 set).
 * One op per pair.
 */
static int hs_assoc_batch(struct hs_ctx *c, const char *from, const char *to, size_t opi, int v3)
{
    static const char *const top[] = {"inputs", NULL};
    static const char *const k_pair_v4[] = {"from", "to", "types", NULL};
    static const char *const k_pair_v3[] = {"from", "to", "type", NULL};
    static const char *const k_default[] = {"from", "to", NULL};
    static const char *const k_read[] = {"id", "after", NULL};
    static const char *const k_read_v3[] = {"id", NULL};
    const char *opname = c->seg[opi];
    size_t oplen = c->seglen[opi], i;
    enum { A_CREATE, A_READ, A_ARCHIVE, A_LABELS_ARCHIVE, A_DEFAULT } kind;
    json_t *inputs, *in;
    int rc;

    if (c->nseg == opi + 1 && hs_eq(opname, oplen, "create"))
        kind = A_CREATE;
    else if (c->nseg == opi + 1 && hs_eq(opname, oplen, "read"))
        kind = A_READ;
    else if (c->nseg == opi + 1 && hs_eq(opname, oplen, "archive"))
        kind = A_ARCHIVE;
    else if (!v3 && c->nseg == opi + 2 && hs_eq(opname, oplen, "labels") &&
             hs_eq(c->seg[opi + 1], c->seglen[opi + 1], "archive"))
        kind = A_LABELS_ARCHIVE;
    else if (!v3 && c->nseg == opi + 2 && hs_eq(opname, oplen, "associate") &&
             hs_eq(c->seg[opi + 1], c->seglen[opi + 1], "default"))
        kind = A_DEFAULT;
    else
        return hs_deny(c, "unknown association batch operation");
    if (c->method != HS_POST)
        return hs_deny(c, "association batch operations take POST");
    rc = hs_apply_query(c, NULL, 0);
    if (rc != HS_OK)
        return rc;
    rc = hs_load_object(c);
    if (rc != HS_OK)
        return rc;
    rc = hs_keys_ok(c, c->body, "the batch body", top);
    if (rc != HS_OK)
        return rc;
    rc = hs_inputs(c, c->body, &inputs);
    if (rc != HS_OK)
        return rc;
    json_array_foreach(inputs, i, in)
    {
        struct crm_op *op;
        const char *unused;
        json_t *tos;
        size_t k;
        switch (kind) {
        case A_READ:
            rc = hs_keys_ok(c, in, "a batch input", v3 ? k_read_v3 : k_read);
            if (rc != HS_OK)
                return rc;
            op = hs_assoc_op(c, CRM_VERB_READ, from, to);
            if (op == NULL)
                return HS_NOMEM;
            rc = hs_set_json_id(c, &op->record_id, json_object_get(in, "id"), "input id");
            if (rc != HS_OK)
                return rc;
            rc = hs_add_assoc_read(c, op, to, strlen(to));
            if (rc != HS_OK)
                return rc;
            break;
        case A_CREATE:
        case A_LABELS_ARCHIVE:
        case A_DEFAULT:
            rc = hs_keys_ok(c, in, "a batch input",
                            kind == A_DEFAULT ? k_default
                            : v3              ? k_pair_v3
                                              : k_pair_v4);
            if (rc != HS_OK)
                return rc;
            if (kind == A_DEFAULT) {
                /* no types: HubSpot picks the default (unlabeled) type */
            } else if (v3) {
                json_t *ty = json_object_get(in, "type");
                if (!json_is_string(ty))
                    return hs_deny(c, "v3 association input needs a string \"type\"");
                rc =
                    hs_v3_assoc_type_ok(c, from, to, json_string_value(ty), json_string_length(ty));
                if (rc != HS_OK)
                    return rc;
            } else {
                rc = hs_assoc_specs(c, json_object_get(in, "types"), from, to, &unused);
                if (rc != HS_OK)
                    return rc;
            }
            op = hs_assoc_op(c, kind == A_LABELS_ARCHIVE ? CRM_VERB_DISSOCIATE : CRM_VERB_ASSOCIATE,
                             from, to);
            if (op == NULL)
                return HS_NOMEM;
            rc = hs_id_object(c, json_object_get(in, "from"), "from", &op->record_id);
            if (rc != HS_OK)
                return rc;
            rc = hs_id_object(c, json_object_get(in, "to"), "to", &op->to_id);
            if (rc != HS_OK)
                return rc;
            break;
        case A_ARCHIVE:
            if (v3) {
                rc = hs_keys_ok(c, in, "a batch input", k_pair_v3);
                if (rc != HS_OK)
                    return rc;
                if (json_object_get(in, "type") != NULL) {
                    json_t *ty = json_object_get(in, "type");
                    if (!json_is_string(ty))
                        return hs_deny(c, "v3 association \"type\" is not a string");
                    rc = hs_v3_assoc_type_ok(c, from, to, json_string_value(ty),
                                             json_string_length(ty));
                    if (rc != HS_OK)
                        return rc;
                }
                op = hs_assoc_op(c, CRM_VERB_DISSOCIATE, from, to);
                if (op == NULL)
                    return HS_NOMEM;
                rc = hs_id_object(c, json_object_get(in, "from"), "from", &op->record_id);
                if (rc == HS_OK)
                    rc = hs_id_object(c, json_object_get(in, "to"), "to", &op->to_id);
                if (rc != HS_OK)
                    return rc;
                break;
            }
            rc = hs_keys_ok(c, in, "a batch input", k_default);
            if (rc != HS_OK)
                return rc;
            tos = json_object_get(in, "to");
            if (!json_is_array(tos) || json_array_size(tos) == 0)
                return hs_deny(c, "archive input \"to\" must be a non-empty array");
            if (json_array_size(tos) > HUBSPOT_MAX_BATCH)
                return hs_deny(c, "archive input \"to\" has more than %d entries",
                               HUBSPOT_MAX_BATCH);
            for (k = 0; k < json_array_size(tos); k++) {
                op = hs_assoc_op(c, CRM_VERB_DISSOCIATE, from, to);
                if (op == NULL)
                    return HS_NOMEM;
                rc = hs_id_object(c, json_object_get(in, "from"), "from", &op->record_id);
                if (rc == HS_OK)
                    rc = hs_id_object(c, json_array_get(tos, k), "to", &op->to_id);
                if (rc != HS_OK)
                    return rc;
            }
            break;
        }
    }
    return HS_OK;
}

/*
 * Single-record associations below /objects/{t}/{id}/associations/ (rest
 * starts at the segment after "associations"). v3 allows list and the
 * 3-segment form with a type; v4 list, labelled PUT, DELETE and default;
 * date-based versions both.
 */
static int hs_assoc_single(struct hs_ctx *c, const char *from, size_t idi, size_t rest, int v3,
                           int v4)
{
    char to[HS_MAX_TYPE];
    size_t n = c->nseg - rest;
    const char *unused;
    struct crm_op *op;
    int rc, is_default = 0;

    if (n == 3 && v4 && hs_eq(c->seg[rest], c->seglen[rest], "default")) {
        is_default = 1;
        rest++;
        n--;
    }
    if (n < 1 || n > 3)
        return hs_deny(c, "unknown association endpoint");
    rc = hs_type(c, c->seg[rest], c->seglen[rest], to);
    if (rc != HS_OK)
        return rc;
    if (n == 1) {
        if (c->method != HS_GET || is_default)
            return hs_deny(c, "association lists take GET");
        rc = hs_no_body(c);
        if (rc == HS_OK)
            rc = hs_apply_query(c, NULL, 0);
        if (rc != HS_OK)
            return rc;
        op = hs_assoc_op(c, CRM_VERB_READ, from, to);
        if (op == NULL || hs_set(&op->record_id, c->seg[idi], c->seglen[idi]) != HS_OK)
            return HS_NOMEM;
        return hs_add_assoc_read(c, op, to, strlen(to));
    }
    rc = hs_id_ok(c, c->seg[rest + 1], c->seglen[rest + 1]);
    if (rc == HS_OK)
        rc = hs_apply_query(c, NULL, 0);
    if (rc != HS_OK)
        return rc;
    if (n == 3) {
        if (!v3)
            return hs_deny(c, "the typed association path is v3 only");
        rc = hs_v3_assoc_type_ok(c, from, to, c->seg[rest + 2], c->seglen[rest + 2]);
        if (rc != HS_OK)
            return rc;
        if (c->method != HS_PUT && c->method != HS_DELETE)
            return hs_deny(c, "v3 associations take PUT or DELETE");
        rc = hs_no_body(c);
        if (rc != HS_OK)
            return rc;
    } else if (!v4) {
        return hs_deny(c, "this association path is v4 only");
    } else if (c->method == HS_PUT && !is_default) {
        rc = hs_load_body(c);
        if (rc == HS_OK)
            rc = hs_assoc_specs(c, c->body, from, to, &unused);
        if (rc != HS_OK)
            return rc;
    } else if (c->method == HS_PUT || (c->method == HS_DELETE && !is_default)) {
        rc = hs_no_body(c);
        if (rc != HS_OK)
            return rc;
    } else {
        return hs_deny(c, "v4 associations take PUT or DELETE");
    }
    op = hs_assoc_op(c, c->method == HS_PUT ? CRM_VERB_ASSOCIATE : CRM_VERB_DISSOCIATE, from, to);
    if (op == NULL || hs_set(&op->record_id, c->seg[idi], c->seglen[idi]) != HS_OK ||
        hs_set(&op->to_id, c->seg[rest + 1], c->seglen[rest + 1]) != HS_OK)
        return HS_NOMEM;
    return HS_OK;
}

/* ---------------- objects ---------------- */

static int hs_search(struct hs_ctx *c, const char *t)
{
    static const char *const top[] = {"filterGroups", "sorts", "query", "properties",
                                      "limit",        "after", NULL};
    static const char *const k_group[] = {"filters", NULL};
    static const char *const k_filter[] = {"propertyName", "operator",  "value",
                                           "values",       "highValue", NULL};
    static const char *const k_sort[] = {"propertyName", "direction", NULL};
    json_t *groups, *sorts, *query, *props, *g, *f;
    struct crm_op *op;
    size_t i, k;
    int rc;

    rc = hs_load_object(c);
    if (rc == HS_OK)
        rc = hs_keys_ok(c, c->body, "the search body", top);
    if (rc != HS_OK)
        return rc;
    op = hs_op(c, CRM_VERB_SEARCH, t);
    if (op == NULL)
        return HS_NOMEM;
    rc = hs_apply_query(c, op, 0);
    if (rc != HS_OK)
        return rc;
    props = json_object_get(c->body, "properties");
    if (props != NULL) {
        rc = hs_add_read_array(c, op, props, "properties");
        if (rc != HS_OK)
            return rc;
    }
    op->reads_default = json_array_size(props) == 0;
    groups = json_object_get(c->body, "filterGroups");
    if (groups != NULL && !json_is_array(groups))
        return hs_deny(c, "\"filterGroups\" is not an array");
    json_array_foreach(groups, i, g)
    {
        json_t *filters = json_object_get(g, "filters");
        if (!json_is_object(g))
            return hs_deny(c, "a filter group is not an object");
        rc = hs_keys_ok(c, g, "a filter group", k_group);
        if (rc != HS_OK)
            return rc;
        if (!json_is_array(filters))
            return hs_deny(c, "\"filters\" is missing or not an array");
        json_array_foreach(filters, k, f)
        {
            json_t *pn = json_object_get(f, "propertyName");
            if (!json_is_object(f))
                return hs_deny(c, "a filter is not an object");
            rc = hs_keys_ok(c, f, "a filter", k_filter);
            if (rc != HS_OK)
                return rc;
            if (!json_is_string(pn))
                return hs_deny(c, "a filter has no string propertyName");
            if (hs_add_read(op, json_string_value(pn), json_string_length(pn)) != HS_OK)
                return HS_NOMEM;
        }
    }
    sorts = json_object_get(c->body, "sorts");
    if (sorts != NULL && !json_is_array(sorts))
        return hs_deny(c, "\"sorts\" is not an array");
    json_array_foreach(sorts, i, g)
    {
        const char *s;
        size_t len;
        if (json_is_string(g)) {
            /* "-createdate" (descending) or "createdate" */
            s = json_string_value(g);
            len = json_string_length(g);
            if (len > 0 && (s[0] == '-' || s[0] == '+')) {
                s++;
                len--;
            }
        } else if (json_is_object(g)) {
            json_t *pn = json_object_get(g, "propertyName");
            rc = hs_keys_ok(c, g, "a sort", k_sort);
            if (rc != HS_OK)
                return rc;
            if (!json_is_string(pn))
                return hs_deny(c, "a sort has no string propertyName");
            s = json_string_value(pn);
            len = json_string_length(pn);
        } else {
            return hs_deny(c, "a sort is neither a string nor an object");
        }
        if (len == 0)
            return hs_deny(c, "a sort names no property");
        if (hs_add_read(op, s, len) != HS_OK)
            return HS_NOMEM;
    }
    query = json_object_get(c->body, "query");
    if (query != NULL && !json_is_string(query))
        return hs_deny(c, "\"query\" is not a string");
    if (json_string_length(query) > 0 && crm_op_add_read(op, "*query", 6) < 0)
        return HS_NOMEM;
    return HS_OK;
}

/* POST {t}/batch/{read|create|update|upsert|archive}: one op per input. */
static int hs_batch(struct hs_ctx *c, const char *t, const char *opname, size_t oplen)
{
    static const char *const top_read[] = {"inputs", "properties", "propertiesWithHistory",
                                           "idProperty", NULL};
    static const char *const top[] = {"inputs", NULL};
    static const char *const k_read[] = {"id", NULL};
    static const char *const k_create[] = {"properties", "associations", "objectWriteTraceId",
                                           NULL};
    static const char *const k_update[] = {"id", "idProperty", "properties", "objectWriteTraceId",
                                           NULL};
    json_t *inputs, *in, *idprop = NULL, *props = NULL, *pwh = NULL;
    enum crm_verb verb;
    size_t i;
    int rc;

    if (hs_eq(opname, oplen, "read"))
        verb = CRM_VERB_READ;
    else if (hs_eq(opname, oplen, "create"))
        verb = CRM_VERB_CREATE;
    else if (hs_eq(opname, oplen, "update"))
        verb = CRM_VERB_UPDATE;
    else if (hs_eq(opname, oplen, "upsert"))
        verb = CRM_VERB_UPSERT;
    else if (hs_eq(opname, oplen, "archive"))
        verb = CRM_VERB_DELETE;
    else
        return hs_deny(c, "unknown batch operation \"%.32s\"", opname);
    rc = hs_apply_query(c, NULL, verb == CRM_VERB_READ ? HS_Q_ARCHIVED : 0);
    if (rc == HS_OK)
        rc = hs_load_object(c);
    if (rc == HS_OK)
        rc = hs_keys_ok(c, c->body, "the batch body", verb == CRM_VERB_READ ? top_read : top);
    if (rc == HS_OK)
        rc = hs_inputs(c, c->body, &inputs);
    if (rc != HS_OK)
        return rc;
    if (verb == CRM_VERB_READ) {
        idprop = json_object_get(c->body, "idProperty");
        props = json_object_get(c->body, "properties");
        pwh = json_object_get(c->body, "propertiesWithHistory");
        if (idprop != NULL && (!json_is_string(idprop) || json_string_length(idprop) == 0))
            return hs_deny(c, "\"idProperty\" is not a non-empty string");
    }
    json_array_foreach(inputs, i, in)
    {
        struct crm_op *op = hs_op(c, verb, t);
        json_t *ip;
        if (op == NULL)
            return HS_NOMEM;
        switch (verb) {
        case CRM_VERB_READ:
        case CRM_VERB_DELETE:
            rc = hs_keys_ok(c, in, "a batch input", k_read);
            if (rc == HS_OK)
                rc = hs_set_json_id(c, &op->record_id, json_object_get(in, "id"), "input id");
            if (rc != HS_OK)
                return rc;
            if (verb == CRM_VERB_DELETE)
                break;
            if (idprop != NULL &&
                hs_set(&op->id_property, json_string_value(idprop), json_string_length(idprop)))
                return HS_NOMEM;
            if (props != NULL && (rc = hs_add_read_array(c, op, props, "properties")) != HS_OK)
                return rc;
            if (pwh != NULL &&
                (rc = hs_add_read_array(c, op, pwh, "propertiesWithHistory")) != HS_OK)
                return rc;
            op->reads_default = json_array_size(props) == 0;
            break;
        case CRM_VERB_CREATE:
            rc = hs_keys_ok(c, in, "a batch input", k_create);
            if (rc == HS_OK)
                rc = hs_add_writes(c, op, json_object_get(in, "properties"));
            if (rc == HS_OK)
                rc = hs_create_assocs(c, t, json_object_get(in, "associations"));
            if (rc != HS_OK)
                return rc;
            break;
        default:
            rc = hs_keys_ok(c, in, "a batch input", k_update);
            if (rc == HS_OK)
                rc = hs_set_json_id(c, &op->record_id, json_object_get(in, "id"), "input id");
            if (rc != HS_OK)
                return rc;
            ip = json_object_get(in, "idProperty");
            if (ip != NULL) {
                if (!json_is_string(ip) || json_string_length(ip) == 0)
                    return hs_deny(c, "\"idProperty\" is not a non-empty string");
                if (hs_set(&op->id_property, json_string_value(ip), json_string_length(ip)))
                    return HS_NOMEM;
            } else if (verb == CRM_VERB_UPSERT) {
                return hs_deny(c, "batch upsert input without idProperty");
            }
            rc = hs_add_writes(c, op, json_object_get(in, "properties"));
            if (rc != HS_OK)
                return rc;
            if (verb == CRM_VERB_UPSERT) {
                /* the upsert may create the record with idProperty = id */
                json_t *given =
                    json_object_get(json_object_get(in, "properties"), json_string_value(ip));
                json_t *idv = json_object_get(in, "id");
                if (given != NULL && !json_equal(given, idv))
                    return hs_deny(c, "upsert sets %.64s to a value other than the input id",
                                   json_string_value(ip));
                if (given == NULL && crm_op_add_write(op, json_string_value(ip), idv) < 0)
                    return HS_NOMEM;
            }
            break;
        }
    }
    return HS_OK;
}

/*
 * Everything below an objects root. v3 is 1 for /crm/v3/objects, 2 for the
 * date-based /crm/objects/<date> (v3 and v4 association forms), 0 for
 * /crm/v4/objects (associations only, v4 forms). ti indexes the type.
 */
static int hs_objects(struct hs_ctx *c, size_t ti, int v3, int v4_only)
{
    static const char *const k_create[] = {"properties", "associations", "objectWriteTraceId",
                                           NULL};
    static const char *const k_update[] = {"properties", "objectWriteTraceId", NULL};
    static const char *const k_merge[] = {"primaryObjectId", "objectIdToMerge", NULL};
    static const char *const k_gdpr[] = {"objectId", "idProperty", NULL};
    char t[HS_MAX_TYPE];
    size_t n = c->nseg - ti;
    const char *s1 = n > 1 ? c->seg[ti + 1] : NULL;
    size_t l1 = n > 1 ? c->seglen[ti + 1] : 0;
    struct crm_op *op;
    int rc;

    if (n == 0)
        return hs_deny(c, "no object type in the path");
    rc = hs_type(c, c->seg[ti], c->seglen[ti], t);
    if (rc != HS_OK)
        return rc;
    if (n >= 4 && hs_eq(c->seg[ti + 2], c->seglen[ti + 2], "associations")) {
        rc = hs_id_ok(c, s1, l1);
        if (rc != HS_OK)
            return rc;
        return hs_assoc_single(c, t, ti + 1, ti + 3, v3 != 0, v3 != 1);
    }
    if (v4_only)
        return hs_deny(c, "v4 objects paths cover associations only");
    if (n == 1) {
        if (c->method == HS_GET) {
            rc = hs_no_body(c);
            if (rc != HS_OK)
                return rc;
            op = hs_op(c, CRM_VERB_LIST, t);
            if (op == NULL)
                return HS_NOMEM;
            return hs_apply_query(c, op, HS_Q_READ | HS_Q_ARCHIVED);
        }
        if (c->method != HS_POST)
            return hs_deny(c, "object collections take GET or POST");
        rc = hs_load_object(c);
        if (rc == HS_OK)
            rc = hs_keys_ok(c, c->body, "the create body", k_create);
        if (rc != HS_OK)
            return rc;
        op = hs_op(c, CRM_VERB_CREATE, t);
        if (op == NULL)
            return HS_NOMEM;
        rc = hs_apply_query(c, op, 0);
        if (rc == HS_OK)
            rc = hs_add_writes(c, op, json_object_get(c->body, "properties"));
        if (rc == HS_OK)
            rc = hs_create_assocs(c, t, json_object_get(c->body, "associations"));
        return rc;
    }
    if (c->method == HS_POST && n == 2 && hs_eq(s1, l1, "search"))
        return hs_search(c, t);
    if (c->method == HS_POST && n == 3 && hs_eq(s1, l1, "batch"))
        return hs_batch(c, t, c->seg[ti + 2], c->seglen[ti + 2]);
    if (c->method == HS_POST && n == 2 && hs_eq(s1, l1, "merge")) {
        rc = hs_load_object(c);
        if (rc == HS_OK)
            rc = hs_keys_ok(c, c->body, "the merge body", k_merge);
        if (rc != HS_OK)
            return rc;
        op = hs_op(c, CRM_VERB_MERGE, t);
        if (op == NULL || hs_set(&op->to_object, t, strlen(t)) != HS_OK)
            return HS_NOMEM;
        rc = hs_apply_query(c, op, 0);
        if (rc == HS_OK)
            rc = hs_set_json_id(c, &op->record_id, json_object_get(c->body, "primaryObjectId"),
                                "primaryObjectId");
        if (rc == HS_OK)
            rc = hs_set_json_id(c, &op->to_id, json_object_get(c->body, "objectIdToMerge"),
                                "objectIdToMerge");
        return rc;
    }
    if (c->method == HS_POST && n == 2 && hs_eq(s1, l1, "gdpr-delete")) {
        json_t *ip;
        if (strcmp(t, "contacts") != 0)
            return hs_deny(c, "gdpr-delete exists for contacts only");
        rc = hs_load_object(c);
        if (rc == HS_OK)
            rc = hs_keys_ok(c, c->body, "the gdpr-delete body", k_gdpr);
        if (rc != HS_OK)
            return rc;
        op = hs_op(c, CRM_VERB_GDPR_DELETE, t);
        if (op == NULL)
            return HS_NOMEM;
        rc = hs_apply_query(c, op, 0);
        if (rc == HS_OK)
            rc =
                hs_set_json_id(c, &op->record_id, json_object_get(c->body, "objectId"), "objectId");
        if (rc != HS_OK)
            return rc;
        ip = json_object_get(c->body, "idProperty");
        if (ip != NULL) {
            if (!json_is_string(ip) || json_string_length(ip) == 0)
                return hs_deny(c, "\"idProperty\" is not a non-empty string");
            if (hs_set(&op->id_property, json_string_value(ip), json_string_length(ip)))
                return HS_NOMEM;
        }
        return HS_OK;
    }
    if (n != 2)
        return hs_deny(c, "unknown objects endpoint");
    rc = hs_id_ok(c, s1, l1);
    if (rc != HS_OK)
        return rc;
    switch (c->method) {
    case HS_GET:
        rc = hs_no_body(c);
        if (rc != HS_OK)
            return rc;
        op = hs_op(c, CRM_VERB_READ, t);
        if (op == NULL || hs_set(&op->record_id, s1, l1) != HS_OK)
            return HS_NOMEM;
        return hs_apply_query(c, op, HS_Q_READ | HS_Q_ARCHIVED | HS_Q_IDPROP);
    case HS_PATCH:
        rc = hs_load_object(c);
        if (rc == HS_OK)
            rc = hs_keys_ok(c, c->body, "the update body", k_update);
        if (rc != HS_OK)
            return rc;
        op = hs_op(c, CRM_VERB_UPDATE, t);
        if (op == NULL || hs_set(&op->record_id, s1, l1) != HS_OK)
            return HS_NOMEM;
        rc = hs_apply_query(c, op, HS_Q_IDPROP);
        if (rc == HS_OK)
            rc = hs_add_writes(c, op, json_object_get(c->body, "properties"));
        return rc;
    case HS_DELETE:
        rc = hs_no_body(c);
        if (rc != HS_OK)
            return rc;
        op = hs_op(c, CRM_VERB_DELETE, t);
        if (op == NULL || hs_set(&op->record_id, s1, l1) != HS_OK)
            return HS_NOMEM;
        return hs_apply_query(c, op, HS_Q_IDPROP);
    default:
        break;
    }
    return hs_deny(c, "records take GET, PATCH or DELETE");
}

/* ---------------- schema, owners, OAuth ---------------- */

/* /crm/v3/properties/{t}[/...]: reads are schema_read, any change is denied. */
static int hs_properties(struct hs_ctx *c, size_t ti)
{
    char t[HS_MAX_TYPE];
    size_t n = c->nseg - ti;
    struct crm_op *op;
    int rc;

    if (n == 0)
        return hs_deny(c, "no object type in the properties path");
    rc = hs_type(c, c->seg[ti], c->seglen[ti], t);
    if (rc != HS_OK)
        return rc;
    if (c->method == HS_GET &&
        (n <= 2 || (n == 3 && hs_eq(c->seg[ti + 1], c->seglen[ti + 1], "groups")))) {
        rc = hs_no_body(c);
        if (rc != HS_OK)
            return rc;
    } else if (c->method == HS_POST && n == 3 &&
               hs_eq(c->seg[ti + 1], c->seglen[ti + 1], "batch") &&
               hs_eq(c->seg[ti + 2], c->seglen[ti + 2], "read")) {
        /* reads definitions named in the body: a schema read whatever it names */
    } else if (c->method != HS_GET && n <= 3) {
        return hs_deny(c, "property definition changes alter the portal schema and are not "
                          "allowed through crmgate");
    } else {
        return hs_deny(c, "unknown properties endpoint");
    }
    op = hs_op(c, CRM_VERB_SCHEMA_READ, t);
    return op == NULL ? HS_NOMEM : HS_OK;
}

/*
 * A token revocation (DELETE /oauth/v1/refresh-tokens/{token}, POST
 * /oauth/v3/token/revoke with token=... in a form body): a REVOKE op, audited
 * as a write (crm_revoke_op).
 */
static int hs_revoke(struct hs_ctx *c, const char *kind, const char *tok, size_t toklen)
{
    switch (crm_revoke_op(c->out, CRM_HUBSPOT, c->req, kind, tok, toklen, c->why, sizeof(c->why))) {
    case 0:
        return HS_OK;
    case 1:
        return HS_DENY;
    default:
        return HS_NOMEM;
    }
}

static int hs_oauth(struct hs_ctx *c)
{
    const char **s = c->seg;
    size_t *l = c->seglen, n = c->nseg;
    int v1, ok = 0;

    if (n < 3)
        return hs_deny(c, "unknown OAuth endpoint");
    v1 = hs_eq(s[1], l[1], "v1");
    if (!v1 && !hs_eq(s[1], l[1], "v3") &&
        !(l[1] == 7 && hs_is_digits(s[1], 4) && s[1][4] == '-' && hs_is_digits(s[1] + 5, 2)))
        return hs_deny(c, "unknown OAuth version");
    if (n == 3 && hs_eq(s[2], l[2], "token"))
        ok = c->method == HS_POST;
    else if (!v1 && n == 4 && hs_eq(s[2], l[2], "token") && hs_eq(s[3], l[3], "revoke") &&
             c->method == HS_POST)
        return hs_revoke(c, "token", NULL, 0);
    else if (!v1 && n == 4 && hs_eq(s[2], l[2], "token"))
        ok = c->method == HS_POST && hs_eq(s[3], l[3], "introspect");
    else if (v1 && n == 4 && hs_eq(s[2], l[2], "access-tokens"))
        ok = c->method == HS_GET;
    else if (v1 && n == 4 && hs_eq(s[2], l[2], "refresh-tokens") && c->method == HS_DELETE)
        return hs_revoke(c, "refresh_token", s[3], l[3]);
    else if (v1 && n == 4 && hs_eq(s[2], l[2], "refresh-tokens"))
        ok = c->method == HS_GET;
    if (!ok)
        return hs_deny(c, "unknown OAuth endpoint");
    return hs_op(c, CRM_VERB_AUTH, NULL) == NULL ? HS_NOMEM : HS_OK;
}

/* ---------------- legacy v1/v2 ---------------- */

/*
 * A legacy record id (companyId, dealId, vid) in a path: numeric, as HubSpot
 * issues them. Anything else names another legacy resource at the same depth:
 * GET /deals/v1/deal/paged and /companies/v2/companies/paged list every
 * record as {"deals"|"companies": [...]}, a shape the response filter does
 * not know, so a "record" called paged would leak every property.
 */
static int hs_legacy_id(struct hs_ctx *c, const char *s, size_t len)
{
    int rc = hs_id_ok(c, s, len);

    if (rc == HS_OK && !hs_is_digits(s, len))
        return hs_deny(c, "legacy record id \"%.32s\" is not numeric", s);
    return rc;
}

/*
 * Legacy property lists: [{"property"|"name": n, "value": v}]. key is
 * "property" (contacts v1) or "name" (companies v2, deals v1). A property
 * given twice is denied: which value wins is HubSpot's secret.
 */
static int hs_legacy_writes(struct hs_ctx *c, struct crm_op *op, json_t *list, const char *key)
{
    size_t i;
    json_t *e;
    int rc;

    if (!json_is_array(list))
        return hs_deny(c, "legacy \"properties\" is missing or not an array");
    json_array_foreach(list, i, e)
    {
        const char *allowed[] = {key, "value", NULL};
        json_t *name = json_object_get(e, key), *v = json_object_get(e, "value");
        if (!json_is_object(e))
            return hs_deny(c, "legacy property entry is not an object");
        rc = hs_keys_ok(c, e, "a legacy property entry", allowed);
        if (rc != HS_OK)
            return rc;
        if (!json_is_string(name) || v == NULL)
            return hs_deny(c, "legacy property entry needs \"%s\" and \"value\"", key);
        rc = hs_value_ok(c, json_string_value(name), v);
        if (rc != HS_OK)
            return rc;
        for (size_t k = 0; k < op->nwrites; k++) {
            if (strcmp(op->writes[k].name, json_string_value(name)) == 0)
                return hs_deny(c, "property \"%.64s\" is written twice", json_string_value(name));
        }
        if (crm_op_add_write(op, json_string_value(name), v) < 0)
            return HS_NOMEM;
    }
    return HS_OK;
}

/* Upserts by email write the email too, unless the list already sets it to the same value. */
static int hs_legacy_email_write(struct hs_ctx *c, struct crm_op *op, json_t *email)
{
    for (size_t k = 0; k < op->nwrites; k++) {
        if (strcmp(op->writes[k].name, "email") == 0) {
            if (!json_equal(op->writes[k].value, email))
                return hs_deny(c, "upsert sets email to a value other than the one it matches");
            return HS_OK;
        }
    }
    return crm_op_add_write(op, "email", email) < 0 ? HS_NOMEM : HS_OK;
}

static int hs_legacy_contacts(struct hs_ctx *c)
{
    static const char *const k_body[] = {"properties", NULL};
    static const char *const k_batch[] = {"vid", "email", "properties", NULL};
    const char **s = c->seg;
    size_t *l = c->seglen, n = c->nseg;
    struct crm_op *op;
    json_t *email = NULL;
    int rc, by_email;

    if (n < 3 || !hs_eq(s[1], l[1], "v1") || !hs_eq(s[2], l[2], "contact"))
        return hs_deny(c, "unknown legacy contacts endpoint");
    if (n == 3 && c->method == HS_POST) /* its answer is a whole v1 profile */
        return hs_deny(c, HS_V1_PROFILE_DENIED);
    if (n == 4 && c->method == HS_POST && hs_eq(s[3], l[3], "batch")) {
        json_t *in;
        size_t i;
        rc = hs_load_body(c);
        if (rc != HS_OK)
            return rc;
        if (!json_is_array(c->body) || json_array_size(c->body) == 0)
            return hs_deny(c, "legacy contact batch is not a non-empty array");
        if (json_array_size(c->body) > HUBSPOT_MAX_BATCH)
            return hs_deny(c, "batch has more than %d inputs", HUBSPOT_MAX_BATCH);
        json_array_foreach(c->body, i, in)
        {
            json_t *vid = json_object_get(in, "vid");
            json_t *em = json_object_get(in, "email");
            if (!json_is_object(in))
                return hs_deny(c, "legacy batch entry is not an object");
            rc = hs_keys_ok(c, in, "a legacy batch entry", k_batch);
            if (rc != HS_OK)
                return rc;
            if ((vid == NULL) == (em == NULL))
                return hs_deny(c, "legacy batch entry needs exactly one of vid and email");
            op = hs_op(c, vid ? CRM_VERB_UPDATE : CRM_VERB_UPSERT, "contacts");
            if (op == NULL)
                return HS_NOMEM;
            rc = hs_set_json_id(c, &op->record_id, vid ? vid : em, vid ? "vid" : "email");
            if (rc == HS_OK && vid != NULL)
                rc = hs_legacy_id(c, op->record_id, strlen(op->record_id));
            if (rc != HS_OK)
                return rc;
            if (em != NULL && hs_set(&op->id_property, "email", 5) != HS_OK)
                return HS_NOMEM;
            rc = hs_legacy_writes(c, op, json_object_get(in, "properties"), "property");
            if (rc == HS_OK && em != NULL)
                rc = hs_legacy_email_write(c, op, em);
            if (rc != HS_OK)
                return rc;
        }
        return HS_OK;
    }
    if (n == 6 && c->method == HS_POST && hs_eq(s[3], l[3], "createOrUpdate") &&
        hs_eq(s[4], l[4], "email")) {
        rc = hs_id_ok(c, s[5], l[5]);
        if (rc == HS_OK)
            rc = hs_load_object(c);
        if (rc == HS_OK)
            rc = hs_keys_ok(c, c->body, "the legacy contact body", k_body);
        if (rc != HS_OK)
            return rc;
        op = hs_op(c, CRM_VERB_UPSERT, "contacts");
        if (op == NULL || hs_set(&op->record_id, s[5], l[5]) != HS_OK ||
            hs_set(&op->id_property, "email", 5) != HS_OK)
            return HS_NOMEM;
        rc = hs_legacy_writes(c, op, json_object_get(c->body, "properties"), "property");
        if (rc != HS_OK)
            return rc;
        email = json_stringn(s[5], l[5]);
        if (email == NULL)
            return HS_NOMEM;
        rc = hs_legacy_email_write(c, op, email);
        json_decref(email);
        return rc;
    }
    by_email = n >= 5 && hs_eq(s[3], l[3], "email");
    if (n >= 5 && (by_email || hs_eq(s[3], l[3], "vid"))) {
        rc = by_email ? hs_id_ok(c, s[4], l[4]) : hs_legacy_id(c, s[4], l[4]);
        if (rc != HS_OK)
            return rc;
        if (n == 6 && hs_eq(s[5], l[5], "profile") && c->method == HS_GET)
            return hs_deny(c, HS_V1_PROFILE_DENIED);
        if (n == 6 && hs_eq(s[5], l[5], "profile") && c->method == HS_POST) {
            rc = hs_load_object(c);
            if (rc == HS_OK)
                rc = hs_keys_ok(c, c->body, "the legacy contact body", k_body);
            if (rc != HS_OK)
                return rc;
            op = hs_op(c, CRM_VERB_UPDATE, "contacts");
            if (op == NULL || hs_set(&op->record_id, s[4], l[4]) != HS_OK ||
                (by_email && hs_set(&op->id_property, "email", 5) != HS_OK))
                return HS_NOMEM;
            return hs_legacy_writes(c, op, json_object_get(c->body, "properties"), "property");
        }
        if (n == 5 && !by_email && c->method == HS_DELETE) {
            rc = hs_no_body(c);
            if (rc != HS_OK)
                return rc;
            op = hs_op(c, CRM_VERB_DELETE, "contacts");
            if (op == NULL || hs_set(&op->record_id, s[4], l[4]) != HS_OK)
                return HS_NOMEM;
            return HS_OK;
        }
    }
    return hs_deny(c, "unknown legacy contacts endpoint");
}

/* /companies/v2/companies[/{id}] and /deals/v1/deal[/{id}]. */
static int hs_legacy_record(struct hs_ctx *c, const char *version, const char *coll,
                            const char *object)
{
    static const char *const k_body[] = {"properties", NULL};
    const char **s = c->seg;
    size_t *l = c->seglen, n = c->nseg;
    struct crm_op *op;
    int rc;

    if (n < 3 || n > 4 || !hs_eq(s[1], l[1], version) || !hs_eq(s[2], l[2], coll))
        return hs_deny(c, "unknown legacy %s endpoint", object);
    if (n == 3) {
        if (c->method != HS_POST)
            return hs_deny(c, "unknown legacy %s endpoint", object);
        op = hs_op(c, CRM_VERB_CREATE, object);
    } else {
        rc = hs_legacy_id(c, s[3], l[3]);
        if (rc != HS_OK)
            return rc;
        if (c->method == HS_GET)
            op = hs_op(c, CRM_VERB_READ, object);
        else if (c->method == HS_PUT)
            op = hs_op(c, CRM_VERB_UPDATE, object);
        else if (c->method == HS_DELETE)
            op = hs_op(c, CRM_VERB_DELETE, object);
        else
            return hs_deny(c, "unknown legacy %s endpoint", object);
        if (op == NULL || hs_set(&op->record_id, s[3], l[3]) != HS_OK)
            return HS_NOMEM;
    }
    if (op == NULL)
        return HS_NOMEM;
    if (c->method == HS_GET || c->method == HS_DELETE) {
        op->reads_default = c->method == HS_GET;
        return hs_no_body(c);
    }
    rc = hs_load_object(c);
    if (rc == HS_OK)
        rc = hs_keys_ok(c, c->body, "the legacy body", k_body);
    if (rc != HS_OK)
        return rc;
    return hs_legacy_writes(c, op, json_object_get(c->body, "properties"), "name");
}

/* ---------------- routing ---------------- */

static int hs_is_date(const char *s, size_t len)
{
    return len == 7 && hs_is_digits(s, 4) && s[4] == '-' && hs_is_digits(s + 5, 2);
}

static int hs_schema_get(struct hs_ctx *c, const char *object)
{
    int rc;

    if (c->method != HS_GET)
        return hs_deny(c, "schema changes are not allowed through crmgate");
    rc = hs_no_body(c);
    if (rc != HS_OK)
        return rc;
    return hs_op(c, CRM_VERB_SCHEMA_READ, object) == NULL ? HS_NOMEM : HS_OK;
}

/* The association labels of a pair: reading them is a schema read, changing them is denied. */
static int hs_assoc_root(struct hs_ctx *c, size_t fi, int v3)
{
    char from[HS_MAX_TYPE], to[HS_MAX_TYPE];
    struct crm_op *op;
    int rc;

    if (c->nseg < fi + 3)
        return hs_deny(c, "unknown associations endpoint");
    rc = hs_type(c, c->seg[fi], c->seglen[fi], from);
    if (rc == HS_OK)
        rc = hs_type(c, c->seg[fi + 1], c->seglen[fi + 1], to);
    if (rc != HS_OK)
        return rc;
    if (hs_eq(c->seg[fi + 2], c->seglen[fi + 2], "batch") && c->nseg > fi + 3)
        return hs_assoc_batch(c, from, to, fi + 3, v3);
    if (!v3 && hs_eq(c->seg[fi + 2], c->seglen[fi + 2], "labels") && c->nseg <= fi + 4) {
        if (c->method != HS_GET || c->nseg != fi + 3)
            return hs_deny(c, "association label changes alter the portal schema and are not "
                              "allowed through crmgate");
        rc = hs_no_body(c);
        if (rc != HS_OK)
            return rc;
        op = hs_op(c, CRM_VERB_SCHEMA_READ, from);
        if (op == NULL || hs_set(&op->to_object, to, strlen(to)) != HS_OK)
            return HS_NOMEM;
        return HS_OK;
    }
    return hs_deny(c, "unknown associations endpoint");
}

static int hs_route(struct hs_ctx *c)
{
    const char **s = c->seg;
    size_t *l = c->seglen, n = c->nseg;

    if (n == 0)
        return hs_deny(c, "empty path");
    if (hs_eq(s[0], l[0], "crm") && n >= 3) {
        if (hs_eq(s[1], l[1], "v3")) {
            if (hs_eq(s[2], l[2], "objects"))
                return hs_objects(c, 3, 1, 0);
            if (hs_eq(s[2], l[2], "associations"))
                return hs_assoc_root(c, 3, 1);
            if (hs_eq(s[2], l[2], "properties"))
                return hs_properties(c, 3);
            if (hs_eq(s[2], l[2], "owners") && n <= 4) {
                struct crm_op *op;
                int rc;
                if (c->method != HS_GET)
                    return hs_deny(c, "owners are read-only");
                rc = hs_no_body(c);
                if (rc != HS_OK)
                    return rc;
                op = hs_op(c, CRM_VERB_SCHEMA_READ, "owners");
                if (op == NULL || (n == 4 && hs_set(&op->record_id, s[3], l[3]) != HS_OK))
                    return HS_NOMEM;
                return HS_OK;
            }
            if (hs_eq(s[2], l[2], "schemas") && n <= 4)
                return hs_schema_get(c, "schemas");
        } else if (hs_eq(s[1], l[1], "v4")) {
            if (hs_eq(s[2], l[2], "objects"))
                return hs_objects(c, 3, 0, 1);
            if (hs_eq(s[2], l[2], "associations"))
                return hs_assoc_root(c, 3, 0);
        } else if (hs_eq(s[1], l[1], "objects") && hs_is_date(s[2], l[2])) {
            return hs_objects(c, 3, 2, 0);
        } else if (hs_eq(s[1], l[1], "associations") &&
                   (hs_is_date(s[2], l[2]) || hs_eq(s[2], l[2], "v4"))) {
            return hs_assoc_root(c, 3, 0);
        } else if (hs_eq(s[1], l[1], "properties") && hs_is_date(s[2], l[2])) {
            return hs_properties(c, 3);
        }
        return hs_deny(c, "unknown HubSpot CRM endpoint");
    }
    if (hs_eq(s[0], l[0], "crm-object-schemas") && n >= 3 && n <= 4 && hs_eq(s[1], l[1], "v3") &&
        hs_eq(s[2], l[2], "schemas"))
        return hs_schema_get(c, "schemas");
    if (hs_eq(s[0], l[0], "oauth"))
        return hs_oauth(c);
    if (hs_eq(s[0], l[0], "contacts"))
        return hs_legacy_contacts(c);
    if (hs_eq(s[0], l[0], "companies"))
        return hs_legacy_record(c, "v2", "companies", "companies");
    if (hs_eq(s[0], l[0], "deals"))
        return hs_legacy_record(c, "v1", "deal", "deals");
    return hs_deny(c, "unknown HubSpot endpoint");
}

static int hs_method(struct hs_ctx *c, const char *m)
{
    static const struct {
        const char *name;
        int method;
    } methods[] = {
        {"GET", HS_GET},     {"POST", HS_POST},     {"PUT", HS_PUT},
        {"PATCH", HS_PATCH}, {"DELETE", HS_DELETE},
    };

    if (m == NULL)
        return hs_deny(c, "no method");
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(m, methods[i].name) == 0) {
            c->method = methods[i].method;
            return HS_OK;
        }
    }
    return hs_deny(c, "method %.16s is not used by the HubSpot API", m);
}

static int hs_classify(struct hs_ctx *c)
{
    const struct crm_request *req = c->req;
    int rc;

    if (req->method_override != NULL)
        return hs_deny(c, "X-HTTP-Method-Override is not accepted");
    if (req->content_encoding != NULL && req->content_encoding[0] != '\0' &&
        strcasecmp(req->content_encoding, "identity") != 0)
        return hs_deny(c, "compressed request bodies are not accepted (Content-Encoding %.32s)",
                       req->content_encoding);
    rc = hs_method(c, req->method);
    if (rc == HS_OK)
        rc = hs_parse_path(c, req->path);
    if (rc == HS_OK)
        rc = hs_parse_query(c, req->query);
    if (rc == HS_OK)
        rc = hs_route(c);
    return rc;
}

int hubspot_classify(const struct crm_request *req, struct crm_ops *out)
{
    /*
     * On the stack (about 20 KB): a heap block this size would make glibc
     * consolidate its fast bins on every call.
     */
    struct hs_ctx c;
    struct crm_op *op;
    int rc;

    c.req = req;
    c.out = out;
    snprintf(c.why, sizeof(c.why), "request not understood");
    c.nseg = c.nqp = 0;
    c.qseen = 0;
    c.body = NULL;
    rc = hs_classify(&c);
    json_decref(c.body);
    c.body = NULL;
    if (rc == HS_OK && out->n > 0)
        return 0;
    crm_ops_free(out);
    if (rc == HS_NOMEM)
        return -1;
    hs_sanitize(c.why);
    op = crm_ops_add(out, CRM_HUBSPOT, CRM_VERB_UNKNOWN);
    if (op == NULL || crm_op_set(&op->detail, c.why, strlen(c.why)) < 0)
        goto fail;
    return 0;
fail:
    crm_ops_free(out);
    return -1;
}
