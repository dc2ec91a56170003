/*
 * mint.c - leaf certificates minted from the CA, their LRU cache, and the
 * SNI parser for the ClientHello callback.
 *
 * Leaves follow what clients check: the name in the SAN (CN is ignored by
 * modern clients but kept when it fits), EKU serverAuth, SHA-256, a short
 * life. No SKI: a leaf whose SKI equals its CA's breaks SChannel
 * (mitmproxy#6494), and a leaf needs none.
 */
/* EVP_PKEY_get0_EC_KEY() and EVP_PKEY_set1_EC_KEY(): see mint_set_pubkey(). */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <arpa/inet.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/tls1.h>
#include <openssl/x509v3.h>

#include "ca_internal.h"
#include "mint.h"

#define MINT_MAX_CN 64 /* ub-common-name: longer names go in the SAN only */

int certs_host_normalize(const char *host, char *out, size_t outlen, char *err, size_t errlen)
{
    unsigned char addr[16];
    char inner[INET6_ADDRSTRLEN + 2];
    size_t len = strlen(host);

    if (inet_pton(AF_INET, host, addr) == 1) {
        if (inet_ntop(AF_INET, addr, out, (socklen_t)outlen) == NULL)
            goto small;
        return CERTS_HOST_IPV4;
    }
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof(inner)) {
        memcpy(inner, host + 1, len - 2);
        inner[len - 2] = '\0';
        host = inner;
    }
    if (inet_pton(AF_INET6, host, addr) == 1) {
        if (inet_ntop(AF_INET6, addr, out, (socklen_t)outlen) == NULL)
            goto small;
        return CERTS_HOST_IPV6;
    }
    if (certs_dns_name_normalize(host, out, outlen, err, errlen) != 0)
        return -1;
    return CERTS_HOST_DNS;
small:
    snprintf(err, errlen, "output buffer too small for an IP address");
    return -1;
}

EVP_PKEY *certs_key_new(char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");

    if (key == NULL)
        certs_ssl_err(err, errlen, "cannot generate a P-256 key");
    return key;
}

static int mint_add_ext(X509 *x, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, NULL, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;

    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* The subject (CN=name when it fits, else empty) and the one-name SAN of a leaf. */
static int mint_set_names(X509 *x, const char *name, int kind)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = NULL;
    ASN1_OCTET_STRING *ip = NULL;
    /*
     * An IP in the CN would be read as a DNS name by NAME_CONSTRAINTS_check_CN
     * and by legacy CN matching: IP leaves name their address in the SAN only.
     */
    int empty_subject = kind != CERTS_HOST_DNS || strlen(name) >= MINT_MAX_CN, rc = -1;

    if (gens == NULL || gen == NULL)
        goto fail;
    if (!empty_subject && !X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                                      (const unsigned char *)name, -1, -1, 0))
        goto fail;
    if (kind == CERTS_HOST_DNS) {
        if ((ia5 = ASN1_IA5STRING_new()) == NULL || !ASN1_STRING_set(ia5, name, -1))
            goto fail;
        GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
        ia5 = NULL;
    } else {
        if ((ip = a2i_IPADDRESS(name)) == NULL)
            goto fail;
        GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
        ip = NULL;
    }
    if (!sk_GENERAL_NAME_push(gens, gen))
        goto fail;
    gen = NULL;
    /* RFC 5280 4.2.1.6: the SAN is critical when the subject is empty. */
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, empty_subject, X509V3_ADD_DEFAULT) != 1)
        goto fail;
    rc = 0;
fail:
    ASN1_IA5STRING_free(ia5);
    ASN1_OCTET_STRING_free(ip);
    GENERAL_NAME_free(gen);
    GENERAL_NAMES_free(gens);
    return rc;
}

/*
 * Refuse up front what a verifier would refuse: the names go into a
 * throw-away certificate checked with OpenSSL's own constraint matcher, so
 * crmgate and the verifier cannot disagree (and the real leaf's cached
 * extension data is never computed before it is signed).
 */
static int mint_check_constraints(const struct certs_ca *ca, const char *name, int kind, char *err,
                                  size_t errlen)
{
    X509 *probe = NULL;
    int rc = -1, v;

    if (ca->nc == NULL)
        return 0;
    if ((probe = X509_new()) == NULL || mint_set_names(probe, name, kind) != 0) {
        certs_ssl_err(err, errlen, "out of memory");
        goto fail;
    }
    /*
     * NAME_CONSTRAINTS_check() reads the SANs from the certificate's cached
     * extension data, which nothing has computed yet on a fresh X509: without
     * this call it silently checks no SAN at all and passes any IP address.
     * Filling that cache also digests the unsigned probe, which fails and
     * queues an error: pop it, or the TLS handshake that called us reads the
     * stale error as its own failure.
     */
    ERR_set_mark();
    (void)X509_get_extension_flags(probe);
    ERR_pop_to_mark();
    v = NAME_CONSTRAINTS_check(probe, ca->nc);
    if (v == X509_V_OK)
        v = NAME_CONSTRAINTS_check_CN(probe, ca->nc);
    if (v != X509_V_OK) {
        snprintf(err, errlen, "%s %s is outside the CA's name constraints (%s; permitted: %s)",
                 kind == CERTS_HOST_DNS ? "host" : "IP address", name,
                 X509_verify_cert_error_string(v), ca->permitted_str);
        goto fail;
    }
    rc = 0;
fail:
    X509_free(probe);
    return rc;
}

/*
 * X509_set_pubkey() with a provider-native key (what EVP_EC_gen() returns)
 * runs an OSSL_ENCODER to DER and an OSSL_DECODER back, three quarters of a
 * whole mint (measured with callgrind on Debian 12's OpenSSL 3.0). A legacy
 * EVP_PKEY around the same EC_KEY takes the direct pub_encode path instead.
 * The EC_KEY is the provider key's own cached legacy copy (made once, under
 * the key's lock), so this is cheap and thread-safe; the leaf then holds the
 * legacy wrapper, which EVP_PKEY_eq() (SSL_use_cert_and_key) still matches
 * against the provider key. Any other key type takes the ordinary path.
 */
static int mint_set_pubkey(X509 *x, EVP_PKEY *key)
{
    const EC_KEY *ec = EVP_PKEY_is_a(key, "EC") ? EVP_PKEY_get0_EC_KEY(key) : NULL;
    EVP_PKEY *legacy = NULL;
    int rc;

    if (ec == NULL) {
        ERR_clear_error();
        return X509_set_pubkey(x, key) == 1 ? 0 : -1;
    }
    if ((legacy = EVP_PKEY_new()) == NULL || EVP_PKEY_set1_EC_KEY(legacy, (EC_KEY *)ec) != 1) {
        EVP_PKEY_free(legacy);
        return -1;
    }
    rc = X509_set_pubkey(x, legacy) == 1 ? 0 : -1;
    EVP_PKEY_free(legacy);
    return rc;
}

static int mint_add_akid(X509 *x, const struct certs_ca *ca)
{
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    int rc = -1;

    if (akid == NULL || (akid->keyid = ASN1_OCTET_STRING_dup(ca->skid)) == NULL)
        goto fail;
    if (X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) != 1)
        goto fail;
    rc = 0;
fail:
    AUTHORITY_KEYID_free(akid);
    return rc;
}

X509 *certs_mint_leaf(const struct certs_ca *ca, const char *host, time_t now, EVP_PKEY *key,
                      char *err, size_t errlen)
{
    char name[CERTS_MAX_HOST + 1], why[200];
    time_t not_before = now - CERTS_LEAF_BACKDATE_SECS, not_after = now + CERTS_LEAF_LIFETIME_SECS;
    X509 *x = NULL;
    int kind;

    if (ca->key == NULL) {
        snprintf(err, errlen, "the CA was loaded without its private key and cannot mint");
        return NULL;
    }
    if (key == NULL) {
        snprintf(err, errlen, "no leaf key");
        return NULL;
    }
    if ((kind = certs_host_normalize(host, name, sizeof(name), why, sizeof(why))) < 0) {
        snprintf(err, errlen, "cannot mint for \"%.80s\": %s", host, why);
        return NULL;
    }
    if (now < ca->not_before || now >= ca->not_after) {
        snprintf(err, errlen, "the CA certificate is not valid at this time (expired?)");
        return NULL;
    }
    /* A leaf outliving its CA would fail verification at the CA's notAfter anyway. */
    if (not_after > ca->not_after)
        not_after = ca->not_after;
    if (not_before < ca->not_before)
        not_before = ca->not_before;
    if (mint_check_constraints(ca, name, kind, err, errlen) != 0)
        return NULL;

    if ((x = X509_new()) == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
        certs_random_serial(x) != 0 ||
        X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1 ||
        ASN1_TIME_set(X509_getm_notBefore(x), not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), not_after) == NULL || mint_set_pubkey(x, key) != 0 ||
        mint_set_names(x, name, kind) != 0)
        goto fail;
    if (mint_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        mint_add_ext(x, NID_key_usage,
                     EVP_PKEY_is_a(key, "RSA") ? "critical,digitalSignature,keyEncipherment"
                                               : "critical,digitalSignature") != 0 ||
        mint_add_ext(x, NID_ext_key_usage, "serverAuth") != 0 || mint_add_akid(x, ca) != 0)
        goto fail;
    if (X509_sign(x, ca->key, ca->md) <= 0)
        goto fail;
    return x;
fail:
    certs_ssl_err(err, errlen, "cannot build the leaf certificate");
    X509_free(x);
    return NULL;
}

/* ---- cache ---- */

struct certs_cache_entry {
    struct certs_cache_entry *hnext;       /* hash bucket chain */
    struct certs_cache_entry *prev, *next; /* LRU list, most recent at head */
    X509 *leaf;
    time_t valid_from, reuse_until;
    uint32_t hash;
    char host[CERTS_MAX_HOST + 1];
};

struct certs_cache {
    pthread_mutex_t mu;
    size_t capacity, count, nbuckets;
    struct certs_cache_entry **buckets;
    struct certs_cache_entry *head, *tail;
    EVP_PKEY *key;
    unsigned char ca_fp[32]; /* the CA every cached leaf was signed by */
    int bound;
    time_t margin; /* re-mint this long before notAfter */
    struct certs_cache_stats stats;
};

static uint32_t cache_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

struct certs_cache *certs_cache_new(size_t capacity)
{
    struct certs_cache *c;
    size_t nb = 16;

    if (capacity == 0 || capacity > CERTS_CACHE_MAX_CAPACITY)
        return NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    while (nb < capacity * 2)
        nb *= 2;
    c->capacity = capacity;
    c->margin = CERTS_CACHE_MARGIN_SECS;
    c->nbuckets = nb;
    c->buckets = calloc(nb, sizeof(*c->buckets));
    c->key = EVP_EC_gen("P-256");
    if (c->buckets == NULL || c->key == NULL || pthread_mutex_init(&c->mu, NULL) != 0) {
        ERR_clear_error();
        free(c->buckets);
        EVP_PKEY_free(c->key);
        free(c);
        return NULL;
    }
    return c;
}

static void cache_unlink(struct certs_cache *c, struct certs_cache_entry *e)
{
    struct certs_cache_entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    c->count--;
    X509_free(e->leaf);
    e->leaf = NULL;
    free(e);
}

static void cache_flush(struct certs_cache *c)
{
    while (c->head != NULL)
        cache_unlink(c, c->head);
}

void certs_cache_free(struct certs_cache *cache)
{
    if (cache == NULL)
        return;
    cache_flush(cache);
    pthread_mutex_destroy(&cache->mu);
    free(cache->buckets);
    cache->buckets = NULL;
    EVP_PKEY_free(cache->key);
    cache->key = NULL;
    free(cache);
}

static void cache_to_front(struct certs_cache *c, struct certs_cache_entry *e)
{
    if (c->head == e)
        return;
    e->prev->next = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = NULL;
    e->next = c->head;
    c->head->prev = e;
    c->head = e;
}

/* Called with the lock held. Drops the whole cache when the CA changed (a reload). */
static void cache_bind_ca(struct certs_cache *c, const struct certs_ca *ca)
{
    if (c->bound && memcmp(c->ca_fp, ca->fingerprint, sizeof(c->ca_fp)) == 0)
        return;
    cache_flush(c);
    memcpy(c->ca_fp, ca->fingerprint, sizeof(c->ca_fp));
    c->bound = 1;
}

/*
 * Called with the lock held: the entry for host if it can be served at now.
 * An entry past its reuse time (or minted after now: the clock stepped back)
 * is dropped.
 */
static struct certs_cache_entry *cache_find(struct certs_cache *c, const char *host, uint32_t h,
                                            time_t now)
{
    struct certs_cache_entry *e = c->buckets[h & (c->nbuckets - 1)];

    while (e != NULL && (e->hash != h || strcmp(e->host, host) != 0))
        e = e->hnext;
    if (e != NULL && (now >= e->reuse_until || now < e->valid_from)) {
        cache_unlink(c, e);
        c->stats.expirations++;
        e = NULL;
    }
    return e;
}

static int cache_serve(struct certs_cache *c, struct certs_cache_entry *e, X509 **leaf,
                       EVP_PKEY **key)
{
    if (X509_up_ref(e->leaf) != 1)
        return -1;
    if (EVP_PKEY_up_ref(c->key) != 1) {
        X509_free(e->leaf);
        return -1;
    }
    cache_to_front(c, e);
    *leaf = e->leaf;
    *key = c->key;
    return 0;
}

int certs_cache_get_or_mint(struct certs_cache *cache, const struct certs_ca *ca, const char *host,
                            time_t now, X509 **leaf, EVP_PKEY **key, char *err, size_t errlen)
{
    char name[CERTS_MAX_HOST + 1], why[200];
    struct certs_cache_entry *e;
    X509 *minted = NULL;
    uint32_t h;
    int rc = -1;

    *leaf = NULL;
    *key = NULL;
    if (certs_host_normalize(host, name, sizeof(name), why, sizeof(why)) < 0) {
        snprintf(err, errlen, "cannot mint for \"%.80s\": %s", host, why);
        pthread_mutex_lock(&cache->mu);
        cache->stats.failures++;
        pthread_mutex_unlock(&cache->mu);
        return -1;
    }
    h = cache_hash(name);

    pthread_mutex_lock(&cache->mu);
    cache_bind_ca(cache, ca);
    if ((e = cache_find(cache, name, h, now)) != NULL && cache_serve(cache, e, leaf, key) == 0) {
        cache->stats.hits++;
        pthread_mutex_unlock(&cache->mu);
        return 0;
    }
    pthread_mutex_unlock(&cache->mu);

    /* Sign outside the lock: other threads keep getting hits meanwhile. */
    minted = certs_mint_leaf(ca, name, now, cache->key, err, errlen);

    pthread_mutex_lock(&cache->mu);
    if (minted == NULL) {
        cache->stats.failures++;
        goto done;
    }
    cache->stats.misses++;
    cache_bind_ca(cache, ca);
    /* Another thread may have minted the same host meanwhile: keep one. */
    if ((e = cache_find(cache, name, h, now)) == NULL) {
        time_t reuse_until = 0, valid_from = 0;
        struct tm tm;

        if (ASN1_TIME_to_tm(X509_get0_notAfter(minted), &tm) == 1)
            reuse_until = timegm(&tm) - cache->margin;
        if (ASN1_TIME_to_tm(X509_get0_notBefore(minted), &tm) == 1)
            valid_from = timegm(&tm);
        /* A leaf cut short by its CA's notAfter may be too close to expiry to keep. */
        if (reuse_until <= now || (e = calloc(1, sizeof(*e))) == NULL) {
            *leaf = minted;
            minted = NULL;
            if (EVP_PKEY_up_ref(cache->key) != 1) {
                snprintf(err, errlen, "cannot reference the leaf key");
                goto done;
            }
            *key = cache->key;
            rc = 0;
            goto done;
        }
        e->leaf = minted;
        minted = NULL;
        e->hash = h;
        e->valid_from = valid_from;
        e->reuse_until = reuse_until;
        memcpy(e->host, name, strlen(name) + 1);
        e->hnext = cache->buckets[h & (cache->nbuckets - 1)];
        cache->buckets[h & (cache->nbuckets - 1)] = e;
        e->next = cache->head;
        if (cache->head != NULL)
            cache->head->prev = e;
        cache->head = e;
        if (cache->tail == NULL)
            cache->tail = e;
        cache->count++;
        if (cache->count > cache->capacity) {
            cache_unlink(cache, cache->tail);
            cache->stats.evictions++;
        }
    }
    if (cache_serve(cache, e, leaf, key) != 0) {
        snprintf(err, errlen, "cannot reference the cached leaf");
        goto done;
    }
    rc = 0;
done:
    pthread_mutex_unlock(&cache->mu);
    if (rc != 0) {
        X509_free(*leaf);
        *leaf = NULL;
    }
    X509_free(minted);
    return rc;
}

int certs_cache_set_margin(struct certs_cache *cache, time_t secs)
{
    if (secs <= 0 || secs >= CERTS_LEAF_LIFETIME_SECS)
        return -1;
    pthread_mutex_lock(&cache->mu);
    cache->margin = secs;
    pthread_mutex_unlock(&cache->mu);
    return 0;
}

void certs_cache_stats(struct certs_cache *cache, struct certs_cache_stats *out)
{
    pthread_mutex_lock(&cache->mu);
    *out = cache->stats;
    out->entries = cache->count;
    out->capacity = cache->capacity;
    pthread_mutex_unlock(&cache->mu);
}

/* ---- SNI ---- */

int certs_sni_from_hello(SSL *s, char *out, size_t outlen)
{
    const unsigned char *p;
    size_t len, list, n;

    if (outlen == 0)
        return -1;
    out[0] = '\0';
    if (!SSL_client_hello_get0_ext(s, TLSEXT_TYPE_server_name, &p, &len))
        return 1;
    /* list length (2) | name type (1) | name length (2) | name */
    if (len < 5)
        return -1;
    list = (size_t)p[0] << 8 | p[1];
    if (list != len - 2 || p[2] != TLSEXT_NAMETYPE_host_name)
        return -1;
    n = (size_t)p[3] << 8 | p[4];
    /* Exactly one entry, as OpenSSL itself insists when it parses the extension later. */
    if (n == 0 || n != list - 3 || n >= outlen || memchr(p + 5, '\0', n) != NULL)
        return -1;
    memcpy(out, p + 5, n);
    out[n] = '\0';
    return 0;
}
