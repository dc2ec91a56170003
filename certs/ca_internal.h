/*
 * ca_internal.h - what mint.c needs to see of a loaded CA. Not for use
 * outside certs/.
 */
#ifndef CRMGATE_CERTS_CA_INTERNAL_H
#define CRMGATE_CERTS_CA_INTERNAL_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"

/*
 * Everything here is written once by certs_ca_load() and only read after,
 * so worker threads may mint with one CA concurrently.
 */
struct certs_ca {
    X509 *cert;
    EVP_PKEY *key;          /* NULL: loaded for export only */
    const EVP_MD *md;       /* digest for signing leaves; NULL for EdDSA keys */
    STACK_OF(X509) * chain; /* certificates after the first in the cert file */
    NAME_CONSTRAINTS *nc;   /* NULL when the CA has none (an enterprise CA may not) */
    ASN1_OCTET_STRING *skid;
    time_t not_before, not_after;
    unsigned char fingerprint[32];
    char *permitted_str;
};

/*
 * Check a DNS name and write its canonical form (lower case, no trailing
 * dot) to out. Rejects empty names, names over CERTS_MAX_HOST, empty or
 * over-long labels, labels starting or ending with '-', any character but
 * letters, digits, '-' and '.', wildcards, and an all-numeric last label
 * (an IP address in disguise). Returns 0, or -1 with the reason in err.
 */
/* Give x a random 16-byte positive serial (CA and leaves alike); 0 / -1. */
int certs_random_serial(X509 *x);

int certs_dns_name_normalize(const char *in, char *out, size_t outlen, char *err, size_t errlen);

/* Append OpenSSL's queued error reason (if any) to "what" in err, then clear the queue. */
void certs_ssl_err(char *err, size_t errlen, const char *what);

#endif
