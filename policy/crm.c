/*
 * crm.c - CRM names and CRM-shaped error bodies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "crm.h"

const char *crm_name(enum crm crm)
{
    switch (crm) {
    case CRM_HUBSPOT:
        return "hubspot";
    case CRM_SALESFORCE:
        return "salesforce";
    case CRM_NONE:
        break;
    }
    return "none";
}

const char *crm_status_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 207:
        return "Multi-Status";
    case 300:
        return "Multiple Choices";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 421:
        return "Misdirected Request";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    case 508:
        return "Loop Detected";
    default:
        break;
    }
    return "Unknown";
}

/*
 * The category (HubSpot) or errorCode (Salesforce) for a status crmgate
 * emits. Where the CRM has an established name it is used, so agents that
 * switch on it behave; otherwise the HTTP meaning in upper snake case.
 */
static const char *crm_error_category(enum crm crm, int status)
{
    switch (status) {
    case 400:
        return crm == CRM_SALESFORCE ? "JSON_PARSER_ERROR" : "VALIDATION_ERROR";
    case 403:
        return crm == CRM_SALESFORCE ? "INSUFFICIENT_ACCESS" : "MISSING_SCOPES";
    case 404:
        return crm == CRM_SALESFORCE ? "NOT_FOUND" : "OBJECT_NOT_FOUND";
    case 408:
        return "REQUEST_TIMEOUT";
    case 413:
        return "REQUEST_TOO_LARGE";
    case 431:
        return "REQUEST_HEADER_FIELDS_TOO_LARGE";
    case 501:
        return "NOT_IMPLEMENTED";
    case 502:
        return "BAD_GATEWAY";
    case 503:
        return "SERVER_UNAVAILABLE";
    case 504:
        return "GATEWAY_TIMEOUT";
    case 505:
        return "HTTP_VERSION_NOT_SUPPORTED";
    case 508:
        return "LOOP_DETECTED";
    default:
        break;
    }
    return status >= 500 ? "INTERNAL_ERROR" : "BAD_REQUEST";
}

char *crm_error_body(enum crm crm, int status, const char *code, const char *message,
                     const char *correlation_id)
{
    const char *category = crm_error_category(crm, status);
    json_t *body;
    char sub[128];
    char *out;

    if (crm == CRM_SALESFORCE) {
        body = json_pack("[{s:s, s:s, s:[], s:s}]", "message", message, "errorCode", category,
                         "fields", "crmgateError", code);
    } else {
        snprintf(sub, sizeof(sub), "crmgate.%s", code);
        body = json_pack("{s:s, s:s, s:s?, s:s, s:s}", "status", "error", "message", message,
                         "correlationId", correlation_id, "category", category, "subCategory", sub);
    }
    if (body == NULL)
        return NULL;
    out = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return out;
}

char *crm_denial_body(enum crm crm, const char *code, const char *message, const char *fields,
                      const char *correlation_id)
{
    json_t *body, *list;
    char *out;

    if (crm != CRM_SALESFORCE)
        return crm_error_body(crm, 403, code, message, correlation_id);
    list = json_array();
    while (list != NULL && fields != NULL && *fields != '\0') {
        size_t n = strcspn(fields, ",");
        const char *start = fields;
        fields += n;
        while (*fields == ',' || *fields == ' ')
            fields++;
        while (n > 0 && *start == ' ') {
            start++;
            n--;
        }
        if (n > 0 && json_array_append_new(list, json_stringn(start, n)) < 0)
            break;
    }
    body = json_pack("[{s:s, s:s, s:o, s:s}]", "message", message, "errorCode",
                     "INSUFFICIENT_ACCESS_OR_READONLY", "fields", list, "crmgateError", code);
    if (body == NULL)
        return NULL;
    out = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return out;
}

char *crm_oauth_error_body(int status, const char *message)
{
    /* RFC 6749 5.2 and 4.1.2.1 error codes */
    const char *error = status == 400   ? "invalid_request"
                        : status >= 500 ? "temporarily_unavailable"
                                        : "access_denied";
    json_t *body = json_pack("{s:s, s:s}", "error", error, "error_description", message);
    char *out;

    if (body == NULL)
        return NULL;
    out = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return out;
}

/*
 * Form-decode s[0..len) into dst (room for len bytes): %XX and '+'. -1 on a
 * bad escape, a NUL or a control byte; else the decoded length.
 */
static long crm_form_decode(const char *s, size_t len, char *dst)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        int ch = (unsigned char)s[i], hi, lo;
        if (ch == '%') {
            if (i + 2 >= len || (hi = crm_hex(s[i + 1])) < 0 || (lo = crm_hex(s[i + 2])) < 0)
                return -1;
            ch = hi * 16 + lo;
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (ch < 0x20 || ch == 0x7f)
            return -1;
        dst[o++] = (char)ch;
    }
    return (long)o;
}

/* Whether content_type names application/x-www-form-urlencoded (parameters allowed). */
static int crm_is_form(const char *content_type)
{
    static const char want[] = "application/x-www-form-urlencoded";
    const char *rest;

    if (content_type == NULL)
        return 0;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    if (strncasecmp(content_type, want, sizeof(want) - 1) != 0)
        return 0;
    rest = content_type + sizeof(want) - 1;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == '\0' || *rest == ';';
}

enum crm_form crm_form_value(const char *content_type, const char *body, size_t len,
                             const char *name, char **out, size_t *outlen, size_t *count)
{
    size_t nlen = strlen(name), p = 0;
    char *buf;
    enum crm_form rc = CRM_FORM_OK;

    *out = NULL;
    *outlen = 0;
    *count = 0;
    if (body == NULL || len == 0)
        return CRM_FORM_OK;
    if (!crm_is_form(content_type))
        return CRM_FORM_BAD;
    buf = malloc(len + 1);
    if (buf == NULL)
        return CRM_FORM_NOMEM;
    while (p < len && rc == CRM_FORM_OK) {
        const char *s = body + p, *amp = memchr(s, '&', len - p), *eq;
        size_t sl = amp != NULL ? (size_t)(amp - s) : len - p;
        long kl, vl;
        int match;
        p += sl + 1;
        if (sl == 0)
            continue;
        eq = memchr(s, '=', sl);
        kl = crm_form_decode(s, eq != NULL ? (size_t)(eq - s) : sl, buf);
        if (kl < 0) {
            rc = CRM_FORM_BAD;
            break;
        }
        match = (size_t)kl == nlen && memcmp(buf, name, nlen) == 0;
        /* every value is checked: a body crmgate cannot read whole is not read in part */
        vl = eq != NULL ? crm_form_decode(eq + 1, sl - (size_t)(eq - s) - 1, buf) : 0;
        if (vl < 0 || !crm_utf8_valid((const unsigned char *)buf, (size_t)vl)) {
            rc = CRM_FORM_BAD;
        } else if (match && (*count)++ == 0) {
            *out = malloc((size_t)vl + 1);
            if (*out == NULL) {
                rc = CRM_FORM_NOMEM;
                break;
            }
            memcpy(*out, buf, (size_t)vl);
            (*out)[vl] = '\0';
            *outlen = (size_t)vl;
        }
    }
    /* the buffer held the values, which may be secrets */
    explicit_bzero(buf, len + 1);
    free(buf);
    if (rc != CRM_FORM_OK && *out != NULL) {
        explicit_bzero(*out, *outlen);
        free(*out);
        *out = NULL;
        *outlen = 0;
    }
    return rc;
}

int crm_revoke_op(struct crm_ops *ops, enum crm crm, const struct crm_request *req,
                  const char *kind, const char *tok, size_t toklen, char *why, size_t whylen)
{
    struct crm_op *op;
    char *secret = NULL;
    size_t slen = 0, count = 1;

    if (req->query != NULL && req->query[0] != '\0') {
        snprintf(why, whylen,
                 "a token revocation takes no query string (the token goes in the form body, "
                 "so crmgate knows which token it revokes)");
        return 1;
    }
    if (tok == NULL) {
        switch (crm_form_value(req->content_type, req->body, req->body_len, "token", &secret, &slen,
                               &count)) {
        case CRM_FORM_NOMEM:
            return -1;
        case CRM_FORM_BAD:
            snprintf(why, whylen,
                     "a token revocation names its token in a form body "
                     "(application/x-www-form-urlencoded: token=...)");
            return 1;
        default:
            break;
        }
        if (count != 1) {
            if (secret != NULL)
                explicit_bzero(secret, slen);
            free(secret);
            snprintf(why, whylen, "a token revocation must name exactly one token (token=...)");
            return 1;
        }
    } else {
        secret = malloc(toklen + 1);
        if (secret == NULL)
            return -1;
        memcpy(secret, tok, toklen);
        secret[toklen] = '\0';
        slen = toklen;
    }
    op = crm_ops_add(ops, crm, CRM_VERB_REVOKE);
    if (op == NULL) {
        explicit_bzero(secret, slen);
        free(secret);
        return -1;
    }
    op->secret = secret; /* the ops' now: crm_ops_free wipes it */
    op->secret_len = slen;
    if (crm_op_set(&op->object, "oauth", 5) < 0 ||
        crm_op_set(&op->record_id, kind, strlen(kind)) < 0)
        return -1;
    return 0;
}

const char *crm_verb_name(enum crm_verb verb)
{
    static const char *const names[] = {
        [CRM_VERB_UNKNOWN] = "unknown",
        [CRM_VERB_LIST] = "list",
        [CRM_VERB_READ] = "read",
        [CRM_VERB_SEARCH] = "search",
        [CRM_VERB_CREATE] = "create",
        [CRM_VERB_UPDATE] = "update",
        [CRM_VERB_UPSERT] = "upsert",
        [CRM_VERB_DELETE] = "delete",
        [CRM_VERB_MERGE] = "merge",
        [CRM_VERB_GDPR_DELETE] = "gdpr_delete",
        [CRM_VERB_ASSOCIATE] = "associate",
        [CRM_VERB_DISSOCIATE] = "dissociate",
        [CRM_VERB_SCHEMA_READ] = "schema_read",
        [CRM_VERB_AUTH] = "auth",
        [CRM_VERB_REVOKE] = "revoke",
    };

    if ((size_t)verb >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[verb];
}

struct crm_op *crm_ops_add(struct crm_ops *ops, enum crm crm, enum crm_verb verb)
{
    struct crm_op *op;

    if (ops->n == ops->cap) {
        size_t cap = ops->cap ? ops->cap * 2 : 4;
        struct crm_op *nv = realloc(ops->v, cap * sizeof(*nv));
        if (nv == NULL)
            return NULL;
        ops->v = nv;
        ops->cap = cap;
    }
    op = &ops->v[ops->n++];
    memset(op, 0, sizeof(*op));
    op->crm = crm;
    op->verb = verb;
    return op;
}

int crm_op_set(char **member, const char *s, size_t len)
{
    char *copy = malloc(len + 1);

    if (copy == NULL)
        return -1;
    memcpy(copy, s, len);
    copy[len] = '\0';
    free(*member);
    *member = copy;
    return 0;
}

int crm_op_add_read(struct crm_op *op, const char *name, size_t len)
{
    char **nr;

    for (size_t i = 0; i < op->nreads; i++) {
        if (strlen(op->reads[i]) == len && memcmp(op->reads[i], name, len) == 0)
            return 0;
    }
    nr = realloc(op->reads, (op->nreads + 1) * sizeof(*nr));
    if (nr == NULL)
        return -1;
    op->reads = nr;
    op->reads[op->nreads] = NULL;
    if (crm_op_set(&op->reads[op->nreads], name, len) < 0)
        return -1;
    op->nreads++;
    return 0;
}

int crm_op_add_write(struct crm_op *op, const char *name, json_t *value)
{
    struct crm_write *nw = realloc(op->writes, (op->nwrites + 1) * sizeof(*nw));

    if (nw == NULL)
        return -1;
    op->writes = nw;
    nw[op->nwrites].name = strdup(name);
    if (nw[op->nwrites].name == NULL)
        return -1;
    nw[op->nwrites].value = json_incref(value);
    op->nwrites++;
    return 0;
}

int crm_op_add_lookup(struct crm_op *op, const char *object, const char *field)
{
    struct crm_lookup *nl = realloc(op->lookups, (op->nlookups + 1) * sizeof(*nl));

    if (nl == NULL)
        return -1;
    op->lookups = nl;
    nl[op->nlookups].object = strdup(object);
    nl[op->nlookups].field = strdup(field);
    if (nl[op->nlookups].object == NULL || nl[op->nlookups].field == NULL) {
        free(nl[op->nlookups].object);
        free(nl[op->nlookups].field);
        return -1;
    }
    op->nlookups++;
    return 0;
}

void crm_ops_free(struct crm_ops *ops)
{
    for (size_t i = 0; i < ops->n; i++) {
        struct crm_op *op = &ops->v[i];
        for (size_t k = 0; k < op->nreads; k++)
            free(op->reads[k]);
        free(op->reads);
        for (size_t k = 0; k < op->nwrites; k++) {
            free(op->writes[k].name);
            json_decref(op->writes[k].value);
        }
        free(op->writes);
        for (size_t k = 0; k < op->nlookups; k++) {
            free(op->lookups[k].object);
            free(op->lookups[k].field);
        }
        free(op->lookups);
        free(op->object);
        free(op->record_id);
        free(op->id_property);
        free(op->to_object);
        free(op->to_id);
        free(op->locator);
        free(op->detail);
        if (op->secret != NULL)
            explicit_bzero(op->secret, op->secret_len);
        free(op->secret);
    }
    free(ops->v);
    ops->v = NULL;
    ops->n = ops->cap = 0;
}

static int crm_json_set_str(json_t *o, const char *key, const char *v)
{
    return v == NULL ? 0 : json_object_set_new(o, key, json_string(v));
}

json_t *crm_ops_to_json(const struct crm_ops *ops)
{
    json_t *arr = json_array();

    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < ops->n; i++) {
        const struct crm_op *op = &ops->v[i];
        json_t *o = json_object();
        if (o == NULL || json_array_append_new(arr, o) < 0)
            goto fail;
        if (json_object_set_new(o, "crm", json_string(crm_name(op->crm))) < 0 ||
            json_object_set_new(o, "verb", json_string(crm_verb_name(op->verb))) < 0 ||
            crm_json_set_str(o, "object", op->object) < 0 ||
            crm_json_set_str(o, "id", op->record_id) < 0 ||
            crm_json_set_str(o, "id_property", op->id_property) < 0 ||
            crm_json_set_str(o, "to_object", op->to_object) < 0 ||
            crm_json_set_str(o, "to_id", op->to_id) < 0 ||
            crm_json_set_str(o, "locator", op->locator) < 0 ||
            crm_json_set_str(o, "detail", op->detail) < 0)
            goto fail;
        if (op->reads_default && json_object_set_new(o, "reads_default", json_true()) < 0)
            goto fail;
        if (op->malformed && json_object_set_new(o, "malformed", json_true()) < 0)
            goto fail;
        if (op->save_duplicates && json_object_set_new(o, "save_duplicates", json_true()) < 0)
            goto fail;
        if (op->graph > 0 &&
            json_object_set_new(o, "graph", json_integer((json_int_t)op->graph)) < 0)
            goto fail;
        if (op->nlookups > 0) {
            json_t *l = json_array();
            if (l == NULL || json_object_set_new(o, "lookups", l) < 0)
                goto fail;
            for (size_t k = 0; k < op->nlookups; k++) {
                if (json_array_append_new(l,
                                          json_pack("{s:s, s:s}", "object", op->lookups[k].object,
                                                    "field", op->lookups[k].field)) < 0)
                    goto fail;
            }
        }
        if (op->nreads > 0) {
            json_t *r = json_array();
            if (r == NULL || json_object_set_new(o, "reads", r) < 0)
                goto fail;
            for (size_t k = 0; k < op->nreads; k++) {
                if (json_array_append_new(r, json_string(op->reads[k])) < 0)
                    goto fail;
            }
        }
        if (op->nwrites > 0) {
            json_t *w = json_object();
            if (w == NULL || json_object_set_new(o, "writes", w) < 0)
                goto fail;
            for (size_t k = 0; k < op->nwrites; k++) {
                if (json_object_set(w, op->writes[k].name, op->writes[k].value) < 0)
                    goto fail;
            }
        }
    }
    return arr;
fail:
    json_decref(arr);
    return NULL;
}

size_t crm_utf8_seq(const unsigned char *s, size_t len)
{
    unsigned long cp, min;
    size_t n;

    if (len == 0)
        return 0;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 1, cp = s[0] & 0x1f, min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 2, cp = s[0] & 0x0f, min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 3, cp = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len <= n)
        return 0;
    for (size_t k = 1; k <= n; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n + 1;
}

int crm_utf8_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = crm_utf8_seq(s + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

char *crm_dec_u64(uint64_t v, char buf[CRM_DEC_MAX], size_t *len)
{
    char *p = buf + CRM_DEC_MAX;

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    *len = (size_t)(buf + CRM_DEC_MAX - p);
    return p;
}

int crm_hex(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}
