/*
 * refresh.h - OAuth refresh of an integration's access token, single-flight
 * across every worker.
 *
 *   HubSpot:    POST {upstreams.hubspot}/oauth/v1/token
 *   Salesforce: POST {instance URL}/services/oauth2/token
 *   (or the integration's own token URL), form-encoded
 *   grant_type=refresh_token&refresh_token=..&client_id=..&client_secret=..
 *
 * The first request that finds a token due starts one refresh through its
 * worker's libcurl multi; every request that needs the same integration
 * meanwhile, in any worker, waits for it without blocking its loop (its
 * callback runs on its own loop). The new tokens are sealed and committed
 * before anyone is told; then the waiters read them back from the store.
 *
 * A refresh the token endpoint refuses (4xx: a revoked refresh token, a
 * wrong client secret) marks the integration as needing attention; any
 * failed refresh writes an audit record (verb "oauth_refresh", outcome
 * "upstream_error").
 */
#ifndef CRMGATE_REFRESH_H
#define CRMGATE_REFRESH_H

#include "config.h"
#include "custody.h"

struct worker;
struct refresh_wait;

struct refresh_result {
    int ok;
    int status;       /* !ok: the answer for the agent (403 refused, 502 failed, 503 store) */
    const char *code; /* !ok: crmgate reason code */
    char message[512];
};

/* Runs on the waiter's own loop; res lives until it returns. */
typedef void (*refresh_done_cb)(const struct refresh_result *res, void *arg);

/*
 * Wait for r's token to be refreshed, starting the refresh unless one is
 * under way. NULL when out of memory (no callback).
 */
struct refresh_wait *refresh_start(struct worker *w, struct config *cfg,
                                   const struct custody_ref *r, refresh_done_cb cb, void *arg);

/* Stop waiting: the callback will not run. The refresh itself goes on for the others. */
void refresh_cancel(struct refresh_wait *rw);

/*
 * The CRM refused r's token although crmgate held it fresh: record why in
 * the integration (admin API, metrics) and make the next request refresh
 * an OAuth token. Fire and forget.
 */
void refresh_mark_attention(struct worker *w, const struct custody_ref *r, int oauth,
                            const char *why);

/* Integrations needing attention, for the metrics: calls fn per integration; 0 / -1. */
int refresh_attention_each(struct store *s,
                           void (*fn)(const struct custody_ref *r, int attention, void *arg),
                           void *arg);

/* Refreshes this process started, by CRM (for the metrics). */
unsigned long refresh_count(enum crm crm);

#endif
