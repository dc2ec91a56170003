/*
 * crm.h - the CRM model shared by every module: which CRM a request is for,
 * how that CRM spells an error, and what a request does in CRM terms.
 *
 * A classifier (hubspot.c, salesforce.c) turns one HTTP request into a list
 * of operations: {crm, object, record id, verb, fields read, fields written
 * with their values}. Batch, search, composite and collection calls yield
 * one operation per record. A request the classifier cannot understand
 * yields one CRM_VERB_UNKNOWN operation (denied), never zero operations.
 *
 * Pure: no I/O. Memory: everything an operation points to is owned by its
 * struct crm_ops and released by crm_ops_free().
 */
#ifndef CRMGATE_CRM_H
#define CRMGATE_CRM_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum crm { CRM_NONE, CRM_HUBSPOT, CRM_SALESFORCE };

enum crm_verb {
    CRM_VERB_UNKNOWN,
    CRM_VERB_LIST,
    CRM_VERB_READ,
    CRM_VERB_SEARCH,
    CRM_VERB_CREATE,
    CRM_VERB_UPDATE,
    CRM_VERB_UPSERT,
    CRM_VERB_DELETE,
    CRM_VERB_MERGE,
    CRM_VERB_GDPR_DELETE,
    CRM_VERB_ASSOCIATE,
    CRM_VERB_DISSOCIATE,
    CRM_VERB_SCHEMA_READ,
    CRM_VERB_AUTH,
    CRM_VERB_REVOKE, /* an OAuth token revocation: audited as a write, allowed by "auth" */
};

#define CRM_VERB_COUNT (CRM_VERB_REVOKE + 1)

/* A field written, with the value the request sets it to (a json_t reference). */
struct crm_write {
    char *name;
    json_t *value;
};

/*
 * A parent record a Salesforce write finds by its external id ("Account":
 * {"Ext__c": "A1"} sets AccountId): Salesforce looks the parent up with an
 * equality filter on object.field, so the write reveals whether such a
 * record exists. Decided as a read of that field.
 */
struct crm_lookup {
    char *object; /* the parent's sObject name */
    char *field;
};

struct crm_op {
    enum crm crm;
    enum crm_verb verb;
    /*
     * Canonical object name. HubSpot: the lower-case plural for standard
     * types ("contacts", "companies", "deals", "tickets", "notes", "tasks",
     * ...; "0-1" and "contact" become "contacts"), "2-123" / "p_x" as given
     * in lower case for custom ones. Salesforce: the sObject API name as
     * written in the request (Salesforce names are case-insensitive: compare
     * with strcasecmp). NULL only for CRM_VERB_UNKNOWN / AUTH; "oauth" for
     * REVOKE.
     */
    char *object;
    char *record_id;   /* NULL when not addressed by id (list, search, create); REVOKE: the
                        * kind of token ("refresh_token", "token"), never the token */
    char *id_property; /* HubSpot idProperty / Salesforce external-id field, or NULL */
    char **reads;      /* fields read: requested, filtered on, sorted by */
    size_t nreads;
    int reads_default; /* no explicit field list: the CRM returns its default set */
    struct crm_write *writes;
    size_t nwrites;
    char *to_object; /* associate/dissociate/merge: the other side, canonical */
    char *to_id;
    char *locator;     /* Salesforce queryMore locator, resolved by the proxy */
    char *detail;      /* for UNKNOWN: what was not understood (for the denial) */
    int malformed;     /* UNKNOWN because a SOQL query was rejected: the agent must rewrite it */
    size_t subrequest; /* Salesforce composite or composite batch: 1 + the index of the
                        * subrequest it came from (its answer's entry); 0 otherwise */
    size_t graph;      /* Salesforce composite graph: 1 + the index of the graph it came from
                        * (all or nothing: its answer's isSuccessful); 0 otherwise */
    /*
     * REVOKE: the token being revoked, decoded. A secret: the proxy turns it
     * into a fingerprint in record_id at once (enforce_revoked_fingerprint)
     * and wipes it; crm_ops_to_json never writes it; crm_ops_free wipes it.
     */
    char *secret;
    size_t secret_len;
    struct crm_lookup *lookups; /* Salesforce writes: parents found by external id */
    size_t nlookups;
    int save_duplicates; /* Salesforce write sent with Sforce-Duplicate-Rule-Header
                          * allowSave=true: saved past the org's duplicate rules */
};

struct crm_ops {
    struct crm_op *v;
    size_t n, cap;
};

/*
 * The HTTP request a classifier sees: the part after the /hubspot or
 * /salesforce prefix (or the full path in forward/transparent modes).
 * path is raw (still percent-encoded), query is raw without '?' (or NULL).
 * body is the whole, de-chunked request body (may be NULL if body_len 0).
 */
struct crm_request {
    const char *method; /* as sent; classifiers apply overrides */
    const char *path;
    const char *query;
    const char *content_type; /* header value or NULL */
    const char *content_encoding;
    const char *method_override; /* X-HTTP-Method-Override header or NULL */
    const char *duplicate_rule;  /* Sforce-Duplicate-Rule-Header or NULL */
    const char *body;
    size_t body_len;
};

/* "read", "update", ... (the names used in rules and audit records). */
const char *crm_verb_name(enum crm_verb verb);

/* Append a zeroed operation with crm and verb set; NULL when out of memory. */
struct crm_op *crm_ops_add(struct crm_ops *ops, enum crm crm, enum crm_verb verb);

/* Add a read field (copied; duplicates are kept once); 0 / -1. */
int crm_op_add_read(struct crm_op *op, const char *name, size_t len);

/* Add a written field (name copied, value's reference count taken); 0 / -1. */
int crm_op_add_write(struct crm_op *op, const char *name, json_t *value);

/* Add a parent lookup (object and field copied); 0 / -1. */
int crm_op_add_lookup(struct crm_op *op, const char *object, const char *field);

/* Set one of op's string members from a counted string (copied); 0 / -1. */
int crm_op_set(char **member, const char *s, size_t len);

/*
 * The operations as JSON, for policy explain and for the table-driven tests:
 * [{"crm","verb","object","id","id_property","reads":[...],"reads_default",
 *   "writes":{name:value},"to_object","to_id","locator","detail","malformed",
 *   "lookups":[{"object","field"}],"save_duplicates","graph"}], keys
 * omitted when NULL, empty or false. Returns a new reference or NULL.
 */
json_t *crm_ops_to_json(const struct crm_ops *ops);

/*
 * The length (1-4) of the well-formed UTF-8 sequence at s[0..len), or 0 when
 * it is malformed: overlong, a surrogate, past U+10FFFF, or cut short.
 */
size_t crm_utf8_seq(const unsigned char *s, size_t len);

/* Whether s[0..len) is entirely well-formed UTF-8. */
int crm_utf8_valid(const unsigned char *s, size_t len);

/* The value (0-15) of the hex digit ch, or -1 when ch is not one (percent-decoding). */
int crm_hex(int ch);

/* Room for the decimal digits of any uint64_t. */
#define CRM_DEC_MAX 20

/*
 * The decimal digits of v, written from the end of buf[0..CRM_DEC_MAX) with
 * no format string to interpret: returns the first digit, *len their count.
 */
char *crm_dec_u64(uint64_t v, char buf[CRM_DEC_MAX], size_t *len);

/*
 * Form bodies (application/x-www-form-urlencoded), as OAuth endpoints take
 * them: the value of parameter name.
 */
enum crm_form { CRM_FORM_OK, CRM_FORM_BAD, CRM_FORM_NOMEM };

/*
 * The value of form parameter name in body[0..len), keys and values
 * percent-decoded ('+' is a space), compared exactly: *out a new string
 * of *outlen bytes (NULL when absent; the caller wipes and frees it, it may
 * be a secret), *count how often name occurs. CRM_FORM_BAD when a body is
 * sent with another Content-Type (content_type may be NULL), or has a bad
 * escape, a NUL or control byte, or a value that is not UTF-8. An empty
 * body is OK with *count 0.
 */
enum crm_form crm_form_value(const char *content_type, const char *body, size_t len,
                             const char *name, char **out, size_t *outlen, size_t *count);

/*
 * Add the operation of an OAuth token revocation to ops: verb REVOKE,
 * object "oauth", record_id kind ("refresh_token", "token"), secret the
 * token: tok[0..toklen) when the path names it, else (tok NULL) the one
 * "token" parameter of req's form body. Returns 0; 1 with why set when
 * req cannot say which one token it revokes (a query string, a body that
 * is not a well-formed form, no "token" or more than one): the caller
 * denies it; -1 out of memory.
 */
int crm_revoke_op(struct crm_ops *ops, enum crm crm, const struct crm_request *req,
                  const char *kind, const char *tok, size_t toklen, char *why, size_t whylen);

/* Release every operation and reset ops to empty (secrets wiped). */
void crm_ops_free(struct crm_ops *ops);

/* "hubspot", "salesforce" or "none". */
const char *crm_name(enum crm crm);

/*
 * Build the error body a CRM's SDK expects, into a malloc'ed NUL-terminated
 * string the caller frees:
 *   HubSpot:    {"status":"error","message":M,"correlationId":ID,"category":C,
 *                "subCategory":"crmgate.<code>"}
 *   Salesforce: [{"message":M,"errorCode":C,"fields":[],"crmgateError":"<code>"}]
 * (both name crmgate's code as its X-Crmgate-Error header does: an SDK
 * shows the body, jsforce as error.data, and not always the headers).
 * code is crmgate's reason in lower snake case ("upstream_refused"); the
 * CRM-specific category/errorCode is derived from status. CRM_NONE uses the
 * HubSpot shape, the one of a plain JSON API. correlation_id may be NULL.
 * Returns NULL only when out of memory.
 */
char *crm_error_body(enum crm crm, int status, const char *code, const char *message,
                     const char *correlation_id);

/*
 * The same, for a denial (403; code "policy_denied", "passthrough_refused",
 * ...): HubSpot category MISSING_SCOPES, Salesforce errorCode
 * INSUFFICIENT_ACCESS_OR_READONLY with "fields" taken from the
 * comma-separated list fields (may be empty).
 */
char *crm_denial_body(enum crm crm, const char *code, const char *message, const char *fields,
                      const char *correlation_id);

/*
 * crmgate's own error on an OAuth endpoint, in the shape both CRMs' OAuth
 * endpoints answer: {"error": E, "error_description": message}, E after
 * RFC 6749 ("invalid_request" for 400, "temporarily_unavailable" for 5xx,
 * "access_denied" otherwise). malloc'ed; NULL only when out of memory.
 */
char *crm_oauth_error_body(int status, const char *message);

/* The reason phrase for an HTTP status crmgate emits ("Bad Gateway"). */
const char *crm_status_reason(int status);

#endif
