/*
 * synthesize.h - dry-run answers: what HubSpot or Salesforce would have
 * answered to a write that crmgate does not forward, with the status codes
 * and shapes of the references (hubspot-api.md §3-§5, §11.3;
 * salesforce-api.md §4, §7, §13.2), and the read-your-writes overlay that
 * makes later reads show the dry-run values.
 *
 * HubSpot: create 201, PATCH 200, DELETE 204, batch create 201, batch
 * update/upsert 200, batch archive 204, merge 200, gdpr-delete 204; v4
 * associations PUT 201 (labelled) / 200 (default), DELETE 204, batch create
 * 201, batch archive and labels/archive 204, batch associate/default 200; v3
 * association DELETE 204, batch create 201, batch archive 204. Refused: v3
 * single PUT (its answer lists every association of the record), legacy
 * v1/v2 endpoints, associations between ids that are not numeric.
 * A write naming a record that does not exist (its before-state is NULL)
 * gets the CRM's answer: a single-record write (HubSpot update, delete,
 * merge, gdpr-delete; Salesforce row update or delete) 404, ids and records
 * all NULL; a HubSpot batch update 207 with that record's id in errors (its
 * id and record NULL). A Salesforce collection or composite naming one is
 * refused.
 * Salesforce: create 201 SaveResult, PATCH 204, DELETE 204, upsert 201
 * {created:true} / 200 {created:false} (v46+; 201 SaveResult / 204 before),
 * collections 200 [SaveResult], composite 200 {compositeResponse}, batch 200
 * {hasErrors, results}, tree 201 {hasErrors, results}. Refused: graph, any
 * composite or batch with a read subrequest (a read cannot be synthesized),
 * an object without a known key prefix (no id can be minted for it).
 *
 * Synthetic ids: HubSpot 16-digit numeric strings starting with 8 (8*10^15
 * .. 9*10^15: above any id HubSpot has handed out, whose ids have 11 or 12
 * digits, so a synthetic id never shadows a real record in the overlay, and
 * below 2^53, so JavaScript keeps it exact); Salesforce prefix + "DR0" (a pod
 * that marks dry-run ids for a human) + 9 random base-62 characters + the
 * case checksum.
 *
 * Pure: libc and jansson (and the classifiers' schema), no I/O, no clock.
 */
#ifndef CRMGATE_SYNTHESIZE_H
#define CRMGATE_SYNTHESIZE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "crm.h"
#include "salesforce.h"

#define SYNTH_MAX_OPS     5000 /* operations per request */
#define SYNTH_MAX_ID      256  /* record ids, external-id values */
#define SYNTH_MAX_SEGS    24   /* path segments looked at */
#define SYNTH_MAX_PATH    4096
#define SYNTH_ID_TRIES    8 /* fresh random ids drawn before giving up on a collision */
#define SYNTH_MAX_REF_LEN 256
#define SYNTH_HS_ID_BASE  8000000000000000ULL /* HubSpot synthetic ids: 8*10^15 .. */
#define SYNTH_HS_ID_SPAN  1000000000000000ULL /* .. 9*10^15 (2^53 is about 9.007*10^15) */
#define SYNTH_MAX_HISTORY                                                                          \
    5 /* HubSpot: dry-run writes of a property kept for its history (each costs every later        \
         dry-run write of the record a parse and a dump) */

struct synth_request {
    enum crm crm;
    const struct crm_request *req;  /* as classified: method, path after the prefix, query, body */
    const struct crm_ops *ops;      /* the request's operations, classifier order */
    const struct sf_schema *schema; /* Salesforce custom key prefixes (NULL: built-in only) */
    /*
     * ops->n entries: the record's current fields {name: value} as the CRM
     * returns them (HubSpot: the properties map, or the whole object with
     * "properties"), or NULL when the record does not exist.
     */
    json_t *const *before;
    /*
     * Salesforce: the request's If-Unmodified-Since (NULL: none). A row
     * update whose record (before-state LastModifiedDate) changed after it
     * is answered 412, as Salesforce does.
     */
    const char *if_unmodified_since;
    /* ops->n flags, or NULL: the op's record was deleted in dry-run (its before-state is NULL) */
    const unsigned char *deleted;
    /*
     * ops->n overlay records already stored for the ops' records (NULL
     * entries), or NULL: a HubSpot record's dry-run history goes on from
     * theirs.
     */
    json_t *const *prev;
    /* HubSpot: the correlation id of the answer (its x-hubspot-correlation-id), NULL: a random one
     */
    const char *correlation_id;
    long long now_ms;              /* wall clock, ms since the epoch */
    uint64_t (*rand64)(void *arg); /* random bits for synthetic ids */
    void *rand_arg;
};

struct synth_response {
    int status;
    char *body; /* malloc'ed JSON, NULL when the answer has no body (204) */
    size_t body_len;
    char *location; /* malloc'ed Location path (a Salesforce create, a HubSpot labelled
                       association), or NULL */
    char **ids;     /* ops->n entries (malloc'ed or NULL): the record id each op wrote */
    /*
     * ops->n entries (NULL for associations): the overlay record each op
     * leaves, {"object","id","fields":{merged},"created","deleted","ts",
     * "written":[names]}; HubSpot's also "history": {name: [{value,
     * timestamp}], newest first, at most SYNTH_MAX_HISTORY}, the dry-run
     * writes of each name for propertiesWithHistory.
     */
    json_t **records;
};

/*
 * Answer in->req as the CRM would, without forwarding it. Returns 0 with out
 * filled (free it with synth_response_free), or -1 with err saying in plain
 * words why this request cannot be answered in dry-run (out left empty).
 */
int synth_response(const struct synth_request *in, struct synth_response *out, char *err,
                   size_t errlen);

/*
 * The overlay record to store for rec (a record synth_response left, with
 * "written": the names its write set) where old is already stored: rec, with
 * the fields old's writes set and rec's did not (two dry-run writes to one
 * record that raced each read the record before the other's commit), and
 * "created" kept. rec as it is (a new reference) when either is a delete or
 * lacks fields. NULL when out of memory.
 */
json_t *synth_overlay_combine(const json_t *old, json_t *rec);

/* The same, changing rec itself (its owner's, no copy): 0, or -1 out of memory (rec then
 * half combined: drop it). */
int synth_overlay_combine_into(const json_t *old, json_t *rec);

/*
 * Whether synth_overlay_combine_into(old, rec) would change rec: 1 when old
 * has a field its writes set that rec's did not, or was created and rec
 * is not marked so; else 0 (rec stays as it is, byte for byte).
 */
int synth_overlay_combine_adds(const json_t *old, const json_t *rec);

/* Release what synth_response filled in (nops = ops->n); out is zeroed. */
void synth_response_free(struct synth_response *out, size_t nops);

/*
 * 1 when req is a single-record read (HubSpot GET /crm/v3/objects/{t}/{id},
 * Salesforce GET /sobjects/{S}/{id} or /sobjects/{S}/{field}/{value}), whose
 * answer synth_read_answer can give; 0 for anything else (batch reads and
 * collections retrieves keep their own shapes).
 */
int synth_is_single_read(enum crm crm, const struct crm_request *req);

/*
 * Read-your-writes for a record known only to the overlay: the answer the
 * CRM would give to the single-record read op of req (the Salesforce api
 * version comes from req's path) from the overlay record rec: status 200
 * and the GET shape honouring the requested properties/fields, or 404 in the
 * CRM's shape when rec is deleted. *body is malloc'ed. 0 / -1 with err.
 */
int synth_read_answer(enum crm crm, const struct crm_request *req, const struct crm_op *op,
                      const json_t *rec, long long now_ms, int *status, char **body,
                      size_t *body_len, char *err, size_t errlen);

/*
 * Whether a value written to field name of object may be a key the CRM finds
 * records by (an idProperty, an external id), so a dry-run write of it must
 * leave an alias: a HubSpot contact's email, or a HubSpot property HubSpot
 * itself does not define (only custom properties can have hasUniqueValue;
 * crmgate does not know the portal's schema, so every name not known as
 * HubSpot's own counts); a Salesforce custom field ("__c": an external id is
 * always one). 1 / 0.
 */
int synth_unique_key_candidate(enum crm crm, const char *object, const char *name);

/*
 * A Salesforce read of every field (no ?fields=) of a record created in
 * dry-run lists every field of its object: the path of the describe that
 * names them ("/services/data/vNN.N/sobjects/{S}/describe", malloc'ed) for
 * the single-record read op of req, or NULL when req is not such a read.
 */
char *synth_sf_describe_path(const struct crm_request *req, const struct crm_op *op);

/*
 * The row that read answers, from describe (the object's DescribeSObjectResult)
 * and the overlay record rec: every field in describe's order, the value
 * rec's fields hold, else false for a boolean and null for the rest (what
 * Salesforce fills itself, such as the owner, is not known). A new
 * reference, or NULL when describe lists no fields (or out of memory).
 */
json_t *synth_sf_describe_row(const struct crm_request *req, const json_t *describe,
                              const json_t *rec);

/*
 * Merge overlay records into the upstream answer to a read (*answer, parsed;
 * changed in place or replaced by a new reference, the old one released):
 * HubSpot single read and batch/read (a record created in dry-run that the
 * CRM reported missing becomes a result, a deleted one an error), Salesforce
 * single GET and collections retrieve (null for a deleted record). recs has
 * ops->n entries (NULL where the op has no overlay). *status is updated.
 * Returns the number of records changed, or -1 with err.
 */
int synth_overlay_merge(enum crm crm, const struct crm_request *req, const struct crm_ops *ops,
                        json_t *const *recs, json_t **answer, int *status, char *err,
                        size_t errlen);

#endif
