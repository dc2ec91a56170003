/*
 * metrics.c - the counters behind GET /metrics and their rendering.
 *
 * The request-path counters are plain arrays indexed by enum values and
 * updated with relaxed atomic adds: a scrape may see one counter a moment
 * ahead of another, which Prometheus tolerates, and no worker ever waits.
 * Histograms keep per-bucket counts (the last one is +Inf) and are made
 * cumulative when rendered, so _count always equals the +Inf bucket.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "store.h"

#define METRICS_CRMS    3              /* CRM_NONE, CRM_HUBSPOT, CRM_SALESFORCE */
#define METRICS_VERBS   CRM_VERB_COUNT /* every enum crm_verb */
#define METRICS_BUCKETS 12             /* upstream latency bounds below */

static const double metrics_latency_bounds_s[METRICS_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

static const char *const metrics_decision_names[METRICS_DECISION_COUNT] = {"allow", "deny",
                                                                           "dry_run", "refused"};
static const char *const metrics_purpose_names[METRICS_PURPOSE_COUNT] = {"before_state",
                                                                         "oauth_refresh"};

static uint64_t metrics_requests[METRICS_CRMS][METRICS_VERBS][METRICS_DECISION_COUNT];
static uint64_t metrics_own[METRICS_CRMS][METRICS_PURPOSE_COUNT];
static uint64_t metrics_folded[METRICS_CRMS];

struct metrics_hist {
    uint64_t bucket[METRICS_BUCKETS + 1]; /* per bucket, not cumulative; last is +Inf */
    uint64_t sum_us;
};
static struct metrics_hist metrics_upstream[METRICS_CRMS];

struct metrics_family {
    char *name;
    char *help;
    enum metrics_type type;
    metrics_collect_fn fn;
    void *arg;
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_family metrics_families[METRICS_MAX_FAMILIES];
static size_t metrics_nfamilies;

struct metrics_out {
    struct evbuffer *buf;
    const char *name;
    size_t samples;
    int failed;
};

static size_t metrics_crm_index(enum crm crm)
{
    return (size_t)crm < METRICS_CRMS ? (size_t)crm : 0;
}

void metrics_request(enum crm crm, enum crm_verb verb, enum metrics_decision d)
{
    size_t v = (size_t)verb < METRICS_VERBS ? (size_t)verb : CRM_VERB_UNKNOWN;

    if ((size_t)d >= METRICS_DECISION_COUNT)
        return;
    __atomic_add_fetch(&metrics_requests[metrics_crm_index(crm)][v][d], 1, __ATOMIC_RELAXED);
}

void metrics_upstream_latency(enum crm crm, long long us)
{
    struct metrics_hist *h = &metrics_upstream[metrics_crm_index(crm)];
    size_t b = 0;

    if (us < 0)
        us = 0;
    while (b < METRICS_BUCKETS && (double)us > metrics_latency_bounds_s[b] * 1e6)
        b++;
    __atomic_add_fetch(&h->bucket[b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->sum_us, (uint64_t)us, __ATOMIC_RELAXED);
}

void metrics_own_call(enum crm crm, enum metrics_purpose purpose)
{
    if ((size_t)purpose >= METRICS_PURPOSE_COUNT)
        return;
    __atomic_add_fetch(&metrics_own[metrics_crm_index(crm)][purpose], 1, __ATOMIC_RELAXED);
}

void metrics_before_folded(enum crm crm, unsigned n)
{
    __atomic_add_fetch(&metrics_folded[metrics_crm_index(crm)], n, __ATOMIC_RELAXED);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static int metrics_name_ok(const char *name, int label)
{
    if (name == NULL || name[0] == '\0' || (name[0] >= '0' && name[0] <= '9'))
        return 0;
    for (const char *p = name; *p != '\0'; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (c == ':' && !label)))
            return 0;
    }
    return 1;
}

int metrics_family_add(const char *name, enum metrics_type type, const char *help,
                       metrics_collect_fn fn, void *arg)
{
    struct metrics_family *f;
    int rc = -1;

    if (!metrics_name_ok(name, 0) || fn == NULL || help == NULL || strchr(help, '\n') != NULL)
        return -1;
    pthread_mutex_lock(&metrics_lock);
    for (size_t i = 0; i < metrics_nfamilies; i++) {
        if (strcmp(metrics_families[i].name, name) == 0)
            goto out;
    }
    if (metrics_nfamilies >= METRICS_MAX_FAMILIES)
        goto out;
    f = &metrics_families[metrics_nfamilies];
    f->name = strdup(name);
    f->help = strdup(help);
    if (f->name == NULL || f->help == NULL) {
        free(f->name);
        f->name = NULL;
        free(f->help);
        f->help = NULL;
        goto out;
    }
    f->type = type;
    f->fn = fn;
    f->arg = arg;
    metrics_nfamilies++;
    rc = 0;
out:
    pthread_mutex_unlock(&metrics_lock);
    return rc;
}

/* A label value with \, " and newline escaped as the text format wants. */
static int metrics_add_escaped(struct evbuffer *buf, const char *v)
{
    for (const char *p = v; *p != '\0'; p++) {
        int rc;
        if (*p == '\\')
            rc = evbuffer_add(buf, "\\\\", 2);
        else if (*p == '"')
            rc = evbuffer_add(buf, "\\\"", 2);
        else if (*p == '\n')
            rc = evbuffer_add(buf, "\\n", 2);
        else
            rc = evbuffer_add(buf, p, 1);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int metrics_add_value(struct evbuffer *buf, double value)
{
    if (isnan(value))
        return evbuffer_add_printf(buf, " NaN\n") < 0 ? -1 : 0;
    if (isinf(value))
        return evbuffer_add_printf(buf, value > 0 ? " +Inf\n" : " -Inf\n") < 0 ? -1 : 0;
    if (value == (double)(long long)value && fabs(value) < 9e15)
        return evbuffer_add_printf(buf, " %lld\n", (long long)value) < 0 ? -1 : 0;
    return evbuffer_add_printf(buf, " %.15g\n", value) < 0 ? -1 : 0;
}

/* name{k="v",...} value */
static int metrics_line(struct evbuffer *buf, const char *name, const char *suffix, double value,
                        const char *const *labels, size_t nlabels)
{
    if (evbuffer_add_printf(buf, "%s%s", name, suffix) < 0)
        return -1;
    if (nlabels > 0) {
        if (evbuffer_add(buf, "{", 1) < 0)
            return -1;
        for (size_t i = 0; i < nlabels; i++) {
            if (evbuffer_add_printf(buf, "%s%s=\"", i > 0 ? "," : "", labels[2 * i]) < 0 ||
                metrics_add_escaped(buf, labels[2 * i + 1]) < 0 || evbuffer_add(buf, "\"", 1) < 0)
                return -1;
        }
        if (evbuffer_add(buf, "}", 1) < 0)
            return -1;
    }
    return metrics_add_value(buf, value);
}

static int metrics_head(struct evbuffer *buf, const char *name, const char *type, const char *help)
{
    return evbuffer_add_printf(buf, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) < 0 ? -1
                                                                                                : 0;
}

int metrics_sample(struct metrics_out *out, double value, const char *const *labels, size_t nlabels)
{
    if (out->failed || nlabels > METRICS_MAX_LABELS || out->samples >= METRICS_MAX_SAMPLES)
        return -1;
    for (size_t i = 0; i < nlabels; i++) {
        if (!metrics_name_ok(labels[2 * i], 1) || labels[2 * i + 1] == NULL)
            return -1;
    }
    if (metrics_line(out->buf, out->name, "", value, labels, nlabels) < 0) {
        out->failed = 1;
        return -1;
    }
    out->samples++;
    return 0;
}

/* One histogram: cumulative buckets (bounds in seconds), +Inf, _sum, _count. */
static int metrics_histogram(struct evbuffer *buf, const char *name, const char *const *labels,
                             size_t nlabels, const double *bounds, size_t nbounds,
                             const uint64_t *cumulative, uint64_t count, double sum_s)
{
    const char *l[2 * (METRICS_MAX_LABELS + 1)];
    char le[32];

    for (size_t i = 0; i < 2 * nlabels; i++)
        l[i] = labels[i];
    l[2 * nlabels] = "le";
    l[2 * nlabels + 1] = le;
    for (size_t b = 0; b < nbounds; b++) {
        snprintf(le, sizeof(le), "%g", bounds[b]);
        if (metrics_line(buf, name, "_bucket", (double)cumulative[b], l, nlabels + 1) < 0)
            return -1;
    }
    snprintf(le, sizeof(le), "+Inf");
    if (metrics_line(buf, name, "_bucket", (double)count, l, nlabels + 1) < 0 ||
        metrics_line(buf, name, "_sum", sum_s, labels, nlabels) < 0 ||
        metrics_line(buf, name, "_count", (double)count, labels, nlabels) < 0)
        return -1;
    return 0;
}

static int metrics_render_requests(struct evbuffer *buf)
{
    if (metrics_head(buf, "crmgate_requests_total", "counter",
                     "Classified CRM requests by CRM, verb (of the first operation) and "
                     "decision.") < 0)
        return -1;
    /* crm "none": requests refused before a CRM was known (no route) */
    for (size_t c = 0; c < METRICS_CRMS; c++) {
        for (size_t v = 0; v < METRICS_VERBS; v++) {
            for (size_t d = 0; d < METRICS_DECISION_COUNT; d++) {
                uint64_t n = __atomic_load_n(&metrics_requests[c][v][d], __ATOMIC_RELAXED);
                const char *l[] = {"crm",      crm_name((enum crm)c),
                                   "verb",     crm_verb_name((enum crm_verb)v),
                                   "decision", metrics_decision_names[d]};
                if (n == 0)
                    continue;
                if (metrics_line(buf, "crmgate_requests_total", "", (double)n, l, 3) < 0)
                    return -1;
            }
        }
    }
    if (metrics_head(buf, "crmgate_upstream_latency_seconds", "histogram",
                     "Latency of forwarded requests at the CRM, from sending to the whole "
                     "answer.") < 0)
        return -1;
    for (size_t c = 1; c < METRICS_CRMS; c++) {
        uint64_t cum[METRICS_BUCKETS], total = 0;
        const char *l[] = {"crm", crm_name((enum crm)c)};
        for (size_t b = 0; b <= METRICS_BUCKETS; b++) {
            total += __atomic_load_n(&metrics_upstream[c].bucket[b], __ATOMIC_RELAXED);
            if (b < METRICS_BUCKETS)
                cum[b] = total;
        }
        if (metrics_histogram(
                buf, "crmgate_upstream_latency_seconds", l, 1, metrics_latency_bounds_s,
                METRICS_BUCKETS, cum, total,
                (double)__atomic_load_n(&metrics_upstream[c].sum_us, __ATOMIC_RELAXED) / 1e6) < 0)
            return -1;
    }
    if (metrics_head(buf, "crmgate_own_upstream_calls_total", "counter",
                     "Upstream calls crmgate made on its own behalf (they spend the customer's "
                     "API quota).") < 0)
        return -1;
    for (size_t c = 1; c < METRICS_CRMS; c++) {
        for (size_t p = 0; p < METRICS_PURPOSE_COUNT; p++) {
            const char *l[] = {"crm", crm_name((enum crm)c), "purpose", metrics_purpose_names[p]};
            if (metrics_line(buf, "crmgate_own_upstream_calls_total", "",
                             (double)__atomic_load_n(&metrics_own[c][p], __ATOMIC_RELAXED), l,
                             2) < 0)
                return -1;
        }
    }
    if (metrics_head(buf, "crmgate_before_reads_folded_total", "counter",
                     "Before-state reads saved: concurrent writes' reads answered by one batch "
                     "read.") < 0)
        return -1;
    for (size_t c = 1; c < METRICS_CRMS; c++) {
        const char *l[] = {"crm", crm_name((enum crm)c)};
        if (metrics_line(buf, "crmgate_before_reads_folded_total", "",
                         (double)__atomic_load_n(&metrics_folded[c], __ATOMIC_RELAXED), l, 1) < 0)
            return -1;
    }
    return 0;
}

static int metrics_gauge(struct evbuffer *buf, const char *name, const char *type, const char *help,
                         double v)
{
    return metrics_head(buf, name, type, help) < 0 || metrics_line(buf, name, "", v, NULL, 0) < 0
               ? -1
               : 0;
}

static int metrics_render_store(struct evbuffer *buf, struct store *s)
{
    static const uint64_t bounds_us[8] = STORE_LATENCY_BOUNDS_US;
    struct store_info si;
    double bounds[8];

    store_info(s, &si);
    for (size_t b = 0; b < 8; b++)
        bounds[b] = (double)bounds_us[b] / 1e6;
    if (metrics_head(buf, "crmgate_audit_commit_latency_seconds", "histogram",
                     "Audit store work from submission to its durable commit.") < 0 ||
        metrics_histogram(buf, "crmgate_audit_commit_latency_seconds", NULL, 0, bounds, 8,
                          si.latency_le, si.latency_count, (double)si.latency_sum_us / 1e6) < 0)
        return -1;
    if (metrics_gauge(buf, "crmgate_audit_commits_total", "counter",
                      "Audit store write transactions committed (one sync each).",
                      (double)si.commits) < 0 ||
        metrics_gauge(buf, "crmgate_audit_commit_errors_total", "counter",
                      "Audit store batches that failed.", (double)si.commit_errors) < 0 ||
        metrics_gauge(buf, "crmgate_audit_records_total", "counter",
                      "Audit records written since start.", (double)si.records) < 0 ||
        metrics_gauge(buf, "crmgate_audit_queue_depth", "gauge",
                      "Store work waiting for the writer.", (double)si.queue_depth) < 0 ||
        metrics_gauge(buf, "crmgate_audit_store_full", "gauge",
                      "1 when the last batch failed for lack of room: writes are refused.",
                      si.full ? 1 : 0) < 0 ||
        metrics_gauge(buf, "crmgate_lmdb_map_bytes", "gauge", "Current LMDB map size.",
                      (double)si.map_bytes) < 0 ||
        metrics_gauge(buf, "crmgate_lmdb_max_map_bytes", "gauge",
                      "The map grows up to this (store.max_map_bytes).",
                      (double)si.max_map_bytes) < 0 ||
        metrics_gauge(buf, "crmgate_lmdb_used_bytes", "gauge", "LMDB pages in use, in bytes.",
                      (double)si.used_bytes) < 0)
        return -1;
    return 0;
}

static int metrics_render_cache(struct evbuffer *buf, struct certs_cache *cache)
{
    struct certs_cache_stats cs;

    certs_cache_stats(cache, &cs);
    if (metrics_gauge(buf, "crmgate_leaf_cache_hits_total", "counter",
                      "Intercepted hosts answered with a cached leaf certificate.",
                      (double)cs.hits) < 0 ||
        metrics_gauge(buf, "crmgate_leaf_cache_misses_total", "counter",
                      "Leaf certificates minted (first use or expiry).", (double)cs.misses) < 0 ||
        metrics_gauge(buf, "crmgate_leaf_cache_entries", "gauge", "Leaf certificates cached.",
                      (double)cs.entries) < 0)
        return -1;
    return 0;
}

static int metrics_render_families(struct evbuffer *buf)
{
    int rc = 0;

    pthread_mutex_lock(&metrics_lock);
    for (size_t i = 0; i < metrics_nfamilies && rc == 0; i++) {
        struct metrics_family *f = &metrics_families[i];
        struct evbuffer *part = evbuffer_new();
        struct metrics_out out = {.buf = part, .name = f->name};
        if (part == NULL) {
            rc = -1;
            break;
        }
        /* A collector that fails leaves nothing half-written. */
        if (metrics_head(part, f->name, f->type == METRICS_COUNTER ? "counter" : "gauge",
                         f->help) == 0 &&
            f->fn(&out, f->arg) == 0 && !out.failed)
            rc = evbuffer_add_buffer(buf, part);
        evbuffer_free(part);
    }
    pthread_mutex_unlock(&metrics_lock);
    return rc;
}

int metrics_render(struct evbuffer *buf, struct store *s, struct certs_cache *cache)
{
    if (metrics_render_requests(buf) < 0)
        return -1;
    if (s != NULL && metrics_render_store(buf, s) < 0)
        return -1;
    if (cache != NULL && metrics_render_cache(buf, cache) < 0)
        return -1;
    return metrics_render_families(buf);
}
