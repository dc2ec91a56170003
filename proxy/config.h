/*
 * config.h - crmgate's configuration: a JSON file, command-line overrides,
 * and an embedded safe default when neither is given.
 *
 * A loaded config is immutable and reference-counted: a worker holds a
 * reference for as long as it uses one, so SIGHUP can publish a new one
 * without pausing anyone.
 */
#ifndef CRMGATE_CONFIG_H
#define CRMGATE_CONFIG_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "../certs/ca.h"
#include "../certs/mint.h"
#include "../policy/rules.h"
#include "log.h"
#include "tls.h"

#define CONFIG_MAX_WORKERS          64
#define CONFIG_MAX_BEFORE_WINDOW_MS 1000 /* before_read_window_ms: a write waits at most this */
#define CONFIG_ADMIN_TOKEN_MIN      24   /* characters of admin.token */
#define CONFIG_MAX_SF_DOMAINS       16 /* entries of vault.salesforce_domains, vault.hubspot_domains */

/* OAuth refresh back-off after a failed refresh (vault.refresh_backoff_*), milliseconds */
#define CONFIG_BACKOFF_MIN_MS 1000   /* the first wait: 1 s, doubling with each failure */
#define CONFIG_BACKOFF_MAX_MS 300000 /* the longest wait: 5 min */

struct config_limits {
    size_t header_bytes;        /* request line + header block; 431 beyond */
    size_t header_count;        /* number of header fields; 431 beyond */
    size_t body_bytes;          /* request body; 413 beyond */
    size_t response_bytes;      /* upstream response body; 502 beyond */
    unsigned header_timeout_ms; /* first byte to end of headers; 408 */
    unsigned body_timeout_ms;   /* end of headers to end of body; 408 */
    unsigned idle_timeout_ms;   /* keep-alive wait for the next request */
    unsigned write_timeout_ms;  /* a client that does not read its answer */
    size_t connections;         /* concurrent client connections per worker; more are closed */
};

enum config_kind { CONFIG_KIND_CHAT, CONFIG_KIND_WORKFLOW };

/* A registered caller: the SHA-256 of the CRM token it sends, and who it is. */
struct config_caller {
    char token_sha256[65]; /* lower-case hex */
    char *workspace;
    char *user; /* may be NULL */
    enum config_kind kind;
};

struct config {
    int refs;
    char *path;        /* config file, or NULL for the embedded default */
    char *listen;      /* "ADDR:PORT" as given */
    char *listen_host; /* parsed from listen */
    char *listen_port;
    char *upstream_hubspot;    /* base URL without trailing slash */
    char *upstream_salesforce; /* NULL: no instance configured */
    char *state_dir;
    char *ca_bundle; /* NULL: the system trust store */
    char *rules_dir;
    char *tls_cert; /* reverse listener over TLS when both are set */
    char *tls_key;
    char *tls_mint_names[TLS_MAX_MINT_NAMES]; /* or: certificates minted from ca_dir's CA */
    size_t ntls_mint_names;
    struct tls_reverse *tls_reverse; /* the minted ones, when ntls_mint_names > 0 */
    SSL_CTX *tls_ctx;                /* from tls_cert/tls_key or tls_reverse; NULL: plain HTTP */
    char *forward_listen; /* "ADDR:PORT" of the forward (HTTPS_PROXY) listener, or NULL */
    char *forward_host;
    char *forward_port;
    char *transparent_listen; /* "ADDR:PORT" for iptables-REDIRECTed connections, or NULL */
    char *transparent_host;
    char *transparent_port;
    char *ca_dir;                   /* crmgate's CA for interception: ca.pem, ca.key */
    struct certs_ca *ca;            /* loaded when forward_listen is set */
    struct certs_cache *leaf_cache; /* minted leaves, shared by every worker */
    SSL_CTX *mitm_ctx;              /* TLS inside intercepted tunnels */
    char *sf_instance_host;         /* host of upstream_salesforce, intercepted too */
    struct rules *rules;            /* compiled from rules_dir; one reference */
    struct config_caller *callers;  /* sorted by token_sha256 */
    size_t ncallers;
    int workers; /* 0: number of cores */
    enum log_level log_level;
    struct config_limits limits;
    unsigned upstream_connect_timeout_ms;
    unsigned upstream_timeout_ms;   /* whole upstream exchange; 504 beyond */
    unsigned drain_timeout_ms;      /* SIGTERM: longest wait for in-flight requests */
    unsigned before_read_window_ms; /* gather concurrent writes' before-reads this long (0: one
                                       turn of the loop) to fold them into one batch read */
    size_t store_map_bytes;         /* LMDB map at start (store.map_bytes) */
    size_t store_max_map_bytes;     /* the map grows up to this; writes get 503 beyond */
    int store_record_volatile;      /* store.record_volatile_fields: keep system timestamps */
    char *admin_socket;             /* admin API unix socket (default <state_dir>/admin.sock) */
    char *admin_listen;             /* optional TCP "ADDR:PORT" for the admin API, or NULL */
    char *admin_host;
    char *admin_port;
    char *admin_token;    /* bearer token the TCP admin listener requires (never logged) */
    char *vault_key_file; /* vault.key_file; NULL: $CREDENTIALS_DIRECTORY/vault.key if any */
    unsigned vault_refresh_margin_s; /* OAuth tokens are refreshed this long before expiry */
    unsigned vault_backoff_min_ms;   /* first wait after a failed refresh, doubling */
    unsigned vault_backoff_max_ms;   /* ... up to this */
    /* where a Salesforce instance URL may point: each domain and its subdomains, lower case,
     * without a leading dot (vault.salesforce_domains; default CERTS_SALESFORCE_DOMAINS) */
    char *sf_domains[CONFIG_MAX_SF_DOMAINS];
    size_t nsf_domains;
    /* the same for a HubSpot integration's token URL (vault.hubspot_domains; default
     * CERTS_HUBSPOT_DOMAINS) */
    char *hs_domains[CONFIG_MAX_SF_DOMAINS];
    size_t nhs_domains;
};

/* Command-line flags; each non-NULL field overrides the file's value. */
struct config_overrides {
    const char *listen;
    const char *upstream_hubspot;
    const char *upstream_salesforce;
    const char *state_dir;
    const char *ca_bundle;
    const char *rules_dir;
    const char *tls_cert;
    const char *tls_key;
    const char *tls_mint[TLS_MAX_MINT_NAMES]; /* --tls-mint NAME, repeated */
    size_t ntls_mint;
    const char *forward_listen;
    const char *transparent_listen;
    const char *ca_dir;
    const char *workers;
    const char *log_level;
    const char *admin_socket;
    const char *admin_listen;
    const char *vault_key_file;
};

/*
 * Load the file at path (NULL: embedded default), apply the overrides and
 * validate everything. Returns a config with one reference, or NULL with a
 * message in err naming the file, the JSON pointer and the problem.
 */
struct config *config_load(const char *path, const struct config_overrides *ov, char *err,
                           size_t errlen);

/* Take another reference; returns cfg. Thread-safe. */
struct config *config_ref(struct config *cfg);

/* Drop a reference, freeing on the last. Thread-safe; NULL is ignored. */
void config_unref(struct config *cfg);

/* The caller registered for a token fingerprint (hex), or NULL. */
const struct config_caller *config_caller_find(const struct config *cfg, const char *sha256_hex);

/* "chat" or "workflow". */
const char *config_kind_name(enum config_kind kind);

/* Print a human summary of the effective config to stdout (for --check). */
void config_print(const struct config *cfg);

/*
 * jansson's error text without its "near '...'" part, which quotes the
 * input it could not parse: a token left unquoted in a config, an admin
 * API body or `integration add`'s secrets would be repeated in the log or
 * the answer. Into out (outlen bytes); returns out.
 */
const char *config_json_error(const json_error_t *e, char *out, size_t outlen);

/*
 * Whether a member name read from input may be quoted back in an error: a
 * short lower-case name such as a misspelt "acess_token". Anything else may
 * be a secret pasted in the wrong place, and is described, not quoted.
 */
int config_name_quotable(const char *name);

#endif
