/*
 * test_tls.c - proxy/tls.c: the reverse listener's certificates minted from
 * crmgate's CA (tls.mint_names).
 *
 *   - start-up checks: a name outside the CA's name constraints, an IP
 *     address, a bad name, and a CA without its key are refused with a
 *     reason; names are canonical and deduplicated;
 *   - which leaf a client gets for its SNI (the configured name it equals,
 *     else the first), verified with OpenSSL's chain verifier;
 *   - re-mint before expiry, with the clock passed in: the same leaf until
 *     ten days before its notAfter, a new one (new serial, later notAfter)
 *     from then on;
 *   - real handshakes through tls_reverse_ctx_new over an in-memory BIO
 *     pair, the client trusting only the CA and checking the host name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "mint.h"
#include "tls.h"

#define DAY (24 * 60 * 60)

static char g_dir[256];
static struct certs_ca *g_ca;     /* permits the CRM defaults + gate.example.test */
static struct certs_ca *g_nokey;  /* the same CA loaded without its key */
static struct certs_ca *g_strict; /* the CRM defaults only */

static struct certs_ca *make_ca(const char *sub, const char *const *permit, size_t n, int key)
{
    char dir[300], cert[320], keyp[320], err[512];
    struct certs_ca *ca;

    snprintf(dir, sizeof(dir), "%s/%s", g_dir, sub);
    if (access(dir, F_OK) != 0 && certs_ca_init(dir, permit, n, err, sizeof(err)) != 0)
        fail_msg("certs_ca_init: %s", err);
    snprintf(cert, sizeof(cert), "%s/ca.pem", dir);
    snprintf(keyp, sizeof(keyp), "%s/ca.key", dir);
    ca = certs_ca_load(cert, key ? keyp : NULL, err, sizeof(err));
    if (ca == NULL)
        fail_msg("certs_ca_load: %s", err);
    return ca;
}

static int setup(void **state)
{
    static const char *const permit[] = {"api.hubapi.com", "api.hubspot.com", ".salesforce.com",
                                         ".force.com", "gate.example.test"};

    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/crmgate-test-tls.XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    g_ca = make_ca("ca", permit, sizeof(permit) / sizeof(permit[0]), 1);
    g_nokey = make_ca("ca", permit, sizeof(permit) / sizeof(permit[0]), 0);
    g_strict = make_ca("strict", NULL, 0, 1);
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];

    (void)state;
    certs_ca_free(g_ca);
    certs_ca_free(g_nokey);
    certs_ca_free(g_strict);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static unsigned long long serial_of(X509 *x)
{
    const ASN1_INTEGER *s = X509_get0_serialNumber(x);
    unsigned long long v = 0;

    /* The low 8 bytes tell 16-byte random serials apart well enough for a test. */
    for (int i = s->length > 8 ? s->length - 8 : 0; i < s->length; i++)
        v = (v << 8) | s->data[i];
    return v;
}

static time_t not_after(X509 *x)
{
    struct tm tm;

    assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm), 1);
    return timegm(&tm);
}

/* The leaf verifies against the CA alone for host, at now. */
static void assert_verifies(X509 *leaf, const char *host, time_t now)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_VERIFY_PARAM *vp;
    int ok;

    assert_non_null(store);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(store, certs_ca_cert(g_ca)), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    vp = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(vp, now);
    X509_VERIFY_PARAM_set1_host(vp, host, 0);
    X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_SSL_SERVER);
    ok = X509_verify_cert(ctx);
    if (ok != 1)
        fail_msg("leaf for %s does not verify: %s", host,
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
}

static void test_init_refusals(void **state)
{
    static const struct {
        const char *names[3];
        size_t n;
        int strict; /* use the CA with the CRM defaults only */
        const char *want;
    } cases[] = {
        {{"gate.example.test"}, 1, 1, "outside the CA's name constraints"},
        {{"api.hubapi.com", "gate.example.test"}, 2, 1, "gate.example.test is outside"},
        {{"127.0.0.1"}, 1, 0, "is an IP address"},
        {{"[::1]"}, 1, 0, "is an IP address"},
        {{"*.example.test"}, 1, 0, "wildcard"},
        {{"bad_name.example.test"}, 1, 0, "invalid character '_'"},
        {{"other.example.test"}, 1, 0, "outside the CA's name constraints"},
        {{""}, 0, 0, "between 1 and"},
    };
    struct tls_reverse r;
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        assert_int_equal(tls_reverse_init(&r, cases[i].strict ? g_strict : g_ca, cases[i].names,
                                          cases[i].n, err, sizeof(err)),
                         -1);
        if (strstr(err, cases[i].want) == NULL)
            fail_msg("case %zu: err \"%s\", want \"%s\"", i, err, cases[i].want);
        assert_null(r.cache);
    }
    {
        const char *one[] = {"gate.example.test"};
        assert_int_equal(tls_reverse_init(&r, g_nokey, one, 1, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "without its key"));
    }
}

static void test_names_and_sni(void **state)
{
    const char *names[] = {"Gate.Example.Test.", "api.hubapi.com", "gate.example.test",
                           "x.gate.example.test"};
    static const struct {
        const char *sni;
        const char *want;
    } cases[] = {
        {NULL, "gate.example.test"},
        {"", "gate.example.test"},
        {"API.HUBAPI.COM", "api.hubapi.com"},
        {"x.gate.example.test.", "x.gate.example.test"},
        {"unknown.example.test", "gate.example.test"},
        {"gate.example.tes", "gate.example.test"},
    };
    struct certs_cache_stats st;
    struct tls_reverse r;
    time_t now = time(NULL);
    char err[512];

    (void)state;
    assert_int_equal(tls_reverse_init(&r, g_ca, names, 4, err, sizeof(err)), 0);
    assert_int_equal(r.n, 3); /* the duplicate in another case and with a dot is dropped */
    assert_string_equal(r.names[0], "gate.example.test");
    assert_string_equal(r.names[1], "api.hubapi.com");
    assert_string_equal(r.names[2], "x.gate.example.test");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509 *leaf = NULL;
        EVP_PKEY *key = NULL;

        assert_int_equal(tls_reverse_leaf(&r, cases[i].sni, now, &leaf, &key, err, sizeof(err)), 0);
        assert_int_equal(X509_check_host(leaf, cases[i].want, 0, 0, NULL), 1);
        assert_int_equal(X509_check_private_key(leaf, key), 1);
        assert_verifies(leaf, cases[i].want, now);
        X509_free(leaf);
        EVP_PKEY_free(key);
    }
    certs_cache_stats(r.cache, &st);
    assert_int_equal(st.misses, 3); /* each name minted once, at init */
    assert_int_equal(st.hits, 6);
    tls_reverse_clear(&r);
}

/*
 * A leaf lives 30 days; it is served until ten days before its notAfter and
 * re-minted from then on, so a crmgate running for months never presents an
 * expired (or nearly expired) certificate.
 */
static void test_remint_before_expiry(void **state)
{
    const char *names[] = {"gate.example.test"};
    struct certs_cache_stats st;
    struct tls_reverse r;
    X509 *a = NULL, *b = NULL, *c = NULL;
    EVP_PKEY *key = NULL;
    time_t t0 = time(NULL), a_end;
    char err[512];

    (void)state;
    assert_int_equal(tls_reverse_init(&r, g_ca, names, 1, err, sizeof(err)), 0);
    assert_int_equal(tls_reverse_leaf(&r, NULL, t0, &a, &key, err, sizeof(err)), 0);
    EVP_PKEY_free(key);
    a_end = not_after(a);
    assert_true(a_end >= t0 + CERTS_LEAF_LIFETIME_SECS - 5);
    assert_true(a_end <= t0 + CERTS_LEAF_LIFETIME_SECS + 5);

    /* Until ten days before notAfter: the same leaf. */
    assert_int_equal(
        tls_reverse_leaf(&r, NULL, a_end - TLS_REVERSE_REMINT_SECS - 1, &b, &key, err, sizeof(err)),
        0);
    EVP_PKEY_free(key);
    assert_int_equal(serial_of(a), serial_of(b));
    assert_int_equal(X509_cmp(a, b), 0);

    /* From then on: a new leaf, valid 30 days from then, verifying at that time. */
    assert_int_equal(
        tls_reverse_leaf(&r, NULL, a_end - TLS_REVERSE_REMINT_SECS, &c, &key, err, sizeof(err)), 0);
    EVP_PKEY_free(key);
    assert_int_not_equal(serial_of(a), serial_of(c));
    assert_true(not_after(c) >= a_end - TLS_REVERSE_REMINT_SECS + CERTS_LEAF_LIFETIME_SECS - 5);
    assert_verifies(c, "gate.example.test", a_end - TLS_REVERSE_REMINT_SECS + 60);
    certs_cache_stats(r.cache, &st);
    assert_int_equal(st.expirations, 1);
    /* A margin must leave the leaf some life and be positive. */
    assert_int_equal(certs_cache_set_margin(r.cache, 0), -1);
    assert_int_equal(certs_cache_set_margin(r.cache, CERTS_LEAF_LIFETIME_SECS), -1);
    assert_int_equal(certs_cache_set_margin(r.cache, DAY), 0);
    assert_int_equal(st.misses, 2);
    X509_free(a);
    X509_free(b);
    X509_free(c);
    tls_reverse_clear(&r);
}

/* One client handshake against ctx; returns 1 when it completed and verified. */
static int handshake(SSL_CTX *sctx, const char *sni, const char *host, char *got_cn, size_t cnlen)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *c, *s;
    BIO *cb_io = NULL, *sb_io = NULL;
    int cdone = 0, sdone = 0, failed = 0, ok;

    assert_non_null(cctx);
    assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), certs_ca_cert(g_ca)), 1);
    /* VERIFY_NONE: the handshake completes either way and the verdict is read after. */
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    c = SSL_new(cctx);
    s = SSL_new(sctx);
    assert_int_equal(BIO_new_bio_pair(&cb_io, 0, &sb_io, 0), 1);
    SSL_set_bio(c, cb_io, cb_io);
    SSL_set_bio(s, sb_io, sb_io);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    if (sni != NULL)
        assert_int_equal(SSL_set_tlsext_host_name(c, sni), 1);
    assert_int_equal(SSL_set1_host(c, host), 1);
    for (int round = 0; round < 20 && !(cdone && sdone) && !failed; round++) {
        int r;
        if (!cdone) {
            r = SSL_do_handshake(c);
            if (r == 1)
                cdone = 1;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
                failed = 1;
        }
        if (!sdone && !failed) {
            r = SSL_do_handshake(s);
            if (r == 1)
                sdone = 1;
            else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
                failed = 1;
        }
    }
    ok = cdone && sdone && SSL_get_verify_result(c) == X509_V_OK;
    got_cn[0] = '\0';
    if (cdone) {
        X509 *peer = SSL_get1_peer_certificate(c);
        if (peer != NULL)
            X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, got_cn,
                                      (int)cnlen);
        X509_free(peer);
    }
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    ERR_clear_error();
    return ok;
}

static void test_handshakes(void **state)
{
    const char *names[] = {"gate.example.test", "api.hubapi.com"};
    struct tls_reverse r;
    SSL_CTX *sctx;
    char err[512], cn[256];

    (void)state;
    assert_int_equal(tls_reverse_init(&r, g_ca, names, 2, err, sizeof(err)), 0);
    sctx = tls_reverse_ctx_new(&r, err, sizeof(err));
    assert_non_null(sctx);
    assert_int_equal(handshake(sctx, "gate.example.test", "gate.example.test", cn, sizeof(cn)), 1);
    assert_string_equal(cn, "gate.example.test");
    assert_int_equal(handshake(sctx, "api.hubapi.com", "api.hubapi.com", cn, sizeof(cn)), 1);
    assert_string_equal(cn, "api.hubapi.com");
    /* No SNI: the default name's leaf. */
    assert_int_equal(handshake(sctx, NULL, "gate.example.test", cn, sizeof(cn)), 1);
    assert_string_equal(cn, "gate.example.test");
    /* A client expecting another name gets the default leaf, and its verification fails. */
    assert_int_equal(handshake(sctx, "other.example.test", "other.example.test", cn, sizeof(cn)),
                     0);
    assert_string_equal(cn, "gate.example.test");
    SSL_CTX_free(sctx);
    tls_reverse_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_refusals),
        cmocka_unit_test(test_names_and_sni),
        cmocka_unit_test(test_remint_before_expiry),
        cmocka_unit_test(test_handshakes),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
