/*
 * tls.h - the server side of TLS on crmgate's listeners (OpenSSL 3).
 *
 * One SSL_CTX per loaded config, shared by every worker (SSL_CTX is safe to
 * share for creating connections, and sharing it shares the session-ticket
 * keys, so a client resumes whichever worker it reaches). SIGHUP loads a new
 * config and so a new context: certificates rotate without a restart, and
 * connections keep the context they started with.
 */
#ifndef CRMGATE_TLS_H
#define CRMGATE_TLS_H

#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include "../certs/ca.h"

/*
 * A server context for the certificate chain in cert_file (PEM, leaf first)
 * and the key in key_file: TLS 1.2 and 1.3 only, ALPN http/1.1 only (llhttp
 * speaks HTTP/1 alone; h2 is never advertised), session tickets on, and an
 * EOF without close_notify read as an EOF. NULL with err naming the file and
 * the problem.
 */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen);

struct certs_ca;
struct certs_cache;

/*
 * What the interception handshake needs to know about its tunnel, attached
 * to the SSL with SSL_set_app_data before the handshake starts.
 */
struct tls_mitm {
    const char *connect_host;     /* the CONNECT authority's host, lower case */
    const char *sf_instance_host; /* also intercepted (the Salesforce upstream's host) */
    const struct certs_ca *ca;
    struct certs_cache *cache;
    char sni[256];     /* the client's server name (canonical), "" when it sent none */
    char orig_dst[64]; /* transparent mode: the original destination, for the log */
};

/*
 * A server context for intercepted tunnels: same protocol settings as
 * tls_server_ctx_new, and a ClientHello callback that mints (or takes from
 * the cache) a leaf for the client's SNI, or the CONNECT host when there is
 * none. A name crmgate does not intercept fails the handshake
 * (unrecognized_name). Sessions are bound to the host they were made for:
 * offered for another host, they are not resumed. NULL with err.
 */
SSL_CTX *tls_mitm_ctx_new(char *err, size_t errlen);

/* Most names the reverse listener's minted certificates may be for (tls.mint_names). */
#define TLS_MAX_MINT_NAMES 16

/*
 * The reverse listener's leaves are re-minted once less than this is left of their 30 days:
 * well before notAfter, so a client whose clock runs days ahead still accepts them.
 */
#define TLS_REVERSE_REMINT_SECS (10 * 24 * 60 * 60)

/*
 * The reverse listener's certificates when they are minted from crmgate's CA
 * (tls.mint_names) instead of read from files: one leaf per configured name,
 * held in a small cache of their own (so interception metrics stay about
 * interception). Owned by the config; read-only once built.
 */
struct tls_reverse {
    const struct certs_ca *ca;
    struct certs_cache *cache;
    size_t n;
    char names[TLS_MAX_MINT_NAMES][CERTS_MAX_HOST + 1]; /* canonical; names[0] is the default */
};

/*
 * Fill r for names[0..n) (1..TLS_MAX_MINT_NAMES DNS names) and mint every
 * leaf once, so a name the CA may not vouch for (outside its name
 * constraints, or an IP address) is refused now, at start or reload, with
 * the reason in err. ca must be able to sign. Returns 0 or -1.
 */
int tls_reverse_init(struct tls_reverse *r, const struct certs_ca *ca, const char *const *names,
                     size_t n, char *err, size_t errlen);

/* Free what tls_reverse_init made (not r itself). */
void tls_reverse_clear(struct tls_reverse *r);

/*
 * The leaf to present for a client that sent sni (NULL or "": none): the
 * configured name it equals (case-insensitively), else names[0]. Served from
 * the cache while it is valid at now until TLS_REVERSE_REMINT_SECS before its
 * notAfter, then minted anew: a leaf lives 30 days, so a long-running crmgate
 * re-mints on the first handshake of its 21st day, never presenting an
 * expired or nearly expired one.
 * New references in *leaf and *key; returns 0, or -1 with err.
 */
int tls_reverse_leaf(struct tls_reverse *r, const char *sni, time_t now, X509 **leaf,
                     EVP_PKEY **key, char *err, size_t errlen);

/*
 * A server context for the reverse listener with minted certificates: the
 * protocol settings of tls_server_ctx_new, and a ClientHello callback that
 * installs tls_reverse_leaf() for the client's SNI. r must outlive the
 * context's connections (the config owning both is referenced by each).
 */
SSL_CTX *tls_reverse_ctx_new(struct tls_reverse *r, char *err, size_t errlen);

#endif
