/*
 * vault.h - the key that seals CRM credentials at rest: AES-256-GCM (OpenSSL
 * EVP) with a fresh random 96-bit nonce per seal and the record's identity
 * bound in as associated data, so a sealed record moved to another identity,
 * or altered in any byte, does not open.
 *
 * The key is 32 bytes, written in its file as 64 hex digits (a trailing
 * newline allowed), readable by no other user: `crmgate vault keygen --out
 * vault.key` (0600) or `(umask 077; openssl rand -hex 32 > vault.key)`.
 * Under systemd it comes from LoadCredential= as
 * $CREDENTIALS_DIRECTORY/vault.key.
 *
 * A sealed blob is nonce (12) || ciphertext || tag (16). Key material lives
 * only in struct vault and is cleansed when it is freed.
 */
#ifndef CRMGATE_VAULT_H
#define CRMGATE_VAULT_H

#include <stddef.h>

#define VAULT_KEY_BYTES   32
#define VAULT_NONCE_BYTES 12
#define VAULT_TAG_BYTES   16
#define VAULT_OVERHEAD    (VAULT_NONCE_BYTES + VAULT_TAG_BYTES)
#define VAULT_MAX_PLAIN   65536 /* largest record sealed */
#define VAULT_CHECK_AAD   "crmgate-vault-check-v1"

struct vault;

/*
 * Load the key from path. NULL with err saying exactly what is wrong: the
 * file is missing or unreadable, not a regular file, accessible to other
 * users (any 0007 mode bit, as the CA key), or it does not hold 64 hex
 * digits.
 */
struct vault *vault_load(const char *path, char *err, size_t errlen);

/* A vault from raw key bytes (tests); NULL when out of memory. */
struct vault *vault_from_bytes(const unsigned char key[VAULT_KEY_BYTES]);

/* Cleanse and free; NULL is ignored. */
void vault_free(struct vault *v);

/*
 * Seal pt (ptlen <= VAULT_MAX_PLAIN) under aad into a new buffer of
 * ptlen + VAULT_OVERHEAD bytes (*out, *outlen; the caller frees). 0 / -1.
 */
int vault_seal(const struct vault *v, const void *aad, size_t aadlen, const void *pt, size_t ptlen,
               unsigned char **out, size_t *outlen);

/*
 * Open a sealed blob under aad into a new NUL-terminated buffer (*pt,
 * *ptlen; the caller cleanses and frees it). -1 when the blob is malformed,
 * was altered, belongs to another identity, or was sealed with another key.
 */
int vault_open(const struct vault *v, const void *aad, size_t aadlen, const unsigned char *blob,
               size_t bloblen, unsigned char **pt, size_t *ptlen);

/* Write a new random key as 64 hex digits and a newline to fd. 0 / -1. */
int vault_keygen(int fd);

#endif
