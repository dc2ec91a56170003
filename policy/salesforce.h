/*
 * salesforce.h - the Salesforce REST classifier: one HTTP request in, the
 * CRM operations it performs out (crm.h), and the relationship schema it
 * needs to follow SOQL paths, subqueries, relationship traversal and
 * sObject trees.
 *
 * What is classified, and how (reference/salesforce-api.md §3-§9, §12):
 *   - /services/data/vNN.N/sobjects rows: read, create, update, delete,
 *     upsert by external id (id_property + record_id), create via
 *     POST /sobjects/S/Id, relationship traversal (the parent-side lookup
 *     field is read, then the related object), describe (schema_read).
 *     Basic info GET /sobjects/S yields schema_read S plus list S reading
 *     Id and Name, because its recentItems carry record data.
 *     updated/deleted yield list S reading Id.
 *   - query/queryAll ?q= (and ?explain=, which reveals no more than the
 *     query): one CRM_VERB_LIST op per object touched, fields from every
 *     clause; a traversed lookup is a read of its lookup field on the
 *     object it leaves (Account.Name on Opportunity reads
 *     Opportunity.AccountId and Account.Name). query/{locator}: one list op
 *     with only the locator set (the proxy resolves it).
 *   - search ?q= (SOSL; RETURNING required) and parameterizedSearch:
 *     CRM_VERB_SEARCH ops, one per object.
 *   - composite, composite/batch, composite/graph: every subrequest
 *     classified in turn; a composite reference @{ref.field} in the id
 *     position of a one-record path becomes the record_id verbatim.
 *     composite/tree and composite/sobjects: one op per record.
 *   - _HttpMethod=X on a POST is the effective method; an
 *     X-HTTP-Method-Override header that differs from the effective method
 *     is denied (we cannot know whether the upstream honours it).
 *   - /services/oauth2/token: auth; POST /services/oauth2/revoke with one
 *     token=... in a form body and no query string: revoke (crm_revoke_op;
 *     the GET form is not in the reference and is denied); /limits and the version
 *     discovery paths: schema_read. Everything else: one CRM_VERB_UNKNOWN
 *     op whose detail says why (fail closed).
 *
 * Pure: libc and jansson, no I/O, no clock.
 */
#ifndef CRMGATE_SALESFORCE_H
#define CRMGATE_SALESFORCE_H

#include <stddef.h>

#include "crm.h"

/*
 * Relationships and key prefixes beyond the built-in standard-object table
 * (typically loaded from describe for custom objects). Entries added here
 * are consulted before the built-in ones and override them.
 */
struct sf_schema;

/* A new, empty schema (the built-in table still applies); NULL when out of memory. */
struct sf_schema *sf_schema_new(void);

/*
 * Add a relationship: on object, the relationship relname leads to target.
 * is_child 0: a lookup (Opportunity.Account -> Account; its lookup field is
 * relname + "Id", or X__c for X__r); is_child 1: a child relationship
 * (Account.Contacts -> Contact). Adding a second, different target for the
 * same (object, relname, is_child), or a NULL target, marks the
 * relationship polymorphic: it then never resolves. Names are copied and
 * compared case-insensitively. Returns 0, or -1 when out of memory or an
 * argument is not an API name.
 */
int sf_schema_add(struct sf_schema *schema, const char *object, const char *relname,
                  const char *target, int is_child);

/* Add a key prefix (3 characters, case-sensitive) for object; 0 / -1 as sf_schema_add. */
int sf_schema_add_prefix(struct sf_schema *schema, const char *object, const char *prefix);

/* Release a schema; NULL is ignored. */
void sf_schema_free(struct sf_schema *schema);

/*
 * Resolve relname[0..len) on object (schema may be NULL: built-in only).
 * Returns 1 with *target set (a pointer into the schema or the built-in
 * table), 0 when the relationship is unknown, -1 when it is polymorphic.
 */
int sf_schema_resolve(const struct sf_schema *schema, const char *object, const char *relname,
                      size_t len, int is_child, const char **target);

/*
 * The object whose key prefix starts id (schema first, then built-in), or
 * NULL when the prefix is unknown. id must have at least 3 characters.
 */
const char *sf_object_for_id(const struct sf_schema *schema, const char *id);

/*
 * The 3-character key prefix of object (compared case-insensitively; schema
 * first, then built-in), or NULL when none is known. Points into the schema
 * or the built-in table.
 */
const char *sf_prefix_for_object(const struct sf_schema *schema, const char *object);

/* 1 when s[0..len) is a 15-char id or an 18-char id with a valid checksum. */
int sf_id_valid(const char *s, size_t len);

/*
 * Classify req (path after the /salesforce prefix, or the full path) and
 * append its operations to out. schema NULL = the built-in table only.
 * Returns 0 with at least one operation appended (exactly one
 * CRM_VERB_UNKNOWN op when the request cannot be classified safely), or -1
 * only when out of memory (out is left as it was).
 */
int salesforce_classify(const struct crm_request *req, const struct sf_schema *schema,
                        struct crm_ops *out);

#endif
