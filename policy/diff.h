/*
 * diff.h - an operation's field changes in audit terms: for every field it
 * writes, {name, before, after}; for a delete, every field the record had.
 *
 * Pure: jansson only, no I/O.
 */
#ifndef CRMGATE_DIFF_H
#define CRMGATE_DIFF_H

#include <jansson.h>

#include "crm.h"

/*
 * Whether a field is volatile system bookkeeping (modification stamps,
 * view dates, HubSpot's computed hs_* counters) that audit records leave
 * out unless configured otherwise. Compared case-insensitively.
 */
int diff_volatile(enum crm crm, const char *name);

/*
 * The "fields" array of op's audit record as a new reference:
 *   writes: [{"name", "before": before[name] or null, "after": value}] in
 *           the order written (Salesforce names match before's case-
 *           insensitively, HubSpot's exactly, as each CRM does);
 *   delete / gdpr_delete with no writes: every non-volatile field of
 *           before, with "after": null.
 * before is the record's current fields ({name: value}) or NULL (a create,
 * or a record that does not exist). keep_volatile 1 keeps volatile fields.
 * NULL only when out of memory.
 */
json_t *diff_fields(const struct crm_op *op, const json_t *before, int keep_volatile);

/* before[name] with the CRM's name matching, or NULL. */
json_t *diff_lookup(enum crm crm, const json_t *before, const char *name);

#endif
