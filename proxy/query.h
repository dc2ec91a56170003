/*
 * query.h - the audit log's filters as text (query parameters of
 * GET /v1/audit, flags of `crmgate diffs`) turned into a struct store_query,
 * checked the same way wherever they come from. No I/O, no clock: "now" is
 * passed in.
 */
#ifndef CRMGATE_QUERY_H
#define CRMGATE_QUERY_H

#include <stddef.h>

#include "store.h"

#define QUERY_MAX_VALUE 256 /* characters of one filter value */

/*
 * A point in time as milliseconds since the epoch: "2026-12-07",
 * "2026-12-07T12:30", "2026-12-07T12:30:05.250Z", "...+02:00" (no zone:
 * UTC; a space may stand for the T), a relative "90s", "15m", "2h", "7d"
 * (that long before now_ms), or plain digits (milliseconds, as the records'
 * "ts"). 0, or -1 with err saying what is wrong.
 */
int query_parse_time(const char *s, long long now_ms, long long *out_ms, char *err, size_t errlen);

/*
 * Fill q from n (name, value) pairs: workspace, crm (hubspot|salesforce),
 * object, record, workflow, call, outcome (allowed, denied, dry_run,
 * upstream_error, unknown, held, approved, approved_edited, rejected,
 * expired), since, until (query_parse_time), limit (1..STORE_QUERY_MAX),
 * cursor (a record id). q points into the values, which must outlive it.
 * 0, or -1 with *bad set to the offending parameter's name (a pointer into
 * names) and err saying why: an unknown name, an empty or over-long value,
 * a bad number or time, since after until.
 */
int query_audit_from_params(const char *const *names, const char *const *values, size_t n,
                            long long now_ms, struct store_query *q, const char **bad, char *err,
                            size_t errlen);

#endif
