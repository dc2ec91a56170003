/*
 * locators.h - the Salesforce query cursors crmgate has handed out.
 *
 * A SOQL answer with more rows carries nextRecordsUrl (…/query/<locator>).
 * The next page is a request for that locator alone, with no query text to
 * check, so crmgate remembers which workspace got the locator and what the
 * query read, and decides the follow-up as if the query were sent again. A
 * locator crmgate has not seen, or one handed to another workspace, is
 * denied. Process-wide (any worker may see the follow-up), bounded, and
 * entries expire.
 */
#ifndef CRMGATE_LOCATORS_H
#define CRMGATE_LOCATORS_H

#include <time.h>

#include "../policy/crm.h"

#define LOCATORS_MAX     8192
#define LOCATORS_TTL_SEC (30 * 60)

/* Remember locator for workspace ws, continuing a query made of ops (copied). */
void locators_remember(const char *ws, const char *locator, const struct crm_ops *ops, time_t now);

/* Append copies of the remembered ops to out; 0 when known, -1 when unknown or expired. */
int locators_lookup(const char *ws, const char *locator, struct crm_ops *out, time_t now);

/* Forget everything (shutdown, tests). */
void locators_clear(void);

#endif
