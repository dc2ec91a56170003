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

#include <openssl/ssl.h>

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
 * (unrecognized_name). NULL with err.
 */
SSL_CTX *tls_mitm_ctx_new(char *err, size_t errlen);

#endif
