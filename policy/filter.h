/*
 * filter.h - strip from a CRM's answer every field the workspace may not
 * read, keeping the shapes the SDKs expect. Pure.
 *
 * Requests are checked before they go out; this is the second line, for
 * fields the CRM returns unasked (default property sets, GET without
 * ?fields=, record data in write answers) and for gaps in the first.
 */
#ifndef CRMGATE_FILTER_H
#define CRMGATE_FILTER_H

#include <stddef.h>

#include <jansson.h>

#include "rules.h"

/*
 * What a HubSpot answer may carry, from the operations of its request
 * (enforce.c): records of the requested type (reads, searches, lists,
 * creates, updates, upserts, merges), no record at all (associations,
 * deletes), or definitions (properties, owners, schemas).
 */
enum filter_hs_shape {
    FILTER_HS_RECORDS,
    FILTER_HS_LINKS,
    FILTER_HS_SCHEMA,
};

/*
 * The members a HubSpot record keeps (besides its filtered bags): v3's and
 * the legacy companies v2 / deals v1 identity members; and the members the
 * root of an answer keeps besides a record's: collections, batch results,
 * errors (HubSpot's and rate limits'), legacy write answers, v4 label pairs.
 * {NULL, 0, 0}-terminated. A record's identity members are scalars
 * (FILTER_SCALAR): an object or array there is cut like an unknown member.
 */
struct filter_name {
    const char *s;
    size_t n;   /* strlen(s) */
    int scalar; /* its value must be a scalar: an object or array in it is cut */
};
#define FILTER_NAME(s)                                                                             \
    {                                                                                              \
        s, sizeof(s) - 1, 0                                                                        \
    }
#define FILTER_SCALAR(s)                                                                           \
    {                                                                                              \
        s, sizeof(s) - 1, 1                                                                        \
    }
extern const struct filter_name filter_hs_record_keys[];
extern const struct filter_name filter_hs_root_keys[];

/*
 * The members of a Salesforce compound field (an address, a location), and
 * of a record's attributes. {NULL, 0, 0}-terminated.
 */
extern const struct filter_name filter_sf_compound_keys[];
extern const struct filter_name filter_sf_attributes_keys[];

/*
 * HubSpot, failing closed. FILTER_HS_RECORDS: the root and each object in
 * the root's "results" are records of type object; their "properties" and
 * "propertiesWithHistory" keep only readable names, their "associations"
 * only listed object types, and a member of theirs not in
 * filter_hs_record_keys (nor, at the root, filter_hs_root_keys) is removed.
 * A record's identity member (FILTER_SCALAR) that holds an object or an
 * array refuses the answer. FILTER_HS_LINKS: the root keeps only those
 * members. FILTER_HS_SCHEMA:
 * nothing is removed. In every shape, record data anywhere else (a member
 * named properties or propertiesWithHistory whose value is an object, or a
 * non-empty array but in a schema answer; at a record position, a bag that
 * is a non-empty array) means the answer cannot be filtered: -1, and the
 * answer must be refused. Else 0 with *removed the number of values removed.
 */
int policy_filter_hubspot(const struct rules_ws *ws, const char *object, enum filter_hs_shape shape,
                          json_t *body, size_t *removed);

/*
 * Salesforce: every JSON object with "attributes": {"type": T} anywhere in
 * the body is a record of T; it keeps "attributes", "Id", readable fields,
 * and nested records and child-query results (filtered by their own type).
 * A nested record of a type that may not be read at all becomes null.
 * Fails closed (-1: the answer must be refused) on record data it cannot
 * type: in a record, an "Id" that is an object or array, or "attributes"
 * with a member not in filter_sf_attributes_keys or not a scalar; an object
 * with "attributes" but no string type, an object with an "Id" but no
 * attributes, an element of "records" or "searchRecords" that is
 * neither a record nor null, a readable field whose value is an object that
 * is neither a record, a child-query result nor a compound value, or a
 * non-empty array; and when the body nests too deep to inspect. Else 0 with
 * *removed the number of values removed.
 */
int policy_filter_salesforce(const struct rules_ws *ws, json_t *body, size_t *removed);

#endif
