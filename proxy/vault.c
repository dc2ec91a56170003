/*
 * vault.c - AES-256-GCM sealing of credentials (see vault.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "vault.h"

#define VAULT_FILE_MAX 256 /* bytes read from a key file: 64 digits and some whitespace */

struct vault {
    unsigned char key[VAULT_KEY_BYTES];
};

static int vault_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

struct vault *vault_from_bytes(const unsigned char key[VAULT_KEY_BYTES])
{
    struct vault *v = calloc(1, sizeof(*v));

    if (v != NULL)
        memcpy(v->key, key, VAULT_KEY_BYTES);
    return v;
}

struct vault *vault_load(const char *path, char *err, size_t errlen)
{
    unsigned char buf[VAULT_FILE_MAX], key[VAULT_KEY_BYTES];
    struct vault *v = NULL;
    struct stat st;
    ssize_t n;
    size_t len, digits = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "vault key %s: %s", path,
                 errno == ENOENT ? "missing (no such file)" : strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "vault key %s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((st.st_mode & 0007) != 0) {
        /* as the CA key: a key other users can read protects nothing */
        snprintf(err, errlen,
                 "vault key %s: accessible to other users (mode %04o); chmod 0600 it (crmgate "
                 "vault keygen writes it so)",
                 path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return NULL;
    }
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "vault key %s: %s", path, strerror(errno));
        goto done;
    }
    len = (size_t)n;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        len--;
    if (len != 2 * VAULT_KEY_BYTES || (size_t)n == sizeof(buf)) {
        snprintf(err, errlen,
                 "vault key %s: bad format: expected 64 hex digits (32 bytes; make one with "
                 "crmgate vault keygen), found %zu bytes",
                 path, (size_t)n == sizeof(buf) ? (size_t)n : len);
        goto done;
    }
    for (size_t i = 0; i < VAULT_KEY_BYTES; i++) {
        int hi = vault_hexval((char)buf[2 * i]), lo = vault_hexval((char)buf[2 * i + 1]);
        if (hi < 0 || lo < 0)
            break;
        key[i] = (unsigned char)(hi << 4 | lo);
        digits += 2;
    }
    if (digits != 2 * VAULT_KEY_BYTES) {
        snprintf(err, errlen,
                 "vault key %s: bad format: expected 64 hex digits (32 bytes), found a "
                 "non-hex character at offset %zu",
                 path, digits);
        goto done;
    }
    v = vault_from_bytes(key);
    if (v == NULL)
        snprintf(err, errlen, "vault key %s: out of memory", path);
done:
    OPENSSL_cleanse(buf, sizeof(buf));
    OPENSSL_cleanse(key, sizeof(key));
    return v;
}

void vault_free(struct vault *v)
{
    if (v == NULL)
        return;
    OPENSSL_cleanse(v->key, sizeof(v->key));
    free(v);
}

int vault_seal(const struct vault *v, const void *aad, size_t aadlen, const void *pt, size_t ptlen,
               unsigned char **out, size_t *outlen)
{
    EVP_CIPHER_CTX *cx = NULL;
    unsigned char *b = NULL;
    int n = 0, fin = 0, rc = -1;

    *out = NULL;
    *outlen = 0;
    if (ptlen > VAULT_MAX_PLAIN || aadlen > VAULT_MAX_PLAIN)
        return -1;
    b = malloc(ptlen + VAULT_OVERHEAD);
    cx = EVP_CIPHER_CTX_new();
    if (b == NULL || cx == NULL || RAND_bytes(b, VAULT_NONCE_BYTES) != 1)
        goto fail;
    if (EVP_EncryptInit_ex(cx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_IVLEN, VAULT_NONCE_BYTES, NULL) != 1 ||
        EVP_EncryptInit_ex(cx, NULL, NULL, v->key, b) != 1 ||
        (aadlen > 0 && EVP_EncryptUpdate(cx, NULL, &n, aad, (int)aadlen) != 1) ||
        EVP_EncryptUpdate(cx, b + VAULT_NONCE_BYTES, &n, pt, (int)ptlen) != 1 ||
        EVP_EncryptFinal_ex(cx, b + VAULT_NONCE_BYTES + n, &fin) != 1 ||
        (size_t)(n + fin) != ptlen ||
        EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_GET_TAG, VAULT_TAG_BYTES,
                            b + VAULT_NONCE_BYTES + ptlen) != 1)
        goto fail;
    *out = b;
    *outlen = ptlen + VAULT_OVERHEAD;
    b = NULL;
    rc = 0;
fail:
    EVP_CIPHER_CTX_free(cx);
    free(b);
    return rc;
}

int vault_open(const struct vault *v, const void *aad, size_t aadlen, const unsigned char *blob,
               size_t bloblen, unsigned char **pt, size_t *ptlen)
{
    EVP_CIPHER_CTX *cx = NULL;
    unsigned char *p = NULL, tag[VAULT_TAG_BYTES];
    size_t clen;
    int n = 0, fin = 0, rc = -1;

    *pt = NULL;
    *ptlen = 0;
    if (bloblen < VAULT_OVERHEAD || bloblen - VAULT_OVERHEAD > VAULT_MAX_PLAIN ||
        aadlen > VAULT_MAX_PLAIN)
        return -1;
    clen = bloblen - VAULT_OVERHEAD;
    memcpy(tag, blob + VAULT_NONCE_BYTES + clen, VAULT_TAG_BYTES);
    p = malloc(clen + 1);
    cx = EVP_CIPHER_CTX_new();
    if (p == NULL || cx == NULL)
        goto fail;
    if (EVP_DecryptInit_ex(cx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_IVLEN, VAULT_NONCE_BYTES, NULL) != 1 ||
        EVP_DecryptInit_ex(cx, NULL, NULL, v->key, blob) != 1 ||
        (aadlen > 0 && EVP_DecryptUpdate(cx, NULL, &n, aad, (int)aadlen) != 1) ||
        EVP_DecryptUpdate(cx, p, &n, blob + VAULT_NONCE_BYTES, (int)clen) != 1 ||
        EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_TAG, VAULT_TAG_BYTES, tag) != 1 ||
        EVP_DecryptFinal_ex(cx, p + n, &fin) != 1 || (size_t)(n + fin) != clen)
        goto fail;
    p[clen] = '\0';
    *pt = p;
    *ptlen = clen;
    p = NULL;
    rc = 0;
fail:
    EVP_CIPHER_CTX_free(cx);
    if (p != NULL) {
        OPENSSL_cleanse(p, clen + 1);
        free(p);
    }
    return rc;
}

int vault_keygen(int fd)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char key[VAULT_KEY_BYTES];
    char out[2 * VAULT_KEY_BYTES + 1];
    size_t off = 0;
    int rc = -1;

    if (RAND_bytes(key, sizeof(key)) != 1)
        goto done;
    for (size_t i = 0; i < VAULT_KEY_BYTES; i++) {
        out[2 * i] = hex[key[i] >> 4];
        out[2 * i + 1] = hex[key[i] & 15];
    }
    out[2 * VAULT_KEY_BYTES] = '\n';
    while (off < sizeof(out)) {
        ssize_t n = write(fd, out + off, sizeof(out) - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto done;
        off += (size_t)n;
    }
    rc = 0;
done:
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(out, sizeof(out));
    return rc;
}
