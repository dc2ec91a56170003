/*
 * tls.c - server TLS contexts.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/sha.h>

#include "../certs/ca.h"
#include "../certs/mint.h"
#include "log.h"
#include "route.h"
#include "tls.h"

static const unsigned char tls_alpn_http11[] = "\x08http/1.1";

/* Pick http/1.1 when offered (a client offering h2,http/1.1 gets http/1.1), else no ALPN. */
static int tls_alpn_selectcb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                             const unsigned char *in, unsigned int inlen, void *arg)
{
    unsigned char *sel;

    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&sel, outlen, tls_alpn_http11, sizeof(tls_alpn_http11) - 1, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* The last OpenSSL error as text (and the queue cleared). */
static const char *tls_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();

    ERR_clear_error();
    if (e == 0)
        return "unknown error";
    ERR_error_string_n(e, buf, len);
    return buf;
}

/* The protocol settings every crmgate server context shares. */
static SSL_CTX *tls_ctx_base(char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    char ebuf[256];

    if (ctx == NULL) {
        snprintf(err, errlen, "tls: cannot create a context: %s", tls_error(ebuf, sizeof(ebuf)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* IGNORE_UNEXPECTED_EOF: libevent 2.1.12 would report a peer that closes without
     * close_notify as an error; HTTP framing tells a truncated request anyway. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_selectcb, NULL);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"crmgate", 7);
    return ctx;
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    SSL_CTX *ctx = tls_ctx_base(err, errlen);
    char ebuf[256];

    if (ctx == NULL)
        return NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        snprintf(err, errlen, "tls cert %s: %s", cert_file, tls_error(ebuf, sizeof(ebuf)));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "tls key %s: %s", key_file, tls_error(ebuf, sizeof(ebuf)));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "tls key %s does not match the certificate in %s", key_file,
                 cert_file);
        ERR_clear_error();
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/*
 * Present leaf (with key and the CA's chain) on ssl from a ClientHello
 * callback; takes over the caller's references either way. Returns the
 * callback's verdict.
 */
static int tls_install_leaf(SSL *ssl, X509 *leaf, EVP_PKEY *key, const struct certs_ca *ca, int *al)
{
    int ok = SSL_use_cert_and_key(ssl, leaf, key, certs_ca_chain(ca), 1);

    X509_free(leaf);
    EVP_PKEY_free(key);
    if (ok != 1) {
        ERR_clear_error();
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/*
 * Bind ssl's sessions to host: the session id context is checked before a
 * session or ticket is resumed, and this callback runs before that decision.
 * A session made for one host and offered for another is then not resumed
 * (RFC 6066 3: resuming would skip the new host's certificate) and the
 * client gets a full handshake with the right leaf. The context holds at
 * most 32 bytes: the host's SHA-256.
 */
static int tls_bind_sessions(SSL *ssl, const char *host)
{
    unsigned char md[SHA256_DIGEST_LENGTH];

    SHA256((const unsigned char *)host, strlen(host), md);
    return SSL_set_session_id_context(ssl, md, sizeof(md)) == 1 ? 0 : -1;
}

/*
 * Runs inside the handshake (libevent 2.1 cannot wait for an asynchronous
 * one): parse SNI from the raw extension (SSL_get_servername is still NULL
 * here), refuse names crmgate does not intercept, install a minted leaf.
 */
static int tls_mitm_hellocb(SSL *ssl, int *al, void *arg)
{
    struct tls_mitm *m = SSL_get_app_data(ssl);
    char sni[256], host[256], err[256];
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    int r, transparent;

    (void)arg;
    if (m == NULL) {
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    transparent = m->connect_host == NULL || m->connect_host[0] == '\0';
    r = certs_sni_from_hello(ssl, sni, sizeof(sni));
    /* Transparent mode has no CONNECT host to fall back on: no SNI, no interception. */
    if (r == 1 && transparent) {
        log_warn("intercept: refused a TLS handshake without SNI (to %s)",
                 m->orig_dst[0] != '\0' ? m->orig_dst : "?");
        *al = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
    if (r < 0 ||
        certs_host_normalize(r == 0 ? sni : m->connect_host, host, sizeof(host), err, sizeof(err)) <
            0 ||
        route_forward_host(host, m->sf_instance_host) == CRM_NONE) {
        log_warn("intercept: refused a TLS handshake for \"%s\" (%s %s): not a CRM host",
                 r == 0 ? sni : "(no SNI)", transparent ? "to" : "CONNECT",
                 transparent ? (m->orig_dst[0] != '\0' ? m->orig_dst : "?") : m->connect_host);
        *al = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
    snprintf(m->sni, sizeof(m->sni), "%s", r == 0 ? host : "");
    if (tls_bind_sessions(ssl, host) != 0) {
        ERR_clear_error();
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    if (certs_cache_get_or_mint(m->cache, m->ca, host, time(NULL), &leaf, &key, err, sizeof(err)) <
        0) {
        log_error("intercept: cannot mint a certificate for %s: %s", host, err);
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return tls_install_leaf(ssl, leaf, key, m->ca, al);
}

/* Acknowledge the name (the ClientHello callback already chose by it). */
static int tls_servernamecb(SSL *ssl, int *al, void *arg)
{
    (void)ssl;
    (void)al;
    (void)arg;
    return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *tls_mitm_ctx_new(char *err, size_t errlen)
{
    SSL_CTX *ctx = tls_ctx_base(err, errlen);

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_client_hello_cb(ctx, tls_mitm_hellocb, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, tls_servernamecb);
    return ctx;
}

/* ---- reverse listener with minted certificates ---- */

int tls_reverse_init(struct tls_reverse *r, const struct certs_ca *ca, const char *const *names,
                     size_t n, char *err, size_t errlen)
{
    char why[400];
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;

    memset(r, 0, sizeof(*r));
    r->ca = ca;
    if (n == 0 || n > TLS_MAX_MINT_NAMES) {
        snprintf(err, errlen, "between 1 and %d names", TLS_MAX_MINT_NAMES);
        return -1;
    }
    if (!certs_ca_can_sign(ca)) {
        snprintf(err, errlen, "the CA was loaded without its key and cannot mint");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int kind =
            certs_host_normalize(names[i], r->names[r->n], sizeof(r->names[0]), why, sizeof(why));
        size_t j;

        if (kind < 0) {
            snprintf(err, errlen, "\"%.80s\": %s", names[i], why);
            return -1;
        }
        if (kind != CERTS_HOST_DNS) {
            snprintf(err, errlen,
                     "\"%.80s\" is an IP address: the CA never vouches for addresses, give "
                     "the DNS name clients use",
                     names[i]);
            return -1;
        }
        for (j = 0; j < r->n; j++)
            if (strcmp(r->names[j], r->names[r->n]) == 0)
                break;
        if (j == r->n)
            r->n++;
    }
    if ((r->cache = certs_cache_new(TLS_MAX_MINT_NAMES)) == NULL ||
        certs_cache_set_margin(r->cache, TLS_REVERSE_REMINT_SECS) != 0) {
        snprintf(err, errlen, "cannot create the certificate cache");
        tls_reverse_clear(r);
        return -1;
    }
    /* Mint each now: a name outside the CA's constraints fails here, not at a client. */
    for (size_t i = 0; i < r->n; i++) {
        if (certs_cache_get_or_mint(r->cache, ca, r->names[i], time(NULL), &leaf, &key, why,
                                    sizeof(why)) != 0) {
            snprintf(err, errlen, "%s", why);
            tls_reverse_clear(r);
            return -1;
        }
        X509_free(leaf);
        EVP_PKEY_free(key);
        leaf = NULL;
        key = NULL;
    }
    return 0;
}

void tls_reverse_clear(struct tls_reverse *r)
{
    certs_cache_free(r->cache);
    r->cache = NULL;
    r->n = 0;
}

/* The configured name sni asks for (case and a final dot ignored), else the first one. */
static const char *tls_reverse_name(const struct tls_reverse *r, const char *sni)
{
    size_t len;

    if (sni == NULL || sni[0] == '\0')
        return r->names[0];
    len = strlen(sni);
    if (sni[len - 1] == '.')
        len--;
    for (size_t i = 0; i < r->n; i++)
        if (strlen(r->names[i]) == len && strncasecmp(r->names[i], sni, len) == 0)
            return r->names[i];
    return r->names[0];
}

int tls_reverse_leaf(struct tls_reverse *r, const char *sni, time_t now, X509 **leaf,
                     EVP_PKEY **key, char *err, size_t errlen)
{
    return certs_cache_get_or_mint(r->cache, r->ca, tls_reverse_name(r, sni), now, leaf, key, err,
                                   errlen);
}

/*
 * The reverse listener is not an interceptor: a client naming another host
 * (or none, e.g. connecting by address) still gets the default name's leaf,
 * as any web server answers with its default certificate, and its own
 * verification decides.
 */
static int tls_reverse_hellocb(SSL *ssl, int *al, void *arg)
{
    struct tls_reverse *r = arg;
    char sni[256], err[400];
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;

    if (certs_sni_from_hello(ssl, sni, sizeof(sni)) != 0)
        sni[0] = '\0';
    /* with several names, a session made for one is not resumed for another */
    if (tls_bind_sessions(ssl, tls_reverse_name(r, sni)) < 0) {
        ERR_clear_error();
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    if (tls_reverse_leaf(r, sni, time(NULL), &leaf, &key, err, sizeof(err)) != 0) {
        log_error("https: cannot mint the reverse listener's certificate: %s", err);
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return tls_install_leaf(ssl, leaf, key, r->ca, al);
}

SSL_CTX *tls_reverse_ctx_new(struct tls_reverse *r, char *err, size_t errlen)
{
    SSL_CTX *ctx = tls_ctx_base(err, errlen);

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_client_hello_cb(ctx, tls_reverse_hellocb, r);
    SSL_CTX_set_tlsext_servername_callback(ctx, tls_servernamecb);
    return ctx;
}
