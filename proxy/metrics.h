/*
 * metrics.h - process-wide counters and their Prometheus text rendering
 * (GET /metrics on the admin API).
 *
 * The request path only adds to fixed arrays of relaxed C11-style atomics:
 * no lock, no allocation. Label sets are small and bounded (crm x verb x
 * decision, crm x purpose). Families other modules compute at render time
 * (a gauge per integration, ...) register a collector once at start-up.
 *
 * Names (stable; dashboards and other modules use them):
 *   crmgate_requests_total{crm,verb,decision}           counter (decision: allow, deny,
 *                                                       dry_run, refused)
 *   crmgate_upstream_latency_seconds{crm}               histogram (forwarded requests)
 *   crmgate_own_upstream_calls_total{crm,purpose}       counter (before_state, oauth_refresh)
 *   crmgate_audit_commit_latency_seconds                histogram (submit to durable commit)
 *   crmgate_audit_commits_total                         counter (one sync each)
 *   crmgate_audit_commit_errors_total                   counter
 *   crmgate_audit_records_total                         counter
 *   crmgate_audit_queue_depth                           gauge
 *   crmgate_audit_store_full                            gauge (1: writes refused)
 *   crmgate_lmdb_map_bytes, crmgate_lmdb_used_bytes     gauges
 *   crmgate_lmdb_max_map_bytes                          gauge
 *   crmgate_leaf_cache_hits_total, crmgate_leaf_cache_misses_total   counters
 *   crmgate_leaf_cache_entries                          gauge (forward/transparent CA)
 */
#ifndef CRMGATE_METRICS_H
#define CRMGATE_METRICS_H

#include <stddef.h>

#include <event2/buffer.h>

#include "../certs/mint.h"
#include "../policy/crm.h"

#define METRICS_MAX_FAMILIES 32   /* collectors other modules may register */
#define METRICS_MAX_LABELS   8    /* label pairs of one sample */
#define METRICS_MAX_SAMPLES  4096 /* samples one collector may emit per scrape */

/*
 * METRICS_REFUSED: crmgate answered with an error of its own that is not a
 * policy decision: no route (crm "none") or method, a bad context header,
 * the store refusing the audit record, a write dry-run cannot answer, a
 * before-state crmgate could not read, an integration it could not use.
 */
enum metrics_decision {
    METRICS_ALLOW,
    METRICS_DENY,
    METRICS_DRY_RUN,
    METRICS_REFUSED,
    METRICS_DECISION_COUNT
};

enum metrics_purpose {
    METRICS_PURPOSE_BEFORE_STATE,  /* crmgate's reads of a write's before-state */
    METRICS_PURPOSE_OAUTH_REFRESH, /* token refreshes crmgate makes for an integration */
    METRICS_PURPOSE_COUNT
};

enum metrics_type { METRICS_GAUGE, METRICS_COUNTER };

struct store;
struct metrics_out;

/* One classified request answered with decision d. Any thread, lock-free. */
void metrics_request(enum crm crm, enum crm_verb verb, enum metrics_decision d);

/* A forwarded request's upstream latency (send to full answer), microseconds. Any thread. */
void metrics_upstream_latency(enum crm crm, long long us);

/* One upstream call crmgate made on its own behalf (it spends the customer's quota). */
void metrics_own_call(enum crm crm, enum metrics_purpose purpose);

/* n before-state reads saved: a folded read answered the writes of n + 1 requests (before.c). */
void metrics_before_folded(enum crm crm, unsigned n);

/*
 * A collector: called on the admin thread at every scrape; emits its
 * samples with metrics_sample and returns 0 (or -1: the family is left out
 * of this scrape).
 */
typedef int (*metrics_collect_fn)(struct metrics_out *out, void *arg);

/*
 * Register a family computed at scrape time: name (a valid Prometheus
 * metric name, unique), its type and a one-line help text (both copied).
 * 0, or -1 when the name is invalid, taken, or the table is full. Call at
 * start-up (before the admin thread serves), or any time: it takes a mutex.
 */
int metrics_family_add(const char *name, enum metrics_type type, const char *help,
                       metrics_collect_fn fn, void *arg);

/*
 * Emit one sample from inside a collector: labels is nlabels (name, value)
 * pairs, 2 * nlabels strings (values escaped here). 0 / -1 past limits.
 */
int metrics_sample(struct metrics_out *out, double value, const char *const *labels,
                   size_t nlabels);

/*
 * Append the whole exposition (text format 0.0.4) to buf: the counters
 * above, the store's (s may be NULL), the leaf cache's (cache may be
 * NULL), then the registered families. 0 / -1 out of memory.
 */
int metrics_render(struct evbuffer *buf, struct store *s, struct certs_cache *cache);

#endif
