/*
 * audit.h - a request's audit records (store.h has their format): one per
 * CRM operation, built from the caller's identity and context headers, the
 * operations and decision, the before-state and the outcome.
 *
 * Context headers (stripped before forwarding, like every X-Crmgate-*):
 *   X-Crmgate-Workflow  the workflow id (AUDIT_MAX_CONTEXT characters)
 *   X-Crmgate-Call      the call or meeting id (AUDIT_MAX_CONTEXT)
 *   X-Crmgate-Reason    the agent's stated reason (AUDIT_MAX_REASON)
 *   X-Crmgate-Dry-Run   "1" or "true": this request in dry-run; it can turn
 *                       dry-run on, never off ("0"/"false" change nothing)
 */
#ifndef CRMGATE_AUDIT_H
#define CRMGATE_AUDIT_H

#include <stdint.h>

#include <jansson.h>

#include "../policy/jsonout.h"
#include "custody.h"
#include "enforce.h"
#include "http.h"
#include "store.h"

#define AUDIT_MAX_CONTEXT 256
#define AUDIT_MAX_REASON  1000

struct audit_ctx {
    char workflow[AUDIT_MAX_CONTEXT + 1]; /* "" when absent */
    char call[AUDIT_MAX_CONTEXT + 1];
    char reason[AUDIT_MAX_REASON + 1];
    int dry_run; /* X-Crmgate-Dry-Run asked for dry-run */
};

/*
 * Read the context headers into ctx. 0, or -1 with why (for a 400): a
 * header given twice, too long, not UTF-8 or carrying control characters,
 * or a Dry-Run value that is not 1/0/true/false.
 */
int audit_context(const struct http_fields *headers, struct audit_ctx *ctx, char *why,
                  size_t whylen);

/*
 * Whether the request writes, and so is audited: an operation that
 * creates, changes, deletes or (dis)associates, an OAuth token revocation
 * (whatever its method), or one crmgate could not
 * classify sent with a method other than GET/HEAD/OPTIONS.
 */
int audit_write_class(const struct crm_ops *ops, const char *method);

struct audit_in {
    const struct enforce *ef; /* identity (may be NULL), workspace, ops, verdict */
    const struct audit_ctx *ctx;
    const char *decision;         /* "allow", "deny", "dry_run" */
    const char *outcome;          /* store.h's outcomes */
    json_t *const *before;        /* ef->ops.n entries or NULL */
    const unsigned char *unknown; /* ef->ops.n flags: before-state unknown ("before_state":
                                     "unavailable" in the record), or NULL */
    char *const *ids; /* ef->ops.n record ids replacing the ops' own (dry-run creates), or NULL */
    long long ts_ms;
    const char *request_id;
    const struct custody_ref *integration; /* the integration a crmgate key acted with, or
                                              NULL: the agent's own token (pass-through) */
    const char *key_id;                    /* the crmgate key's id, or NULL */
    int synthetic;                         /* the answer was synthesized (dry-run) */
    int keep_volatile;                     /* store.record_volatile_fields */
};

/*
 * One operation's record while its request runs (store.h has the format),
 * written straight to JSON when committed (audit_submit): no JSON tree is
 * built for it. The members a request changes after building are here;
 * the rest come from the operation and from audit_records.
 */
struct audit_rec {
    const struct crm_op *op; /* crm, verb, object, id_property, detail, to */
    char *record;            /* owned; NULL: null ("" only as a create's id set it) */
    const char *outcome;     /* a string literal (store.h's outcomes) */
    const char *error;       /* a string literal, or NULL: no "error" member */
    long upstream_status;    /* the CRM's status; 0 or less: null */
    long long latency_us;
    uint64_t id;        /* the store's id once appended (audit_set_ids), 0 before */
    json_t *fields;     /* diff_fields' [{name, before, after}], owned */
    int before_unknown; /* "before_state": "unavailable" */
    int record_late;    /* record was set after the records were built (a create's id) */
};

#define AUDIT_MAX_REQUEST_ID 63

/*
 * A request's records: what they share, and one audit_rec per operation.
 * The strings audit_in pointed at (the enforce, the context, the
 * integration, the key id, decision) are borrowed: they outlive the
 * records. request_id and the record ids are copied.
 */
struct audit_records {
    const struct enforce *ef;
    const struct audit_ctx *ctx;
    const char *decision;
    const struct custody_ref *integration;
    const char *key_id;
    long long ts_ms;
    char request_id[AUDIT_MAX_REQUEST_ID + 1]; /* "" for none */
    int synthetic;
    size_t n;
    struct audit_rec *v;
};

/*
 * The records (one per operation), or NULL when out of memory or when a
 * string they carry is not UTF-8 (as building them in JSON refused).
 */
struct audit_records *audit_records(const struct audit_in *in);

/* Release r (NULL is ignored). */
void audit_records_free(struct audit_records *r);

/*
 * Record i as its JSON object (store.h's format, compact with sorted keys,
 * the bytes jsonout_dumps would write of it) appended to out. With id_at,
 * its "id" is written as "" and *id_at is the offset between those quotes
 * (store_record.id_at); without, as its id. 0 / -1 out of memory.
 */
int audit_record_json(const struct audit_records *r, size_t i, struct jsonout *out, size_t *id_at);

/*
 * Hand the records to the store: appended (update 0; overlay and seen as
 * store_audit_append_seen: the store's, also on failure) or replacing the
 * appended ones by id (update 1). 0 / -1 as store_audit_submit.
 */
int audit_submit(const struct audit_records *r, struct store_port *p, int update, json_t *overlay,
                 struct store_seen *seen, size_t nseen, store_done_cb cb, void *arg);

/* Give the records the ids the store assigned: first, first + 1, ... */
void audit_set_ids(struct audit_records *r, uint64_t first);

/*
 * Complete records: outcome (a literal), the CRM's status (0: none, null),
 * latency, and an error code (a literal; NULL: leave as is). 0.
 */
int audit_set_outcome(struct audit_records *r, const char *outcome, long upstream_status,
                      long long latency_us, const char *error);

/*
 * A batch the CRM answered in part (HubSpot 207 with "errors" naming ids in
 * context.ids; Salesforce collections' array with "success": false; a
 * Salesforce composite's or composite batch's entry for a subrequest, with
 * a status that is not 2xx, which a 200 answers whatever each did): mark
 * the records of the operations that failed "upstream_error". records are
 * parallel to ops (audit_records); body is the CRM's JSON answer. Returns
 * how many records were marked.
 */
size_t audit_batch_outcomes(struct audit_records *r, enum crm crm, const char *body, size_t len);

/*
 * Set record i's "record" id where it had none (a create's id from the
 * CRM's answer). 0 (also when there is no such record, id is NULL or the
 * record has an id), -1 when id is not UTF-8 or out of memory.
 */
int audit_set_record_id(struct audit_records *r, size_t i, const char *id);

/*
 * The ids of a multi-record create from the CRM's answer (audit_created.c):
 * HubSpot batch create (by objectWriteTraceId, else by the written values),
 * Salesforce collections, composite, composite batch and graph creates (by
 * position). req is the request body, ans the CRM's JSON answer. Records
 * that already have an id, or cannot be matched, are left as they are.
 * Returns how many ids were set.
 */
size_t audit_created_ids(struct audit_records *r, enum crm crm, const char *req, size_t rlen,
                         const char *ans, size_t alen);

#endif
