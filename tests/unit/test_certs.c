/*
 * test_certs.c - certs/: CA creation and loading, name constraints, leaf
 * minting and verification, the leaf cache, SNI from a ClientHello.
 *
 * Every minted leaf is verified with OpenSSL's own chain verifier (strict
 * mode, host name, server purpose, a fixed verification time), and a leaf
 * forged by hand for a host outside the constraints must fail with
 * X509_V_ERR_PERMITTED_VIOLATION: that failure is the point of the CA.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "mint.h"

#define DAY     (24 * 60 * 60)
#define ENT_NOW ((time_t)1893456000) /* 2030-01-01T00:00:00Z: the enterprise CAs' clock */

/* State shared by the tests, made once in group setup. */
static char g_dir[256]; /* temporary directory, removed at teardown */
static char g_own_cert[300], g_own_key[300];
static struct certs_ca *g_own; /* crmgate's CA, made by certs_ca_init() */
static time_t g_now;           /* a fixed instant inside g_own's validity */
static char g_ent_cert[300], g_ent_key[300];
static struct certs_ca *g_ent; /* "enterprise" CA: RSA, no name constraints */

/* ---- helpers ---- */

static void path_in(char *buf, size_t len, const char *sub)
{
    int n = snprintf(buf, len, "%s/%s", g_dir, sub);

    assert_true(n > 0 && (size_t)n < len);
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;

    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return timegm(&tm);
}

static mode_t file_mode(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static int has_substr(const char *s, const char *sub)
{
    return strstr(s, sub) != NULL;
}

/* Chain verification as a TLS client does it: strict, server purpose, host or IP, time fixed. */
static int verify_leaf(X509 *ca, STACK_OF(X509) * chain, X509 *leaf, const char *host,
                       const char *ip, time_t now)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_VERIFY_PARAM *param;
    int rc;

    assert_non_null(store);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, chain), 1);
    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, now);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
    assert_int_equal(X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER), 1);
    if (host != NULL)
        assert_int_equal(X509_VERIFY_PARAM_set1_host(param, host, 0), 1);
    if (ip != NULL)
        assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(param, ip), 1);
    rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k;

    assert_non_null(f);
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(k);
    return k;
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x;

    assert_non_null(f);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

static void write_pem(const char *path, mode_t mode, X509 *cert, EVP_PKEY *key,
                      const EVP_CIPHER *enc)
{
    FILE *f;

    unlink(path);
    f = fopen(path, "w");
    assert_non_null(f);
    if (cert != NULL)
        assert_int_equal(PEM_write_X509(f, cert), 1);
    if (key != NULL)
        assert_int_equal(PEM_write_PrivateKey(f, key, enc, enc ? (unsigned char *)"pw" : NULL,
                                              enc ? 2 : 0, NULL, NULL),
                         1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/*
 * A certificate built by hand, independent of certs/mint.c: how an attacker
 * holding the CA key (or a buggy minting path) would sign. issuer NULL =
 * self-signed; exts is a NULL-terminated list of nid, value pairs.
 */
static X509 *build_cert(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *key, const char *cn,
                        time_t nb, time_t na, const int *nids, const char *const *values)
{
    X509 *x = X509_new();
    BIGNUM *bn = BN_new();

    assert_non_null(x);
    assert_non_null(bn);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(BN_rand(bn, 120, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY), 1);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
    if (cn != NULL)
        assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x)),
                     1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), nb));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), na));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    for (size_t i = 0; nids != NULL && nids[i] != 0; i++)
        add_ext(x, issuer != NULL ? issuer : x, nids[i], values[i]);
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    return x;
}

/* A leaf for san ("DNS:x" or "IP:x", NULL for none) signed directly with the CA key. */
static X509 *forge_leaf(X509 *ca, EVP_PKEY *ca_key, const char *cn, const char *san, time_t now)
{
    static const int nids[] = {NID_basic_constraints, NID_key_usage,
                               NID_ext_key_usage,     NID_authority_key_identifier,
                               NID_subject_alt_name,  0};
    const char *values[] = {"critical,CA:FALSE", "critical,digitalSignature", "serverAuth",
                            "keyid:always", san};
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x;

    assert_non_null(k);
    x = build_cert(ca, ca_key, k, cn, now - 3600, now + 30 * DAY, nids, values);
    EVP_PKEY_free(k);
    return x;
}

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    char sub[600];

    if (d == NULL) {
        unlink(path);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        rm_rf(sub);
    }
    closedir(d);
    rmdir(path);
}

/* Names in dir, sorted, joined with ',' (to spot left-over temporary files). */
static void list_dir(const char *dir, char *out, size_t outlen)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    size_t len = 0;

    assert_true(n >= 0);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.' || strlen(names[i]->d_name) > 2)
            if (strcmp(names[i]->d_name, "..") != 0)
                len += (size_t)snprintf(out + len, outlen - len, "%s%s", len ? "," : "",
                                        names[i]->d_name);
        free(names[i]);
    }
    free(names);
}

static int group_setup(void **state)
{
    static const int ca_nids[] = {NID_basic_constraints, NID_key_usage, NID_subject_key_identifier,
                                  0};
    static const char *const ca_values[] = {"critical,CA:TRUE", "critical,keyCertSign,cRLSign",
                                            "hash"};
    char err[512], dir[300];
    EVP_PKEY *k;
    X509 *x;

    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/crmgate-test-certs-XXXXXX");
    assert_non_null(mkdtemp(g_dir));

    path_in(dir, sizeof(dir), "own");
    if (certs_ca_init(dir, NULL, 0, err, sizeof(err)) != 0)
        fail_msg("certs_ca_init: %s", err);
    path_in(g_own_cert, sizeof(g_own_cert), "own/ca.pem");
    path_in(g_own_key, sizeof(g_own_key), "own/ca.key");
    g_own = certs_ca_load(g_own_cert, g_own_key, err, sizeof(err));
    if (g_own == NULL)
        fail_msg("certs_ca_load: %s", err);
    /* One day after creation: fixed for the whole run, independent of the wall clock. */
    g_now = asn1_to_time(X509_get0_notBefore(certs_ca_cert(g_own))) + 3600 + DAY;

    /* The enterprise CA: RSA, pathlen unset, no name constraints, its own clock. */
    k = EVP_RSA_gen(2048);
    assert_non_null(k);
    x = build_cert(NULL, k, k, "Acme Corp Issuing CA", ENT_NOW - 365 * DAY, ENT_NOW + 5 * 365 * DAY,
                   ca_nids, ca_values);
    path_in(g_ent_cert, sizeof(g_ent_cert), "ent.pem");
    path_in(g_ent_key, sizeof(g_ent_key), "ent.key");
    write_pem(g_ent_cert, 0644, x, NULL, NULL);
    write_pem(g_ent_key, 0600, NULL, k, NULL);
    X509_free(x);
    EVP_PKEY_free(k);
    g_ent = certs_ca_load(g_ent_cert, g_ent_key, err, sizeof(err));
    if (g_ent == NULL)
        fail_msg("enterprise certs_ca_load: %s", err);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    certs_ca_free(g_own);
    g_own = NULL;
    certs_ca_free(g_ent);
    g_ent = NULL;
    rm_rf(g_dir);
    return 0;
}

/* ---- CA creation ---- */

static void test_ca_init_files_and_modes(void **state)
{
    static const mode_t umasks[] = {0, 022, 077, 0777};
    char dir[300], key[400], cert[400], names[200], err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(umasks) / sizeof(umasks[0]); i++) {
        mode_t old;
        int rc;

        snprintf(dir, sizeof(dir), "%s/modes%zu/deeper/ca", g_dir, i);
        old = umask(umasks[i]);
        rc = certs_ca_init(dir, NULL, 0, err, sizeof(err));
        umask(old);
        if (rc != 0)
            fail_msg("umask %03o: %s", (unsigned)umasks[i], err);
        snprintf(key, sizeof(key), "%s/ca.key", dir);
        snprintf(cert, sizeof(cert), "%s/ca.pem", dir);
        if (file_mode(key) != 0600 || file_mode(cert) != 0644)
            fail_msg("umask %03o: key %04o cert %04o", (unsigned)umasks[i],
                     (unsigned)file_mode(key), (unsigned)file_mode(cert));
        /* Nothing but the two files: the temporaries were removed. */
        list_dir(dir, names, sizeof(names));
        assert_string_equal(names, "ca.key,ca.pem");
    }
}

static void test_ca_init_refuses_overwrite(void **state)
{
    char dir[300], cert[400], key[400], err[512];
    unsigned char before[32];
    struct certs_ca *ca;

    (void)state;
    path_in(dir, sizeof(dir), "own");
    memcpy(before, certs_ca_fingerprint(g_own), sizeof(before));
    err[0] = '\0';
    assert_int_equal(certs_ca_init(dir, NULL, 0, err, sizeof(err)), -1);
    assert_true(has_substr(err, "refusing to overwrite"));
    ca = certs_ca_load(g_own_cert, g_own_key, err, sizeof(err));
    assert_non_null(ca);
    assert_memory_equal(certs_ca_fingerprint(ca), before, sizeof(before));
    certs_ca_free(ca);
    assert_int_equal(file_mode(g_own_key), 0600);

    /* Half a CA (only one of the files) is refused too, and left alone. */
    path_in(dir, sizeof(dir), "half");
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(cert, sizeof(cert), "%s/ca.pem", dir);
    write_pem(cert, 0644, certs_ca_cert(g_own), NULL, NULL);
    assert_int_equal(certs_ca_init(dir, NULL, 0, err, sizeof(err)), -1);
    assert_true(has_substr(err, "refusing to overwrite"));
    snprintf(key, sizeof(key), "%s/ca.key", dir);
    assert_int_equal(access(key, F_OK), -1);
}

static void test_ca_init_permitted_table(void **state)
{
    static const struct {
        const char *names[4];
        size_t n;
        const char *want; /* permitted subtrees as certs_ca_permitted_str() shows them */
        const char *error;
    } cases[] = {
        {{".salesforce.com"}, 1, "salesforce.com", NULL},
        {{"API.HubAPI.com.", "api.hubapi.com"}, 2, "api.hubapi.com", NULL},
        {{"my.salesforce.com", ".force.com", "example.org"},
         3,
         "my.salesforce.com, force.com, example.org",
         NULL},
        {{""}, 1, NULL, "empty host name"},
        {{"."}, 1, NULL, "empty host name"},
        {{"*.salesforce.com"}, 1, NULL, "wildcard"},
        {{"10.0.0.1"}, 1, NULL, "all-numeric"},
        {{"com"}, 1, NULL, "single label"},
        {{".com"}, 1, NULL, "single label"},
        {{"bad_name.com"}, 1, NULL, "invalid character '_'"},
        {{"api.hubapi.com", "a..b.com"}, 2, NULL, "empty label"},
    };
    char dir[300], cert[400], key[400], err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct certs_ca *ca;
        int rc;

        snprintf(dir, sizeof(dir), "%s/permit%zu", g_dir, i);
        err[0] = '\0';
        rc = certs_ca_init(dir, cases[i].names, cases[i].n, err, sizeof(err));
        if (cases[i].error != NULL) {
            if (rc != -1 || !has_substr(err, cases[i].error))
                fail_msg("case %zu: rc %d err \"%s\", want \"%s\"", i, rc, err, cases[i].error);
            /* A refused list writes nothing. */
            snprintf(cert, sizeof(cert), "%s/ca.pem", dir);
            assert_int_equal(access(cert, F_OK), -1);
            continue;
        }
        if (rc != 0)
            fail_msg("case %zu: %s", i, err);
        snprintf(cert, sizeof(cert), "%s/ca.pem", dir);
        snprintf(key, sizeof(key), "%s/ca.key", dir);
        ca = certs_ca_load(cert, key, err, sizeof(err));
        if (ca == NULL)
            fail_msg("case %zu: load: %s", i, err);
        assert_string_equal(certs_ca_permitted_str(ca), cases[i].want);
        certs_ca_free(ca);
    }
}

/* The CA certificate, field by field, and its name constraints parsed back. */
static void test_ca_cert_fields(void **state)
{
    static const char *const want_dns[] = {"api.hubapi.com", "api.hubspot.com", "salesforce.com",
                                           "force.com"};
    static const unsigned char zero[32];
    X509 *ca = certs_ca_cert(g_own);
    NAME_CONSTRAINTS *nc;
    BASIC_CONSTRAINTS *bc;
    X509_EXTENSION *ext;
    EVP_PKEY *pub;
    char cn[128];
    int crit = -1, idx;

    (void)state;
    assert_int_equal(X509_get_version(ca), X509_VERSION_3);
    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn, sizeof(cn)) > 0);
    assert_true(strncmp(cn, "crmgate local CA (", 18) == 0 && cn[strlen(cn) - 1] == ')');
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(ca), X509_get_issuer_name(ca)), 0);
    assert_int_equal(X509_check_issued(ca, ca), X509_V_OK);
    /* Ten years (3652 days) plus the hour of back-dating. */
    assert_int_equal(asn1_to_time(X509_get0_notAfter(ca)) - asn1_to_time(X509_get0_notBefore(ca)),
                     3652 * DAY + 3600);
    pub = X509_get0_pubkey(ca);
    assert_true(EVP_PKEY_is_a(pub, "EC"));
    {
        char group[32];
        size_t glen;
        assert_int_equal(EVP_PKEY_get_group_name(pub, group, sizeof(group), &glen), 1);
        assert_string_equal(group, "prime256v1");
    }
    assert_int_equal(X509_get_signature_nid(ca), NID_ecdsa_with_SHA256);

    bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    assert_true(bc->ca);
    assert_non_null(bc->pathlen);
    assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
    BASIC_CONSTRAINTS_free(bc);
    idx = X509_get_ext_by_NID(ca, NID_key_usage, -1);
    assert_true(idx >= 0);
    ext = X509_get_ext(ca, idx);
    assert_int_equal(X509_EXTENSION_get_critical(ext), 1);
    assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_non_null(X509_get0_subject_key_id(ca));

    nc = X509_get_ext_d2i(ca, NID_name_constraints, &crit, NULL);
    assert_non_null(nc);
    assert_int_equal(crit, 1);
    assert_int_equal(sk_GENERAL_SUBTREE_num(nc->permittedSubtrees), 4);
    for (int i = 0; i < 4; i++) {
        GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
        assert_int_equal(st->base->type, GEN_DNS);
        assert_int_equal(ASN1_STRING_length(st->base->d.dNSName), (int)strlen(want_dns[i]));
        assert_memory_equal(ASN1_STRING_get0_data(st->base->d.dNSName), want_dns[i],
                            strlen(want_dns[i]));
        assert_null(st->minimum);
        assert_null(st->maximum);
    }
    assert_int_equal(sk_GENERAL_SUBTREE_num(nc->excludedSubtrees), 2);
    for (int i = 0; i < 2; i++) {
        GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, i);
        int want_len = i == 0 ? 8 : 32; /* 0.0.0.0/0 then ::/0, address || mask */
        assert_int_equal(st->base->type, GEN_IPADD);
        assert_int_equal(ASN1_STRING_length(st->base->d.iPAddress), want_len);
        assert_memory_equal(ASN1_STRING_get0_data(st->base->d.iPAddress), zero, want_len);
    }
    NAME_CONSTRAINTS_free(nc);
    assert_string_equal(certs_ca_permitted_str(g_own),
                        "api.hubapi.com, api.hubspot.com, salesforce.com, force.com");
}

/* ---- CA loading ---- */

static void test_ca_load_table(void **state)
{
    static const int leaf_nids[] = {NID_basic_constraints, 0};
    static const char *const leaf_values[] = {"critical,CA:FALSE"};
    static const int noks_nids[] = {NID_basic_constraints, NID_key_usage, 0};
    static const char *const noks_values[] = {"critical,CA:TRUE", "critical,digitalSignature"};
    char leaf_cert[300], leaf_key[300], open_key[300], enc_key[300], junk[300], noks_cert[300],
        noks_key[300], chain_cert[300], missing[300], cert_as_key[300], err[512];
    EVP_PKEY *k, *own_key;
    X509 *x;
    FILE *f;
    const struct {
        const char *what, *cert, *key;
        const char *error; /* NULL: loads */
        int can_sign, chain_len;
    } cases[] = {
        {"own CA", g_own_cert, g_own_key, NULL, 1, 0},
        {"own CA, certificate only", g_own_cert, NULL, NULL, 0, 0},
        {"enterprise CA", g_ent_cert, g_ent_key, NULL, 1, 0},
        {"enterprise CA with a chain after it", chain_cert, g_ent_key, NULL, 1, 1},
        {"enterprise certificate, own key", g_ent_cert, g_own_key, "does not match", 0, 0},
        {"own certificate, enterprise key", g_own_cert, g_ent_key, "does not match", 0, 0},
        {"leaf certificate", leaf_cert, leaf_key, "not a CA certificate", 0, 0},
        {"CA without keyCertSign", noks_cert, noks_key, "lacks keyCertSign", 0, 0},
        {"world-readable key", g_own_cert, open_key, "accessible to other users", 0, 0},
        {"encrypted key", g_own_cert, enc_key, "not an unencrypted PEM private key", 0, 0},
        {"no certificate in file", junk, g_own_key, "no PEM certificate", 0, 0},
        {"key file is a certificate", g_own_cert, cert_as_key, "not an unencrypted PEM", 0, 0},
        {"missing certificate", missing, g_own_key, "cannot open CA certificate", 0, 0},
        {"missing key", g_own_cert, missing, "cannot open CA key", 0, 0},
    };

    (void)state;
    path_in(leaf_cert, sizeof(leaf_cert), "leaf.pem");
    path_in(leaf_key, sizeof(leaf_key), "leaf.key");
    path_in(open_key, sizeof(open_key), "open.key");
    path_in(enc_key, sizeof(enc_key), "enc.key");
    path_in(junk, sizeof(junk), "junk.pem");
    path_in(noks_cert, sizeof(noks_cert), "noks.pem");
    path_in(noks_key, sizeof(noks_key), "noks.key");
    path_in(chain_cert, sizeof(chain_cert), "chain.pem");
    path_in(missing, sizeof(missing), "does-not-exist");
    path_in(cert_as_key, sizeof(cert_as_key), "cert-as-key.pem");
    write_pem(cert_as_key, 0600, certs_ca_cert(g_own), NULL, NULL);

    k = EVP_EC_gen("P-256");
    x = build_cert(NULL, k, k, "leaf.example", ENT_NOW, ENT_NOW + DAY, leaf_nids, leaf_values);
    write_pem(leaf_cert, 0644, x, NULL, NULL);
    write_pem(leaf_key, 0600, NULL, k, NULL);
    X509_free(x);
    x = build_cert(NULL, k, k, "No keyCertSign CA", ENT_NOW, ENT_NOW + DAY, noks_nids, noks_values);
    write_pem(noks_cert, 0644, x, NULL, NULL);
    write_pem(noks_key, 0600, NULL, k, NULL);
    X509_free(x);
    EVP_PKEY_free(k);
    own_key = read_key(g_own_key);
    write_pem(open_key, 0644, NULL, own_key, NULL);
    write_pem(enc_key, 0600, NULL, own_key, EVP_aes_128_cbc());
    EVP_PKEY_free(own_key);
    f = fopen(junk, "w");
    assert_non_null(f);
    fputs("not a certificate\n", f);
    fclose(f);
    /* Enterprise CA followed by its (here: unrelated) issuer: the second is kept as chain. */
    x = read_cert(g_ent_cert);
    write_pem(chain_cert, 0644, x, NULL, NULL);
    X509_free(x);
    f = fopen(chain_cert, "a");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, certs_ca_cert(g_own)), 1);
    fclose(f);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct certs_ca *ca;

        err[0] = '\0';
        ca = certs_ca_load(cases[i].cert, cases[i].key, err, sizeof(err));
        if (cases[i].error != NULL) {
            if (ca != NULL || !has_substr(err, cases[i].error))
                fail_msg("%s: loaded %d, err \"%s\", want \"%s\"", cases[i].what, ca != NULL, err,
                         cases[i].error);
            continue;
        }
        if (ca == NULL)
            fail_msg("%s: %s", cases[i].what, err);
        assert_int_equal(certs_ca_can_sign(ca), cases[i].can_sign);
        assert_int_equal(sk_X509_num(certs_ca_chain(ca)), cases[i].chain_len);
        certs_ca_free(ca);
    }
    /* Error messages name files and reasons, never key bytes. */
    {
        struct certs_ca *ca = certs_ca_load(g_own_cert, open_key, err, sizeof(err));
        assert_null(ca);
        assert_false(has_substr(err, "PRIVATE KEY"));
        assert_false(has_substr(err, "MII"));
    }
}

static void test_ca_export(void **state)
{
    static const enum certs_format formats[] = {CERTS_FORMAT_PEM, CERTS_FORMAT_DER};
    char err[256], buf[4096];

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        FILE *f = tmpfile();
        X509 *back;
        size_t n;

        assert_non_null(f);
        assert_int_equal(certs_ca_export(g_own, formats[i], f, err, sizeof(err)), 0);
        rewind(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        assert_false(has_substr(buf, "PRIVATE"));
        rewind(f);
        back = formats[i] == CERTS_FORMAT_PEM ? PEM_read_X509(f, NULL, NULL, NULL)
                                              : d2i_X509_fp(f, NULL);
        assert_non_null(back);
        assert_int_equal(X509_cmp(back, certs_ca_cert(g_own)), 0);
        if (formats[i] == CERTS_FORMAT_PEM)
            assert_true(strncmp(buf, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
        else
            assert_int_equal((unsigned char)buf[0], 0x30);
        X509_free(back);
        fclose(f);
    }
}

/* ---- minting ---- */

/* Field-by-field checks of a leaf minted for name at now, then chain verification. */
static void check_leaf(const char *what, X509 *leaf, const char *name, int is_ip, time_t now,
                       time_t want_nb, time_t want_na)
{
    X509 *ca = certs_ca_cert(is_ip ? g_ent : g_own);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(leaf);
    AUTHORITY_KEYID *akid;
    GENERAL_NAMES *gens;
    GENERAL_NAME *gen;
    char cn[300];
    int crit = -1, cnlen, v;

    (void)what;
    assert_int_equal(X509_get_version(leaf), X509_VERSION_3);
    assert_int_equal(serial->type, V_ASN1_INTEGER); /* positive */
    assert_int_equal(serial->length, 16);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(ca)), 0);
    assert_int_equal(asn1_to_time(X509_get0_notBefore(leaf)), want_nb);
    assert_int_equal(asn1_to_time(X509_get0_notAfter(leaf)), want_na);

    cnlen = X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn));
    if (!is_ip && strlen(name) < 64) {
        assert_int_equal(cnlen, (int)strlen(name));
        assert_string_equal(cn, name);
    } else {
        assert_int_equal(cnlen, -1);
        assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(leaf)), 0);
    }
    gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
    assert_non_null(gens);
    assert_int_equal(crit, cnlen == -1 ? 1 : 0);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
    gen = sk_GENERAL_NAME_value(gens, 0);
    if (is_ip) {
        assert_int_equal(gen->type, GEN_IPADD);
    } else {
        assert_int_equal(gen->type, GEN_DNS);
        assert_int_equal(ASN1_STRING_length(gen->d.dNSName), (int)strlen(name));
        assert_memory_equal(ASN1_STRING_get0_data(gen->d.dNSName), name, strlen(name));
    }
    GENERAL_NAMES_free(gens);

    assert_int_equal(X509_get_extension_flags(leaf) & EXFLAG_CA, 0);
    assert_int_equal(X509_EXTENSION_get_critical(
                         X509_get_ext(leaf, X509_get_ext_by_NID(leaf, NID_basic_constraints, -1))),
                     1);
    assert_int_equal(X509_EXTENSION_get_critical(
                         X509_get_ext(leaf, X509_get_ext_by_NID(leaf, NID_key_usage, -1))),
                     1);
    assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER);
    /* No SKI on leaves (mitmproxy#6494), AKI = the CA's SKI. */
    assert_int_equal(X509_get_ext_by_NID(leaf, NID_subject_key_identifier, -1), -1);
    akid = X509_get_ext_d2i(leaf, NID_authority_key_identifier, &crit, NULL);
    assert_non_null(akid);
    assert_int_equal(crit, 0);
    assert_non_null(akid->keyid);
    assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, ski), 0);
    AUTHORITY_KEYID_free(akid);
    assert_int_equal(X509_get_signature_nid(leaf),
                     is_ip ? NID_sha256WithRSAEncryption : NID_ecdsa_with_SHA256);

    v = verify_leaf(ca, NULL, leaf, is_ip ? NULL : name, is_ip ? name : NULL, now);
    if (v != X509_V_OK)
        fail_msg("%s: verification failed: %s", what, X509_verify_cert_error_string(v));
    /* And against another host name: the name check itself is live. */
    if (!is_ip) {
        v = verify_leaf(ca, NULL, leaf, "other.my.salesforce.com", NULL, now);
        assert_int_equal(v, X509_V_ERR_HOSTNAME_MISMATCH);
    }
}

static void test_mint_table(void **state)
{
    static const char long_host[] =
        "a-sixty-character-label-for-a-long-salesforce-instance-name-x.my.salesforce.com";
    static const struct {
        const char *host;
        const char *want;  /* canonical name minted for; NULL: refused */
        const char *error; /* refusal reason */
    } cases[] = {
        {"api.hubapi.com", "api.hubapi.com", NULL},
        {"api.hubspot.com", "api.hubspot.com", NULL},
        {"acme.my.salesforce.com", "acme.my.salesforce.com", NULL},
        {"login.salesforce.com", "login.salesforce.com", NULL},
        {"test.salesforce.com", "test.salesforce.com", NULL},
        {"na1.force.com", "na1.force.com", NULL},
        {"acme.lightning.force.com", "acme.lightning.force.com", NULL},
        {"acme--dev.sandbox.my.salesforce.com", "acme--dev.sandbox.my.salesforce.com", NULL},
        {"API.HubAPI.COM.", "api.hubapi.com", NULL},
        /* RFC 5280 subtrees: the apex and deeper names are inside too (see certs/ca.c). */
        {"salesforce.com", "salesforce.com", NULL},
        {"x.api.hubapi.com", "x.api.hubapi.com", NULL},
        {long_host, long_host, NULL},

        {"example.com", NULL, "outside the CA's name constraints (permitted subtree violation"},
        {"hubapi.com", NULL, "permitted subtree violation"},
        {"hubspot.com", NULL, "permitted subtree violation"},
        {"hubapi.com.evil.com", NULL, "permitted subtree violation"},
        {"api.hubapi.com.evil.com", NULL, "permitted subtree violation"},
        {"evilsalesforce.com", NULL, "permitted subtree violation"},
        {"salesforce.com.evil.com", NULL, "permitted subtree violation"},
        {"visualforce.com", NULL, "permitted subtree violation"},
        {"evilapi.hubapi.com", NULL, "permitted subtree violation"},
        {"127.0.0.1", NULL, "IP address 127.0.0.1 is outside the CA's name constraints (excluded"},
        {"::1", NULL, "IP address ::1 is outside the CA's name constraints (excluded"},
        {"[::1]", NULL, "excluded subtree violation"},
        {"10.0.0.1", NULL, "excluded subtree violation"},
        {"", NULL, "empty host name"},
        {".", NULL, "empty host name"},
        {"*.my.salesforce.com", NULL, "wildcard"},
        {"acme.*.salesforce.com", NULL, "wildcard"},
        {"api hubapi.com", NULL, "invalid byte 0x20"},
        {"api_x.salesforce.com", NULL, "invalid character '_'"},
        {"api.hubapi.com\n", NULL, "invalid byte 0x0a"},
        {"api.hubapi.com:443", NULL, "invalid character ':'"},
        {"acme.my.salesforce.com/x", NULL, "invalid character '/'"},
        {"caf\xc3\xa9.salesforce.com", NULL, "invalid byte 0xc3"},
        {"a..salesforce.com", NULL, "empty label"},
        {".salesforce.com", NULL, "empty label"},
        {"-acme.my.salesforce.com", NULL, "starts or ends with '-'"},
        {"acme-.my.salesforce.com", NULL, "starts or ends with '-'"},
        {"1.2.3", NULL, "all-numeric"},
        {"0x7f.1", NULL, "all-numeric"},
        {"a234567890123456789012345678901234567890123456789012345678901234.salesforce.com", NULL,
         "label longer than 63"},
    };
    char too_long[300], err[512];
    EVP_PKEY *key = certs_key_new(err, sizeof(err));
    const time_t now = g_now;

    (void)state;
    assert_non_null(key);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509 *leaf;

        err[0] = '\0';
        leaf = certs_mint_leaf(g_own, cases[i].host, now, key, err, sizeof(err));
        if (cases[i].want == NULL) {
            if (leaf != NULL || !has_substr(err, cases[i].error))
                fail_msg("\"%s\": minted %d, err \"%s\", want \"%s\"", cases[i].host, leaf != NULL,
                         err, cases[i].error);
            continue;
        }
        if (leaf == NULL)
            fail_msg("\"%s\": %s", cases[i].host, err);
        /* Success leaves OpenSSL's error queue empty: a TLS handshake would read it. */
        assert_int_equal(ERR_peek_error(), 0);
        check_leaf(cases[i].host, leaf, cases[i].want, 0, now, now - 3600, now + 30 * DAY);
        X509_free(leaf);
    }
    /* 254 characters: over the DNS limit. */
    memset(too_long, 'a', 254);
    for (int i = 50; i < 254; i += 50)
        too_long[i] = '.';
    too_long[254] = '\0';
    assert_null(certs_mint_leaf(g_own, too_long, now, key, err, sizeof(err)));
    assert_true(has_substr(err, "longer than 253"));
    /* 253 characters (254 with the trailing dot) is the longest name: minted, SAN only. */
    memcpy(too_long + 253 - 15, ".salesforce.com.", 17);
    assert_int_equal(strlen(too_long), 254);
    {
        X509 *leaf = certs_mint_leaf(g_own, too_long, now, key, err, sizeof(err));
        if (leaf == NULL)
            fail_msg("253-character name: %s", err);
        too_long[253] = '\0';
        check_leaf("253 characters", leaf, too_long, 0, now, now - 3600, now + 30 * DAY);
        X509_free(leaf);
    }
    EVP_PKEY_free(key);
}

/*
 * The constraint itself, without crmgate's up-front check in the way: leaves
 * signed by hand with the CA key. The in-constraint control proves the
 * forging path builds verifiable certificates, so each failure below is the
 * constraint's doing.
 */
static void test_forged_leaf_violates_constraints(void **state)
{
    static const struct {
        const char *cn, *san, *host, *ip;
        int want;
    } cases[] = {
        {"acme.my.salesforce.com", "DNS:acme.my.salesforce.com", "acme.my.salesforce.com", NULL,
         X509_V_OK},
        {"example.com", "DNS:example.com", "example.com", NULL, X509_V_ERR_PERMITTED_VIOLATION},
        {NULL, "critical,DNS:example.com", "example.com", NULL, X509_V_ERR_PERMITTED_VIOLATION},
        {"evilsalesforce.com", "DNS:evilsalesforce.com", "evilsalesforce.com", NULL,
         X509_V_ERR_PERMITTED_VIOLATION},
        {"api.hubapi.com.evil.com", "DNS:api.hubapi.com.evil.com", "api.hubapi.com.evil.com", NULL,
         X509_V_ERR_PERMITTED_VIOLATION},
        /* A permitted SAN does not launder a forbidden second one. */
        {"api.hubapi.com", "DNS:api.hubapi.com,DNS:example.com", "api.hubapi.com", NULL,
         X509_V_ERR_PERMITTED_VIOLATION},
        /* No SAN: OpenSSL checks a host-like CN against the DNS subtrees. */
        {"example.com", NULL, "example.com", NULL, X509_V_ERR_PERMITTED_VIOLATION},
        {NULL, "critical,IP:127.0.0.1", NULL, "127.0.0.1", X509_V_ERR_EXCLUDED_VIOLATION},
        {NULL, "critical,IP:93.184.216.34", NULL, "93.184.216.34", X509_V_ERR_EXCLUDED_VIOLATION},
        {NULL, "critical,IP:2001:db8::1", NULL, "2001:db8::1", X509_V_ERR_EXCLUDED_VIOLATION},
    };
    static const int nids[] = {NID_basic_constraints, NID_key_usage, NID_ext_key_usage,
                               NID_authority_key_identifier, 0};
    static const char *const values[] = {"critical,CA:FALSE", "critical,digitalSignature",
                                         "serverAuth", "keyid:always"};
    EVP_PKEY *ca_key = read_key(g_own_key);
    X509 *ca = certs_ca_cert(g_own);

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509 *leaf;
        int v;

        if (cases[i].san != NULL) {
            leaf = forge_leaf(ca, ca_key, cases[i].cn, cases[i].san, g_now);
        } else {
            EVP_PKEY *k = EVP_EC_gen("P-256");
            leaf = build_cert(ca, ca_key, k, cases[i].cn, g_now - 3600, g_now + 30 * DAY, nids,
                              values);
            EVP_PKEY_free(k);
        }
        v = verify_leaf(ca, NULL, leaf, cases[i].host, cases[i].ip, g_now);
        if (v != cases[i].want)
            fail_msg("case %zu (%s): got %d (%s), want %d (%s)", i,
                     cases[i].san ? cases[i].san : cases[i].cn, v, X509_verify_cert_error_string(v),
                     cases[i].want, X509_verify_cert_error_string(cases[i].want));
        X509_free(leaf);
    }
    EVP_PKEY_free(ca_key);
}

/* An enterprise CA without constraints mints what the caller asks, IP literals included. */
static void test_mint_enterprise_and_validity(void **state)
{
    static const int ca_nids[] = {NID_basic_constraints, NID_key_usage, NID_subject_key_identifier,
                                  0};
    static const char *const ca_values[] = {"critical,CA:TRUE,pathlen:0",
                                            "critical,keyCertSign,cRLSign", "hash"};
    char cert[300], key[300], err[512];
    EVP_PKEY *leaf_key = certs_key_new(err, sizeof(err)), *k;
    struct certs_ca *short_ca, *nokey;
    X509 *leaf, *x;
    time_t ca_na;
    int v;

    (void)state;
    assert_non_null(leaf_key);
    leaf = certs_mint_leaf(g_ent, "Example.COM", ENT_NOW, leaf_key, err, sizeof(err));
    if (leaf == NULL)
        fail_msg("enterprise example.com: %s", err);
    v = verify_leaf(certs_ca_cert(g_ent), NULL, leaf, "example.com", NULL, ENT_NOW);
    assert_int_equal(v, X509_V_OK);
    assert_int_equal(X509_get_signature_nid(leaf), NID_sha256WithRSAEncryption);
    X509_free(leaf);
    leaf = certs_mint_leaf(g_ent, "192.0.2.7", ENT_NOW, leaf_key, err, sizeof(err));
    if (leaf == NULL)
        fail_msg("enterprise IP: %s", err);
    check_leaf("192.0.2.7", leaf, "192.0.2.7", 1, ENT_NOW, ENT_NOW - 3600, ENT_NOW + 30 * DAY);
    X509_free(leaf);

    /* A CA ending in 10 days: the leaf ends with it, not 30 days out. */
    k = EVP_EC_gen("P-256");
    ca_na = ENT_NOW + 10 * DAY;
    x = build_cert(NULL, k, k, "Short-lived CA", ENT_NOW - 30 * 60, ca_na, ca_nids, ca_values);
    path_in(cert, sizeof(cert), "short.pem");
    path_in(key, sizeof(key), "short.key");
    write_pem(cert, 0644, x, NULL, NULL);
    write_pem(key, 0600, NULL, k, NULL);
    X509_free(x);
    EVP_PKEY_free(k);
    short_ca = certs_ca_load(cert, key, err, sizeof(err));
    assert_non_null(short_ca);
    leaf = certs_mint_leaf(short_ca, "api.hubapi.com", ENT_NOW, leaf_key, err, sizeof(err));
    assert_non_null(leaf);
    /* Back-dating stops at the CA's own notBefore (30 minutes, not an hour, before now). */
    assert_int_equal(asn1_to_time(X509_get0_notBefore(leaf)), ENT_NOW - 30 * 60);
    assert_int_equal(asn1_to_time(X509_get0_notAfter(leaf)), ca_na);
    assert_int_equal(
        verify_leaf(certs_ca_cert(short_ca), NULL, leaf, "api.hubapi.com", NULL, ENT_NOW),
        X509_V_OK);
    X509_free(leaf);
    /* Expired and not-yet-valid CA: refused. */
    assert_null(certs_mint_leaf(short_ca, "api.hubapi.com", ca_na, leaf_key, err, sizeof(err)));
    assert_true(has_substr(err, "not valid at this time"));
    assert_null(
        certs_mint_leaf(short_ca, "api.hubapi.com", ENT_NOW - DAY, leaf_key, err, sizeof(err)));
    assert_true(has_substr(err, "not valid at this time"));
    certs_ca_free(short_ca);

    /* A CA loaded without its key exports but does not mint. */
    nokey = certs_ca_load(g_own_cert, NULL, err, sizeof(err));
    assert_non_null(nokey);
    assert_null(certs_mint_leaf(nokey, "api.hubapi.com", g_now, leaf_key, err, sizeof(err)));
    assert_true(has_substr(err, "without its private key"));
    certs_ca_free(nokey);
    EVP_PKEY_free(leaf_key);
}

/* Two leaves for one host differ in serial; each verifies; each is exactly 30 days + 1 h. */
static void test_mint_serials_unique(void **state)
{
    char err[256];
    EVP_PKEY *key = certs_key_new(err, sizeof(err));
    X509 *a, *b;

    (void)state;
    a = certs_mint_leaf(g_own, "api.hubapi.com", g_now, key, err, sizeof(err));
    b = certs_mint_leaf(g_own, "api.hubapi.com", g_now, key, err, sizeof(err));
    assert_non_null(a);
    assert_non_null(b);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)), 0);
    X509_free(a);
    X509_free(b);
    EVP_PKEY_free(key);
}

/* ---- cache ---- */

static void test_cache_lru_table(void **state)
{
    /* Capacity 2. Each step: host, time offset, expected hit, then the counters after it. */
    static const struct {
        const char *host;
        time_t at;
        int hit;
        uint64_t hits, misses, evictions, expirations, failures;
        size_t entries;
    } steps[] = {
        {"api.hubapi.com", 0, 0, 0, 1, 0, 0, 0, 1},
        {"api.hubapi.com", 60, 1, 1, 1, 0, 0, 0, 1},
        {"API.HUBAPI.COM.", 120, 1, 2, 1, 0, 0, 0, 1}, /* the canonical name is the key */
        {"acme.my.salesforce.com", 180, 0, 2, 2, 0, 0, 0, 2},
        {"api.hubapi.com", 240, 1, 3, 2, 0, 0, 0, 2},       /* now most recent */
        {"login.salesforce.com", 300, 0, 3, 3, 1, 0, 0, 2}, /* evicts acme (LRU) */
        {"api.hubapi.com", 360, 1, 4, 3, 1, 0, 0, 2},
        {"acme.my.salesforce.com", 420, 0, 4, 4, 2, 0, 0, 2}, /* evicts login */
        {"example.com", 480, 0, 4, 4, 2, 0, 1, 2},            /* refused: a failure, not cached */
        {"bad host", 480, 0, 4, 4, 2, 0, 2, 2},
        {"example.com", 490, 0, 4, 4, 2, 0, 3, 2},
        /* api.hubapi.com minted at +0: reusable until notAfter - 1 day = +29 d - 0 s. */
        {"api.hubapi.com", 29 * DAY - 1, 1, 5, 4, 2, 0, 3, 2},
        {"api.hubapi.com", 29 * DAY, 0, 5, 5, 2, 1, 3, 2},
        /* The clock stepped back before the new leaf's notBefore: re-mint. */
        {"api.hubapi.com", 29 * DAY - 3601, 0, 5, 6, 2, 2, 3, 2},
    };
    struct certs_cache *c = certs_cache_new(2);
    struct certs_cache_stats st;
    struct {
        char host[300];
        X509 *leaf;
    } seen[4] = {{"", NULL}};
    EVP_PKEY *shared = NULL;
    char err[512], canon[300];

    (void)state;
    assert_non_null(c);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        X509 *leaf = NULL;
        EVP_PKEY *key = NULL;
        time_t now = g_now + steps[i].at;
        int rc =
            certs_cache_get_or_mint(c, g_own, steps[i].host, now, &leaf, &key, err, sizeof(err));
        int refused =
            certs_host_normalize(steps[i].host, canon, sizeof(canon), err, sizeof(err)) < 0 ||
            strcmp(canon, "example.com") == 0;

        if (refused) {
            assert_int_equal(rc, -1);
            assert_null(leaf);
            assert_null(key);
        } else {
            if (rc != 0)
                fail_msg("step %zu %s: %s", i, steps[i].host, err);
            assert_int_equal(X509_check_host(leaf, canon, 0, 0, NULL), 1);
            assert_int_equal(X509_check_private_key(leaf, key), 1);
            assert_int_equal(verify_leaf(certs_ca_cert(g_own), NULL, leaf, canon, NULL, now),
                             X509_V_OK);
            /* One shared leaf key across hosts. */
            if (shared == NULL)
                shared = key;
            assert_ptr_equal(key, shared);
            /* A hit hands out the very leaf served last time for the host; a miss a new one. */
            {
                size_t j = 0;
                while (j < 4 && seen[j].leaf != NULL && strcmp(seen[j].host, canon) != 0)
                    j++;
                assert_true(j < 4);
                if (seen[j].leaf != NULL) {
                    if (steps[i].hit)
                        assert_ptr_equal(leaf, seen[j].leaf);
                    else
                        assert_ptr_not_equal(leaf, seen[j].leaf);
                } else {
                    assert_false(steps[i].hit);
                }
                X509_free(seen[j].leaf);
                seen[j].leaf = leaf; /* keeps the caller's reference */
                snprintf(seen[j].host, sizeof(seen[j].host), "%s", canon);
            }
            EVP_PKEY_free(key);
        }
        certs_cache_stats(c, &st);
        if (st.hits != steps[i].hits || st.misses != steps[i].misses ||
            st.evictions != steps[i].evictions || st.expirations != steps[i].expirations ||
            st.failures != steps[i].failures || st.entries != steps[i].entries)
            fail_msg("step %zu %s: hits %llu misses %llu evictions %llu expirations %llu "
                     "failures %llu entries %zu",
                     i, steps[i].host, (unsigned long long)st.hits, (unsigned long long)st.misses,
                     (unsigned long long)st.evictions, (unsigned long long)st.expirations,
                     (unsigned long long)st.failures, st.entries);
        assert_int_equal(st.capacity, 2);
    }
    for (size_t i = 0; i < 4; i++)
        X509_free(seen[i].leaf);
    certs_cache_free(c);
}

/* A leaf whose remaining life is under the margin is handed out but not cached. */
static void test_cache_short_ca_and_ca_change(void **state)
{
    static const int ca_nids[] = {NID_basic_constraints, NID_key_usage, NID_subject_key_identifier,
                                  0};
    static const char *const ca_values[] = {"critical,CA:TRUE", "critical,keyCertSign", "hash"};
    struct certs_cache *c = certs_cache_new(4);
    struct certs_cache_stats st;
    char cert[300], key[300], err[512];
    struct certs_ca *dying, *other;
    EVP_PKEY *k, *lk;
    X509 *x, *leaf;

    (void)state;
    assert_non_null(c);
    k = EVP_EC_gen("P-256");
    x = build_cert(NULL, k, k, "Dying CA", ENT_NOW - DAY, ENT_NOW + 3600, ca_nids, ca_values);
    path_in(cert, sizeof(cert), "dying.pem");
    path_in(key, sizeof(key), "dying.key");
    write_pem(cert, 0644, x, NULL, NULL);
    write_pem(key, 0600, NULL, k, NULL);
    X509_free(x);
    EVP_PKEY_free(k);
    dying = certs_ca_load(cert, key, err, sizeof(err));
    assert_non_null(dying);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(certs_cache_get_or_mint(c, dying, "api.hubapi.com", ENT_NOW, &leaf, &lk,
                                                 err, sizeof(err)),
                         0);
        X509_free(leaf);
        EVP_PKEY_free(lk);
    }
    certs_cache_stats(c, &st);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.hits, 0);
    assert_int_equal(st.entries, 0);

    /* Switching CA (a reload) flushes: the next leaf is issued by the new CA. */
    assert_int_equal(
        certs_cache_get_or_mint(c, g_own, "api.hubapi.com", g_now, &leaf, &lk, err, sizeof(err)),
        0);
    X509_free(leaf);
    EVP_PKEY_free(lk);
    other = certs_ca_load(g_ent_cert, g_ent_key, err, sizeof(err));
    assert_non_null(other);
    assert_int_equal(
        certs_cache_get_or_mint(c, other, "api.hubapi.com", ENT_NOW, &leaf, &lk, err, sizeof(err)),
        0);
    assert_int_equal(
        X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(certs_ca_cert(other))), 0);
    X509_free(leaf);
    EVP_PKEY_free(lk);
    certs_cache_stats(c, &st);
    assert_int_equal(st.misses, 4);
    assert_int_equal(st.entries, 1);
    certs_ca_free(other);
    certs_ca_free(dying);
    certs_cache_free(c);

    assert_null(certs_cache_new(0));
    assert_null(certs_cache_new(CERTS_CACHE_MAX_CAPACITY + 1));
}

struct cache_thread {
    struct certs_cache *cache;
    unsigned seed;
    int errors;
    int calls;
};

static const char *const thread_hosts[] = {
    "api.hubapi.com",      "api.hubspot.com",     "a.my.salesforce.com",  "b.my.salesforce.com",
    "c.my.salesforce.com", "d.my.salesforce.com", "e.my.salesforce.com",  "f.my.salesforce.com",
    "g.my.salesforce.com", "h.my.salesforce.com", "login.salesforce.com", "test.salesforce.com",
    "na1.force.com",       "na2.force.com",       "na3.force.com",        "na4.force.com",
};

static void *cache_thread_main(void *arg)
{
    struct cache_thread *t = arg;
    char err[256];

    for (int i = 0; i < t->calls; i++) {
        const char *host = thread_hosts[rand_r(&t->seed) % 16];
        X509 *leaf;
        EVP_PKEY *key;

        if (certs_cache_get_or_mint(t->cache, g_own, host, g_now, &leaf, &key, err, sizeof(err)) !=
                0 ||
            X509_check_host(leaf, host, 0, 0, NULL) != 1) {
            t->errors++;
            continue;
        }
        X509_free(leaf);
        EVP_PKEY_free(key);
    }
    return NULL;
}

static void test_cache_threads(void **state)
{
    enum { NTHREADS = 4, CALLS = 1500 };
    struct certs_cache *c = certs_cache_new(8);
    struct cache_thread t[NTHREADS];
    pthread_t tid[NTHREADS];
    struct certs_cache_stats st;

    (void)state;
    assert_non_null(c);
    for (int i = 0; i < NTHREADS; i++) {
        t[i] = (struct cache_thread){c, (unsigned)i * 7919u + 1, 0, CALLS};
        assert_int_equal(pthread_create(&tid[i], NULL, cache_thread_main, &t[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_int_equal(t[i].errors, 0);
    }
    certs_cache_stats(c, &st);
    assert_int_equal(st.hits + st.misses, NTHREADS * CALLS);
    assert_true(st.hits > 0);
    assert_true(st.evictions > 0);
    assert_int_equal(st.entries, 8);
    assert_int_equal(st.failures, 0);
    certs_cache_free(c);
}

/* ---- SNI ---- */

struct hello_seen {
    int called, rc;
    char name[300];
};

static int raw_hello_cb(SSL *s, int *al, void *arg)
{
    struct hello_seen *seen = SSL_get_app_data(s);

    (void)arg;
    seen->called = 1;
    seen->rc = certs_sni_from_hello(s, seen->name, 256);
    *al = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_CLIENT_HELLO_ERROR; /* the test stops here */
}

/* A TLS 1.2-shaped ClientHello with the given server_name extension body (or none). */
static size_t build_hello(unsigned char *out, const unsigned char *sni, size_t sni_len,
                          int with_sni)
{
    unsigned char body[1024];
    size_t n = 0, ext_start, hs_len;

    body[n++] = 0x03, body[n++] = 0x03;
    memset(body + n, 0x42, 32), n += 32; /* random */
    body[n++] = 0;                       /* session id */
    body[n++] = 0, body[n++] = 4;        /* cipher suites */
    body[n++] = 0xc0, body[n++] = 0x2b, body[n++] = 0x13, body[n++] = 0x01;
    body[n++] = 1, body[n++] = 0; /* compression: null */
    ext_start = n;
    n += 2;
    if (with_sni) {
        body[n++] = 0, body[n++] = 0; /* server_name */
        body[n++] = (unsigned char)(sni_len >> 8), body[n++] = (unsigned char)sni_len;
        memcpy(body + n, sni, sni_len), n += sni_len;
    }
    body[n++] = 0, body[n++] = 0x0b; /* ec_point_formats: uncompressed */
    body[n++] = 0, body[n++] = 2, body[n++] = 1, body[n++] = 0;
    body[ext_start] = (unsigned char)((n - ext_start - 2) >> 8);
    body[ext_start + 1] = (unsigned char)(n - ext_start - 2);

    hs_len = n;
    out[0] = 0x16, out[1] = 0x03, out[2] = 0x01;
    out[3] = (unsigned char)((hs_len + 4) >> 8), out[4] = (unsigned char)(hs_len + 4);
    out[5] = 0x01;
    out[6] = 0, out[7] = (unsigned char)(hs_len >> 8), out[8] = (unsigned char)hs_len;
    memcpy(out + 9, body, hs_len);
    return hs_len + 9;
}

static void test_sni_raw_table(void **state)
{
    static const unsigned char long_name[] = {
        0x01, 0x2f, 0x00, 0x01, 0x2c, /* list 303, host_name, 300 */
    };
    static const struct {
        const char *what;
        const char *ext;
        size_t len;
        int with_sni;
        int want_rc;
        const char *want_name;
    } cases[] = {
        {"valid",
         "\x00\x11\x00\x00\x0e"
         "api.hubapi.com",
         19, 1, 0, "api.hubapi.com"},
        {"valid, raw case kept",
         "\x00\x07\x00\x00\x04"
         "A.Bc",
         9, 1, 0, "A.Bc"},
        {"no SNI extension", "", 0, 0, 1, ""},
        {"empty extension", "", 0, 1, -1, ""},
        {"4 bytes", "\x00\x02\x00\x00", 4, 1, -1, ""},
        {"list longer than extension",
         "\x00\x12\x00\x00\x0e"
         "api.hubapi.com",
         19, 1, -1, ""},
        {"list shorter than extension",
         "\x00\x10\x00\x00\x0e"
         "api.hubapi.com",
         19, 1, -1, ""},
        {"name type 1",
         "\x00\x11\x01\x00\x0e"
         "api.hubapi.com",
         19, 1, -1, ""},
        {"name length 0", "\x00\x03\x00\x00\x00", 5, 1, -1, ""},
        {"name longer than list",
         "\x00\x11\x00\x00\x0f"
         "api.hubapi.com",
         19, 1, -1, ""},
        {"name shorter than list",
         "\x00\x11\x00\x00\x0d"
         "api.hubapi.com",
         19, 1, -1, ""},
        {"two entries",
         "\x00\x09\x00\x00\x01"
         "a"
         "\x00\x00\x02"
         "bc",
         11, 1, -1, ""},
        {"NUL in name",
         "\x00\x11\x00\x00\x0e"
         "api.hub\0pi.com",
         19, 1, -1, ""},
        {"name length 0xffff",
         "\x00\x11\x00\xff\xff"
         "api.hubapi.com",
         19, 1, -1, ""},
    };
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    unsigned char hello[1200], ext[400];

    (void)state;
    assert_non_null(ctx);
    SSL_CTX_set_client_hello_cb(ctx, raw_hello_cb, NULL);
    for (size_t i = 0; i <= sizeof(cases) / sizeof(cases[0]); i++) {
        struct hello_seen seen = {0, 99, ""};
        SSL *s = SSL_new(ctx);
        BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
        size_t n, elen;
        int want_rc;
        const char *want_name, *what;

        assert_non_null(s);
        if (i < sizeof(cases) / sizeof(cases[0])) {
            memcpy(ext, cases[i].ext, cases[i].len);
            elen = cases[i].len;
            n = build_hello(hello, ext, elen, cases[i].with_sni);
            want_rc = cases[i].want_rc;
            want_name = cases[i].want_name;
            what = cases[i].what;
        } else {
            /* A well-formed 300-byte name does not fit the 256-byte buffer. */
            memcpy(ext, long_name, sizeof(long_name));
            memset(ext + sizeof(long_name), 'a', 300);
            elen = sizeof(long_name) + 300;
            n = build_hello(hello, ext, elen, 1);
            want_rc = -1;
            want_name = "";
            what = "name longer than the buffer";
        }
        assert_int_equal(BIO_write(rb, hello, (int)n), (int)n);
        SSL_set_bio(s, rb, wb);
        SSL_set_accept_state(s);
        SSL_set_app_data(s, &seen);
        assert_true(SSL_do_handshake(s) <= 0);
        if (!seen.called || seen.rc != want_rc || strcmp(seen.name, want_name) != 0)
            fail_msg("%s: called %d rc %d name \"%s\", want rc %d name \"%s\"", what, seen.called,
                     seen.rc, seen.name, want_rc, want_name);
        SSL_free(s);
        ERR_clear_error();
    }
    SSL_CTX_free(ctx);
}

/* ---- end to end: client and server SSL over a BIO pair ---- */

struct e2e_server {
    struct certs_cache *cache;
    const char *fallback; /* the CONNECT authority when the hello carries no SNI */
    int sni_rc;
    char sni[CERTS_MAX_HOST + 2];
    char err[256];
};

static int e2e_hello_cb(SSL *s, int *al, void *arg)
{
    struct e2e_server *srv = arg;
    const char *host;
    X509 *leaf = NULL;
    EVP_PKEY *key = NULL;
    int ok;

    srv->sni_rc = certs_sni_from_hello(s, srv->sni, sizeof(srv->sni));
    if (srv->sni_rc < 0 || (srv->sni_rc == 1 && srv->fallback == NULL)) {
        *al = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
    host = srv->sni_rc == 0 ? srv->sni : srv->fallback;
    if (certs_cache_get_or_mint(srv->cache, g_own, host, time(NULL), &leaf, &key, srv->err,
                                sizeof(srv->err)) != 0) {
        *al = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
    ok = SSL_use_cert_and_key(s, leaf, key, certs_ca_chain(g_own), 1);
    X509_free(leaf);
    EVP_PKEY_free(key);
    if (ok != 1) {
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

static int e2e_servername_cb(SSL *s, int *al, void *arg)
{
    (void)s;
    (void)al;
    (void)arg;
    return SSL_TLSEXT_ERR_OK;
}

static int e2e_alpn_cb(SSL *s, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";

    (void)s;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    return SSL_TLSEXT_ERR_OK;
}

/*
 * These handshakes run at the wall clock (OpenSSL's TLS client verifies at
 * the current time), which the CA, made moments ago, covers.
 */
static void test_handshake_end_to_end(void **state)
{
    static const struct {
        const char *sni;      /* NULL: the client sends none */
        const char *fallback; /* server-side fallback name */
        const char *verify;   /* client's expected host */
        int tls_max;
        int ok;
        int want_sni_rc;
    } cases[] = {
        {"acme.my.salesforce.com", NULL, "acme.my.salesforce.com", TLS1_3_VERSION, 1, 0},
        {"api.hubapi.com", NULL, "api.hubapi.com", TLS1_2_VERSION, 1, 0},
        {"Login.Salesforce.com", NULL, "login.salesforce.com", TLS1_3_VERSION, 1, 0},
        {NULL, "api.hubspot.com", "api.hubspot.com", TLS1_3_VERSION, 1, 1},
        {"example.com", NULL, "example.com", TLS1_3_VERSION, 0, 0},
        {NULL, NULL, "api.hubapi.com", TLS1_3_VERSION, 0, 1},
    };
    struct e2e_server srv = {0};
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    struct certs_cache_stats st;

    (void)state;
    assert_non_null(sctx);
    assert_non_null(cctx);
    srv.cache = certs_cache_new(16);
    assert_non_null(srv.cache);
    SSL_CTX_set_min_proto_version(sctx, TLS1_2_VERSION);
    SSL_CTX_set_options(sctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_client_hello_cb(sctx, e2e_hello_cb, &srv);
    SSL_CTX_set_tlsext_servername_callback(sctx, e2e_servername_cb);
    SSL_CTX_set_alpn_select_cb(sctx, e2e_alpn_cb, NULL);
    assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), certs_ca_cert(g_own)), 1);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    assert_int_equal(SSL_CTX_set_alpn_protos(cctx, (const unsigned char *)"\x02h2\x08http/1.1", 12),
                     0);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
        BIO *cb_io = NULL, *sb_io = NULL;
        int cdone = 0, sdone = 0, failed = 0;
        const unsigned char *alpn;
        unsigned int alpn_len;

        assert_non_null(c);
        assert_non_null(s);
        srv.fallback = cases[i].fallback;
        srv.sni_rc = 99;
        srv.err[0] = '\0';
        assert_int_equal(BIO_new_bio_pair(&cb_io, 0, &sb_io, 0), 1);
        SSL_set_bio(c, cb_io, cb_io);
        SSL_set_bio(s, sb_io, sb_io);
        SSL_set_connect_state(c);
        SSL_set_accept_state(s);
        SSL_set_max_proto_version(c, cases[i].tls_max);
        if (cases[i].sni != NULL)
            assert_int_equal(SSL_set_tlsext_host_name(c, cases[i].sni), 1);
        assert_int_equal(SSL_set1_host(c, cases[i].verify), 1);
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
        if (cases[i].ok) {
            if (!(cdone && sdone))
                fail_msg("case %zu: handshake failed (server: %s, verify: %s)", i, srv.err,
                         X509_verify_cert_error_string(SSL_get_verify_result(c)));
            assert_int_equal(SSL_get_verify_result(c), X509_V_OK);
            SSL_get0_alpn_selected(c, &alpn, &alpn_len);
            assert_int_equal(alpn_len, 8);
            assert_memory_equal(alpn, "http/1.1", 8);
            assert_int_equal(SSL_version(c), cases[i].tls_max);
        } else {
            assert_false(cdone || sdone);
            if (cases[i].want_sni_rc == 0)
                assert_true(has_substr(srv.err, "outside the CA's name constraints"));
        }
        assert_int_equal(srv.sni_rc, cases[i].want_sni_rc);
        SSL_free(c);
        SSL_free(s);
        ERR_clear_error();
    }
    certs_cache_stats(srv.cache, &st);
    assert_int_equal(st.misses, 4);   /* three SNI hosts + the fallback */
    assert_int_equal(st.failures, 1); /* example.com */
    certs_cache_free(srv.cache);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca_init_files_and_modes),
        cmocka_unit_test(test_ca_init_refuses_overwrite),
        cmocka_unit_test(test_ca_init_permitted_table),
        cmocka_unit_test(test_ca_cert_fields),
        cmocka_unit_test(test_ca_load_table),
        cmocka_unit_test(test_ca_export),
        cmocka_unit_test(test_mint_table),
        cmocka_unit_test(test_forged_leaf_violates_constraints),
        cmocka_unit_test(test_mint_enterprise_and_validity),
        cmocka_unit_test(test_mint_serials_unique),
        cmocka_unit_test(test_cache_lru_table),
        cmocka_unit_test(test_cache_short_ca_and_ca_change),
        cmocka_unit_test(test_cache_threads),
        cmocka_unit_test(test_sni_raw_table),
        cmocka_unit_test(test_handshake_end_to_end),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
