/*
 * enforce.h - the policy steps of the request pipeline, between route and
 * forward: identify the caller, classify the request into CRM operations,
 * decide, and later filter the CRM's answer. The CRM logic itself is pure
 * and lives in policy/; this module feeds it and keeps per-request state.
 */
#ifndef CRMGATE_ENFORCE_H
#define CRMGATE_ENFORCE_H

#include <event2/buffer.h>

#include "../policy/crm.h"
#include "../policy/decide.h"
#include "config.h"
#include "conn.h"

#define ENFORCE_MAX_HEADER_VALUE 1024 /* content-type and friends, copied for classify */

/* A crmgate key the caller presented (custody.h), resolved by the exchange. */
struct enforce_key {
    const struct config_caller *caller; /* its identity, or NULL when refused */
    const char *refusal;                /* why it was refused: unknown, revoked, expired */
};

struct enforce {
    enum crm crm;
    const struct config_caller *caller; /* the config's, or the exchange's key identity */
    int via_key;                        /* identified by a crmgate key: crmgate injects the token */
    const struct rules_ws *ws;
    struct crm_ops ops;
    struct policy_verdict verdict;
    int status;       /* the answer when denied: 403, or 400 for a malformed query */
    const char *code; /* crmgate reason code of the denial */
    int soql;         /* a Salesforce query: its answer may hand out locators */
    int oauth;        /* an OAuth call (revocations too): errors take the OAuth shape {error,
                         error_description} */
};

/* The request as the classifiers see it (policy/crm.h), with the buffers it points into. */
struct enforce_view {
    struct crm_request cr;
    char *path;
    char ctype[ENFORCE_MAX_HEADER_VALUE], cenc[ENFORCE_MAX_HEADER_VALUE],
        override[ENFORCE_MAX_HEADER_VALUE], duprule[ENFORCE_MAX_HEADER_VALUE];
};

/*
 * Build the view of req (rest = the target after the CRM prefix); it points
 * into req's body, so it lives no longer than req. 0 / -1 out of memory;
 * release with enforce_view_free.
 */
int enforce_view_init(struct enforce_view *v, const struct http_request *req, const char *rest);
void enforce_view_free(struct enforce_view *v);

/*
 * Run identify, classify and decide for req (rest = the target after the
 * CRM prefix). key: a crmgate key the caller presented, or NULL; then
 * proxy_fp: the caller's fingerprint from a forward-mode
 * Proxy-Authorization, or NULL to identify by the request's Authorization.
 * A caller identified by its own CRM token's fingerprint passes only where
 * the workspace sets allow_passthrough. Returns 1 when the
 * request may be forwarded, 0 when it must be answered with the denial in ef (status, code,
 * verdict), -1 when out of memory. ef must be zeroed first and released with enforce_free.
 */
int enforce_request(struct enforce *ef, const struct config *cfg, enum crm crm,
                    const struct http_request *req, const char *rest, const char *proxy_fp,
                    const struct enforce_key *key);

/*
 * Filter a successful answer in place: body (the whole JSON answer) loses
 * every field the workspace may not read. Returns 0, or -1 with why set
 * when the answer cannot be inspected (it must then not be relayed).
 */
int enforce_response(struct enforce *ef, long status, const char *content_type,
                     struct evbuffer *body, char *why, size_t whylen);

/* A revocation's record: the kind of token, ':', the first hex digits of its SHA-256. */
#define ENFORCE_REVOKED_FP_HEX 8
#define ENFORCE_REVOKED_RECORD 48

/*
 * Turn the token each REVOKE operation carries (crm_op.secret) into its
 * record id, "<kind>:<first ENFORCE_REVOKED_FP_HEX hex digits of the
 * token's SHA-256>" ("refresh_token:1a2b3c4d"): the prefix of the
 * fingerprint crmgate identifies callers by, never reversible to the
 * token. The token is wiped and freed. 0 / -1 (out of memory).
 */
int enforce_revoked_fingerprint(struct crm_ops *ops);

/* Release what ef holds. */
void enforce_free(struct enforce *ef);

#endif
