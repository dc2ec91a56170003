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

#include <jansson.h>

#include "rules.h"

/*
 * HubSpot: every record ({"id", "properties", ...}) at the top level or in
 * "results" is of type object; "properties" and "propertiesWithHistory"
 * keep only readable names, and "associations" keep only listed object
 * types. Returns the number of values removed.
 */
size_t policy_filter_hubspot(const struct rules_ws *ws, const char *object, json_t *body);

/*
 * Salesforce: every JSON object with "attributes": {"type": T} anywhere in
 * the body is a record of T; it keeps "attributes", "Id", readable fields,
 * and nested records and child-query results (filtered by their own type).
 * A nested record of a type that may not be read at all becomes null.
 * Sets *removed to the number of values removed. Returns 0, or -1 when the
 * body nests too deep to inspect (the answer must then be refused).
 */
int policy_filter_salesforce(const struct rules_ws *ws, json_t *body, size_t *removed);

#endif
