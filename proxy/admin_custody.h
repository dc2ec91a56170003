/*
 * admin_custody.h - the admin API's credential custody endpoints, and the
 * needs-attention gauge:
 *
 *   POST   /v1/keys            {"workspace","user"?,"kind":"chat"|"workflow","workflow"?,
 *                               "expires_ms"?}  -> 201 {"id","key",...}: the key, once
 *   GET    /v1/keys[?workspace=W]               -> {"keys":[{"id","workspace",...}]}
 *   DELETE /v1/keys/{id}                        revoke (the record stays, revoked_ms set)
 *   PUT    /v1/integrations    {"workspace","crm","user"?,"type":"private_app"|"oauth",
 *                               "access_token","refresh_token"?,"client_id"?,
 *                               "client_secret"?,"expires_in"?,"instance_url"?,"token_url"?}
 *                               -> 201 {"workspace","crm","scope","user","type",...}: no secret
 *   GET    /v1/integrations[?workspace=W]       -> {"integrations":[...]}: no secret
 *   DELETE /v1/integrations?workspace=W&crm=C[&user=U]
 *
 *   crmgate_integration_needs_attention{workspace,crm,integration}  gauge
 *
 * Secrets arrive in request bodies only, are sealed with the vault before
 * they are stored, and never appear in an answer or a log line.
 */
#ifndef CRMGATE_ADMIN_CUSTODY_H
#define CRMGATE_ADMIN_CUSTODY_H

struct store;

/* Add the routes and the gauge (read from s at each scrape). 0 / -1. Before admin_open. */
int admin_custody_register(struct store *s);

#endif
