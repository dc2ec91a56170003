/*
 * hubspot.h - the HubSpot classifier: one HTTP request to api.hubapi.com
 * becomes the CRM operations it performs (see crm.h).
 *
 * Covered: the v3 objects API and its date-based twin (/crm/objects/2026-03),
 * single, batch (read/create/update/upsert/archive), search, merge and
 * gdpr-delete; v3 and v4 associations (single and batch, and the date-based
 * /crm/associations/2026-03); the properties, owners and schemas APIs
 * (schema_read); OAuth (auth), and its token revocations, DELETE
 * /oauth/v1/refresh-tokens/{token} and POST /oauth/v3/token/revoke
 * (revoke: crm_revoke_op); the legacy /contacts/v1, /companies/v2 and
 * /deals/v1 record endpoints. Everything else is CRM_VERB_UNKNOWN.
 *
 * Normalisation: literal path segments match case-insensitively, empty
 * segments ("//", a trailing "/") are skipped, each segment is
 * percent-decoded exactly once. Object types become the canonical plural
 * ("contact", "CONTACTS", "0-1" -> "contacts"); custom "2-<n>" and
 * "p_<name>" / "p<portal>_<name>" are lower-cased as given. Record ids and
 * property names are kept as sent: the rules are whitelists, so a spelling
 * HubSpot might treat as equal but the rules do not know is denied, never
 * let through.
 *
 * Denied (one CRM_VERB_UNKNOWN op whose detail says why): an encoded "/" or
 * "\", a "." or ".." segment, a raw ";" in the path or the query (path
 * parameters and a parameter separator to some servers), a NUL or control
 * byte, an invalid or double ("%252F") percent escape; a query parameter spelled like a known one
 * in another case ("Properties"); a repeated idProperty or archived; a known parameter on an
 * endpoint that does not take it; any Content-Encoding but identity; a JSON body that does not
 * parse, repeats a key or has a shape or key the endpoint does not define; a body where none is
 * expected; a property value that is not a scalar; the same property written twice in a legacy
 * list; an empty batch; and any X-HTTP-Method-Override header. HubSpot does not document that
 * header, but its Java front end could honour it (as Jersey and Google front ends do), which would
 * run a request we classified as GET as a DELETE; no HubSpot client sends it, so it is denied.
 *
 * Representation choices the decide stage relies on:
 *  - Reading associations (GET ...?associations=companies, the v3/v4
 *    association list and v4 batch/read) is a read of the pseudo-field
 *    "associations.<canonical type>" on the record's op (v4 list/batch read
 *    also set to_object). Such a read returns only ids and association
 *    labels of the other records, never their properties, so it belongs to
 *    the record being read; decide should allow it when the workspace may
 *    read the other type. A search filter on "associations.company" is the
 *    same read and is canonicalised the same way.
 *  - Search "query" (free text over HubSpot's default searchable
 *    properties, which the whitelist cannot check one by one) is a read of
 *    the pseudo-field "*query" ("*" never occurs in a HubSpot property
 *    name); decide denies it unless a rule allows free-text search.
 *  - reads_default is set when no "properties" list is given (GET, search,
 *    batch/read, legacy profiles): HubSpot then returns its default set.
 *  - Associations given on create (v3 body "associations", batch create
 *    inputs) add one CRM_VERB_ASSOCIATE op per target after the create op,
 *    with no id (the record does not exist yet). The target type is derived
 *    from HUBSPOT_DEFINED association type ids; a type id that does not
 *    resolve, or that names another source type, is denied, because HubSpot
 *    would act on a different object type than the path says.
 *  - Upsert (batch/upsert, legacy createOrUpdate and batch by email) may
 *    create, and writes the idProperty itself: it appears in writes.
 *  - Property definition writes (create, update, archive of properties,
 *    groups, schemas, association labels) change the portal schema: they
 *    are CRM_VERB_UNKNOWN, so denied, not a separate verb.
 *  - Dissociate: v4 DELETE, v4 batch/archive and batch/labels/archive, v3
 *    DELETE and v3 batch/archive. One op per (from, to) pair.
 *
 * Pure: libc and jansson only, no I/O, no clock.
 */
#ifndef CRMGATE_HUBSPOT_H
#define CRMGATE_HUBSPOT_H

#include "crm.h"

#define HUBSPOT_MAX_PATH   4096 /* longer paths are denied (HubSpot answers 414 well before) */
#define HUBSPOT_MAX_QUERY  8192
#define HUBSPOT_MAX_PARAMS 256 /* tracked parameters (properties, ...) per request */
#define HUBSPOT_MAX_SEGS   16
#define HUBSPOT_MAX_BATCH  1000 /* inputs per batch; HubSpot allows 100 (legacy 1000) */
#define HUBSPOT_MAX_ID     256

/* Classify req into out (empty on entry): 0 with >= 1 op; -1 only when out of memory (out empty).
 */
int hubspot_classify(const struct crm_request *req, struct crm_ops *out);

#endif
