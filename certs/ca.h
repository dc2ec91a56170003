/*
 * ca.h - crmgate's certificate authority: create a per-install CA whose
 * X.509 name constraints permit only the CRM domains, load it (or an
 * enterprise CA) from files, and export its certificate.
 *
 * Depends on OpenSSL and libc only. Key material is never printed or logged:
 * error strings name files and reasons, never key bytes.
 */
#ifndef CRMGATE_CERTS_CA_H
#define CRMGATE_CERTS_CA_H

#include <stddef.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

struct certs_ca;

enum certs_format { CERTS_FORMAT_PEM, CERTS_FORMAT_DER };

/* File names inside a CA directory created by certs_ca_init(). */
#define CERTS_CA_CERT_FILE "ca.pem"
#define CERTS_CA_KEY_FILE  "ca.key"

/* Longest DNS name accepted anywhere in certs/ (RFC 1035, without the trailing dot). */
#define CERTS_MAX_HOST 253

/* Most permitted names a CA may carry; a list longer than this is a configuration mistake. */
#define CERTS_CA_MAX_PERMITTED 64

/*
 * Salesforce's domains (each with all its subdomains): the CA permits them
 * by default, and an integration's instance URL must be under one of them
 * unless vault.salesforce_domains says otherwise (config.h).
 */
#define CERTS_SALESFORCE_DOMAINS ".salesforce.com", ".force.com"

/*
 * HubSpot's API hosts: the CA permits them by default, and an integration's
 * token URL must be on one of them (or a subdomain) unless
 * vault.hubspot_domains says otherwise (config.h).
 */
#define CERTS_HUBSPOT_DOMAINS "api.hubapi.com", "api.hubspot.com"

/* The CRM domains a CA permits when the caller configures none. */
extern const char *const certs_ca_default_permitted[];
extern const size_t certs_ca_default_npermitted;

/*
 * Create a new CA in dir (created 0750 if missing): P-256 key in ca.key
 * (mode 0600), self-signed certificate in ca.pem (mode 0644), valid 10 years.
 * permitted[0..n) are DNS names ("api.hubapi.com", ".salesforce.com"); NULL/0
 * means certs_ca_default_permitted. Each becomes a permitted DNS subtree of a
 * critical nameConstraints extension, and every IPv4 and IPv6 address is
 * excluded. Refuses to overwrite: fails if either file already exists.
 * Returns 0, or -1 with err filled.
 */
int certs_ca_init(const char *dir, const char *const *permitted, size_t n, char *err,
                  size_t errlen);

/*
 * Load a CA certificate (PEM; further certificates in the file are kept as
 * its chain) and, if key_path is not NULL, its unencrypted PEM private key.
 * Works for crmgate's own CA and for an enterprise CA. Refuses a certificate
 * that is not a CA (basicConstraints CA:TRUE, keyCertSign if keyUsage is
 * present), a key that does not match it, and a key file readable by others.
 * A CA loaded without a key can be exported but not mint.
 * Returns a new CA the caller frees with certs_ca_free(), or NULL with err.
 */
struct certs_ca *certs_ca_load(const char *cert_path, const char *key_path, char *err,
                               size_t errlen);

void certs_ca_free(struct certs_ca *ca);

/* Write the CA certificate (not its key, not its chain) to out. Returns 0 or -1 with err. */
int certs_ca_export(const struct certs_ca *ca, enum certs_format format, FILE *out, char *err,
                    size_t errlen);

/* The CA certificate, owned by ca (X509_up_ref it to keep it longer). */
X509 *certs_ca_cert(const struct certs_ca *ca);

/* Certificates between the CA and a root (may be empty), owned by ca; for SSL_use_cert_and_key. */
STACK_OF(X509) * certs_ca_chain(const struct certs_ca *ca);

/* Whether the CA was loaded with its private key and so can mint. */
int certs_ca_can_sign(const struct certs_ca *ca);

/* SHA-256 of the CA certificate's DER: identifies the CA across reloads (32 bytes). */
const unsigned char *certs_ca_fingerprint(const struct certs_ca *ca);

/*
 * The CA's permitted DNS subtrees as one human-readable line ("api.hubapi.com,
 * salesforce.com"), "any name" when the CA has no name constraints. Owned by ca.
 */
const char *certs_ca_permitted_str(const struct certs_ca *ca);

#endif
