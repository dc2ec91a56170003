/*
 * refresh.c - single-flight OAuth refresh (see refresh.h).
 *
 * One process-wide list of flights (integrations being refreshed) under one
 * mutex; a flight is owned by the worker that started it, which runs the
 * token call on its own multi handle and commits the result through its
 * own store port. Each waiter owns an event on its own loop; the owner
 * activates it under the mutex, so a waiter cancelled on its loop (which
 * takes the same mutex first) is never activated after it is freed.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "log.h"
#include "metrics.h"
#include "refresh.h"
#include "server.h"
#include "store.h"
#include "upstream.h"

#define REFRESH_MAX_BODY   (4 * CUSTODY_MAX_SECRET) /* the form we post */
#define REFRESH_HS_DEFAULT 1800 /* HubSpot's lifetime when expires_in is absent */
#define REFRESH_MAX_PUTS   4    /* conditional puts of one refresh's record (refresh_retry) */
#define REFRESH_MAX_ERROR  64   /* bytes of a token endpoint's error code quoted in messages */

/* How a refresh failed: what it does to the integration's refresh state. */
enum refresh_kind {
    REFRESH_FAILED,   /* may work later: back off */
    REFRESH_REFUSED,  /* needs an admin: no refresh until the integration is stored again */
    REFRESH_UNCOUNTED /* not the token endpoint's doing (the store): state unchanged */
};

struct refresh_wait {
    struct refresh_wait *next;
    struct refresh_flight *flight; /* NULL once delivered */
    struct event *ev;              /* on the waiter's loop */
    refresh_done_cb cb;
    void *arg;
    struct refresh_result res;
};

struct refresh_flight {
    struct refresh_flight *next;
    unsigned char key[CUSTODY_MAX_KEY];
    size_t klen;
    struct custody_ref ref;
    struct refresh_wait *waiters;
    struct worker *w; /* the owner */
    struct config *cfg;
    struct custody_cred old;
    struct upstream_xfer *xfer;
    struct http_fields headers;
    char *url;
    char *body;
    char *value; /* the refreshed record, kept until it is stored (refresh_retry) */
    size_t vlen;
    int puts;
    json_t *patch;        /* a failure's refresh state, merged into the record (refresh_statecb) */
    long upstream_status; /* a failure's, for its audit record */
    struct refresh_result res;
};

static pthread_mutex_t refresh_lock = PTHREAD_MUTEX_INITIALIZER;
static struct refresh_flight *refresh_flights;
static unsigned long refresh_counts[3];
static unsigned long refresh_holds[3][REFRESH_HOLD_COUNT];

static long long refresh_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

unsigned long refresh_count(enum crm crm)
{
    return __atomic_load_n(&refresh_counts[crm], __ATOMIC_RELAXED);
}

unsigned long refresh_held_count(enum crm crm, enum refresh_hold h)
{
    return __atomic_load_n(&refresh_holds[crm][h], __ATOMIC_RELAXED);
}

static void refresh_waitcb(evutil_socket_t fd, short what, void *arg)
{
    struct refresh_wait *rw = arg;
    struct refresh_result res = rw->res;
    refresh_done_cb cb = rw->cb;
    void *cbarg = rw->arg;

    (void)fd, (void)what;
    /* gone before the callback, which may well start another wait */
    event_free(rw->ev);
    free(rw);
    if (res.code == NULL)
        res.code = "";
    cb(&res, cbarg);
}

static void refresh_flight_free(struct refresh_flight *f)
{
    config_unref(f->cfg);
    custody_cred_free(&f->old);
    http_fields_free(&f->headers);
    free(f->url);
    if (f->body != NULL)
        OPENSSL_cleanse(f->body, strlen(f->body));
    free(f->body);
    if (f->value != NULL)
        OPENSSL_cleanse(f->value, f->vlen);
    free(f->value);
    json_decref(f->patch);
    free(f);
}

/* Tell every waiter, unlink the flight and free it. On the owner's loop. */
static void refresh_deliver(struct refresh_flight *f)
{
    struct refresh_flight **pp;

    pthread_mutex_lock(&refresh_lock);
    for (pp = &refresh_flights; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    while (f->waiters != NULL) {
        struct refresh_wait *rw = f->waiters;
        f->waiters = rw->next;
        rw->next = NULL;
        rw->flight = NULL;
        rw->res = f->res;
        event_active(rw->ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&refresh_lock);
    refresh_flight_free(f);
}

static void refresh_fail(struct refresh_result *res, int status, const char *code, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));

static void refresh_fail(struct refresh_result *res, int status, const char *code, const char *fmt,
                         ...)
{
    va_list ap;

    res->ok = 0;
    res->status = status;
    res->code = code;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
}

int refresh_waiting(long long next_ms, long long now_ms, unsigned max_ms)
{
    return next_ms > now_ms && next_ms - now_ms <= (long long)max_ms;
}

int refresh_held(const struct custody_ref *r, const struct custody_cred *c, long long now_ms,
                 unsigned max_ms, struct refresh_result *res)
{
    const char *crm = crm_name(r->crm), *scope = custody_scope_name(r->scope);
    const char *for_user = r->scope == CUSTODY_SCOPE_USER ? " for user " : "";

    memset(res, 0, sizeof(*res));
    if (c->refresh_refused) {
        refresh_fail(res, 403, "integration_refresh_refused",
                     "crmgate no longer refreshes the %s token of the %s integration of workspace "
                     "%s%s%s: %s. An admin must reconnect it (crmgate integration add)",
                     crm, scope, r->ws, for_user, r->user,
                     c->attention[0] != '\0' ? c->attention
                                             : "its token endpoint refused an earlier refresh");
        __atomic_add_fetch(&refresh_holds[r->crm][REFRESH_HOLD_REFUSED], 1, __ATOMIC_RELAXED);
        return 1;
    }
    if (refresh_waiting(c->refresh_next_ms, now_ms, max_ms)) {
        res->retry_after_s = (int)((c->refresh_next_ms - now_ms + 999) / 1000);
        refresh_fail(res, 503, "integration_refresh_backoff",
                     "the %s token endpoint failed the last %d refresh%s of the %s integration of "
                     "workspace %s%s%s; crmgate waits before it tries again: retry after %d s",
                     crm, c->refresh_failures, c->refresh_failures == 1 ? "" : "es", scope, r->ws,
                     for_user, r->user, res->retry_after_s);
        __atomic_add_fetch(&refresh_holds[r->crm][REFRESH_HOLD_BACKOFF], 1, __ATOMIC_RELAXED);
        return 1;
    }
    return 0;
}

static void refresh_auditcb(enum store_status st, uint64_t first, size_t n, void *arg)
{
    struct refresh_flight *f = arg;

    (void)first, (void)n;
    if (st != STORE_OK)
        log_error("refresh: the failed refresh of %s/%s was not audited (%s)", f->ref.ws,
                  crm_name(f->ref.crm), store_status_name(st));
    refresh_deliver(f);
}

/*
 * Write a failed refresh's audit record (one per refresh, not per waiting
 * request), and tell the waiters once it is committed.
 */
static void refresh_audit(struct refresh_flight *f)
{
    long upstream_status = f->upstream_status;
    json_t *rec = json_pack(
        "{s:I, s:s, s:o, s:n, s:n, s:n, s:n, s:s, s:n, s:n, s:s, s:[], s:s, s:s, s:s, s:o, "
        "s:I, s:b, s:s, s:o, s:n}",
        "ts", (json_int_t)refresh_now_ms(), "workspace", f->ref.ws, "user",
        f->ref.scope == CUSTODY_SCOPE_USER ? json_string(f->ref.user) : json_null(), "kind",
        "workflow", "call", "reason", "crm", crm_name(f->ref.crm), "object", "record", "verb",
        "oauth_refresh", "fields", "decision", "allow", "rule", "builtin:oauth-refresh", "outcome",
        "upstream_error", "upstream_status",
        upstream_status > 0 ? json_integer(upstream_status) : json_null(), "latency_us",
        (json_int_t)0, "synthetic", 0, "error", f->res.code, "integration",
        custody_audit_json(&f->ref), "request_id");
    json_t *arr = rec != NULL ? json_pack("[o]", rec) : NULL;

    if (arr == NULL || store_audit_append(f->w->port, arr, NULL, refresh_auditcb, f) < 0) {
        log_error("refresh: the failed refresh of %s/%s could not be audited", f->ref.ws,
                  crm_name(f->ref.crm));
        refresh_deliver(f);
    }
}

/* The "sealed" member of a stored credentials record (a new string), or NULL. */
static char *refresh_sealed_of(const void *val, size_t len)
{
    json_t *rec = json_loadb(val, len, 0, NULL);
    const char *sealed = json_string_value(json_object_get(rec, "sealed"));
    char *d = sealed != NULL ? strdup(sealed) : NULL;

    json_decref(rec);
    return d;
}

/*
 * The integration's record as stored now (*len bytes; the caller frees it)
 * when its sealed credentials are still the ones this refresh started from:
 * only its clear part moved (a needs-attention mark from a call that got
 * 401 meanwhile). NULL when it was removed or an admin stored new
 * credentials: those win over anything this refresh would write.
 */
static void *refresh_current_same(struct refresh_flight *f, size_t *len)
{
    char err[256], *was, *now;
    void *cur =
        store_kv_get(f->w->store, STORE_TABLE_CREDENTIALS, f->key, f->klen, len, err, sizeof(err));
    int same;

    if (cur == NULL)
        return NULL;
    was = refresh_sealed_of(f->old.stored, f->old.stored_len);
    now = refresh_sealed_of(cur, *len);
    same = was != NULL && now != NULL && strcmp(was, now) == 0;
    free(was);
    free(now);
    if (!same) {
        free(cur);
        return NULL;
    }
    return cur;
}

static void refresh_statecb(enum store_status st, uint64_t first, size_t n, void *arg);

/* Put cur (curlen bytes, the record as stored) with f->patch merged in, if it is still cur. 0 / -1.
 */
static int refresh_state_put(struct refresh_flight *f, const void *cur, size_t curlen)
{
    json_t *rec = json_loadb(cur, curlen, 0, NULL);
    char *value = NULL;
    int rc = -1;

    if (rec != NULL && json_object_update(rec, f->patch) == 0)
        value = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    f->puts++;
    if (value != NULL)
        rc = store_kv_put(f->w->port, STORE_TABLE_CREDENTIALS, f->key, f->klen, value,
                          strlen(value), cur, curlen, refresh_statecb, f);
    if (value != NULL)
        OPENSSL_cleanse(value, strlen(value));
    free(value);
    json_decref(rec);
    return rc;
}

static void refresh_statecb(enum store_status st, uint64_t first, size_t n, void *arg)
{
    struct refresh_flight *f = arg;
    size_t len = 0;
    void *cur;

    (void)first, (void)n;
    if (st == STORE_CONFLICT) {
        cur = f->puts < REFRESH_MAX_PUTS ? refresh_current_same(f, &len) : NULL;
        if (cur != NULL && refresh_state_put(f, cur, len) == 0) {
            free(cur);
            return;
        }
        if (cur == NULL)
            log_notice("refresh: %s/%s was stored again or removed while its refresh failed; "
                       "its refresh state is left as it is now",
                       f->ref.ws, crm_name(f->ref.crm));
        free(cur);
    } else if (st != STORE_OK) {
        log_error("refresh: the refresh state of %s/%s was not stored (%s)", f->ref.ws,
                  crm_name(f->ref.crm), store_status_name(st));
    }
    refresh_audit(f);
}

/*
 * A failed refresh: log it, record it in the integration (kind: back off,
 * or refused until an admin acts), then audit it and tell the waiters.
 * f->res says why.
 */
static void refresh_failed(struct refresh_flight *f, long upstream_status, enum refresh_kind kind)
{
    int failures = f->old.refresh_failures + 1;

    f->upstream_status = upstream_status;
    if (kind == REFRESH_REFUSED) {
        f->patch = json_pack("{s:s, s:b, s:i, s:I}", "attention", f->res.message, "refresh_refused",
                             1, "refresh_failures", failures, "refresh_next_ms", (json_int_t)0);
    } else if (kind == REFRESH_FAILED) {
        unsigned rnd = 0;
        long long wait;
        size_t ml = strlen(f->res.message);
        if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
            rnd = (unsigned)refresh_now_ms(); /* jitter only: any value will do */
        wait = custody_backoff_ms(failures, f->cfg->vault_backoff_min_ms,
                                  f->cfg->vault_backoff_max_ms, rnd);
        f->res.retry_after_s = (int)((wait + 999) / 1000);
        if (ml + 64 < sizeof(f->res.message))
            snprintf(f->res.message + ml, sizeof(f->res.message) - ml,
                     "; crmgate tries again in %d s (failure %d in a row)", f->res.retry_after_s,
                     failures);
        f->patch = json_pack("{s:i, s:I}", "refresh_failures", failures, "refresh_next_ms",
                             (json_int_t)(refresh_now_ms() + wait));
    }
    log_warn("refresh: %s", f->res.message);
    if (kind == REFRESH_UNCOUNTED || f->old.stored == NULL) {
        refresh_audit(f);
        return;
    }
    if (f->patch == NULL || refresh_state_put(f, f->old.stored, f->old.stored_len) < 0) {
        log_error("refresh: the refresh state of %s/%s could not be queued", f->ref.ws,
                  crm_name(f->ref.crm));
        refresh_audit(f);
    }
}

static void refresh_storecb(enum store_status st, uint64_t first, size_t n, void *arg);

/*
 * The refreshed record's conditional put found the record changed. When
 * only its clear part moved (refresh_current_same), put again over it, or
 * the new tokens (and a rotated refresh token with them) would be thrown
 * away and the waiters sent on with the dead token. 1 when the put is
 * queued again.
 */
static int refresh_retry(struct refresh_flight *f)
{
    size_t len = 0;
    void *cur;
    int rc;

    if (f->value == NULL || f->puts >= REFRESH_MAX_PUTS)
        return 0;
    cur = refresh_current_same(f, &len);
    if (cur == NULL)
        return 0; /* removed, or an admin's new credentials */
    f->puts++;
    rc = store_kv_put(f->w->port, STORE_TABLE_CREDENTIALS, f->key, f->klen, f->value, f->vlen, cur,
                      len, refresh_storecb, f) == 0;
    free(cur);
    return rc;
}

static void refresh_storecb(enum store_status st, uint64_t first, size_t n, void *arg)
{
    struct refresh_flight *f = arg;

    (void)first, (void)n;
    if (st == STORE_CONFLICT && refresh_retry(f))
        return;
    if (st != STORE_OK && st != STORE_CONFLICT)
        refresh_fail(&f->res, 503, "credential_store_failed",
                     "crmgate refreshed the %s token of workspace %s but could not store it (%s); "
                     "nothing was sent",
                     crm_name(f->ref.crm), f->ref.ws, store_status_name(st));
    /* STORE_CONFLICT now: an admin replaced or removed the integration meanwhile; the waiters
     * read that */
    refresh_deliver(f);
}

static char *refresh_jdup(json_t *root, const char *name)
{
    const char *s = json_string_value(json_object_get(root, name));

    return s != NULL && s[0] != '\0' && strlen(s) <= CUSTODY_MAX_SECRET ? strdup(s) : NULL;
}

/* Whether e (a token endpoint's error code) is, holds or is part of secret s. */
static int refresh_echoes(const char *e, const char *s)
{
    return s != NULL && s[0] != '\0' && (strstr(s, e) != NULL || strstr(e, s) != NULL);
}

/*
 * The error code of a token endpoint's refusal, for messages: Salesforce's
 * "error" (invalid_grant), HubSpot's "status" (BAD_REFRESH_TOKEN), when it
 * is a short word; never the description, which may quote what was sent,
 * nor a word that echoes a secret in sent (an access or refresh token, or a
 * client secret, can be shaped like a code).
 */
static void refresh_error_code(struct evbuffer *body, const struct custody_cred *sent, char *out,
                               size_t outlen)
{
    json_t *root =
        json_loadb((const char *)evbuffer_pullup(body, -1), evbuffer_get_length(body), 0, NULL);
    const char *e = json_string_value(json_object_get(root, "error"));
    size_t n;

    if (e == NULL)
        e = json_string_value(json_object_get(root, "status"));
    n = e != NULL ? strlen(e) : 0;
    out[0] = '\0';
    if (n > 0 && n <= REFRESH_MAX_ERROR && n < outlen &&
        strspn(e, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n &&
        !refresh_echoes(e, sent->access_token) && !refresh_echoes(e, sent->refresh_token) &&
        !refresh_echoes(e, sent->client_secret))
        snprintf(out, outlen, ", %s", e);
    json_decref(root);
}

static void refresh_donecb(struct upstream_response *rsp, void *arg)
{
    struct refresh_flight *f = arg;
    struct custody_cred c = {0};
    json_t *root = NULL;
    char *value = NULL, code[REFRESH_MAX_ERROR + 3];
    size_t vlen = 0;
    long long now = refresh_now_ms();
    json_int_t expires_in;
    const struct vault *v = custody_vault();
    enum refresh_kind kind = REFRESH_FAILED;

    f->xfer = NULL;
    __atomic_add_fetch(&refresh_counts[f->ref.crm], 1, __ATOMIC_RELAXED);
    metrics_own_call(f->ref.crm, METRICS_PURPOSE_OAUTH_REFRESH);
    if (rsp->result != CURLE_OK) {
        refresh_fail(&f->res, 502, "integration_refresh_failed",
                     "crmgate could not refresh the %s token of %s (%s): %s", crm_name(f->ref.crm),
                     f->ref.ws, custody_scope_name(f->ref.scope), rsp->error);
        goto failed;
    }
    if (rsp->status < 200 || rsp->status > 299) {
        /* a 4xx is the endpoint's verdict on what crmgate holds (invalid_grant,
         * invalid_client): asking again cannot help. 408 and 429 are about the moment. */
        int refused =
            rsp->status >= 400 && rsp->status < 500 && rsp->status != 408 && rsp->status != 429;
        refresh_error_code(rsp->body, &f->old, code, sizeof(code));
        refresh_fail(&f->res, refused ? 403 : 502,
                     refused ? "integration_refresh_refused" : "integration_refresh_failed",
                     "the %s token endpoint %s the refresh of the %s integration of workspace %s "
                     "(status %ld%s)%s",
                     crm_name(f->ref.crm), refused ? "refused" : "failed",
                     custody_scope_name(f->ref.scope), f->ref.ws, rsp->status, code,
                     refused ? ": an admin must reconnect it (crmgate integration add)" : "");
        kind = refused ? REFRESH_REFUSED : REFRESH_FAILED;
        goto failed;
    }
    root = json_loadb((const char *)evbuffer_pullup(rsp->body, -1), evbuffer_get_length(rsp->body),
                      0, NULL);
    c.type = CUSTODY_TYPE_OAUTH;
    c.access_token = refresh_jdup(root, "access_token");
    if (!custody_token_ok(c.access_token)) {
        /* it goes into an Authorization header: a CR or LF in it would add headers of its own */
        refresh_fail(&f->res, 502, "integration_refresh_failed",
                     "the %s token endpoint answered without a usable access token",
                     crm_name(f->ref.crm));
        goto failed;
    }
    c.refresh_token = refresh_jdup(root, "refresh_token");
    if (c.refresh_token == NULL && f->old.refresh_token != NULL)
        c.refresh_token = strdup(f->old.refresh_token);
    if (f->ref.crm == CRM_SALESFORCE)
        c.instance_url = refresh_jdup(root, "instance_url");
    /* the new token would go there: refuse it rather than send it anywhere. Plain http (to
     * loopback: the test CRMs) only from a token endpoint that is plain http itself, never a
     * downgrade of an https session to whatever listens on a local port */
    if (c.instance_url != NULL &&
        (!custody_instance_url_ok(c.instance_url, (const char *const *)f->cfg->sf_domains,
                                  f->cfg->nsf_domains) ||
         (strncmp(c.instance_url, "http://", 7) == 0 && strncmp(f->url, "http://", 7) != 0))) {
        refresh_fail(&f->res, 403, "integration_refresh_refused",
                     "the salesforce token endpoint answered the refresh of the %s integration of "
                     "workspace %s with an instance_url outside the Salesforce domains "
                     "(vault.salesforce_domains; plain http only from a plain-http token "
                     "endpoint): crmgate dropped the new token; an admin must check the "
                     "integration and reconnect it (crmgate integration add)",
                     custody_scope_name(f->ref.scope), f->ref.ws);
        kind = REFRESH_REFUSED;
        goto failed;
    }
    if (c.instance_url == NULL && f->old.instance_url != NULL)
        c.instance_url = strdup(f->old.instance_url);
    c.client_id = f->old.client_id != NULL ? strdup(f->old.client_id) : NULL;
    c.client_secret = f->old.client_secret != NULL ? strdup(f->old.client_secret) : NULL;
    c.token_url = f->old.token_url != NULL ? strdup(f->old.token_url) : NULL;
    expires_in = json_integer_value(json_object_get(root, "expires_in"));
    c.lifetime_s = f->old.lifetime_s;
    if (expires_in <= 0)
        expires_in = c.lifetime_s > 0 ? c.lifetime_s
                                      : (f->ref.crm == CRM_SALESFORCE ? CUSTODY_SF_LIFETIME
                                                                      : REFRESH_HS_DEFAULT);
    if (expires_in > CUSTODY_MAX_EXPIRES_IN)
        expires_in = CUSTODY_MAX_EXPIRES_IN; /* now + expires_in * 1000 must not overflow */
    c.expires_ms = now + (long long)expires_in * 1000;
    c.created_ms = f->old.created_ms;
    c.updated_ms = now;
    f->res.ok = 1; /* once committed (refresh_storecb) */
    f->puts = 1;
    if (v == NULL || custody_cred_record(v, &f->ref, &c, &value, &vlen) < 0 ||
        store_kv_put(f->w->port, STORE_TABLE_CREDENTIALS, f->key, f->klen, value, vlen,
                     f->old.stored, f->old.stored_len, refresh_storecb, f) < 0) {
        refresh_fail(&f->res, 503, "credential_store_failed",
                     "crmgate refreshed the %s token but could not store it; nothing was sent",
                     crm_name(f->ref.crm));
        kind = REFRESH_UNCOUNTED;
        goto failed;
    }
    log_notice("refresh: %s token of workspace %s (%s%s%s) refreshed; valid %llds",
               crm_name(f->ref.crm), f->ref.ws, custody_scope_name(f->ref.scope),
               f->ref.user[0] != '\0' ? " " : "", f->ref.user, (long long)expires_in);
    json_decref(root);
    custody_cred_free(&c);
    f->value = value; /* refresh_retry may put it again; cleansed with the flight */
    f->vlen = vlen;
    return; /* refresh_storecb delivers */
failed:
    json_decref(root);
    custody_cred_free(&c);
    if (value != NULL)
        OPENSSL_cleanse(value, vlen);
    free(value);
    refresh_failed(f, rsp->result == CURLE_OK ? rsp->status : 0, kind);
}

/* Append key=urlencoded(value)&... to an open buffer; 0 / -1. */
static int refresh_form(char *out, size_t cap, size_t *len, const char *key, const char *val)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = *len;

    if (val == NULL)
        return 0;
    n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s=", n > 0 ? "&" : "", key);
    for (const unsigned char *p = (const unsigned char *)val; *p != '\0' && n + 4 < cap; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    if (n + 4 >= cap)
        return -1;
    out[n] = '\0';
    *len = n;
    return 0;
}

/* Read the credential again and either finish (no longer due) or post the refresh. */
static void refresh_begin(struct refresh_flight *f)
{
    struct upstream_request ur = {0};
    char err[300], url[CUSTODY_MAX_URL + 64];
    const char *send_url;
    size_t blen = 0;
    int found = custody_cred_read(f->w->store, custody_vault(), &f->ref, &f->old, err, sizeof(err));

    if (found <= 0) {
        refresh_fail(&f->res, found == 0 ? 403 : 503,
                     found == 0 ? "no_integration" : "credential_unreadable", "%s",
                     found == 0 ? "the integration was removed" : err);
        refresh_deliver(f);
        return;
    }
    if (!custody_cred_due(&f->old, refresh_now_ms(), f->cfg->vault_refresh_margin_s) &&
        f->old.attention[0] == '\0') {
        f->res.ok = 1; /* refreshed by an earlier flight meanwhile */
        refresh_deliver(f);
        return;
    }
    /* the caller read its record through a cache: the store has the last word on a hold */
    if (refresh_held(&f->ref, &f->old, refresh_now_ms(), f->cfg->vault_backoff_max_ms, &f->res)) {
        refresh_deliver(f);
        return;
    }
    if (f->old.type != CUSTODY_TYPE_OAUTH || f->old.refresh_token == NULL) {
        refresh_fail(&f->res, 403, "integration_expired",
                     "the %s token of the %s integration of workspace %s has expired and crmgate "
                     "holds no refresh token for it: an admin must reconnect it",
                     crm_name(f->ref.crm), custody_scope_name(f->ref.scope), f->ref.ws);
        refresh_failed(f, 0, REFRESH_REFUSED);
        return;
    }
    /* the refresh token and client secret go to the token URL, else (Salesforce) the instance
     * URL: only on the CRM's hosts (the caller checked its cached copy; this is the record as
     * stored now, and the configuration may have narrowed the domains since) */
    send_url = f->old.token_url != NULL       ? f->old.token_url
               : f->ref.crm == CRM_SALESFORCE ? f->old.instance_url
                                              : NULL;
    if (send_url != NULL && !custody_crm_url_ok(f->cfg, f->ref.crm, send_url)) {
        refresh_fail(&f->res, 403, "integration_instance_refused",
                     "the %s URL of the %s integration of workspace %s is not on a %s host (%s): "
                     "crmgate sends its refresh token nowhere else; an admin must reconnect it "
                     "(crmgate integration add)",
                     f->old.token_url != NULL ? "token" : "instance",
                     custody_scope_name(f->ref.scope), f->ref.ws,
                     f->ref.crm == CRM_SALESFORCE ? "Salesforce" : "HubSpot",
                     custody_domains_key(f->ref.crm));
        refresh_failed(f, 0, REFRESH_UNCOUNTED);
        return;
    }
    if (f->old.token_url != NULL)
        snprintf(url, sizeof(url), "%s", f->old.token_url);
    else if (f->ref.crm == CRM_HUBSPOT)
        snprintf(url, sizeof(url), "%s/oauth/v1/token", f->cfg->upstream_hubspot);
    else if (f->old.instance_url != NULL)
        snprintf(url, sizeof(url), "%s/services/oauth2/token", f->old.instance_url);
    else if (f->cfg->upstream_salesforce != NULL)
        snprintf(url, sizeof(url), "%s/services/oauth2/token", f->cfg->upstream_salesforce);
    else
        url[0] = '\0';
    f->body = malloc(REFRESH_MAX_BODY);
    f->url = strdup(url);
    if (url[0] == '\0' || f->body == NULL || f->url == NULL ||
        refresh_form(f->body, REFRESH_MAX_BODY, &blen, "grant_type", "refresh_token") < 0 ||
        refresh_form(f->body, REFRESH_MAX_BODY, &blen, "refresh_token", f->old.refresh_token) < 0 ||
        refresh_form(f->body, REFRESH_MAX_BODY, &blen, "client_id", f->old.client_id) < 0 ||
        refresh_form(f->body, REFRESH_MAX_BODY, &blen, "client_secret", f->old.client_secret) < 0 ||
        http_fields_add(&f->headers, "Content-Type", 12, "application/x-www-form-urlencoded", 33) <
            0 ||
        http_fields_add(&f->headers, "Accept", 6, "application/json", 16) < 0) {
        refresh_fail(&f->res, 502, "integration_refresh_failed",
                     "crmgate cannot build the %s token refresh (no token URL known)",
                     crm_name(f->ref.crm));
        refresh_failed(f, 0, REFRESH_FAILED);
        return;
    }
    ur.method = "POST";
    ur.url = f->url;
    ur.headers = &f->headers;
    ur.body = f->body;
    ur.body_len = blen;
    ur.has_body = 1;
    ur.connect_timeout_ms = f->cfg->upstream_connect_timeout_ms;
    ur.timeout_ms = f->cfg->upstream_timeout_ms;
    ur.max_response = f->cfg->limits.response_bytes;
    ur.ca_bundle = f->cfg->ca_bundle;
    ur.once = 1; /* a refresh token may be single-use: never spend it twice */
    f->xfer = upstream_start(f->w->upstream, &ur, refresh_donecb, f);
    if (f->xfer == NULL) {
        refresh_fail(&f->res, 502, "integration_refresh_failed",
                     "crmgate could not start the %s token refresh", crm_name(f->ref.crm));
        refresh_failed(f, 0, REFRESH_FAILED);
    }
}

struct refresh_wait *refresh_start(struct worker *w, struct config *cfg,
                                   const struct custody_ref *r, refresh_done_cb cb, void *arg)
{
    struct refresh_wait *rw = calloc(1, sizeof(*rw));
    struct refresh_flight *f, *mine = NULL;
    unsigned char key[CUSTODY_MAX_KEY];
    size_t klen = custody_ref_key(r, key, sizeof(key));

    if (rw == NULL || klen == 0)
        goto fail;
    rw->cb = cb;
    rw->arg = arg;
    rw->ev = event_new(w->base, -1, 0, refresh_waitcb, rw);
    if (rw->ev == NULL)
        goto fail;
    pthread_mutex_lock(&refresh_lock);
    for (f = refresh_flights; f != NULL; f = f->next) {
        if (f->klen == klen && memcmp(f->key, key, klen) == 0)
            break;
    }
    if (f == NULL) {
        f = mine = calloc(1, sizeof(*f));
        if (f == NULL) {
            pthread_mutex_unlock(&refresh_lock);
            goto fail;
        }
        memcpy(f->key, key, klen);
        f->klen = klen;
        f->ref = *r;
        f->w = w;
        f->cfg = config_ref(cfg);
        f->next = refresh_flights;
        refresh_flights = f;
    }
    rw->flight = f;
    rw->next = f->waiters;
    f->waiters = rw;
    pthread_mutex_unlock(&refresh_lock);
    if (mine != NULL)
        refresh_begin(mine);
    return rw;
fail:
    if (rw != NULL && rw->ev != NULL)
        event_free(rw->ev);
    free(rw);
    return NULL;
}

void refresh_cancel(struct refresh_wait *rw)
{
    pthread_mutex_lock(&refresh_lock);
    if (rw->flight != NULL) {
        struct refresh_wait **pp;
        for (pp = &rw->flight->waiters; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == rw) {
                *pp = rw->next;
                break;
            }
        }
        rw->flight = NULL;
    }
    pthread_mutex_unlock(&refresh_lock);
    event_free(rw->ev); /* also drops an activation that was delivered but has not run */
    free(rw);
}

static void refresh_markcb(enum store_status st, uint64_t first, size_t n, void *arg)
{
    (void)first, (void)n, (void)arg;
    if (st != STORE_OK && st != STORE_CONFLICT)
        log_error("refresh: an integration's needs-attention mark was not stored (%s)",
                  store_status_name(st));
}

void refresh_mark_attention(struct worker *w, const struct custody_ref *r, int oauth,
                            const char *why)
{
    unsigned char key[CUSTODY_MAX_KEY];
    size_t klen = custody_ref_key(r, key, sizeof(key));
    json_t *patch = json_pack("{s:s}", "attention", why);

    if (patch != NULL && oauth)
        json_object_set_new(patch, "expires_ms", json_integer(1)); /* refresh on next use */
    log_warn("integration %s/%s (%s%s%s) needs attention: %s", r->ws, crm_name(r->crm),
             custody_scope_name(r->scope), r->user[0] != '\0' ? " " : "", r->user, why);
    if (klen == 0 || patch == NULL ||
        store_kv_merge(w->port, STORE_TABLE_CREDENTIALS, key, klen, patch, refresh_markcb, NULL) <
            0)
        log_error("refresh: the needs-attention mark could not be queued");
}

void refresh_state_of(json_t *rec, struct refresh_state *st)
{
    const char *att = json_string_value(json_object_get(rec, "attention"));

    st->attention = att != NULL && att[0] != '\0';
    st->failures = (int)json_integer_value(json_object_get(rec, "refresh_failures"));
    st->next_ms = json_integer_value(json_object_get(rec, "refresh_next_ms"));
    st->refused = json_is_true(json_object_get(rec, "refresh_refused"));
}

struct refresh_each {
    void (*fn)(const struct custody_ref *r, const struct refresh_state *st, void *arg);
    void *arg;
};

static int refresh_each_cb(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    struct refresh_each *e = arg;
    struct custody_ref r;
    struct refresh_state st;
    json_t *rec = json_loadb(val, vlen, 0, NULL);

    refresh_state_of(rec, &st);
    if (custody_ref_parse(key, klen, &r) == 0)
        e->fn(&r, &st, e->arg);
    json_decref(rec);
    return 0;
}

int refresh_state_each(struct store *s,
                       void (*fn)(const struct custody_ref *r, const struct refresh_state *st,
                                  void *arg),
                       void *arg)
{
    struct refresh_each e = {fn, arg};
    char err[256];

    return store_kv_scan(s, STORE_TABLE_CREDENTIALS, NULL, 0, refresh_each_cb, &e, err,
                         sizeof(err));
}
