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
 * A failed refresh writes one audit record (verb "oauth_refresh", outcome
 * "upstream_error") and holds the integration's refreshes back, in its
 * record (so every worker, the admin API and a restart see it):
 *
 *   - refused for good: the token endpoint refused it (4xx but 408 and 429:
 *     invalid_grant, invalid_client, a revoked refresh token), crmgate
 *     holds no refresh token, or the answer named a Salesforce instance URL
 *     outside vault.salesforce_domains. The integration needs attention and
 *     is never refreshed again until an admin stores it again; its calls
 *     get 403 integration_refresh_refused at once.
 *   - failed (5xx, 408, 429, timeout, refused connection, an unusable
 *     answer): the n-th failure in a row waits custody_backoff_ms(n)
 *     (vault.refresh_backoff_min_ms doubling up to refresh_backoff_max_ms,
 *     jittered); calls that need the refresh meanwhile get 503
 *     integration_refresh_backoff with Retry-After, and nothing is sent to
 *     the token endpoint. The first call after the wait refreshes again; a
 *     success clears the count.
 *
 * Held calls write no oauth_refresh record (no refresh was tried); a held
 * write is still audited by the exchange, as every refused write is.
 */
#ifndef CRMGATE_REFRESH_H
#define CRMGATE_REFRESH_H

#include "config.h"
#include "custody.h"

struct worker;
struct refresh_wait;

struct refresh_result {
    int ok;
    int status;        /* !ok: the answer for the agent (403 refused, 502 failed, 503 held) */
    const char *code;  /* !ok: crmgate reason code */
    int retry_after_s; /* !ok: seconds until a refresh may be tried again, 0: not said */
    char message[512];
};

/* An integration's refresh state as its record holds it (admin API, metrics). */
struct refresh_state {
    int attention;     /* needs an admin */
    int failures;      /* consecutive failed refreshes, 0 after a success */
    long long next_ms; /* no refresh before this (wall clock), 0: any time */
    int refused;       /* refused for good: none until an admin stores it again */
};

enum refresh_hold { REFRESH_HOLD_BACKOFF, REFRESH_HOLD_REFUSED, REFRESH_HOLD_COUNT };

/* Runs on the waiter's own loop; res lives until it returns. */
typedef void (*refresh_done_cb)(const struct refresh_result *res, void *arg);

/*
 * Whether c (r's credentials as read) may not be refreshed now: 0 when a
 * refresh may start, 1 with res filled (403 refused for good, or 503 and
 * retry_after_s while backing off: refresh_waiting with max_ms) and the
 * hold counted.
 */
int refresh_held(const struct custody_ref *r, const struct custody_cred *c, long long now_ms,
                 unsigned max_ms, struct refresh_result *res);

/*
 * Whether a back-off that ends at next_ms (wall clock) still runs at now_ms:
 * not when it ended, nor when it ends further off than max_ms
 * (vault.refresh_backoff_max_ms), which no wait crmgate sets can: the
 * maximum was lowered since, or the wall clock set back. 1 / 0.
 */
int refresh_waiting(long long next_ms, long long now_ms, unsigned max_ms);

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

/* Every integration's refresh state, for the metrics: calls fn per integration; 0 / -1. */
int refresh_state_each(struct store *s,
                       void (*fn)(const struct custody_ref *r, const struct refresh_state *st,
                                  void *arg),
                       void *arg);

/* An integration record's refresh state (the stored JSON object). */
void refresh_state_of(json_t *rec, struct refresh_state *st);

/* Refreshes this process started, by CRM (for the metrics). */
unsigned long refresh_count(enum crm crm);

/* Calls answered without a refresh because of hold h, by CRM (for the metrics). */
unsigned long refresh_held_count(enum crm crm, enum refresh_hold h);

#endif
