/*
 * before.h - the before-state of a write: crmgate's own reads of the fields
 * an operation is about to change, through the worker's libcurl multi.
 *
 *   HubSpot:    GET  /crm/v3/objects/{type}/{id}?properties=..&propertiesWithHistory=..
 *               POST /crm/v3/objects/{type}/batch/read (several records of one type)
 *   Salesforce: GET  /services/data/vNN.N/sobjects/{S}/{id}?fields=..
 *               GET  /services/data/vNN.N/composite/sobjects/{S}?ids=..&fields=..
 *
 * A create has no before-state (NULL); so does an operation that names no
 * record or one the CRM does not know (404). A read the CRM refuses as a bad
 * request (400: the write names a field that does not exist) leaves the
 * before-state unknown rather than blocking the write: the CRM will answer
 * the write with its own error, per subrequest in a composite. Any other
 * refusal (401, 403, 429) or failure stops the write, and so does an answer
 * that is not JSON, not a record (HubSpot: an object with a properties
 * object; Salesforce: an object with its Id) or, for several records, not a
 * list of them: no before value is made up, and a record is never taken for
 * missing because its answer was malformed. These calls spend the
 * customer's API quota, so they are counted apart in the metrics; and the
 * single-record reads of concurrent writes with the same credential are
 * folded into one batch read (before.c), each write keeping exactly what
 * its own read would have returned.
 */
#ifndef CRMGATE_BEFORE_H
#define CRMGATE_BEFORE_H

#include <event2/buffer.h>
#include <jansson.h>

#include "../policy/crm.h"
#include "config.h"
#include "http.h"

#define BEFORE_MAX_CALLS   64  /* upstream reads one request may cause */
#define BEFORE_HS_BATCH    100 /* HubSpot batch/read inputs per call */
#define BEFORE_HS_HISTORY  50  /* ... asking for propertiesWithHistory (more: HubSpot's 400) */
#define BEFORE_SF_RETRIEVE 200 /* Salesforce collections retrieve ids per call */

struct worker;
struct before_fetch;

struct before_result {
    int ok;                     /* every read answered (2xx, or 404 meaning "no record") */
    json_t **before;            /* ops->n entries: {field: value} or NULL; owned by the fetch */
    unsigned char *unknown;     /* ops->n flags: the CRM refused the read as a bad request (400,
                                   a field that does not exist): the write goes ahead, its
                                   before-state unrecorded */
    long status;                /* !ok: the CRM's status (0 when no answer came) */
    int timed_out;              /* !ok: a read ran out of upstream_timeout_ms */
    struct evbuffer *body;      /* !ok, CRM status < 500: its answer; the callback may take it */
    struct http_fields headers; /* of that answer (Content-Type, Retry-After, rate limits) */
    char error[512];            /* !ok: what failed, for the agent and the log */
    /*
     * The quota headers of the CRM's last answer (X-HubSpot-RateLimit-*,
     * Sforce-Limit-Info, Retry-After): a dry-run answer carries them as the
     * CRM's answer to the write would have.
     */
    struct http_fields quota;
    unsigned calls; /* upstream reads made */
};

/* Called once, outside any curl callback; res lives until it returns. */
typedef void (*before_done_cb)(struct before_result *res, void *arg);

/*
 * Whether op needs a before-state read: an update, upsert, delete or merge
 * of a named record (not a composite reference).
 */
int before_needed(const struct crm_op *op);

/*
 * Start the reads for ops (which must outlive the fetch) against base (the
 * CRM's upstream base URL) with the agent's auth header (auth_name/value;
 * may be NULL). api_path is the request path, from which the Salesforce API
 * version is taken. lastmod: Salesforce reads also ask for LastModifiedDate
 * (a dry-run's If-Unmodified-Since is checked against it). cb runs even
 * when nothing needs reading (at once, from a zero timeout). NULL when out
 * of memory or too many calls would be needed (no callback).
 */
struct before_fetch *before_start(struct worker *w, enum crm crm, const char *base,
                                  const char *api_path, const struct http_fields *auth,
                                  const struct crm_ops *ops, int lastmod, const struct config *cfg,
                                  before_done_cb cb, void *arg);

/* Abandon a fetch: its callback will not run. */
void before_cancel(struct before_fetch *bf);

#endif
