/*
 * mint.h - leaf certificates for intercepted CRM hosts, a bounded LRU cache
 * of them, and the SNI of a ClientHello.
 *
 * Minting is synchronous (libevent 2.1 cannot wait for an asynchronous
 * certificate callback) and cheap: P-256 keys, one ECDSA signature.
 */
#ifndef CRMGATE_CERTS_MINT_H
#define CRMGATE_CERTS_MINT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "ca.h"

#define CERTS_LEAF_BACKDATE_SECS (60 * 60)           /* notBefore = now - 1 h (clock skew) */
#define CERTS_LEAF_LIFETIME_SECS (30 * 24 * 60 * 60) /* notAfter = now + 30 days */
#define CERTS_CACHE_MARGIN_SECS  (24 * 60 * 60)      /* re-mint a day before notAfter (default) */
#define CERTS_CACHE_MAX_CAPACITY (1u << 20)

enum certs_host_kind { CERTS_HOST_DNS, CERTS_HOST_IPV4, CERTS_HOST_IPV6 };

/*
 * Canonical form of a host to mint for: a DNS name lower-cased without its
 * trailing dot, or an IP literal (IPv6 with or without brackets) in its
 * standard text form. Rejects what certs_dns_name_normalize() rejects
 * (wildcards, bad characters, lengths). Returns the kind, or -1 with err.
 */
int certs_host_normalize(const char *host, char *out, size_t outlen, char *err, size_t errlen);

/* A new P-256 key for leaves; NULL with err on failure. The caller frees it. */
EVP_PKEY *certs_key_new(char *err, size_t errlen);

/*
 * Mint a leaf certificate for host with public key key, signed by ca, valid
 * from now - 1 h to now + 30 days but never outside the CA's own validity.
 * SAN DNS:host (IP:addr for an IP literal), CN=host for a DNS name under 64 characters,
 * CA:FALSE, digitalSignature, serverAuth, AKI keyid, random 16-byte serial,
 * no SKI. Refuses, before signing, a host the CA's name constraints would
 * reject, and a CA without its key or not valid at now.
 * Returns a new X509 the caller frees, or NULL with err.
 */
X509 *certs_mint_leaf(const struct certs_ca *ca, const char *host, time_t now, EVP_PKEY *key,
                      char *err, size_t errlen);

struct certs_cache;

struct certs_cache_stats {
    uint64_t hits;        /* answered from the cache */
    uint64_t misses;      /* minted a leaf (including re-mints after expiry) */
    uint64_t evictions;   /* least recently used entry dropped for room */
    uint64_t expirations; /* entry dropped because its leaf was near notAfter */
    uint64_t failures;    /* refused hosts and mint errors; hits + misses + failures = calls */
    size_t entries, capacity;
};

/*
 * A cache of at most capacity leaves (1..CERTS_CACHE_MAX_CAPACITY), keyed by
 * canonical host, all sharing one P-256 key made here. Safe to call from
 * several threads. NULL if capacity is out of range or on allocation or
 * key-generation failure.
 */
struct certs_cache *certs_cache_new(size_t capacity);

void certs_cache_free(struct certs_cache *cache);

/*
 * Re-mint leaves this long before their notAfter instead of
 * CERTS_CACHE_MARGIN_SECS (0 < secs < CERTS_LEAF_LIFETIME_SECS); applies to
 * leaves minted from now on. Returns 0, or -1 for a margin out of range.
 */
int certs_cache_set_margin(struct certs_cache *cache, time_t secs);

/*
 * The leaf and key for host: from the cache when a leaf for it is there and
 * valid at now until the margin (a day by default) before its notAfter, minted
 * with ca otherwise. A different CA than the cached leaves' (by fingerprint)
 * flushes the cache. On success *leaf and *key hold new references the
 * caller frees (X509_free, EVP_PKEY_free); returns 0. Returns -1 with err
 * (the reason the host is refused) otherwise.
 */
int certs_cache_get_or_mint(struct certs_cache *cache, const struct certs_ca *ca, const char *host,
                            time_t now, X509 **leaf, EVP_PKEY **key, char *err, size_t errlen);

/* A consistent snapshot of the counters, for metrics. */
void certs_cache_stats(struct certs_cache *cache, struct certs_cache_stats *out);

/*
 * The server name of the ClientHello being processed by s, for use inside
 * an SSL_CTX_set_client_hello_cb callback (where SSL_get_servername() is
 * still NULL). Every length in the raw extension is checked; exactly one
 * host_name entry, no NUL byte. The name is copied as sent: run it through
 * certs_host_normalize() (certs_cache_get_or_mint() does) before trusting it.
 * Returns 0 with out filled, 1 if the hello has no SNI, -1 if the extension
 * is malformed or the name does not fit in outlen.
 */
int certs_sni_from_hello(SSL *s, char *out, size_t outlen);

#endif
