/*
 * synthesize.c - dry-run answers and the read-your-writes overlay (see
 * synthesize.h). The request was classified before it gets here, so the
 * endpoint is re-derived from the path only to pick the answer's shape; the
 * operations carry objects, ids and written values. Whatever does not line
 * up with the operations is refused, never guessed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "jsonfilter.h"
#include "jsonout.h"
#include "salesforce.h"
#include "synthesize.h"

struct synth_path {
    char *buf;
    const char *seg[SYNTH_MAX_SEGS];
    size_t n;
};

struct synth_ctx {
    const struct synth_request *in;
    struct synth_response *out;
    char *err;
    size_t errlen;
    size_t next;      /* next op to answer */
    json_t *refs;     /* Salesforce composite: referenceId -> subresponse body */
    int not_found;    /* a write named a record the CRM does not have */
    int precondition; /* a Salesforce row update failed its If-Unmodified-Since */
    int was_deleted;  /* the missing record was deleted in dry-run (Salesforce: in the bin) */
    char now_hs[64], now_sf[64];
};

static int synth_fail(struct synth_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int synth_fail(struct synth_ctx *c, const char *fmt, ...)
{
    va_list ap;

    if (c->errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* synth_fail for a write whose record the CRM does not have (see synth_response). */
static int synth_missing(struct synth_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int synth_missing(struct synth_ctx *c, const char *fmt, ...)
{
    va_list ap;

    c->not_found = 1;
    if (c->errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int synth_errf(char *err, size_t errlen, const char *msg)
{
    if (errlen > 0)
        snprintf(err, errlen, "%s", msg);
    return -1;
}

/* ---------------- time, text ---------------- */

/*
 * ms since the epoch as ISO-8601 UTC with milliseconds: "...Z" (HubSpot) or
 * "...+0000" (Salesforce). Civil date from days (H. Hinnant's algorithm).
 */
static void synth_iso(long long ms, int sf, char buf[64], size_t len)
{
    long long secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int msec = (int)(ms - secs * 1000);
    long long days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    long long rem = secs - days * 86400;
    long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
    long long m = mp < 10 ? mp + 3 : mp - 9;

    /* fixed-width digits by hand: snprintf's format walk cost more than the rest of a
     * dry-run answer's timestamps (two per synthesized request) */
    const long long parts[] = {0, m, d, rem / 3600, rem / 60 % 60, rem % 60};
    static const char seps[] = "--T::";
    char out[32];
    size_t n = 0, tail = sf ? 5 : 1;

    if (m <= 2)
        y++;
    if (y < 0 || y > 9999) /* outside what ISO-8601 basic years and the CRMs accept */
        y = y < 0 ? 0 : 9999;
    out[n++] = (char)('0' + y / 1000);
    out[n++] = (char)('0' + y / 100 % 10);
    out[n++] = (char)('0' + y / 10 % 10);
    out[n++] = (char)('0' + y % 10);
    for (size_t i = 1; i < 6; i++) {
        out[n++] = seps[i - 1];
        out[n++] = (char)('0' + parts[i] / 10);
        out[n++] = (char)('0' + parts[i] % 10);
    }
    out[n++] = '.';
    out[n++] = (char)('0' + msec / 100);
    out[n++] = (char)('0' + msec / 10 % 10);
    out[n++] = (char)('0' + msec % 10);
    if (n + tail + 1 > len) {
        buf[0] = '\0';
        return;
    }
    memcpy(buf, out, n);
    memcpy(buf + n, sf ? "+0000" : "Z", tail + 1);
}

/* Decode %XX in place over s[0..len); returns the new length. */
static size_t synth_pct(char *s, size_t len)
{
    size_t i, o = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len + 0 && crm_hex(s[i + 1]) >= 0 && crm_hex(s[i + 2]) >= 0) {
            s[o++] = (char)(crm_hex(s[i + 1]) * 16 + crm_hex(s[i + 2]));
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    return o;
}

/* Split path (query removed) into decoded, non-empty segments; 0 / -1. */
static int synth_split(const char *path, struct synth_path *p)
{
    size_t len, i = 0;

    memset(p, 0, sizeof(*p));
    if (path == NULL)
        return -1;
    len = strcspn(path, "?");
    if (len > SYNTH_MAX_PATH)
        return -1;
    p->buf = malloc(len + 1);
    if (p->buf == NULL)
        return -1;
    memcpy(p->buf, path, len);
    p->buf[len] = '\0';
    while (i < len) {
        size_t j = i;
        while (j < len && p->buf[j] != '/')
            j++;
        if (j > i) {
            size_t n;
            if (p->n == SYNTH_MAX_SEGS) {
                free(p->buf);
                p->buf = NULL;
                return -1;
            }
            n = synth_pct(p->buf + i, j - i);
            p->buf[i + n] = '\0';
            p->seg[p->n++] = p->buf + i;
        }
        i = j + 1;
    }
    return 0;
}

static int synth_is(const struct synth_path *p, size_t i, const char *lit)
{
    return i < p->n && strcasecmp(p->seg[i], lit) == 0;
}

/* "2026-03" and the like: the date-based API versions. */
static int synth_is_date(const char *s)
{
    return strlen(s) == 7 && s[4] == '-' && strspn(s, "0123456789-") == 7;
}

/* The shortest decimal text that reads back as d (what JavaScript's String(d) gives). */
static void synth_real(double d, char *buf, size_t len)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* A HubSpot property value as HubSpot stores it: always a string ("" for null). */
static json_t *synth_hs_value(const char *name, json_t *v)
{
    char num[64];

    if (json_is_string(v)) {
        if (strcmp(name, "email") == 0) {
            json_t *s = json_stringn(json_string_value(v), json_string_length(v));
            char *t;
            if (s == NULL)
                return NULL;
            t = (char *)json_string_value(s);
            for (size_t i = 0; t[i]; i++) {
                if (t[i] >= 'A' && t[i] <= 'Z')
                    t[i] = (char)(t[i] - 'A' + 'a');
            }
            return s;
        }
        return json_incref(v);
    }
    if (json_is_integer(v)) {
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return json_string(num);
    }
    if (json_is_real(v)) {
        synth_real(json_real_value(v), num, sizeof(num));
        return json_string(num);
    }
    if (json_is_true(v))
        return json_string("true");
    if (json_is_false(v))
        return json_string("false");
    return json_string("");
}

/* ---------------- output ---------------- */

static int synth_alloc(struct synth_ctx *c)
{
    size_t n = c->in->ops->n ? c->in->ops->n : 1;

    c->out->ids = calloc(n, sizeof(*c->out->ids));
    c->out->records = calloc(n, sizeof(*c->out->records));
    return c->out->ids && c->out->records ? 0 : -1;
}

static int synth_set_body(struct synth_ctx *c, int status, json_t *body)
{
    c->out->status = status;
    if (body == NULL)
        return 0;
    c->out->body = jsonout_dumps_ordered(body, &c->out->body_len);
    json_decref(body);
    if (c->out->body == NULL)
        return synth_fail(c, "out of memory");
    return 0;
}

static int synth_set_id(struct synth_ctx *c, size_t i, const char *id)
{
    free(c->out->ids[i]);
    c->out->ids[i] = strdup(id);
    return c->out->ids[i] ? 0 : synth_fail(c, "out of memory");
}

/* Whether id is already an id this answer minted or wrote. */
static int synth_id_taken(struct synth_ctx *c, const char *id)
{
    for (size_t i = 0; i < c->in->ops->n; i++) {
        if (c->out->ids[i] != NULL && strcmp(c->out->ids[i], id) == 0)
            return 1;
    }
    return 0;
}

/*
 * The request body's tree: jsonfilter_parse (json_loadb's validation and
 * values, in a fraction of its time), else json_loadb itself for a body
 * nested deeper than the fast parser goes. NULL when it does not parse.
 */
static json_t *synth_parse_body(const struct crm_request *req)
{
    json_t *body = jsonfilter_parse(req->body, req->body_len, NULL, 0);

    return body != NULL ? body : json_loadb(req->body, req->body_len, 0, NULL);
}

/*
 * The objects every answer and overlay record is made of are built member
 * by member, not with json_pack: its format walk was half their cost. Keys
 * are literals (no UTF-8 check needed); values are checked as json_pack
 * checks them, and a stolen value is released on any failure, as there.
 */
static json_t *synth_record(const char *object, const char *id, json_t *fields, int created,
                            int deleted, long long ts)
{
    json_t *o = json_object();
    int bad = json_object_set_new_nocheck(o, "object", json_string(object)) < 0;

    bad |= json_object_set_new_nocheck(o, "id", json_string(id)) < 0;
    bad |= json_object_set_new_nocheck(o, "fields", fields) < 0;
    bad |= json_object_set_new_nocheck(o, "created", json_boolean(created)) < 0;
    bad |= json_object_set_new_nocheck(o, "deleted", json_boolean(deleted)) < 0;
    bad |= json_object_set_new_nocheck(o, "ts", json_integer((json_int_t)ts)) < 0;
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The overlay record an earlier op of this request left for id in op upto's object (or NULL). */
static json_t *synth_earlier(struct synth_ctx *c, size_t upto, const char *id)
{
    const char *obj = c->in->ops->v[upto].object;

    for (size_t k = upto; k-- > 0;) {
        const char *kobj = c->in->ops->v[k].object;
        /* an id names a record of one object: another object's record of that id is not it */
        if (c->out->ids[k] != NULL && c->out->records[k] != NULL &&
            strcmp(c->out->ids[k], id) == 0 && obj != NULL && kobj != NULL &&
            strcasecmp(obj, kobj) == 0)
            return c->out->records[k];
    }
    return NULL;
}

/* ---------------- HubSpot ---------------- */

static const struct {
    const char *name, *type_id;
} synth_hs_types[] = {
    {"contacts", "0-1"},  {"companies", "0-2"},         {"deals", "0-3"},
    {"tickets", "0-5"},   {"products", "0-7"},          {"line_items", "0-8"},
    {"quotes", "0-14"},   {"communications", "0-18"},   {"tasks", "0-27"},
    {"notes", "0-46"},    {"meetings", "0-47"},         {"calls", "0-48"},
    {"emails", "0-49"},   {"marketing_events", "0-54"}, {"subscriptions", "0-69"},
    {"users", "0-115"},   {"postal_mail", "0-116"},     {"orders", "0-123"},
    {"leads", "0-136"},   {"carts", "0-142"},           {"services", "0-162"},
    {"courses", "0-410"}, {"listings", "0-420"},        {"appointments", "0-421"},
};

/* HubSpot-defined default (unlabelled) association types per direction (reference §5). */
static const struct {
    const char *from, *to;
    int type_id;
} synth_hs_defaults[] = {
    {"contacts", "companies", 279}, {"companies", "contacts", 280},  {"deals", "contacts", 3},
    {"contacts", "deals", 4},       {"deals", "companies", 341},     {"companies", "deals", 342},
    {"contacts", "tickets", 15},    {"tickets", "contacts", 16},     {"tickets", "companies", 339},
    {"companies", "tickets", 340},  {"deals", "tickets", 27},        {"tickets", "deals", 28},
    {"deals", "line_items", 19},    {"line_items", "deals", 20},     {"contacts", "notes", 201},
    {"notes", "contacts", 202},     {"companies", "notes", 189},     {"notes", "companies", 190},
    {"deals", "notes", 213},        {"notes", "deals", 214},         {"tickets", "notes", 227},
    {"notes", "tickets", 228},      {"contacts", "tasks", 203},      {"tasks", "contacts", 204},
    {"companies", "tasks", 191},    {"tasks", "companies", 192},     {"deals", "tasks", 215},
    {"tasks", "deals", 216},        {"tickets", "tasks", 229},       {"tasks", "tickets", 230},
    {"contacts", "calls", 193},     {"calls", "contacts", 194},      {"contacts", "emails", 197},
    {"emails", "contacts", 198},    {"contacts", "meetings", 199},   {"meetings", "contacts", 200},
    {"companies", "calls", 181},    {"calls", "companies", 182},     {"companies", "emails", 185},
    {"emails", "companies", 186},   {"companies", "meetings", 187},  {"meetings", "companies", 188},
    {"deals", "calls", 205},        {"calls", "deals", 206},         {"deals", "emails", 209},
    {"emails", "deals", 210},       {"deals", "meetings", 211},      {"meetings", "deals", 212},
    {"contacts", "contacts", 449},  {"companies", "companies", 450}, {"deals", "deals", 451},
    {"tickets", "tickets", 452},
};

/* Labels of the labelled HubSpot-defined types; user-defined labels are not known here. */
static const char *synth_hs_label(json_int_t type_id)
{
    switch (type_id) {
    case 1:
    case 2:
    case 5:
    case 6:
    case 25:
    case 26:
        return "Primary";
    case 13:
        return "Child Company";
    case 14:
        return "Parent Company";
    default:
        return NULL;
    }
}

static const char *synth_hs_type_id(const char *object)
{
    for (size_t i = 0; i < sizeof(synth_hs_types) / sizeof(synth_hs_types[0]); i++) {
        if (strcmp(synth_hs_types[i].name, object) == 0)
            return synth_hs_types[i].type_id;
    }
    if (strncmp(object, "2-", 2) == 0)
        return object;
    return NULL;
}

static const char *synth_hs_created(const char *object)
{
    static const char *const eng[] = {"quotes",   "communications", "tasks", "notes",
                                      "meetings", "calls",          "emails"};
    for (size_t i = 0; i < sizeof(eng) / sizeof(eng[0]); i++) {
        if (strcmp(object, eng[i]) == 0)
            return "hs_createdate";
    }
    return "createdate";
}

static const char *synth_hs_lastmod(const char *object)
{
    return strcmp(object, "contacts") == 0 ? "lastmodifieddate" : "hs_lastmodifieddate";
}

enum synth_hs_kind {
    HS_CREATE,
    HS_UPDATE,
    HS_DELETE,
    HS_BATCH_CREATE,
    HS_BATCH_UPDATE,
    HS_BATCH_UPSERT,
    HS_BATCH_ARCHIVE,
    HS_MERGE,
    HS_GDPR,
    HS_V4_PUT,
    HS_V4_PUT_DEFAULT,
    HS_ASSOC_DELETE,
    HS_V3_PUT,
    HS_V4_BATCH_CREATE,
    HS_V4_BATCH_ARCHIVE,
    HS_V4_BATCH_DEFAULT,
    HS_V3_BATCH_CREATE,
    HS_V3_BATCH_ARCHIVE,
    HS_NONE,
};

static enum synth_hs_kind synth_hs_objects(const struct synth_path *p, size_t i, const char *m)
{
    size_t r = p->n - i;

    if (r == 1)
        return strcmp(m, "POST") == 0 ? HS_CREATE : HS_NONE;
    if (r == 2 && strcmp(m, "POST") == 0) {
        if (synth_is(p, i + 1, "merge"))
            return HS_MERGE;
        if (synth_is(p, i + 1, "gdpr-delete"))
            return HS_GDPR;
        return HS_NONE;
    }
    if (r == 2)
        return strcmp(m, "PATCH") == 0 ? HS_UPDATE : strcmp(m, "DELETE") == 0 ? HS_DELETE : HS_NONE;
    if (r == 3 && synth_is(p, i + 1, "batch") && strcmp(m, "POST") == 0) {
        if (synth_is(p, i + 2, "create"))
            return HS_BATCH_CREATE;
        if (synth_is(p, i + 2, "update"))
            return HS_BATCH_UPDATE;
        if (synth_is(p, i + 2, "upsert"))
            return HS_BATCH_UPSERT;
        if (synth_is(p, i + 2, "archive"))
            return HS_BATCH_ARCHIVE;
        return HS_NONE;
    }
    if (r >= 4 && synth_is(p, i + 2, "associations")) {
        size_t a = p->n - (i + 3);
        if (a == 3 && synth_is(p, i + 3, "default"))
            return strcmp(m, "PUT") == 0 ? HS_V4_PUT_DEFAULT : HS_NONE;
        if (a == 2 || a == 3) {
            if (strcmp(m, "DELETE") == 0)
                return HS_ASSOC_DELETE;
            if (strcmp(m, "PUT") == 0)
                return a == 2 ? HS_V4_PUT : HS_V3_PUT;
        }
    }
    return HS_NONE;
}

static enum synth_hs_kind synth_hs_assoc_root(const struct synth_path *p, size_t i, int v3,
                                              const char *m)
{
    if (strcmp(m, "POST") != 0 || p->n < i + 4 || !synth_is(p, i + 2, "batch"))
        return HS_NONE;
    if (p->n == i + 4 && synth_is(p, i + 3, "create"))
        return v3 ? HS_V3_BATCH_CREATE : HS_V4_BATCH_CREATE;
    if (p->n == i + 4 && synth_is(p, i + 3, "archive"))
        return v3 ? HS_V3_BATCH_ARCHIVE : HS_V4_BATCH_ARCHIVE;
    if (!v3 && p->n == i + 5 && synth_is(p, i + 3, "labels") && synth_is(p, i + 4, "archive"))
        return HS_V4_BATCH_ARCHIVE;
    if (!v3 && p->n == i + 5 && synth_is(p, i + 3, "associate") && synth_is(p, i + 4, "default"))
        return HS_V4_BATCH_DEFAULT;
    return HS_NONE;
}

static enum synth_hs_kind synth_hs_kind(const struct synth_path *p, const char *m)
{
    if (!synth_is(p, 0, "crm") || p->n < 4)
        return HS_NONE;
    if (synth_is(p, 1, "v3") && synth_is(p, 2, "objects"))
        return synth_hs_objects(p, 3, m);
    if (synth_is(p, 1, "objects") && synth_is_date(p->seg[2]))
        return synth_hs_objects(p, 3, m);
    if (synth_is(p, 1, "v4") && synth_is(p, 2, "objects")) {
        enum synth_hs_kind k = synth_hs_objects(p, 3, m);
        return k == HS_V4_PUT || k == HS_V4_PUT_DEFAULT || k == HS_ASSOC_DELETE ? k : HS_NONE;
    }
    if (synth_is(p, 1, "v3") && synth_is(p, 2, "associations"))
        return synth_hs_assoc_root(p, 3, 1, m);
    if ((synth_is(p, 1, "v4") && synth_is(p, 2, "associations")) ||
        (synth_is(p, 1, "associations") && (synth_is_date(p->seg[2]) || synth_is(p, 2, "v4"))))
        return synth_hs_assoc_root(p, 3, 0, m);
    return HS_NONE;
}

/* before as a flat {property: value} map (borrowed) and the record id it names, if any. */
static json_t *synth_hs_before(json_t *before, const char **id)
{
    json_t *props = json_object_get(before, "properties");

    *id = NULL;
    if (json_is_object(props)) {
        *id = json_string_value(json_object_get(before, "id"));
        before = props;
    }
    if (*id == NULL)
        *id = json_string_value(json_object_get(before, "hs_object_id"));
    return before;
}

static uint64_t synth_rand(struct synth_ctx *c)
{
    return c->in->rand64(c->in->rand_arg);
}

static int synth_hs_new_id(struct synth_ctx *c, char *buf, size_t len)
{
    for (int t = 0; t < SYNTH_ID_TRIES; t++) {
        unsigned long long v = SYNTH_HS_ID_BASE + synth_rand(c) % SYNTH_HS_ID_SPAN;
        snprintf(buf, len, "%llu", v);
        if (!synth_id_taken(c, buf))
            return 0;
    }
    return synth_fail(c, "could not draw a fresh synthetic id");
}

static int synth_key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A copy of the named properties of fields (all of them when names is NULL), keys sorted. */
static json_t *synth_sorted_props(json_t *fields, json_t *names)
{
    json_t *src = names ? names : fields, *out = json_object(), *v;
    size_t n = json_object_size(src), k = 0;
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    const char *key;

    if (out == NULL || keys == NULL) {
        free(keys);
        json_decref(out);
        return NULL;
    }
    json_object_foreach(src, key, v)
    {
        keys[k++] = key;
    }
    qsort(keys, k, sizeof(*keys), synth_key_cmp);
    for (size_t i = 0; i < k; i++) {
        json_t *val = json_object_get(fields, keys[i]);
        json_object_set(out, keys[i], val ? val : json_null());
    }
    free(keys);
    return out;
}

static json_t *synth_hs_object(const char *id, json_t *props, const char *created,
                               const char *updated)
{
    json_t *o = json_object();
    int bad = json_object_set_new_nocheck(o, "id", json_string(id)) < 0;

    bad |= json_object_set_new_nocheck(o, "properties", props) < 0;
    bad |= json_object_set_new_nocheck(o, "createdAt", json_string(created)) < 0;
    bad |= json_object_set_new_nocheck(o, "updatedAt", json_string(updated)) < 0;
    bad |= json_object_set_new_nocheck(o, "archived", json_false()) < 0;
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/*
 * One HubSpot record write (create, update, upsert): the overlay record in
 * out->records[i], the id in out->ids[i], and the SimplePublicObject in *obj
 * (written properties plus hs_object_id, created and last-modified; "new"
 * for upsert when is_upsert).
 */
static int synth_hs_write(struct synth_ctx *c, size_t i, int is_upsert, json_t *input, json_t **obj)
{
    const struct crm_op *op = &c->in->ops->v[i];
    json_t *before = c->in->before ? c->in->before[i] : NULL;
    const char *created = synth_hs_created(op->object), *lastmod = synth_hs_lastmod(op->object);
    const char *bid = NULL, *created_at;
    json_t *fields = NULL, *shown = NULL, *props;
    char idbuf[64];
    int create = op->verb == CRM_VERB_CREATE || (op->verb == CRM_VERB_UPSERT && before == NULL);

    *obj = NULL;
    if (!create && before == NULL)
        return synth_missing(c, "%s %s does not exist: HubSpot would answer 404", op->object,
                             op->record_id ? op->record_id : "?");
    if (create) {
        if (synth_hs_new_id(c, idbuf, sizeof(idbuf)) < 0)
            return -1;
        fields = json_object();
    } else {
        json_t *flat = synth_hs_before(before, &bid);
        if (op->id_property != NULL && strcmp(op->id_property, "hs_object_id") != 0) {
            if (bid == NULL)
                return synth_fail(c, "the before-state of %s %s lacks hs_object_id", op->object,
                                  op->record_id);
        } else {
            bid = op->record_id;
        }
        if (bid == NULL || strlen(bid) >= sizeof(idbuf))
            return synth_fail(c, "no record id for %s", op->object);
        snprintf(idbuf, sizeof(idbuf), "%s", bid);
        /* The record's own members, its values shared with the before-state: what follows
         * (and synth_overlay_combine_into, in the store's writer) only sets members of
         * fields, never changes a value in place. */
        fields = json_copy(flat);
    }
    shown = json_object();
    if (fields == NULL || shown == NULL)
        goto nomem;
    for (size_t k = 0; k < op->nwrites; k++) {
        json_t *v = synth_hs_value(op->writes[k].name, op->writes[k].value);
        if (v == NULL || json_object_set_new(fields, op->writes[k].name, v) < 0)
            goto nomem;
        /* an upsert that finds its record answers the properties sent, not the lookup key */
        if (is_upsert && !create && op->id_property != NULL &&
            strcmp(op->writes[k].name, op->id_property) == 0 &&
            json_object_get(json_object_get(input, "properties"), op->id_property) == NULL)
            continue;
        json_object_set(shown, op->writes[k].name, json_true());
    }
    json_object_set_new(fields, "hs_object_id", json_string(idbuf));
    json_object_set_new(fields, lastmod, json_string(c->now_hs));
    if (create)
        json_object_set_new(fields, created, json_string(c->now_hs));
    created_at = json_string_value(json_object_get(fields, created));
    if (created_at == NULL) {
        json_decref(fields);
        json_decref(shown);
        return synth_fail(c, "the before-state of %s %s lacks %s", op->object, idbuf, created);
    }
    json_object_set(shown, "hs_object_id", json_true());
    json_object_set(shown, created, json_true());
    json_object_set(shown, lastmod, json_true());
    props = synth_sorted_props(fields, create ? NULL : shown);
    json_decref(shown);
    shown = NULL;
    if (props == NULL)
        goto nomem;
    *obj = synth_hs_object(idbuf, props, created_at, c->now_hs);
    if (*obj != NULL && is_upsert)
        json_object_set_new(*obj, "new", json_boolean(create));
    if (*obj == NULL || synth_set_id(c, i, idbuf) < 0)
        goto nomem;
    c->out->records[i] = synth_record(op->object, idbuf, fields, create, 0, c->in->now_ms);
    fields = NULL;
    if (c->out->records[i] == NULL)
        goto nomem;
    return 0;
nomem:
    json_decref(fields);
    json_decref(shown);
    json_decref(*obj);
    *obj = NULL;
    return synth_fail(c, "out of memory");
}

/* A delete (archive, gdpr-delete): the overlay record marks the record deleted. */
static int synth_hs_delete(struct synth_ctx *c, size_t i, int need_before)
{
    const struct crm_op *op = &c->in->ops->v[i];
    json_t *before = c->in->before ? c->in->before[i] : NULL;
    const char *bid = NULL, *id = op->record_id;
    json_t *flat = NULL;

    if (before == NULL) {
        if (need_before)
            return synth_missing(c, "%s %s does not exist: HubSpot would answer 404", op->object,
                                 op->record_id);
        return synth_set_id(c, i, op->record_id);
    }
    flat = synth_hs_before(before, &bid);
    if (op->id_property != NULL && strcmp(op->id_property, "hs_object_id") != 0) {
        if (bid == NULL)
            return synth_fail(c, "the before-state of %s %s lacks hs_object_id", op->object,
                              op->record_id);
        id = bid;
    }
    if (synth_set_id(c, i, id) < 0)
        return -1;
    c->out->records[i] = synth_record(op->object, id, json_deep_copy(flat), 0, 1, c->in->now_ms);
    return c->out->records[i] ? 0 : synth_fail(c, "out of memory");
}

static json_t *synth_hs_batch(struct synth_ctx *c, json_t *results)
{
    return json_pack("{s:s, s:o, s:s, s:s}", "status", "COMPLETE", "results", results, "startedAt",
                     c->now_hs, "completedAt", c->now_hs);
}

/*
 * HubSpot's multi-status error for the ids of object it does not have
 * (missing, taken): "Could not get some CONTACT objects ...".
 */
static json_t *synth_hs_missing_error(const char *object, json_t *missing)
{
    static const struct {
        const char *name, *upper;
    } names[] = {{"contacts", "CONTACT"}, {"companies", "COMPANY"}, {"deals", "DEAL"},
                 {"tickets", "TICKET"},   {"products", "PRODUCT"},  {"line_items", "LINE_ITEM"}};
    const char *upper = "OBJECT";
    char msg[160];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (object != NULL && strcmp(names[i].name, object) == 0)
            upper = names[i].upper;
    }
    snprintf(msg, sizeof(msg),
             "Could not get some %s objects, they may be deleted or not exist. Check that ids "
             "are valid.",
             upper);
    return json_pack("{s:s, s:s, s:s, s:{s:o}, s:[], s:{}}", "status", "error", "category",
                     "OBJECT_NOT_FOUND", "message", msg, "context", "ids", missing, "errors",
                     "links");
}

/*
 * batch (a new reference, taken) with HubSpot's multi-status error for the
 * ids it does not have (missing, taken): "Could not get some CONTACT objects".
 */
static json_t *synth_hs_missing(const char *object, json_t *batch, json_t *missing)
{
    json_t *err = synth_hs_missing_error(object, missing);

    if (batch == NULL || err == NULL) {
        json_decref(err);
        json_decref(batch);
        return NULL;
    }
    if (json_object_set_new(batch, "numErrors", json_integer(1)) < 0 ||
        json_object_set_new(batch, "errors", json_pack("[o]", err)) < 0) {
        json_decref(batch);
        return NULL;
    }
    return batch;
}

/* A HubSpot id as the JSON number v4 association answers carry. */
static int synth_hs_num(struct synth_ctx *c, const char *id, json_int_t *v)
{
    char *end;
    long long n;

    if (id == NULL || id[0] < '0' || id[0] > '9')
        return synth_fail(c, "association id %s is not numeric", id ? id : "(none)");
    n = strtoll(id, &end, 10);
    if (*end != '\0' || n < 0)
        return synth_fail(c, "association id %s is not numeric", id);
    *v = n;
    return 0;
}

/* LabelsBetweenObjectPair for op i with the given association specs. */
static json_t *synth_hs_labels(struct synth_ctx *c, size_t i, json_t *specs)
{
    const struct crm_op *op = &c->in->ops->v[i];
    const char *ft = synth_hs_type_id(op->object), *tt = synth_hs_type_id(op->to_object);
    json_int_t fid, tid;
    json_t *labels, *spec;
    size_t k;

    if (ft == NULL || tt == NULL) {
        synth_fail(c, "no object type id known for %s or %s", op->object, op->to_object);
        return NULL;
    }
    if (synth_hs_num(c, op->record_id, &fid) < 0 || synth_hs_num(c, op->to_id, &tid) < 0)
        return NULL;
    labels = json_array();
    json_array_foreach(specs, k, spec)
    {
        const char *l =
            synth_hs_label(json_integer_value(json_object_get(spec, "associationTypeId")));
        int dup = 0;
        size_t j;
        json_t *have;
        if (l == NULL ||
            strcmp(json_string_value(json_object_get(spec, "associationCategory"))
                       ? json_string_value(json_object_get(spec, "associationCategory"))
                       : "",
                   "HUBSPOT_DEFINED") != 0)
            continue;
        json_array_foreach(labels, j, have)
        {
            dup |= strcmp(json_string_value(have), l) == 0;
        }
        if (!dup)
            json_array_append_new(labels, json_string(l));
    }
    return json_pack("{s:s, s:I, s:s, s:I, s:o}", "fromObjectTypeId", ft, "fromObjectId", fid,
                     "toObjectTypeId", tt, "toObjectId", tid, "labels", labels);
}

static json_t *synth_hs_default(struct synth_ctx *c, size_t i)
{
    const struct crm_op *op = &c->in->ops->v[i];

    for (size_t k = 0; k < sizeof(synth_hs_defaults) / sizeof(synth_hs_defaults[0]); k++) {
        if (strcmp(synth_hs_defaults[k].from, op->object) == 0 &&
            strcmp(synth_hs_defaults[k].to, op->to_object) == 0)
            return json_pack("{s:{s:s}, s:{s:s}, s:{s:s, s:i}}", "from", "id", op->record_id, "to",
                             "id", op->to_id, "associationSpec", "associationCategory",
                             "HUBSPOT_DEFINED", "associationTypeId", synth_hs_defaults[k].type_id);
    }
    synth_fail(c, "no default association type between %s and %s", op->object, op->to_object);
    return NULL;
}

/* Every op must have one of the verbs given (a, or b when b is not UNKNOWN). */
static int synth_verbs(struct synth_ctx *c, enum crm_verb a, enum crm_verb b)
{
    for (size_t i = 0; i < c->in->ops->n; i++) {
        enum crm_verb v = c->in->ops->v[i].verb;
        if (v != a && (b == CRM_VERB_UNKNOWN || v != b))
            return synth_fail(c, "operation %zu is a %s, not what this endpoint does", i,
                              crm_verb_name(v));
    }
    return 0;
}

static int synth_hubspot(struct synth_ctx *c)
{
    const struct crm_request *req = c->in->req;
    const struct crm_ops *ops = c->in->ops;
    struct synth_path p;
    enum synth_hs_kind kind;
    json_t *body = NULL, *results = NULL, *obj = NULL, *inputs;
    const char *last_created = NULL;
    int rc = -1;

    if (synth_split(req->path, &p) < 0)
        return synth_fail(c, "path too long or out of memory");
    kind = synth_hs_kind(&p, req->method ? req->method : "");
    free(p.buf);
    p.buf = NULL;
    if (kind == HS_NONE)
        return synth_fail(c, "dry-run cannot answer this HubSpot endpoint (%s %s)",
                          req->method ? req->method : "?", req->path);
    if (kind == HS_V3_PUT)
        return synth_fail(c, "dry-run cannot answer a v3 association PUT: its answer lists every "
                             "association of the record");
    if (req->body != NULL && req->body_len > 0) {
        body = synth_parse_body(req);
        if (body == NULL)
            return synth_fail(c, "the request body does not parse");
    }
    inputs = json_object_get(body, "inputs");
    switch (kind) {
    case HS_CREATE:
    case HS_BATCH_CREATE:
        if (synth_verbs(c, CRM_VERB_CREATE, CRM_VERB_ASSOCIATE) < 0 ||
            ops->v[0].verb != CRM_VERB_CREATE)
            goto done;
        results = json_array();
        for (size_t i = 0; i < ops->n; i++) {
            if (ops->v[i].verb == CRM_VERB_ASSOCIATE) {
                /* association given on create: it belongs to the record just created */
                if (synth_set_id(c, i, last_created) < 0)
                    goto done;
                continue;
            }
            if (synth_hs_write(c, i, 0, NULL, &obj) < 0)
                goto done;
            last_created = c->out->ids[i];
            if (kind == HS_CREATE)
                break;
            json_array_append_new(results, obj);
            obj = NULL;
        }
        if (kind == HS_CREATE) {
            for (size_t i = 1; i < ops->n; i++) {
                if (synth_set_id(c, i, last_created) < 0)
                    goto done;
            }
            rc = synth_set_body(c, 201, obj);
            obj = NULL;
        } else {
            rc = synth_set_body(c, 201, synth_hs_batch(c, results));
            results = NULL;
        }
        break;
    case HS_UPDATE:
    case HS_BATCH_UPDATE:
    case HS_BATCH_UPSERT: {
        int up = kind == HS_BATCH_UPSERT;
        if (synth_verbs(c, up ? CRM_VERB_UPSERT : CRM_VERB_UPDATE, CRM_VERB_UNKNOWN) < 0)
            goto done;
        json_t *missing = json_array();
        results = json_array();
        if (missing == NULL || results == NULL) {
            json_decref(missing);
            goto done;
        }
        for (size_t i = 0; i < ops->n; i++) {
            json_t *before = c->in->before ? c->in->before[i] : NULL;
            /* a batch update of a record HubSpot does not have: that record fails alone (207) */
            if (kind == HS_BATCH_UPDATE && before == NULL && ops->v[i].record_id != NULL) {
                json_array_append_new(missing, json_string(ops->v[i].record_id));
                continue;
            }
            if (synth_hs_write(c, i, up, json_array_get(inputs, i), &obj) < 0) {
                json_decref(missing);
                goto done;
            }
            json_array_append_new(results, obj);
            obj = NULL;
        }
        if (kind == HS_UPDATE) {
            rc = synth_set_body(c, 200, json_incref(json_array_get(results, 0)));
        } else if (json_array_size(missing) > 0) {
            json_t *batch = synth_hs_batch(c, results);
            results = NULL;
            batch = synth_hs_missing(ops->v[0].object, batch, missing);
            missing = NULL;
            rc = batch != NULL ? synth_set_body(c, 207, batch) : synth_fail(c, "out of memory");
        } else {
            rc = synth_set_body(c, 200, synth_hs_batch(c, results));
            results = NULL;
        }
        json_decref(missing);
        break;
    }
    case HS_DELETE:
    case HS_BATCH_ARCHIVE:
    case HS_GDPR:
        if (synth_verbs(c, kind == HS_GDPR ? CRM_VERB_GDPR_DELETE : CRM_VERB_DELETE,
                        CRM_VERB_UNKNOWN) < 0)
            goto done;
        for (size_t i = 0; i < ops->n; i++) {
            /* batch archive answers 204 for ids that do not exist, as HubSpot does */
            if (synth_hs_delete(c, i, kind != HS_BATCH_ARCHIVE) < 0)
                goto done;
            /* a GDPR delete is for good: not in the recycle bin (archived=true) either */
            if (kind == HS_GDPR && c->out->records[i] != NULL &&
                json_object_set_new(c->out->records[i], "purged", json_true()) < 0) {
                rc = synth_fail(c, "out of memory");
                goto done;
            }
        }
        rc = synth_set_body(c, 204, NULL);
        break;
    case HS_MERGE: {
        json_t *before = c->in->before ? c->in->before[0] : NULL, *fields, *flat;
        const struct crm_op *op = &ops->v[0];
        const char *bid, *merged, *created = synth_hs_created(op->object);
        char *list = NULL;
        size_t len;
        if (synth_verbs(c, CRM_VERB_MERGE, CRM_VERB_UNKNOWN) < 0)
            goto done;
        if (ops->n != 1 || op->record_id == NULL || op->to_id == NULL) {
            synth_fail(c, "a merge names one primary record and one record to merge");
            goto done;
        }
        if (before == NULL) {
            synth_missing(c, "%s %s does not exist: HubSpot would answer 404", op->object,
                          op->record_id);
            goto done;
        }
        flat = synth_hs_before(before, &bid);
        fields = json_deep_copy(flat);
        if (fields == NULL)
            goto done;
        merged = json_string_value(json_object_get(fields, "hs_merged_object_ids"));
        len = (merged ? strlen(merged) : 0) + strlen(op->to_id) + 2;
        list = malloc(len);
        if (list == NULL) {
            json_decref(fields);
            goto done;
        }
        snprintf(list, len, "%s%s%s", merged && *merged ? merged : "", merged && *merged ? ";" : "",
                 op->to_id);
        json_object_set_new(fields, "hs_merged_object_ids", json_string(list));
        free(list);
        list = NULL;
        json_object_set_new(fields, "hs_object_id", json_string(op->record_id));
        json_object_set_new(fields, synth_hs_lastmod(op->object), json_string(c->now_hs));
        if (!json_is_string(json_object_get(fields, created))) {
            json_decref(fields);
            synth_fail(c, "the before-state of %s %s lacks %s", op->object, op->record_id, created);
            goto done;
        }
        obj = synth_hs_object(op->record_id, synth_sorted_props(fields, NULL),
                              json_string_value(json_object_get(fields, created)), c->now_hs);
        if (obj == NULL || synth_set_id(c, 0, op->record_id) < 0) {
            json_decref(fields);
            goto done;
        }
        c->out->records[0] = synth_record(op->object, op->record_id, fields, 0, 0, c->in->now_ms);
        rc = synth_set_body(c, 200, obj);
        obj = NULL;
        break;
    }
    case HS_V4_PUT:
        if (synth_verbs(c, CRM_VERB_ASSOCIATE, CRM_VERB_UNKNOWN) < 0 || ops->n != 1)
            goto done;
        obj = synth_hs_labels(c, 0, body);
        if (obj == NULL || synth_set_id(c, 0, ops->v[0].record_id) < 0)
            goto done;
        {
            /* the pair's resource, as HubSpot's Location names it (a path: the exchange adds
             * the upstream's base) */
            char loc[SYNTH_MAX_PATH];
            int n = snprintf(
                loc, sizeof(loc), "/crm/v4/objects/%s/%s/associations/%s/%s",
                json_string_value(json_object_get(obj, "fromObjectTypeId")), ops->v[0].record_id,
                json_string_value(json_object_get(obj, "toObjectTypeId")), ops->v[0].to_id);
            if (n > 0 && (size_t)n < sizeof(loc) && (c->out->location = strdup(loc)) == NULL) {
                synth_fail(c, "out of memory");
                goto done;
            }
        }
        rc = synth_set_body(c, 201, obj);
        obj = NULL;
        break;
    case HS_V4_PUT_DEFAULT:
    case HS_V4_BATCH_DEFAULT:
        if (synth_verbs(c, CRM_VERB_ASSOCIATE, CRM_VERB_UNKNOWN) < 0)
            goto done;
        results = json_array();
        for (size_t i = 0; i < ops->n; i++) {
            obj = synth_hs_default(c, i);
            if (obj == NULL || synth_set_id(c, i, ops->v[i].record_id) < 0)
                goto done;
            json_array_append_new(results, obj);
            obj = NULL;
        }
        rc = synth_set_body(c, 200, synth_hs_batch(c, results));
        results = NULL;
        break;
    case HS_ASSOC_DELETE:
    case HS_V4_BATCH_ARCHIVE:
    case HS_V3_BATCH_ARCHIVE:
        if (synth_verbs(c, CRM_VERB_DISSOCIATE, CRM_VERB_UNKNOWN) < 0)
            goto done;
        for (size_t i = 0; i < ops->n; i++) {
            if (synth_set_id(c, i, ops->v[i].record_id) < 0)
                goto done;
        }
        rc = synth_set_body(c, 204, NULL);
        break;
    case HS_V4_BATCH_CREATE:
    case HS_V3_BATCH_CREATE:
        if (synth_verbs(c, CRM_VERB_ASSOCIATE, CRM_VERB_UNKNOWN) < 0)
            goto done;
        if (json_array_size(inputs) != ops->n) {
            synth_fail(c, "the batch inputs do not match the operations");
            goto done;
        }
        results = json_array();
        for (size_t i = 0; i < ops->n; i++) {
            json_t *in = json_array_get(inputs, i);
            if (kind == HS_V4_BATCH_CREATE)
                obj = synth_hs_labels(c, i, json_object_get(in, "types"));
            else
                obj = json_pack("{s:{s:s}, s:{s:s}, s:O}", "from", "id", ops->v[i].record_id, "to",
                                "id", ops->v[i].to_id, "type", json_object_get(in, "type"));
            if (obj == NULL && c->errlen > 0 && c->err[0] == '\0')
                synth_fail(c, "association input %zu lacks what its answer needs", i);
            if (obj == NULL || synth_set_id(c, i, ops->v[i].record_id) < 0)
                goto done;
            json_array_append_new(results, obj);
            obj = NULL;
        }
        rc = synth_set_body(c, 201, synth_hs_batch(c, results));
        results = NULL;
        break;
    default:
        synth_fail(c, "dry-run cannot answer this HubSpot endpoint");
        break;
    }
done:
    json_decref(obj);
    json_decref(results);
    json_decref(body);
    /* only a single-record write is answered 404; a batch naming a missing record is refused */
    if (rc < 0 && kind != HS_UPDATE && kind != HS_DELETE && kind != HS_MERGE && kind != HS_GDPR)
        c->not_found = 0;
    return rc;
}

/* ---------------- Salesforce ---------------- */

static const char synth_b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static void synth_sf_checksum(char *id)
{
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

    for (int k = 0; k < 3; k++) {
        int v = 0;
        for (int i = 0; i < 5; i++) {
            char ch = id[k * 5 + i];
            if (ch >= 'A' && ch <= 'Z')
                v |= 1 << i;
        }
        id[15 + k] = T[v];
    }
    id[18] = '\0';
}

/*
 * The canonical 18-character form of a 15- or 18-character id (an 18-char
 * id is case-insensitive: its checksum restores the case); 0 / -1.
 */
static int synth_sf_canon(const char *s, char out[19])
{
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    size_t len = strlen(s);

    if ((len != 15 && len != 18) || strspn(s, synth_b62) != len)
        return -1;
    memcpy(out, s, 15);
    if (len == 18) {
        for (int k = 0; k < 3; k++) {
            char up = s[15 + k] >= 'a' && s[15 + k] <= 'z' ? (char)(s[15 + k] - 32) : s[15 + k];
            const char *at = strchr(T, up);
            if (at == NULL || up == '\0')
                return -1;
            for (int i = 0; i < 5; i++) {
                char *ch = &out[k * 5 + i];
                int upper = (int)((at - T) >> i) & 1;
                if (*ch >= '0' && *ch <= '9') {
                    if (upper)
                        return -1;
                } else if (upper && *ch >= 'a' && *ch <= 'z') {
                    *ch = (char)(*ch - 32);
                } else if (!upper && *ch >= 'A' && *ch <= 'Z') {
                    *ch = (char)(*ch + 32);
                }
            }
        }
    }
    synth_sf_checksum(out);
    return 0;
}

/* ms since the epoch of an ISO-8601 datetime ("...Z", "+hh:mm", "+hhmm", fraction optional); -1. */
static long long synth_parse_iso(const char *s)
{
    int f[6] = {0}, n = 0, ms = 0;
    long long days, y, m, sign, off = 0;
    const char *p = s;

    for (int i = 0; i < 6; i++) {
        int width = i == 0 ? 4 : 2;
        for (int k = 0; k < width; k++, p++) {
            if (*p < '0' || *p > '9')
                return -1;
            f[i] = f[i] * 10 + (*p - '0');
        }
        if (i < 5 && *p++ != "--T::"[i])
            return -1;
    }
    if (*p == '.') {
        for (p++, n = 0; *p >= '0' && *p <= '9'; p++, n++)
            ms = n < 3 ? ms * 10 + (*p - '0') : ms;
        for (; n < 3 && n > 0; n++)
            ms *= 10;
    }
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm;
        sign = *p++ == '-' ? -1 : 1;
        if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
            return -1;
        hh = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        if (*p == ':')
            p++;
        if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
            return -1;
        mm = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        off = sign * (hh * 60 + mm) * 60000LL;
    } else {
        return -1;
    }
    if (*p != '\0' || f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 ||
        f[5] > 60)
        return -1;
    /* days from the civil date (H. Hinnant), the inverse of synth_iso's */
    y = f[1] <= 2 ? f[0] - 1 : f[0];
    m = f[1];
    {
        long long era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
        long long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + f[2] - 1;
        long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        days = era * 146097 + doe - 719468;
    }
    return ((days * 86400 + f[3] * 3600 + f[4] * 60 + f[5]) * 1000 + ms) - off;
}

/*
 * A value written to Salesforce field name as Salesforce stores and reads
 * it back, as far as crmgate can tell without the field's type: an id in a
 * lookup (a name ending in Id or __c) in its 18-character form; and, from
 * the type of the record's current value (was, NULL or null: unknown), a
 * number, a boolean or a datetime written as a string in the form
 * Salesforce answers (JSON number, true/false, "....000+0000"), a datetime
 * written to a date field as its UTC day. A new reference.
 */
static json_t *synth_sf_value(struct synth_ctx *c, const char *name, json_t *v, const json_t *was)
{
    const char *str = json_string_value(v);
    size_t nl = strlen(name), sl = str != NULL ? strlen(str) : 0;
    char id[19], iso[64], *end;

    if (str == NULL)
        return json_incref(v);
    if (((nl > 2 && strcmp(name + nl - 2, "Id") == 0) ||
         (nl > 3 && strcasecmp(name + nl - 3, "__c") == 0)) &&
        (sl == 15 || sl == 18) && sf_object_for_id(c->in->schema, str) != NULL &&
        synth_sf_canon(str, id) == 0)
        return json_string(id);
    if (json_is_number(was) && sl > 0 && sl < 64) {
        double d = strtod(str, &end);
        /* an integer field keeps an integer (the range check keeps the cast defined) */
        if (*end == '\0' && end != str && d == d)
            return json_is_integer(was) && d > -9e18 && d < 9e18 && d == (double)(json_int_t)d
                       ? json_integer((json_int_t)d)
                       : json_real(d);
    }
    if (json_is_boolean(was) && (strcmp(str, "true") == 0 || strcmp(str, "false") == 0))
        return json_boolean(strcmp(str, "true") == 0);
    if (json_is_string(was) && sl > 10 && synth_parse_iso(str) >= 0) {
        size_t wl = strlen(json_string_value(was));
        synth_iso(synth_parse_iso(str), 1, iso, sizeof(iso));
        if (wl == 10 && json_string_value(was)[4] == '-') /* a date field: "2025-03-01" */
            return json_stringn(iso, 10);
        if (synth_parse_iso(json_string_value(was)) >= 0)
            return json_string(iso);
    }
    return json_incref(v);
}

static int synth_sf_new_id(struct synth_ctx *c, const char *object, char out[19])
{
    const char *prefix = sf_prefix_for_object(c->in->schema, object);

    if (prefix == NULL)
        return synth_fail(c,
                          "no key prefix is known for %s, so no %s id can be synthesized "
                          "(describe global gives custom prefixes)",
                          object, object);
    for (int t = 0; t < SYNTH_ID_TRIES; t++) {
        uint64_t v = synth_rand(c);
        memcpy(out, prefix, 3);
        memcpy(out + 3, "DR0", 3);
        for (int i = 14; i >= 6; i--) {
            out[i] = synth_b62[v % 62];
            v /= 62;
        }
        synth_sf_checksum(out);
        if (!synth_id_taken(c, out))
            return 0;
    }
    return synth_fail(c, "could not draw a fresh synthetic id");
}

/* The canonical object name for an id (built-in or schema), else as written. */
static const char *synth_sf_object(struct synth_ctx *c, const char *object, const char *id)
{
    const char *o = id && strlen(id) >= 3 ? sf_object_for_id(c->in->schema, id) : NULL;
    return o && strcasecmp(o, object) == 0 ? o : object;
}

/*
 * The value of a composite reference "a.b[0].c" (ref[0..len)) in the
 * subresponses seen so far, borrowed, or NULL.
 */
static json_t *synth_ref_lookup(struct synth_ctx *c, const char *ref, size_t len)
{
    char name[SYNTH_MAX_REF_LEN];
    size_t i = 0, n;
    json_t *cur;

    while (i < len && ref[i] != '.' && ref[i] != '[')
        i++;
    if (i == 0 || i >= sizeof(name) || c->refs == NULL)
        return NULL;
    memcpy(name, ref, i);
    name[i] = '\0';
    cur = json_object_get(c->refs, name);
    while (cur != NULL && i < len) {
        if (ref[i] == '.') {
            n = ++i;
            while (i < len && ref[i] != '.' && ref[i] != '[')
                i++;
            if (i == n || i - n >= sizeof(name))
                return NULL;
            memcpy(name, ref + n, i - n);
            name[i - n] = '\0';
            cur = json_object_get(cur, name);
        } else if (ref[i] == '[') {
            char *end;
            long k = strtol(ref + i + 1, &end, 10);
            if (end == ref + i + 1 || *end != ']' || k < 0)
                return NULL;
            cur = json_array_get(cur, (size_t)k);
            i = (size_t)(end - ref) + 1;
        } else {
            return NULL;
        }
    }
    return cur != NULL && !json_is_object(cur) && !json_is_array(cur) ? cur : NULL;
}

/*
 * v with composite references replaced (a whole-string reference keeps the
 * referenced JSON type), as a new reference; NULL with err set when a
 * reference does not resolve.
 */
static json_t *synth_ref_subst(struct synth_ctx *c, json_t *v)
{
    const char *s = json_string_value(v), *at;
    size_t len = json_string_length(v), cap, o = 0;
    char *buf;
    json_t *r;

    if (!json_is_string(v) || strstr(s, "@{") == NULL)
        return json_incref(v);
    at = strstr(s, "}");
    if (s[0] == '@' && s[1] == '{' && at == s + len - 1) {
        r = synth_ref_lookup(c, s + 2, len - 3);
        if (r == NULL)
            synth_fail(c, "composite reference %s does not resolve in dry-run", s);
        return json_incref(r);
    }
    cap = len + 1;
    buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    while (*s) {
        const char *end;
        char tmp[64];
        const char *text;
        size_t tl;
        if (s[0] != '@' || s[1] != '{' || (end = strchr(s, '}')) == NULL) {
            buf[o++] = *s++;
            continue;
        }
        r = synth_ref_lookup(c, s + 2, (size_t)(end - s - 2));
        if (r == NULL) {
            free(buf);
            synth_fail(c, "composite reference in %s does not resolve in dry-run",
                       json_string_value(v));
            return NULL;
        }
        if (json_is_string(r)) {
            text = json_string_value(r);
        } else if (json_is_integer(r)) {
            snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(r));
            text = tmp;
        } else {
            snprintf(tmp, sizeof(tmp), "%s",
                     json_is_true(r)    ? "true"
                     : json_is_false(r) ? "false"
                                        : "null");
            text = tmp;
        }
        tl = strlen(text);
        if (o + tl + strlen(end + 1) + 1 > cap) {
            char *nb;
            cap = o + tl + strlen(end + 1) + 1;
            nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        memcpy(buf + o, text, tl);
        o += tl;
        s = end + 1;
    }
    buf[o] = '\0';
    r = json_stringn(buf, o);
    free(buf);
    return r;
}

/* An op's record id with references resolved, canonical (18 chars) when it is an id. */
static int synth_sf_record_id(struct synth_ctx *c, const struct crm_op *op, char *out,
                              size_t outlen)
{
    json_t *v = json_string(op->record_id ? op->record_id : ""), *r;
    const char *s;

    if (v == NULL)
        return synth_fail(c, "out of memory");
    r = synth_ref_subst(c, v);
    json_decref(v);
    if (r == NULL)
        return -1;
    s = json_string_value(r);
    if (s == NULL || strlen(s) >= outlen || strlen(s) >= SYNTH_MAX_ID) {
        json_decref(r);
        return synth_fail(c, "record id is not a string of at most %d characters", SYNTH_MAX_ID);
    }
    if (op->id_property != NULL || synth_sf_canon(s, out) < 0)
        snprintf(out, outlen, "%s", s);
    json_decref(r);
    return 0;
}

/* The before-state of op i: the proxy's, or the record an earlier op of this request left. */
static json_t *synth_sf_before(struct synth_ctx *c, size_t i, const char *id, int *created)
{
    json_t *b = c->in->before ? c->in->before[i] : NULL, *rec;

    *created = 0;
    if (b != NULL)
        return b;
    rec = synth_earlier(c, i, id);
    if (rec == NULL || json_is_true(json_object_get(rec, "deleted")))
        return NULL;
    *created = json_is_true(json_object_get(rec, "created"));
    return json_object_get(rec, "fields");
}

static json_t *synth_save_result(const char *id)
{
    return json_pack("{s:s, s:b, s:[]}", "id", id, "success", 1, "errors");
}

/*
 * One Salesforce record write, op i: fills ids[i], records[i], and the
 * answer of the single-record endpoint (*status, *body: NULL for 204).
 * version is the API major version of the request, for upsert's shape.
 */
static int synth_sf_write(struct synth_ctx *c, size_t i, int version, int *status, json_t **body)
{
    const struct crm_op *op = &c->in->ops->v[i];
    char id[SYNTH_MAX_ID + 1];
    const char *object;
    json_t *before = NULL, *fields = NULL;
    int was_created = 0, create;

    *body = NULL;
    if (op->object == NULL)
        return synth_fail(c, "operation %zu has no object", i);
    if (op->verb != CRM_VERB_CREATE) {
        if (synth_sf_record_id(c, op, id, sizeof(id)) < 0)
            return -1;
        before = synth_sf_before(c, i, id, &was_created);
    }
    switch (op->verb) {
    case CRM_VERB_CREATE:
    case CRM_VERB_UPDATE:
    case CRM_VERB_UPSERT:
    case CRM_VERB_DELETE:
        break;
    default:
        return synth_fail(c, "operation %zu is a %s: dry-run answers writes only", i,
                          crm_verb_name(op->verb));
    }
    create = op->verb == CRM_VERB_CREATE || (op->verb == CRM_VERB_UPSERT && before == NULL);
    if (!create && before == NULL) {
        c->was_deleted = c->in->deleted != NULL && c->in->deleted[i];
        return synth_missing(c, "%s %s does not exist: Salesforce would answer 404", op->object,
                             id);
    }
    if (create) {
        if (synth_sf_new_id(c, op->object, id) < 0)
            return -1;
        fields = json_object();
    } else {
        if (op->id_property != NULL) {
            /* named by an external id (an upsert, a delete): the record's own id */
            const char *bid = json_string_value(json_object_get(before, "Id"));
            char canon[19];
            if (bid == NULL || synth_sf_canon(bid, canon) < 0)
                return synth_fail(c, "the before-state of %s %s=%s lacks its Id", op->object,
                                  op->id_property, id);
            snprintf(id, sizeof(id), "%s", canon);
        }
        fields = json_deep_copy(before);
        if (fields != NULL)
            json_object_del(fields, "attributes");
    }
    if (fields == NULL)
        return synth_fail(c, "out of memory");
    object = synth_sf_object(c, op->object, id);
    if (op->verb != CRM_VERB_DELETE) {
        for (size_t k = 0; k < op->nwrites; k++) {
            json_t *v = synth_ref_subst(c, op->writes[k].value), *stored;
            if (v == NULL) {
                json_decref(fields);
                return -1;
            }
            stored = synth_sf_value(c, op->writes[k].name, v,
                                    json_object_get(fields, op->writes[k].name));
            json_decref(v);
            if (stored == NULL) {
                json_decref(fields);
                return synth_fail(c, "out of memory");
            }
            json_object_set_new(fields, op->writes[k].name, stored);
        }
        if (create && op->verb == CRM_VERB_UPSERT && op->id_property != NULL &&
            json_object_get(fields, op->id_property) == NULL)
            json_object_set_new(fields, op->id_property, json_string(op->record_id));
        json_object_set_new(fields, "Id", json_string(id));
        if (create) {
            json_object_set_new(fields, "CreatedDate", json_string(c->now_sf));
            json_object_set_new(fields, "IsDeleted", json_false());
        }
        json_object_set_new(fields, "LastModifiedDate", json_string(c->now_sf));
        json_object_set_new(fields, "SystemModstamp", json_string(c->now_sf));
    }
    if (synth_set_id(c, i, id) < 0) {
        json_decref(fields);
        return -1;
    }
    c->out->records[i] = synth_record(object, id, fields, create || was_created,
                                      op->verb == CRM_VERB_DELETE, c->in->now_ms);
    if (c->out->records[i] == NULL)
        return synth_fail(c, "out of memory");
    if (op->verb == CRM_VERB_UPSERT) {
        if (version < 46) {
            *status = create ? 201 : 204;
            *body = create ? synth_save_result(id) : NULL;
            return create && *body == NULL ? synth_fail(c, "out of memory") : 0;
        }
        *status = create ? 201 : 200;
        *body =
            json_pack("{s:s, s:b, s:[], s:b}", "id", id, "success", 1, "errors", "created", create);
    } else if (op->verb == CRM_VERB_CREATE) {
        *status = 201;
        *body = synth_save_result(id);
    } else {
        *status = 204;
        return 0;
    }
    return *body ? 0 : synth_fail(c, "out of memory");
}

/* "/services/data/vNN.N/rest..." -> the major version and the rest split; 0 / -1. */
static int synth_sf_path(const char *path, struct synth_path *p, int *version, size_t *first)
{
    if (synth_split(path, p) < 0)
        return -1;
    if (p->n < 4 || !synth_is(p, 0, "services") || !synth_is(p, 1, "data") || p->seg[2][0] != 'v' ||
        p->seg[2][1] < '0' || p->seg[2][1] > '9') {
        free(p->buf);
        p->buf = NULL;
        return -1;
    }
    *version = (int)strtol(p->seg[2] + 1, NULL, 10);
    *first = 3;
    return 0;
}

/* The value of a query parameter (first occurrence, percent-decoded) into buf; 1 found / 0. */
static int synth_query_param(const char *query, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    const char *q = query;

    while (q != NULL && *q) {
        const char *amp = strchr(q, '&');
        size_t l = amp ? (size_t)(amp - q) : strlen(q);
        if (l > nl && strncmp(q, name, nl) == 0 && q[nl] == '=') {
            size_t vl = l - nl - 1;
            if (vl >= len)
                vl = len - 1;
            memcpy(buf, q + nl + 1, vl);
            vl = synth_pct(buf, vl);
            buf[vl] = '\0';
            return 1;
        }
        q = amp ? amp + 1 : NULL;
    }
    return 0;
}

/*
 * One Salesforce request or subrequest: method (after _HttpMethod), rest of
 * the path after the version, its query and body; answers the next ops.
 * collections: an array of SaveResults; sobjects: the single answer.
 */
static int synth_sf_one(struct synth_ctx *c, const char *method, const char *path,
                        const char *query, json_t *body, int sub, int *status, json_t **answer,
                        const char **location_object)
{
    struct synth_path p;
    int version, rc = -1;
    size_t f, count = 0;
    char m[16], ov[16];

    *answer = NULL;
    *location_object = NULL;
    if (synth_sf_path(path, &p, &version, &f) < 0)
        return synth_fail(c, "dry-run cannot answer %s: not a /services/data/vNN.N path", path);
    snprintf(m, sizeof(m), "%s", method);
    for (char *s = m; *s; s++)
        *s = (char)(*s >= 'a' && *s <= 'z' ? *s - 32 : *s);
    if (strcmp(m, "POST") == 0 && synth_query_param(query, "_HttpMethod", ov, sizeof(ov)))
        snprintf(m, sizeof(m), "%s", ov);
    if ((strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) && !sub) {
        synth_fail(c, "dry-run answers writes only, not %s %s", m, path);
        goto done;
    }
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
        synth_fail(c,
                   "the request mixes reads and writes: dry-run cannot synthesize the read "
                   "(%s %s)",
                   m, path);
        goto done;
    }
    if (synth_is(&p, f, "sobjects")) {
        if (c->next >= c->in->ops->n) {
            synth_fail(c, "more subrequests than operations");
            goto done;
        }
        rc = synth_sf_write(c, c->next, version, status, answer);
        if (rc == 0 && c->in->ops->v[c->next].verb == CRM_VERB_CREATE)
            *location_object = c->in->ops->v[c->next].object;
        c->next++;
        goto done;
    }
    if (synth_is(&p, f, "composite") && synth_is(&p, f + 1, "sobjects") &&
        (p.n == f + 2 || p.n == f + 4)) {
        if (strcmp(m, "DELETE") == 0) {
            char *ids = malloc(SYNTH_MAX_PATH + 1);
            if (ids == NULL)
                goto done;
            if (synth_query_param(query, "ids", ids, SYNTH_MAX_PATH + 1)) {
                for (char *s = ids; *s;) {
                    size_t l = strcspn(s, ",");
                    count += l > 0;
                    s += l + (s[l] == ',');
                }
            }
            free(ids);
        } else {
            count = json_array_size(json_object_get(body, "records"));
        }
        if (count == 0 || c->next + count > c->in->ops->n) {
            synth_fail(c, "the collection does not match the operations");
            goto done;
        }
        *answer = json_array();
        for (size_t k = 0; k < count; k++) {
            json_t *one = NULL;
            int st;
            size_t i = c->next++;
            if (synth_sf_write(c, i, version < 46 ? 46 : version, &st, &one) < 0)
                goto done;
            if (one == NULL)
                one = synth_save_result(c->out->ids[i]);
            json_array_append_new(*answer, one);
        }
        *status = 200;
        rc = 0;
        goto done;
    }
    synth_fail(c, "dry-run cannot answer this Salesforce %s (%s %s)",
               sub ? "subrequest" : "endpoint", m, path);
done:
    if (rc < 0) {
        json_decref(*answer);
        *answer = NULL;
    }
    free(p.buf);
    p.buf = NULL;
    return rc;
}

static int synth_sf_composite(struct synth_ctx *c, json_t *body, int batch)
{
    json_t *subs = json_object_get(body, batch ? "batchRequests" : "compositeRequest"), *sub;
    json_t *list = json_array();
    size_t k;

    c->refs = json_object();
    if (list == NULL || c->refs == NULL)
        goto fail;
    if (!json_is_array(subs) || json_array_size(subs) == 0)
        goto fail_msg;
    json_array_foreach(subs, k, sub)
    {
        const char *url = json_string_value(json_object_get(sub, "url"));
        const char *method = json_string_value(json_object_get(sub, "method"));
        const char *refid = json_string_value(json_object_get(sub, "referenceId"));
        json_t *sbody = json_object_get(sub, batch ? "richInput" : "body"), *answer = NULL, *entry,
               *headers, *surl;
        const char *lobj, *qm;
        char *path;
        int st = 0;

        if (url == NULL || method == NULL || (!batch && refid == NULL))
            goto fail_msg;
        surl = json_string(url);
        entry = surl ? synth_ref_subst(c, surl) : NULL;
        json_decref(surl);
        if (entry == NULL)
            goto fail;
        url = json_string_value(entry);
        path = malloc(strlen(url) + 17);
        if (path == NULL) {
            json_decref(entry);
            goto fail;
        }
        snprintf(path, strlen(url) + 17, "%s%s", batch && url[0] != '/' ? "/services/data/" : "",
                 url);
        json_decref(entry);
        qm = strchr(path, '?');
        if (synth_sf_one(c, method, path, qm ? qm + 1 : NULL, sbody, 1, &st, &answer, &lobj) < 0) {
            free(path);
            goto fail;
        }
        headers = json_object();
        if (lobj != NULL && !batch) {
            char loc[SYNTH_MAX_PATH];
            struct synth_path p;
            int v;
            size_t f;
            if (synth_sf_path(path, &p, &v, &f) == 0) {
                snprintf(loc, sizeof(loc), "/services/data/%s/sobjects/%s/%s", p.seg[2],
                         synth_sf_object(c, lobj, c->out->ids[c->next - 1]),
                         c->out->ids[c->next - 1]);
                free(p.buf);
                p.buf = NULL;
                json_object_set_new(headers, "Location", json_string(loc));
            }
        }
        free(path);
        path = NULL;
        if (batch) {
            json_decref(headers);
            entry =
                json_pack("{s:i, s:o}", "statusCode", st, "result", answer ? answer : json_null());
        } else {
            if (answer != NULL)
                json_object_set(c->refs, refid, answer);
            entry = json_pack("{s:o, s:o, s:i, s:s}", "body", answer ? answer : json_null(),
                              "httpHeaders", headers, "httpStatusCode", st, "referenceId", refid);
        }
        if (entry == NULL || json_array_append_new(list, entry) < 0)
            goto fail;
    }
    if (c->next != c->in->ops->n)
        goto fail_msg;
    json_decref(c->refs);
    c->refs = NULL;
    if (batch)
        return synth_set_body(c, 200, json_pack("{s:b, s:o}", "hasErrors", 0, "results", list));
    return synth_set_body(c, 200, json_pack("{s:o}", "compositeResponse", list));
fail_msg:
    synth_fail(c, "the subrequests do not match the operations");
fail:
    if (c->errlen > 0 && c->err[0] == '\0')
        synth_fail(c, "out of memory");
    json_decref(list);
    json_decref(c->refs);
    c->refs = NULL;
    return -1;
}

/*
 * A tree child's lookup to its parent, as Salesforce fills it: the child's
 * lookup relationship named after the parent object (Contact.Account ->
 * AccountId). Unknown relationships (custom ones) are left unset.
 */
static int synth_sf_tree_link(struct synth_ctx *c, size_t i, const char *parent,
                              const char *parent_id)
{
    const char *child = c->in->ops->v[i].object, *target = NULL;
    json_t *fields = json_object_get(c->out->records[i], "fields");
    char field[SYNTH_MAX_REF_LEN];

    if (parent == NULL || child == NULL || fields == NULL ||
        sf_schema_resolve(c->in->schema, child, parent, strlen(parent), 0, &target) != 1 ||
        strcasecmp(target, parent) != 0)
        return 0;
    if ((size_t)snprintf(field, sizeof(field), "%sId", parent) >= sizeof(field) ||
        json_object_get(fields, field) != NULL)
        return 0;
    return json_object_set_new(fields, field, json_string(parent_id)) == 0
               ? 0
               : synth_fail(c, "out of memory");
}

/* sObject tree: records depth-first, as the classifier yields them. */
static int synth_sf_tree_rec(struct synth_ctx *c, json_t *rec, json_t *results, int depth,
                             size_t parent)
{
    const char *key,
        *ref =
            json_string_value(json_object_get(json_object_get(rec, "attributes"), "referenceId"));
    json_t *v, *answer = NULL;
    int st;
    size_t i = c->next;

    if (depth > 5 || ref == NULL || i >= c->in->ops->n || c->in->ops->v[i].verb != CRM_VERB_CREATE)
        return synth_fail(c, "the tree records do not match the operations");
    c->next++;
    if (synth_sf_write(c, i, 62, &st, &answer) < 0)
        return -1;
    json_decref(answer);
    if (depth > 1 &&
        synth_sf_tree_link(c, i, c->in->ops->v[parent].object, c->out->ids[parent]) < 0)
        return -1;
    json_array_append_new(results,
                          json_pack("{s:s, s:s}", "referenceId", ref, "id", c->out->ids[i]));
    json_object_foreach(rec, key, v)
    {
        json_t *kids = json_object_get(v, "records"), *kid;
        size_t k;
        if (strcmp(key, "attributes") == 0 || !json_is_object(v) || !json_is_array(kids))
            continue;
        json_array_foreach(kids, k, kid)
        {
            if (synth_sf_tree_rec(c, kid, results, depth + 1, i) < 0)
                return -1;
        }
    }
    return 0;
}

/*
 * If-Unmodified-Since on a Salesforce row update (reference §11): the
 * record's LastModifiedDate (its before-state, with earlier dry-run writes),
 * to the second, after the header's date fails the write (412, flagged in
 * c->precondition). A date crmgate does not read (only "..., dd Mon yyyy
 * hh:mm:ss GMT") or a record without a known LastModifiedDate is refused:
 * crmgate cannot tell. 0 when the write goes on; -1.
 */
static int synth_sf_precondition(struct synth_ctx *c)
{
    const char *h = c->in->if_unmodified_since, *lm, *end;
    const json_t *before = c->in->before != NULL ? c->in->before[0] : NULL;
    long long lm_ms;
    struct tm tm;

    if (h == NULL || before == NULL) /* no record: the CRM's 404 comes first */
        return 0;
    memset(&tm, 0, sizeof(tm));
    end = strptime(h, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *end != '\0')
        return synth_fail(c, "crmgate does not read the If-Unmodified-Since date %.64s", h);
    lm = json_string_value(json_object_get(before, "LastModifiedDate"));
    lm_ms = lm != NULL ? synth_parse_iso(lm) : -1;
    if (lm_ms < 0)
        return synth_fail(c, "the record's LastModifiedDate is not known, so If-Unmodified-Since "
                             "cannot be checked");
    if (lm_ms / 1000 > (long long)timegm(&tm)) {
        c->precondition = 1;
        return synth_fail(c, "the record was modified after If-Unmodified-Since: Salesforce "
                             "would answer 412");
    }
    return 0;
}

static int synth_salesforce(struct synth_ctx *c)
{
    const struct crm_request *req = c->in->req;
    struct synth_path p;
    json_t *body = NULL, *answer = NULL;
    const char *lobj;
    int version, st = 0, rc = -1, single = 0;
    size_t f;

    if (req->body != NULL && req->body_len > 0) {
        body = synth_parse_body(req);
        if (body == NULL)
            return synth_fail(c, "the request body does not parse");
    }
    if (synth_sf_path(req->path, &p, &version, &f) < 0) {
        synth_fail(c, "dry-run cannot answer this Salesforce endpoint (%s)", req->path);
        goto done;
    }
    single = synth_is(&p, f, "sobjects");
    if (synth_is(&p, f, "composite") && p.n == f + 1) {
        rc = synth_sf_composite(c, body, 0);
    } else if (synth_is(&p, f, "composite") && synth_is(&p, f + 1, "batch") && p.n == f + 2) {
        rc = synth_sf_composite(c, body, 1);
    } else if (synth_is(&p, f, "composite") && synth_is(&p, f + 1, "tree") && p.n == f + 3) {
        json_t *results = json_array(), *rec;
        size_t k;
        rc = results ? 0 : -1;
        json_array_foreach(json_object_get(body, "records"), k, rec)
        {
            if (rc == 0)
                rc = synth_sf_tree_rec(c, rec, results, 1, 0);
        }
        if (rc == 0 && c->next != c->in->ops->n)
            rc = synth_fail(c, "the tree records do not match the operations");
        if (rc == 0)
            rc =
                synth_set_body(c, 201, json_pack("{s:b, s:o}", "hasErrors", 0, "results", results));
        else
            json_decref(results);
    } else if (synth_is(&p, f, "composite") && synth_is(&p, f + 1, "graph")) {
        synth_fail(c, "dry-run does not answer composite/graph");
    } else if (single && p.n == f + 3 && c->in->ops->n == 1 &&
               c->in->ops->v[0].verb == CRM_VERB_UPDATE && synth_sf_precondition(c) < 0) {
        rc = -1; /* a row update's If-Unmodified-Since failed, or cannot be checked */
    } else {
        rc = synth_sf_one(c, req->method ? req->method : "", req->path, req->query, body, 0, &st,
                          &answer, &lobj);
        if (rc == 0 && c->next != c->in->ops->n)
            rc = synth_fail(c, "the request does not match its operations");
        if (rc == 0 && lobj != NULL) {
            /* a created row's answer names it, as Salesforce's does */
            char loc[SYNTH_MAX_PATH];
            int n = snprintf(loc, sizeof(loc), "/services/data/%s/sobjects/%s/%s", p.seg[2],
                             synth_sf_object(c, lobj, c->out->ids[0]), c->out->ids[0]);
            if (n > 0 && (size_t)n < sizeof(loc) && (c->out->location = strdup(loc)) == NULL)
                rc = synth_fail(c, "out of memory");
        }
        if (rc == 0) {
            rc = synth_set_body(c, st, answer);
            answer = NULL;
        }
    }
    free(p.buf);
    p.buf = NULL;
done:
    json_decref(answer);
    json_decref(body);
    /* only a single-record write is answered 404; subrequests and collections are refused */
    if (rc < 0 && !single)
        c->not_found = 0;
    return rc;
}

/*
 * The CRM's answer to a write naming a record it does not have: HubSpot's
 * OBJECT_NOT_FOUND (with a correlation id, as every HubSpot error has),
 * Salesforce's NOT_FOUND, or ENTITY_IS_DELETED for a record deleted in
 * dry-run.
 */
static json_t *synth_missing_body(struct synth_ctx *c)
{
    char cid[40];
    uint64_t a, b;

    if (c->in->crm == CRM_SALESFORCE && c->was_deleted) /* in the recycle bin (reference §4) */
        return json_pack("[{s:s, s:s, s:[]}]", "message", "entity is deleted", "errorCode",
                         "ENTITY_IS_DELETED", "fields");
    if (c->in->crm == CRM_SALESFORCE)
        return json_pack("[{s:s, s:s}]", "errorCode", "NOT_FOUND", "message",
                         "The requested resource does not exist");
    a = synth_rand(c);
    b = synth_rand(c);
    snprintf(cid, sizeof(cid), "%08x-%04x-4%03x-8%03x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff, (unsigned)(b >> 48) & 0xfff,
             (unsigned long long)(b & 0xffffffffffffULL));
    if (c->in->correlation_id != NULL) /* the one the answer's header names */
        snprintf(cid, sizeof(cid), "%s", c->in->correlation_id);
    return json_pack("{s:s, s:s, s:s, s:s}", "status", "error", "message",
                     "Object not found.  objectId are usually numeric.", "correlationId", cid,
                     "category", "OBJECT_NOT_FOUND");
}

/*
 * history[name]: this write of name (value as stored, at now) first, then
 * the dry-run writes prev (the record's stored overlay record, or NULL)
 * kept for it, at most SYNTH_MAX_HISTORY in all. 0 / -1 out of memory.
 */
static int synth_hs_history_add(json_t *history, const char *name, const json_t *value,
                                const char *now, const json_t *prev)
{
    json_t *list = json_array(), *e = json_object(), *old;
    size_t k;
    int bad = list == NULL || e == NULL || json_object_set_new(history, name, list) < 0;

    if (bad) {
        json_decref(e);
        return -1;
    }
    bad =
        json_object_set_new_nocheck(
            e, "value", json_is_string(value) ? json_incref((json_t *)value) : json_string("")) < 0;
    bad |= json_object_set_new_nocheck(e, "timestamp", json_string(now)) < 0;
    if (bad || json_array_append_new(list, e) < 0)
        return -1;
    json_array_foreach(json_object_get(json_object_get(prev, "history"), name), k, old)
    {
        if (json_array_size(list) >= SYNTH_MAX_HISTORY)
            break;
        if (json_array_append(list, old) < 0)
            return -1;
    }
    return 0;
}

/*
 * Each overlay record of a write names the fields the write set ("written"),
 * so that two dry-run writes to one record that raced (each read the other's
 * before it was committed) can be combined (synth_overlay_combine).
 */
static int synth_mark_written(struct synth_ctx *c)
{
    for (size_t i = 0; i < c->in->ops->n; i++) {
        const struct crm_op *op = &c->in->ops->v[i];
        json_t *rec = c->out->records[i], *names, *history;
        const json_t *prev = c->in->prev != NULL ? c->in->prev[i] : NULL;
        if (rec == NULL || json_is_true(json_object_get(rec, "deleted")))
            continue;
        names = json_array();
        if (names == NULL || json_object_set_new(rec, "written", names) < 0)
            return -1;
        /* HubSpot: each name's dry-run writes, for the history reads show (synth_hs_history) */
        history = c->in->crm == CRM_HUBSPOT ? json_object() : NULL;
        if (c->in->crm == CRM_HUBSPOT && json_object_set_new(rec, "history", history) < 0)
            return -1;
        for (size_t k = 0; k < op->nwrites; k++) {
            const char *n = op->writes[k].name;
            if (json_array_append_new(names, json_string(n)) < 0)
                return -1;
            if (history != NULL &&
                synth_hs_history_add(history, n, json_object_get(json_object_get(rec, "fields"), n),
                                     c->now_hs, prev) < 0)
                return -1;
        }
        if (op->verb == CRM_VERB_MERGE &&
            json_array_append_new(names, json_string("hs_merged_object_ids")) < 0)
            return -1;
    }
    return 0;
}

/* Whether synth_overlay_combine has anything to add to rec. */
static int synth_overlay_combines(const json_t *old, const json_t *rec)
{
    return json_is_object(json_object_get(old, "fields")) &&
           !json_is_true(json_object_get(old, "deleted")) &&
           json_is_object(json_object_get(rec, "fields")) &&
           !json_is_true(json_object_get(rec, "deleted")) &&
           json_is_array(json_object_get(rec, "written"));
}

int synth_overlay_combine_adds(const json_t *old, const json_t *rec)
{
    const json_t *ofields = json_object_get(old, "fields"), *written, *name, *w;
    size_t k, j;

    if (!synth_overlay_combines(old, rec))
        return 0;
    written = json_object_get(rec, "written");
    json_array_foreach(json_object_get(old, "written"), k, name)
    {
        const char *n = json_string_value(name);
        int mine = 0;
        if (n == NULL || json_object_get(ofields, n) == NULL)
            continue;
        json_array_foreach(written, j, w)
        {
            mine |= json_is_string(w) && strcmp(json_string_value(w), n) == 0;
        }
        if (!mine)
            return 1;
    }
    return json_is_true(json_object_get(old, "created")) &&
           !json_is_true(json_object_get(rec, "created"));
}

int synth_overlay_combine_into(const json_t *old, json_t *rec)
{
    const json_t *ofields = json_object_get(old, "fields");
    json_t *fields, *written, *name, *hist;
    size_t k;

    if (!synth_overlay_combines(old, rec))
        return 0;
    fields = json_object_get(rec, "fields");
    written = json_object_get(rec, "written");
    json_array_foreach(json_object_get(old, "written"), k, name)
    {
        const char *n = json_string_value(name);
        json_t *v = n != NULL ? json_object_get(ofields, n) : NULL, *w;
        size_t j;
        int mine = 0;
        if (v == NULL)
            continue;
        json_array_foreach(written, j, w)
        {
            mine |= json_is_string(w) && strcmp(json_string_value(w), n) == 0;
        }
        if (mine)
            continue;
        if (json_object_set(fields, n, v) < 0 || json_array_append(written, name) < 0)
            return -1;
        /* and old's history of it (HubSpot) */
        hist = json_object_get(json_object_get(old, "history"), n);
        if (hist != NULL && json_is_object(json_object_get(rec, "history")) &&
            json_object_set(json_object_get(rec, "history"), n, hist) < 0)
            return -1;
    }
    if (json_is_true(json_object_get(old, "created")) &&
        json_object_set_new(rec, "created", json_true()) < 0)
        return -1;
    return 0;
}

json_t *synth_overlay_combine(const json_t *old, json_t *rec)
{
    json_t *out;

    if (!synth_overlay_combines(old, rec))
        return json_incref(rec);
    out = json_deep_copy(rec);
    if (out == NULL || synth_overlay_combine_into(old, out) < 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ---------------- entry points ---------------- */

/*
 * An OAuth token revocation (one REVOKE op): HubSpot's DELETE
 * /oauth/v1/refresh-tokens/{token} is answered 204 with no body, as the
 * reference says (hubspot-api.md §2, "DELETE 204"); crmgate does not ask
 * whether HubSpot knows the token. The reference gives no answer for
 * HubSpot's POST /oauth/v3/token/revoke (no body) nor for Salesforce's
 * POST /services/oauth2/revoke (no status), so those are refused.
 */
static int synth_revoke(struct synth_ctx *c)
{
    const struct crm_request *req = c->in->req;

    if (c->in->ops->n != 1)
        return synth_fail(c, "a token revocation is one operation");
    if (c->in->crm == CRM_HUBSPOT && req->method != NULL && strcmp(req->method, "DELETE") == 0)
        return synth_set_body(c, 204, NULL);
    return synth_fail(c,
                      "the %s API reference gives no answer to a token revocation (%s %s) that "
                      "crmgate could return exactly",
                      c->in->crm == CRM_SALESFORCE ? "Salesforce" : "HubSpot",
                      req->method != NULL ? req->method : "?", req->path);
}

int synth_response(const struct synth_request *in, struct synth_response *out, char *err,
                   size_t errlen)
{
    struct synth_ctx c = {.in = in, .out = out, .err = err, .errlen = errlen};
    int rc;

    memset(out, 0, sizeof(*out));
    if (errlen > 0)
        err[0] = '\0';
    if (in == NULL || in->req == NULL || in->ops == NULL || in->ops->n == 0 || in->rand64 == NULL ||
        in->req->path == NULL)
        return synth_errf(err, errlen, "incomplete dry-run request");
    if (in->ops->n > SYNTH_MAX_OPS)
        return synth_errf(err, errlen, "too many operations for a dry-run answer");
    for (size_t i = 0; i < in->ops->n; i++) {
        if (in->ops->v[i].verb == CRM_VERB_UNKNOWN)
            return synth_errf(err, errlen,
                              "the request was not understood, so it has no "
                              "dry-run answer");
    }
    if (synth_alloc(&c) < 0) {
        synth_response_free(out, in->ops->n);
        return synth_errf(err, errlen, "out of memory");
    }
    synth_iso(in->now_ms, 0, c.now_hs, sizeof(c.now_hs));
    synth_iso(in->now_ms, 1, c.now_sf, sizeof(c.now_sf));
    if (in->ops->v[0].verb == CRM_VERB_REVOKE)
        rc = synth_revoke(&c);
    else if (in->crm == CRM_HUBSPOT)
        rc = synth_hubspot(&c);
    else if (in->crm == CRM_SALESFORCE)
        rc = synth_salesforce(&c);
    else
        rc = synth_fail(&c, "no CRM");
    if (rc == 0 && synth_mark_written(&c) < 0)
        rc = synth_fail(&c, "out of memory");
    if (rc < 0 && c.precondition) {
        /* the errorCode of the reference's table (§10); its body is unverified */
        synth_response_free(out, in->ops->n);
        if (synth_alloc(&c) == 0) {
            json_t *body = json_pack(
                "[{s:s, s:s}]", "errorCode", "ENTITY_FAILED_IFLASTMODIFIED_ON_UPDATE_CHECK",
                "message",
                "The requested resource has been modified since the If-Unmodified-Since or "
                "If-Match conditions were specified");
            rc = body != NULL ? synth_set_body(&c, 412, body) : -1;
        }
    } else if (rc < 0 && c.not_found) {
        /* the CRM would answer a write to a record it does not have with its 404 */
        synth_response_free(out, in->ops->n);
        if (synth_alloc(&c) == 0) {
            json_t *body = synth_missing_body(&c);
            rc = body != NULL ? synth_set_body(&c, 404, body) : -1;
        }
    }
    if (rc < 0) {
        synth_response_free(out, in->ops->n);
        if (errlen > 0 && err[0] == '\0')
            snprintf(err, errlen, "out of memory");
    }
    return rc;
}

void synth_response_free(struct synth_response *out, size_t nops)
{
    if (out == NULL)
        return;
    free(out->body);
    out->body = NULL;
    free(out->location);
    out->location = NULL;
    for (size_t i = 0; out->ids != NULL && i < nops; i++) {
        free(out->ids[i]);
        out->ids[i] = NULL;
    }
    for (size_t i = 0; out->records != NULL && i < nops; i++) {
        json_decref(out->records[i]);
        out->records[i] = NULL;
    }
    free(out->ids);
    out->ids = NULL;
    free(out->records);
    out->records = NULL;
    out->status = 0;
    out->body_len = 0;
}

/* ---------------- read-your-writes ---------------- */

static const char *const synth_hs_default_props[][12] = {
    {"contacts", "createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname",
     NULL},
    {"companies", "createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name", NULL},
    {"deals", "amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
     "hs_object_id", "pipeline", NULL},
    {"tickets", "content", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_pipeline",
     "hs_pipeline_stage", "hs_ticket_category", "hs_ticket_priority", "subject", NULL},
};

/* HubSpot-defined properties of every object that are never unique (beside hs_* and the defaults
 * above): a dry-run write of them leaves no alias */
static const char *const synth_hs_plain_props[] = {
    "address",
    "city",
    "closedate",
    "company",
    "country",
    "description",
    "hubspot_owner_id",
    "industry",
    "jobtitle",
    "lifecyclestage",
    "mobilephone",
    "phone",
    "state",
    "website",
    "zip",
};

int synth_unique_key_candidate(enum crm crm, const char *object, const char *name)
{
    size_t n = strlen(name);

    if (crm == CRM_SALESFORCE)
        return n > 3 && strcasecmp(name + n - 3, "__c") == 0;
    if (strcmp(name, "email") == 0)
        return strcmp(object, "contacts") == 0;
    if (strncmp(name, "hs_", 3) == 0)
        return 0;
    for (size_t t = 0; t < sizeof(synth_hs_default_props) / sizeof(synth_hs_default_props[0]);
         t++) {
        for (size_t k = 1; synth_hs_default_props[t][k] != NULL; k++) {
            if (strcmp(synth_hs_default_props[t][k], name) == 0)
                return 0;
        }
    }
    for (size_t k = 0; k < sizeof(synth_hs_plain_props) / sizeof(synth_hs_plain_props[0]); k++) {
        if (strcmp(synth_hs_plain_props[k], name) == 0)
            return 0;
    }
    return 1;
}

/* Whether the overlay record rec's dry-run writes set name. */
static int synth_hs_written(const json_t *rec, const char *name)
{
    const json_t *w;
    size_t k;

    json_array_foreach(json_object_get(rec, "written"), k, w)
    {
        if (json_is_string(w) && strcmp(json_string_value(w), name) == 0)
            return 1;
    }
    return 0;
}

/*
 * The propertiesWithHistory entries of rec's dry-run writes of name (a new
 * array, newest first), as HubSpot lists API writes: value, timestamp,
 * sourceType API. Which app wrote them (sourceId) crmgate does not know:
 * left out, as the schema allows. A record stored without a history gives
 * its written value at its last-modified time. NULL when rec did not write
 * name (or out of memory).
 */
static json_t *synth_hs_history_entries(const json_t *rec, const char *name, const char *lastmod)
{
    json_t *fields = json_object_get(rec, "fields"), *list = NULL, *out, *h;
    json_t *kept = json_object_get(json_object_get(rec, "history"), name);
    size_t k;

    if (!synth_hs_written(rec, name))
        return NULL;
    if (!json_is_array(kept)) {
        /* one entry from what the record holds */
        if (!json_is_string(json_object_get(fields, name)) ||
            !json_is_string(json_object_get(fields, lastmod)))
            return NULL;
        list = json_pack("[{s:O, s:O}]", "value", json_object_get(fields, name), "timestamp",
                         json_object_get(fields, lastmod));
        kept = list;
    }
    out = json_array();
    json_array_foreach(kept, k, h)
    {
        json_t *e = json_object();
        int bad = out == NULL || e == NULL;
        if (!bad) {
            bad = json_object_set_nocheck(e, "value", json_object_get(h, "value")) < 0;
            bad |= json_object_set_nocheck(e, "timestamp", json_object_get(h, "timestamp")) < 0;
            bad |= json_object_set_new_nocheck(e, "sourceType", json_string("API")) < 0;
            bad |= json_object_set_new_nocheck(e, "sourceLabel", json_null()) < 0;
        }
        if (bad || json_array_append_new(out, e) < 0) {
            if (!bad)
                e = NULL;
            json_decref(e);
            json_decref(out);
            out = NULL;
            break;
        }
    }
    json_decref(list);
    return out;
}

/*
 * Lay rec's dry-run writes over an answer's propertiesWithHistory (pwh,
 * {name: [entries, newest first]}): each name rec wrote gets its dry-run
 * writes first. 0, or -1 out of memory.
 */
static int synth_hs_history(json_t *pwh, const json_t *rec, const char *object)
{
    const char *key;
    json_t *arr;

    json_object_foreach(pwh, key, arr)
    {
        json_t *e = json_is_array(arr)
                        ? synth_hs_history_entries(rec, key, synth_hs_lastmod(object))
                        : NULL;
        /* in place, newest first: the last dry-run entry goes in first */
        for (size_t j = json_array_size(e); j-- > 0;) {
            if (json_array_insert(arr, 0, json_array_get(e, j)) < 0) {
                json_decref(e);
                return -1;
            }
        }
        json_decref(e);
    }
    return 0;
}

/*
 * The names a HubSpot read asks for in its parameter name ("properties",
 * "propertiesWithHistory"): the query's, repeated or comma-separated, or a
 * batch read body's; as a new array, NULL when none.
 */
static json_t *synth_hs_names(const struct crm_request *req, const char *name)
{
    const size_t nl = strlen(name);
    json_t *out = json_array(), *body, *v;
    const char *q = req != NULL ? req->query : NULL;
    size_t k;

    if (out == NULL || req == NULL)
        goto none;
    if (req->method != NULL && strcmp(req->method, "POST") == 0) {
        body = synth_parse_body(req);
        json_array_foreach(json_object_get(body, name), k, v)
        {
            if (json_is_string(v))
                json_array_append(out, v);
        }
        json_decref(body);
    }
    while (q != NULL && *q) {
        const char *amp = strchr(q, '&');
        size_t l = amp ? (size_t)(amp - q) : strlen(q);
        if (l > nl + 1 && l - nl - 1 < SYNTH_MAX_PATH && strncmp(q, name, nl) == 0 &&
            q[nl] == '=') {
            char buf[SYNTH_MAX_PATH];
            size_t vl = synth_pct(memcpy(buf, q + nl + 1, l - nl - 1), l - nl - 1);
            for (size_t i = 0; i < vl;) {
                size_t j = i;
                while (j < vl && buf[j] != ',')
                    j++;
                if (j > i)
                    json_array_append_new(out, json_stringn(buf + i, j - i));
                i = j + 1;
            }
        }
        q = amp ? amp + 1 : NULL;
    }
    if (json_array_size(out) > 0)
        return out;
none:
    json_decref(out);
    return NULL;
}

/* Whether the array names lists name. */
static int synth_listed(const json_t *names, const char *name)
{
    const json_t *v;
    size_t k;

    json_array_foreach(names, k, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
            return 1;
    }
    return 0;
}

/*
 * The SimplePublicObject the read req (op) would return from the overlay
 * record rec: the properties asked for, and propertiesWithHistory for the
 * names asked for in it (which are not properties unless asked for as such).
 */
static json_t *synth_hs_read_obj(const struct crm_op *op, const json_t *rec,
                                 const struct crm_request *req)
{
    json_t *hist = synth_hs_names(req, "propertiesWithHistory");
    json_t *asked = hist != NULL ? synth_hs_names(req, "properties") : NULL;
    json_t *fields = json_object_get(rec, "fields"), *names = json_object(), *props, *obj;
    const char *object = op->object, *created = synth_hs_created(object),
               *lastmod = synth_hs_lastmod(object), *ca, *ua;

    if (names == NULL)
        goto nomem;
    json_object_set_new(names, "hs_object_id", json_true());
    json_object_set_new(names, created, json_true());
    json_object_set_new(names, lastmod, json_true());
    for (size_t i = 0; i < op->nreads; i++) {
        if (strncmp(op->reads[i], "associations.", 13) != 0 &&
            (!synth_listed(hist, op->reads[i]) || synth_listed(asked, op->reads[i])))
            json_object_set_new(names, op->reads[i], json_true());
    }
    if (op->reads_default) {
        for (size_t t = 0; t < sizeof(synth_hs_default_props) / sizeof(synth_hs_default_props[0]);
             t++) {
            if (strcmp(synth_hs_default_props[t][0], object) != 0)
                continue;
            for (size_t k = 1; synth_hs_default_props[t][k]; k++)
                json_object_set_new(names, synth_hs_default_props[t][k], json_true());
        }
    }
    props = synth_sorted_props(fields, names);
    json_decref(names);
    ca = json_string_value(json_object_get(fields, created));
    ua = json_string_value(json_object_get(fields, lastmod));
    obj = json_pack("{s:s, s:o, s:s, s:s, s:b}", "id",
                    json_string_value(json_object_get(rec, "id")), "properties", props, "createdAt",
                    ca ? ca : "", "updatedAt", ua ? ua : "", "archived", 0);
    if (obj != NULL && json_array_size(hist) > 0) {
        /* a record created in dry-run: its history is its dry-run writes */
        json_t *pwh = json_object(), *name;
        size_t k;
        if (json_object_set_new(obj, "propertiesWithHistory", pwh) < 0)
            goto fail;
        json_array_foreach(hist, k, name)
        {
            const char *n = json_string_value(name);
            json_t *e = n != NULL ? synth_hs_history_entries(rec, n, lastmod) : NULL;
            if (n != NULL && json_object_set_new(pwh, n, e != NULL ? e : json_array()) < 0)
                goto fail;
        }
    }
    json_decref(hist);
    json_decref(asked);
    return obj;
fail:
    json_decref(obj);
nomem:
    json_decref(hist);
    json_decref(asked);
    return NULL;
}

/* Whether the HubSpot read req asks for archived records only (archived=true). */
static int synth_hs_archived(const struct crm_request *req)
{
    char v[8];

    return req != NULL && synth_query_param(req->query, "archived", v, sizeof(v)) &&
           strcasecmp(v, "true") == 0;
}

/*
 * What an archived=true read of rec's record answers: the record archived
 * in dry-run (in HubSpot's recycle bin: archived, archivedAt and updatedAt
 * the archive's time, properties as they were); NULL when rec's record is
 * not archived (live, created in dry-run, or deleted for good by GDPR), so
 * the CRM's answer stands.
 */
static json_t *synth_hs_archived_obj(const struct crm_op *op, const json_t *rec,
                                     const struct crm_request *req)
{
    char at[64];
    json_t *obj;

    if (!json_is_true(json_object_get(rec, "deleted")) ||
        json_is_true(json_object_get(rec, "purged")) || json_is_true(json_object_get(rec, "moved")))
        return NULL;
    obj = synth_hs_read_obj(op, rec, req);
    synth_iso((long long)json_integer_value(json_object_get(rec, "ts")), 0, at, sizeof(at));
    if (obj == NULL || json_object_set_new(obj, "archived", json_true()) < 0 ||
        json_object_set_new(obj, "archivedAt", json_string(at)) < 0 ||
        json_object_set_new(obj, "updatedAt", json_string(at)) < 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* The row a GET with op's fields would return; version like "v62.0". */
static json_t *synth_sf_read_obj(const struct crm_op *op, const json_t *rec, const char *version,
                                 int add_id)
{
    json_t *fields = json_object_get(rec, "fields"), *out;
    const char *object = json_string_value(json_object_get(rec, "object"));
    const char *id = json_string_value(json_object_get(rec, "id"));
    char url[SYNTH_MAX_PATH];

    if (object == NULL || id == NULL)
        return NULL;
    snprintf(url, sizeof(url), "/services/data/%s/sobjects/%s/%s", version, object, id);
    out = json_pack("{s:{s:s, s:s}}", "attributes", "type", object, "url", url);
    if (out == NULL)
        return NULL;
    if (op->nreads == 0) {
        const char *key;
        json_t *v;
        json_object_foreach(fields, key, v)
        {
            json_object_set(out, key, v);
        }
        return out;
    }
    for (size_t i = 0; i < op->nreads; i++) {
        json_t *v = json_object_get(fields, op->reads[i]);
        json_object_set(out, op->reads[i], v ? v : json_null());
    }
    if (add_id && json_object_get(out, "Id") == NULL)
        json_object_set_new(out, "Id", json_string(id));
    return out;
}

/* "v62.0" from a Salesforce path, or "v62.0" when it names none. */
static void synth_sf_version(const struct crm_request *req, char *buf, size_t len)
{
    struct synth_path p;
    int v;
    size_t f;

    snprintf(buf, len, "v62.0");
    if (req != NULL && synth_sf_path(req->path, &p, &v, &f) == 0) {
        snprintf(buf, len, "%s", p.seg[2]);
        free(p.buf);
        p.buf = NULL;
    }
}

/*
 * The CRM's 404 for the record of rec read after its dry-run delete (or,
 * "moved", read by an id-property value a dry-run write replaced:
 * Salesforce finds no such record rather than a deleted one).
 */
static json_t *synth_not_found(enum crm crm, const json_t *rec)
{
    if (crm == CRM_SALESFORCE && json_is_true(json_object_get(rec, "moved")))
        return json_pack("[{s:s, s:s}]", "errorCode", "NOT_FOUND", "message",
                         "The requested resource does not exist");
    if (crm == CRM_SALESFORCE)
        return json_pack("[{s:s, s:s, s:[]}]", "errorCode", "ENTITY_IS_DELETED", "message",
                         "entity is deleted", "fields");
    return json_pack("{s:s, s:s, s:s}", "status", "error", "message",
                     "Object not found.  objectId are usually numeric.", "category",
                     "OBJECT_NOT_FOUND");
}

int synth_is_single_read(enum crm crm, const struct crm_request *req)
{
    struct synth_path p;
    int version, single = 0;
    size_t f;

    if (req == NULL || req->method == NULL ||
        (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0))
        return 0;
    if (crm == CRM_HUBSPOT) {
        if (synth_split(req->path, &p) < 0)
            return 0;
        single = p.n == 5 && synth_is(&p, 0, "crm") &&
                 ((synth_is(&p, 1, "v3") && synth_is(&p, 2, "objects")) ||
                  (synth_is(&p, 1, "objects") && synth_is_date(p.seg[2])));
    } else if (crm == CRM_SALESFORCE) {
        if (synth_sf_path(req->path, &p, &version, &f) < 0)
            return 0;
        /* /sobjects/S/{id}/{relationship} is a traversal, not the row */
        single =
            synth_is(&p, f, "sobjects") &&
            (p.n == f + 3 || (p.n == f + 4 && !sf_id_valid(p.seg[f + 2], strlen(p.seg[f + 2]))));
    }
    free(p.buf);
    p.buf = NULL;
    return single;
}

int synth_read_answer(enum crm crm, const struct crm_request *req, const struct crm_op *op,
                      const json_t *rec, long long now_ms, int *status, char **body,
                      size_t *body_len, char *err, size_t errlen)
{
    json_t *obj;
    char version[32];

    (void)now_ms;
    *body = NULL;
    *body_len = 0;
    if (op == NULL || rec == NULL || op->verb != CRM_VERB_READ || op->object == NULL)
        return synth_errf(err, errlen, "not a single-record read with an overlay record");
    if (crm == CRM_HUBSPOT && synth_hs_archived(req)) {
        /* only a record archived in dry-run is in the recycle bin (a created one never is) */
        obj = synth_hs_archived_obj(op, rec, req);
        *status = obj != NULL ? 200 : 404;
        if (obj == NULL)
            obj = synth_not_found(crm, rec);
    } else if (json_is_true(json_object_get(rec, "deleted"))) {
        *status = 404;
        obj = synth_not_found(crm, rec);
    } else if (crm == CRM_HUBSPOT) {
        *status = 200;
        obj = synth_hs_read_obj(op, rec, req);
    } else if (crm == CRM_SALESFORCE) {
        synth_sf_version(req, version, sizeof(version));
        *status = 200;
        obj = synth_sf_read_obj(op, rec, version, 1);
    } else {
        return synth_errf(err, errlen, "no CRM");
    }
    if (obj == NULL)
        return synth_errf(err, errlen, "the overlay record is incomplete");
    *body = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (*body == NULL)
        return synth_errf(err, errlen, "out of memory");
    *body_len = strlen(*body);
    return 0;
}

char *synth_sf_describe_path(const struct crm_request *req, const struct crm_op *op)
{
    char version[32], path[SYNTH_MAX_PATH];
    int n;

    if (op == NULL || op->verb != CRM_VERB_READ || op->object == NULL || op->nreads > 0 ||
        !synth_is_single_read(CRM_SALESFORCE, req) || strcmp(req->method, "GET") != 0)
        return NULL;
    synth_sf_version(req, version, sizeof(version));
    n = snprintf(path, sizeof(path), "/services/data/%s/sobjects/%s/describe", version, op->object);
    return n > 0 && (size_t)n < sizeof(path) ? strdup(path) : NULL;
}

json_t *synth_sf_describe_row(const struct crm_request *req, const json_t *describe,
                              const json_t *rec)
{
    const json_t *fields = json_object_get(rec, "fields"), *f;
    const char *object = json_string_value(json_object_get(rec, "object"));
    const char *id = json_string_value(json_object_get(rec, "id"));
    char version[32], url[SYNTH_MAX_PATH];
    json_t *out;
    size_t k;

    if (object == NULL || id == NULL || json_array_size(json_object_get(describe, "fields")) == 0)
        return NULL;
    synth_sf_version(req, version, sizeof(version));
    snprintf(url, sizeof(url), "/services/data/%s/sobjects/%s/%s", version, object, id);
    out = json_pack("{s:{s:s, s:s}}", "attributes", "type", object, "url", url);
    json_array_foreach(json_object_get(describe, "fields"), k, f)
    {
        const char *name = json_string_value(json_object_get(f, "name"));
        const char *type = json_string_value(json_object_get(f, "type"));
        json_t *v = name != NULL ? json_object_get(fields, name) : NULL;
        if (out == NULL || name == NULL)
            continue;
        if (json_object_set_new(out, name,
                                v != NULL                                      ? json_incref(v)
                                : type != NULL && strcmp(type, "boolean") == 0 ? json_false()
                                                                               : json_null()) < 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

/* Overwrite the fields of dst (an object) that rec's fields also have. */
static int synth_merge_fields(json_t *dst, const json_t *rec)
{
    json_t *fields = json_object_get(rec, "fields"), *v;
    const char *key;
    int changed = 0;

    json_object_foreach(dst, key, v)
    {
        json_t *nv = json_object_get(fields, key);
        if (nv != NULL && !json_equal(nv, v)) {
            json_object_set(dst, key, nv);
            changed = 1;
        }
    }
    return changed;
}

/* Remove id from every errors[].context.ids of a HubSpot batch answer; drop empty errors. */
static void synth_hs_drop_error_id(json_t *answer, const char *id)
{
    json_t *errors = json_object_get(answer, "errors");
    size_t k = json_array_size(errors);

    while (k-- > 0) {
        json_t *ids = json_object_get(json_object_get(json_array_get(errors, k), "context"), "ids");
        size_t j = json_array_size(ids);
        while (j-- > 0) {
            if (json_is_string(json_array_get(ids, j)) &&
                strcmp(json_string_value(json_array_get(ids, j)), id) == 0)
                json_array_remove(ids, j);
        }
        if (ids != NULL && json_array_size(ids) == 0)
            json_array_remove(errors, k);
    }
}

static void synth_hs_fix_errors(json_t *answer, int *status)
{
    json_t *errors = json_object_get(answer, "errors");

    if (errors == NULL)
        return;
    if (json_array_size(errors) == 0) {
        json_object_del(answer, "errors");
        json_object_del(answer, "numErrors");
        *status = 200;
    } else {
        json_object_set_new(answer, "numErrors", json_integer((json_int_t)json_array_size(errors)));
        *status = 207;
    }
}

static int synth_hs_merge(const struct crm_request *req, const struct crm_ops *ops,
                          json_t *const *recs, json_t **answer, int *status, int single, char *err,
                          size_t errlen)
{
    int changed = 0, archived = synth_hs_archived(req);
    json_t *results = json_object_get(*answer, "results");

    if (single) {
        const json_t *rec = ops->n == 1 ? recs[0] : NULL;
        json_t *obj;
        /* the CRM's refusals (a bad property, an expired token) stand */
        if (rec == NULL || (*status != 404 && (*status < 200 || *status > 299)))
            return 0;
        if (archived) {
            /* the recycle bin: what dry-run archived joins it; the rest is the CRM's */
            obj = synth_hs_archived_obj(&ops->v[0], rec, req);
            if (obj == NULL)
                return 0;
            *status = 200;
        } else if (json_is_true(json_object_get(rec, "deleted"))) {
            obj = synth_not_found(CRM_HUBSPOT, rec);
            *status = 404;
        } else if (*status == 404 || json_object_get(*answer, "properties") == NULL) {
            obj = synth_hs_read_obj(&ops->v[0], rec, req);
            *status = 200;
        } else {
            const char *lm = synth_hs_lastmod(ops->v[0].object);
            json_t *ua = json_object_get(json_object_get(rec, "fields"), lm);
            synth_merge_fields(json_object_get(*answer, "properties"), rec);
            if (json_is_string(ua))
                json_object_set(*answer, "updatedAt", ua);
            if (synth_hs_history(json_object_get(*answer, "propertiesWithHistory"), rec,
                                 ops->v[0].object) < 0)
                return synth_errf(err, errlen, "out of memory");
            return 1;
        }
        if (obj == NULL)
            return synth_errf(err, errlen, "out of memory");
        json_decref(*answer);
        *answer = obj;
        return 1;
    }
    if (!json_is_array(results))
        return 0; /* an error answer to the whole batch stands */
    for (size_t i = 0; i < ops->n; i++) {
        const json_t *rec = recs[i];
        const char *id = json_string_value(json_object_get(rec, "id"));
        size_t k, found = (size_t)-1;
        json_t *r;
        if (rec == NULL || id == NULL)
            continue;
        if (archived) {
            /* the recycle bin: a record archived in dry-run joins the CRM's archived ones */
            json_t *obj = synth_hs_archived_obj(&ops->v[i], rec, req);
            if (obj == NULL || json_array_append_new(results, obj) < 0)
                continue;
            synth_hs_drop_error_id(*answer, ops->v[i].record_id);
            synth_hs_drop_error_id(*answer, id);
            changed++;
            continue;
        }
        json_array_foreach(results, k, r)
        {
            const char *rid = json_string_value(json_object_get(r, "id"));
            if (rid != NULL && strcmp(rid, id) == 0)
                found = k;
        }
        if (json_is_true(json_object_get(rec, "deleted"))) {
            json_t *errors;
            if (found == (size_t)-1)
                continue;
            json_array_remove(results, found);
            errors = json_object_get(*answer, "errors");
            if (errors == NULL) {
                errors = json_array();
                json_object_set_new(*answer, "errors", errors);
            }
            json_array_append_new(
                errors,
                synth_hs_missing_error(ops->v[i].object, json_pack("[s]", ops->v[i].record_id)));
        } else if (found != (size_t)-1) {
            json_t *res = json_array_get(results, found);
            json_t *ua =
                json_object_get(json_object_get(rec, "fields"), synth_hs_lastmod(ops->v[i].object));
            synth_merge_fields(json_object_get(res, "properties"), rec);
            if (json_is_string(ua))
                json_object_set(res, "updatedAt", ua);
            if (synth_hs_history(json_object_get(res, "propertiesWithHistory"), rec,
                                 ops->v[i].object) < 0)
                return synth_errf(err, errlen, "out of memory");
        } else {
            json_t *obj = synth_hs_read_obj(&ops->v[i], rec, req);
            if (obj == NULL)
                return synth_errf(err, errlen, "out of memory");
            json_array_append_new(results, obj);
            synth_hs_drop_error_id(*answer, ops->v[i].record_id);
            synth_hs_drop_error_id(*answer, id);
        }
        changed++;
    }
    synth_hs_fix_errors(*answer, status);
    return changed;
}

static int synth_sf_merge(const struct crm_request *req, const struct crm_ops *ops,
                          json_t *const *recs, json_t **answer, int *status, int single, char *err,
                          size_t errlen)
{
    char version[32];
    int changed = 0;

    synth_sf_version(req, version, sizeof(version));
    if (!single && (!json_is_array(*answer) || *status != 200))
        return 0; /* an error answer to the whole retrieve stands */
    if (single) {
        /* single GET (a 404 is an array of errors); the CRM's other refusals stand */
        json_t *obj = NULL;
        if (ops->n != 1 || recs[0] == NULL || (*status != 404 && (*status < 200 || *status > 299)))
            return 0;
        if (json_is_true(json_object_get(recs[0], "deleted"))) {
            obj = synth_not_found(CRM_SALESFORCE, recs[0]);
            *status = 404;
        } else if (*status == 404 || !json_is_object(*answer)) {
            obj = synth_sf_read_obj(&ops->v[0], recs[0], version, 1);
            *status = 200;
        } else {
            synth_merge_fields(*answer, recs[0]);
            return 1;
        }
        if (obj == NULL)
            return synth_errf(err, errlen, "out of memory");
        json_decref(*answer);
        *answer = obj;
        return 1;
    }
    if (json_array_size(*answer) != ops->n)
        return synth_errf(err, errlen, "the retrieve answer does not match the operations");
    for (size_t i = 0; i < ops->n; i++) {
        json_t *entry = json_array_get(*answer, i);
        if (recs[i] == NULL)
            continue;
        if (json_is_true(json_object_get(recs[i], "deleted"))) {
            json_array_set_new(*answer, i, json_null());
        } else if (json_is_null(entry)) {
            /* collections retrieve returns the requested fields only, no added Id */
            json_t *obj = synth_sf_read_obj(&ops->v[i], recs[i], version, 0);
            if (obj == NULL)
                return synth_errf(err, errlen, "out of memory");
            json_array_set_new(*answer, i, obj);
        } else {
            synth_merge_fields(entry, recs[i]);
        }
        changed++;
    }
    return changed;
}

int synth_overlay_merge(enum crm crm, const struct crm_request *req, const struct crm_ops *ops,
                        json_t *const *recs, json_t **answer, int *status, char *err, size_t errlen)
{
    if (ops == NULL || recs == NULL || answer == NULL || *answer == NULL || status == NULL)
        return synth_errf(err, errlen, "incomplete overlay merge");
    for (size_t i = 0; i < ops->n; i++) {
        if (ops->v[i].verb != CRM_VERB_READ)
            return synth_errf(err, errlen, "the overlay merges into record reads only");
    }
    if (crm == CRM_HUBSPOT)
        return synth_hs_merge(req, ops, recs, answer, status, synth_is_single_read(crm, req), err,
                              errlen);
    if (crm == CRM_SALESFORCE)
        return synth_sf_merge(req, ops, recs, answer, status, synth_is_single_read(crm, req), err,
                              errlen);
    return synth_errf(err, errlen, "no CRM");
}
