/*
 * crm.h - the CRM model shared by every module: which CRM a request is for,
 * and how that CRM spells an error.
 *
 * Pure: no I/O. The policy engine extends this header with operations,
 * verbs and fields.
 */
#ifndef CRMGATE_CRM_H
#define CRMGATE_CRM_H

#include <stddef.h>

enum crm { CRM_NONE, CRM_HUBSPOT, CRM_SALESFORCE };

/* "hubspot", "salesforce" or "none". */
const char *crm_name(enum crm crm);

/*
 * Build the error body a CRM's SDK expects, into a malloc'ed NUL-terminated
 * string the caller frees:
 *   HubSpot:    {"status":"error","message":M,"correlationId":ID,"category":C,
 *                "subCategory":"crmgate.<code>"}
 *   Salesforce: [{"message":M,"errorCode":C,"fields":[]}]
 * code is crmgate's reason in lower snake case ("upstream_refused"); the
 * CRM-specific category/errorCode is derived from status. CRM_NONE uses the
 * HubSpot shape, the one of a plain JSON API. correlation_id may be NULL.
 * Returns NULL only when out of memory.
 */
char *crm_error_body(enum crm crm, int status, const char *code, const char *message,
                     const char *correlation_id);

/* The reason phrase for an HTTP status crmgate emits ("Bad Gateway"). */
const char *crm_status_reason(int status);

#endif
