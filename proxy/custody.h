/*
 * custody.h - crmgate keys and the CRM credentials crmgate holds for agents.
 *
 * Keys. An agent holds a crmgate key ("cgk_" + 43 base64url characters, 32
 * random bytes), never a CRM token. Only the key's SHA-256 is stored (the
 * keys table, store.h); its first 8 bytes in hex are the key's id, which
 * list and revoke use. Every request looks its key up in LMDB, so a
 * revocation holds from the next request on, in every worker.
 *
 * Integrations. One workspace integration per (workspace, CRM), one user
 * integration per (workspace, user, CRM): a private-app token, or OAuth
 * access and refresh tokens with the client id and secret, and for
 * Salesforce the instance URL the calls go to. The secrets are sealed with
 * the vault (AES-256-GCM), the identity
 * "crmgate-cred-v1" \0 workspace \0 crm \0 scope \0 user \0 type bound in as
 * associated data. The clear part of a record holds only what list and the
 * refresh schedule need.
 *
 * Selection: a chat key acts with its user's integration, a workflow key
 * with the workspace's; chat_integration "workspace" in the rules makes
 * chat use the workspace's too. A missing integration is a refusal, never
 * a fallback to another one.
 *
 * The vault is process-wide: custody_init() sets it once at start, before
 * any worker runs.
 */
#ifndef CRMGATE_CUSTODY_H
#define CRMGATE_CUSTODY_H

#include <stddef.h>

#include "../policy/crm.h"
#include "../policy/rules.h"
#include "config.h"
#include "store.h"
#include "vault.h"

#define CUSTODY_KEY_PREFIX     "cgk_"
#define CUSTODY_KEY_RANDOM     32       /* bytes of randomness in a key */
#define CUSTODY_KEY_LEN        (4 + 43) /* "cgk_" + base64url(32 bytes) */
#define CUSTODY_KEY_ID_LEN     16       /* hex digits of the key's id */
#define CUSTODY_MAX_NAME       200      /* workspace, user, workflow id */
#define CUSTODY_MAX_SECRET     8192     /* one token or secret */
#define CUSTODY_MAX_URL        1024     /* instance and token URLs */
#define CUSTODY_DEFAULT_MARGIN 300      /* seconds refreshed ahead of expiry */
#define CUSTODY_SF_LIFETIME    7200 /* Salesforce's default session, when nothing else is known */
#define CUSTODY_CACHE_SLOTS    64   /* keys and integrations cached per thread */
#define CUSTODY_MAX_KEY        511  /* LMDB's key limit (store_internal.h STORE_MAX_KEY) */
#define CUSTODY_MAX_EXPIRES_IN (10LL * 365 * 86400) /* longest token lifetime taken, seconds */

enum custody_scope { CUSTODY_SCOPE_WORKSPACE, CUSTODY_SCOPE_USER };
enum custody_type { CUSTODY_TYPE_PRIVATE_APP, CUSTODY_TYPE_OAUTH };

/* Which integration: its LMDB key and its associated data derive from this. */
struct custody_ref {
    char ws[CUSTODY_MAX_NAME + 1];
    enum crm crm;
    enum custody_scope scope;
    char user[CUSTODY_MAX_NAME + 1]; /* "" for the workspace integration */
};

/* An integration's credentials, opened. Strings may be NULL; custody_cred_free cleanses them. */
struct custody_cred {
    enum custody_type type;
    char *access_token;
    char *refresh_token;
    char *client_id;
    char *client_secret;
    char *instance_url;   /* Salesforce: where the calls go */
    char *token_url;      /* OAuth token endpoint, when not the CRM's default */
    long long expires_ms; /* access token expiry (wall clock), 0: none known */
    long long lifetime_s; /* a refresh's lifetime when the CRM does not say (Salesforce) */
    long long created_ms, updated_ms;
    char attention[300]; /* why it needs an admin, "" when it does not */
    /* the refresh back-off (refresh.h): consecutive failed refreshes, the earliest time the
     * next may start (wall clock; 0: any time), and whether the token endpoint refused for
     * good (no refresh until an admin stores the integration again) */
    int refresh_failures;
    long long refresh_next_ms;
    int refresh_refused;
    unsigned char *stored; /* the record as stored, for a conditional replace */
    size_t stored_len;
};

/* A crmgate key's identity, as the request pipeline uses it. */
struct custody_identity {
    struct config_caller caller; /* workspace, user, kind (strings owned) */
    char key_id[CUSTODY_KEY_ID_LEN + 1];
    char *workflow;       /* the key's workflow id, or NULL */
    long long expires_ms; /* 0: never */
};

/* Set the process's vault (ownership taken; NULL: custody off). Once, before workers start. */
void custody_init(struct vault *v);

/* The process's vault, or NULL. */
const struct vault *custody_vault(void);

/* Wall-clock milliseconds (key expiry, token expiry). */
long long custody_now_ms(void);

/* Release the vault at exit. */
void custody_shutdown(void);

/*
 * Make sure the key in v is the store's: the first start with a vault seals
 * a check value into meta; later starts must open it. Without a vault, a
 * store that holds credentials or a check value refuses to start. 0, or -1
 * with err saying which case it is.
 */
int custody_check_store(struct store *s, const struct vault *v, char *err, size_t errlen);

/* ----- keys ----- */

/* Whether tok (len bytes) has the shape of a crmgate key; hash receives its SHA-256 then. 1 / 0. */
int custody_key_parse(const char *tok, size_t len, unsigned char hash[32]);

/* A new random key (out), its SHA-256 and its id. 0 / -1. */
int custody_key_generate(char out[CUSTODY_KEY_LEN + 1], unsigned char hash[32],
                         char id[CUSTODY_KEY_ID_LEN + 1]);

/* The id of a key hash: the first 8 bytes in hex. */
void custody_key_id(const unsigned char hash[32], char id[CUSTODY_KEY_ID_LEN + 1]);

/*
 * The identity of the key with this hash, if it may call now: 0 and id
 * filled (release with custody_identity_free), or -1 with why (unknown,
 * revoked, expired, unreadable store) for a 403.
 */
int custody_key_lookup(struct store *s, const unsigned char hash[32], long long now_ms,
                       struct custody_identity *id, char *why, size_t whylen);

void custody_identity_free(struct custody_identity *id);

/*
 * The same, through the calling thread's cache of key identities and opened
 * integrations (CUSTODY_CACHE_SLOTS of each). The cache is emptied whenever
 * the store's KV generation moves (a key created or revoked, an integration
 * added, refreshed, marked or removed: store_kv_generation), so a revocation
 * holds from the commit on, exactly as without it. Only keys that may call
 * are kept (expiry is checked at every hit); refusals always read the store.
 */
int custody_key_lookup_cached(struct store *s, const unsigned char hash[32], long long now_ms,
                              struct custody_identity *id, char *why, size_t whylen);

/* custody_cred_read through the calling thread's cache; out is a copy the caller frees. */
int custody_cred_read_cached(struct store *s, const struct vault *v, const struct custody_ref *r,
                             struct custody_cred *out, char *err, size_t errlen);

/* ----- integrations ----- */

/* The LMDB key of r into out (CUSTODY_MAX_KEY bytes); its length, 0 when a name does not fit. */
size_t custody_ref_key(const struct custody_ref *r, unsigned char *out, size_t cap);

/* Parse an LMDB key back into r; 0 / -1. */
int custody_ref_parse(const void *key, size_t klen, struct custody_ref *r);

/*
 * Read and open r's integration: 1 found (release with custody_cred_free),
 * 0 none, -1 with err (unreadable, or it does not open with this vault).
 */
int custody_cred_read(struct store *s, const struct vault *v, const struct custody_ref *r,
                      struct custody_cred *out, char *err, size_t errlen);

/* Seal c as r's record: a new JSON text in *value (*vlen bytes; free it). 0 / -1. */
int custody_cred_record(const struct vault *v, const struct custody_ref *r,
                        const struct custody_cred *c, char **value, size_t *vlen);

void custody_cred_free(struct custody_cred *c);

/* "workspace" / "user"; "private_app" / "oauth". */
const char *custody_scope_name(enum custody_scope s);
const char *custody_type_name(enum custody_type t);

/*
 * Which integration a caller uses for crm: chat → its user's, workflow →
 * the workspace's, and chat → the workspace's when the rules say
 * chat_integration "workspace". 0, or -1 with why when a chat caller has no
 * user.
 */
int custody_select(const struct config_caller *who, const struct rules_ws *ws, enum crm crm,
                   struct custody_ref *out, char *why, size_t whylen);

/*
 * Whether u may receive a token (an instance or token URL): https:// to a
 * named host, or http:// only to loopback (localhost, 127.x.y.z, [::1]:
 * the test CRMs), the host matched whole; no user info, whitespace,
 * control character, query or fragment, at most CUSTODY_MAX_URL bytes.
 * 1 / 0.
 */
int custody_url_ok(const char *u);

/*
 * Whether u may be a Salesforce integration's instance URL: custody_url_ok,
 * and an https URL's host is one of domains[0..n) or under one (lower-case
 * names without a leading dot: "salesforce.com" takes salesforce.com and
 * x.my.salesforce.com, never evilsalesforce.com), letters, digits, '-' and
 * '.' only (no IP literal, no percent-encoding). Plain http stays limited
 * to loopback exactly as custody_url_ok has it. 1 / 0.
 */
int custody_instance_url_ok(const char *u, const char *const *domains, size_t n);

/*
 * Whether u may receive crm's tokens (a Salesforce instance or token URL, a
 * HubSpot token URL): custody_instance_url_ok under cfg's
 * vault.salesforce_domains or vault.hubspot_domains. 1 / 0.
 */
int custody_crm_url_ok(const struct config *cfg, enum crm crm, const char *u);

/* The setting that lists crm's domains: "vault.salesforce_domains" or "vault.hubspot_domains". */
const char *custody_domains_key(enum crm crm);

/*
 * How long to wait after the failures-th consecutive failed refresh (1, 2,
 * ...): min_ms doubled failures-1 times, at most max_ms, then jittered down
 * by up to half with rnd (any random value), so integrations that failed
 * together do not retry together. Milliseconds.
 */
long long custody_backoff_ms(int failures, unsigned min_ms, unsigned max_ms, unsigned rnd);

/*
 * Whether t may be sent as a token (it goes into an Authorization header): 1
 * to CUSTODY_MAX_SECRET visible ASCII characters, no space or control
 * character. 1 / 0.
 */
int custody_token_ok(const char *t);

/* Whether the access token should be refreshed now (an OAuth token within margin_s of expiry). */
int custody_cred_due(const struct custody_cred *c, long long now_ms, unsigned margin_s);

/* The audit record's "integration" member for r (a new reference), or for a pass-through (NULL). */
json_t *custody_audit_json(const struct custody_ref *r);

#endif
