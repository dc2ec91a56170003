/*
 * Unit tests for proxy/vault.c and the key and record helpers of
 * proxy/custody.c: sealing round trips, tampering, associated-data and key
 * mismatches, key files, crmgate key parsing, integration keys and the
 * choice of integration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "custody.h"
#include "refresh.h"
#include "store.h"
#include "vault.h"

static const unsigned char key_a[VAULT_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static const unsigned char key_b[VAULT_KEY_BYTES] = {9, 9, 9};

static void test_round_trip(void **state)
{
    struct vault *v = vault_from_bytes(key_a);
    unsigned char *blob, *pt, *blob2;
    size_t blen, plen, blen2;
    const char *msg = "pat-na1-11111111-2222-3333-4444-555555555555";

    (void)state;
    assert_non_null(v);
    assert_int_equal(vault_seal(v, "aad", 3, msg, strlen(msg), &blob, &blen), 0);
    assert_int_equal(blen, strlen(msg) + VAULT_OVERHEAD);
    assert_null(memmem(blob, blen, msg, strlen(msg))); /* not in clear */
    assert_int_equal(vault_open(v, "aad", 3, blob, blen, &pt, &plen), 0);
    assert_int_equal(plen, strlen(msg));
    assert_memory_equal(pt, msg, plen);
    assert_int_equal(pt[plen], '\0');
    /* a fresh nonce per seal: the same input seals differently */
    assert_int_equal(vault_seal(v, "aad", 3, msg, strlen(msg), &blob2, &blen2), 0);
    assert_int_equal(blen, blen2);
    assert_true(memcmp(blob, blob2, VAULT_NONCE_BYTES) != 0);
    assert_true(memcmp(blob, blob2, blen) != 0);
    free(pt);
    free(blob);
    free(blob2);
    vault_free(v);
}

static void test_tamper(void **state)
{
    struct vault *v = vault_from_bytes(key_a);
    unsigned char *blob, *pt;
    size_t blen, plen;

    (void)state;
    assert_int_equal(vault_seal(v, "id", 2, "secret-token", 12, &blob, &blen), 0);
    for (size_t i = 0; i < blen; i++) {
        blob[i] ^= 0x01;
        assert_int_equal(vault_open(v, "id", 2, blob, blen, &pt, &plen), -1);
        assert_null(pt);
        blob[i] ^= 0x01;
    }
    /* truncated, or shorter than nonce + tag */
    assert_int_equal(vault_open(v, "id", 2, blob, blen - 1, &pt, &plen), -1);
    assert_int_equal(vault_open(v, "id", 2, blob, VAULT_OVERHEAD - 1, &pt, &plen), -1);
    assert_int_equal(vault_open(v, "id", 2, blob, blen, &pt, &plen), 0);
    free(pt);
    free(blob);
    vault_free(v);
}

static void test_aad_mismatch(void **state)
{
    struct vault *v = vault_from_bytes(key_a);
    unsigned char *blob, *pt;
    size_t blen, plen;
    const char a1[] = "crmgate-cred-v1\0acme\0hubspot\0user\0ana\0oauth";
    const char a2[] = "crmgate-cred-v1\0acme\0hubspot\0user\0bob\0oauth";

    (void)state;
    assert_int_equal(vault_seal(v, a1, sizeof(a1) - 1, "tok", 3, &blob, &blen), 0);
    assert_int_equal(vault_open(v, a2, sizeof(a2) - 1, blob, blen, &pt, &plen), -1);
    assert_int_equal(vault_open(v, a1, sizeof(a1) - 2, blob, blen, &pt, &plen), -1);
    assert_int_equal(vault_open(v, NULL, 0, blob, blen, &pt, &plen), -1);
    assert_int_equal(vault_open(v, a1, sizeof(a1) - 1, blob, blen, &pt, &plen), 0);
    free(pt);
    free(blob);
    vault_free(v);
}

static void test_wrong_key(void **state)
{
    struct vault *a = vault_from_bytes(key_a), *b = vault_from_bytes(key_b);
    unsigned char *blob, *pt;
    size_t blen, plen;

    (void)state;
    assert_int_equal(vault_seal(a, "x", 1, "tok", 3, &blob, &blen), 0);
    assert_int_equal(vault_open(b, "x", 1, blob, blen, &pt, &plen), -1);
    assert_null(pt);
    free(blob);
    vault_free(a);
    vault_free(b);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
}

static void test_key_files(void **state)
{
    char dir[] = "/tmp/crmgate-vault-XXXXXX", path[256], err[512];
    struct vault *v;
    int fd;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/vault.key", dir);
    v = vault_load(path, err, sizeof(err));
    assert_null(v);
    assert_non_null(strstr(err, "missing"));
    write_file(path, "abcd\n");
    assert_null(vault_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "bad format"));
    assert_non_null(strstr(err, "64 hex digits"));
    write_file(path, "zz23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");
    assert_null(vault_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "non-hex"));
    write_file(path, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");
    v = vault_load(path, err, sizeof(err));
    assert_non_null(v);
    vault_free(v);
    /* a key other users can read is refused (as the CA key), group access is the admin's */
    assert_int_equal(chmod(path, 0604), 0);
    assert_null(vault_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "accessible to other users (mode 0604)"));
    assert_int_equal(chmod(path, 0640), 0);
    v = vault_load(path, err, sizeof(err));
    assert_non_null(v);
    vault_free(v);
    assert_null(vault_load(dir, err, sizeof(err)));
    assert_non_null(strstr(err, "not a regular file"));
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(vault_keygen(fd), 0);
    close(fd);
    v = vault_load(path, err, sizeof(err));
    assert_non_null(v);
    vault_free(v);
    unlink(path);
    rmdir(dir);
}

static void test_key_parse(void **state)
{
    char key[CUSTODY_KEY_LEN + 1], id[CUSTODY_KEY_ID_LEN + 1], id2[CUSTODY_KEY_ID_LEN + 1];
    unsigned char h1[32], h2[32];

    (void)state;
    assert_int_equal(custody_key_generate(key, h1, id), 0);
    assert_int_equal(strlen(key), CUSTODY_KEY_LEN);
    assert_memory_equal(key, "cgk_", 4);
    assert_int_equal(strlen(id), CUSTODY_KEY_ID_LEN);
    assert_int_equal(custody_key_parse(key, strlen(key), h2), 1);
    assert_memory_equal(h1, h2, 32);
    custody_key_id(h2, id2);
    assert_string_equal(id, id2);
    /* wrong prefix, length or alphabet: not a key (a CRM token, then) */
    key[0] = 'C';
    assert_int_equal(custody_key_parse(key, strlen(key), h2), 0);
    key[0] = 'c';
    assert_int_equal(custody_key_parse(key, strlen(key) - 1, h2), 0);
    key[10] = '+';
    assert_int_equal(custody_key_parse(key, strlen(key), h2), 0);
    key[10] = '=';
    assert_int_equal(custody_key_parse(key, strlen(key), h2), 0);
    assert_int_equal(custody_key_parse("pat-na1-123", 11, h2), 0);
    assert_int_equal(custody_key_parse("cgk_", 4, h2), 0);
    /* two keys differ */
    assert_int_equal(custody_key_generate(key, h1, id), 0);
    assert_int_equal(custody_key_generate(key, h2, id2), 0);
    assert_true(memcmp(h1, h2, 32) != 0);
}

static void test_ref_keys(void **state)
{
    struct custody_ref r = {.crm = CRM_SALESFORCE, .scope = CUSTODY_SCOPE_USER}, back;
    unsigned char k[CUSTODY_MAX_KEY];
    size_t n;

    (void)state;
    snprintf(r.ws, sizeof(r.ws), "acme");
    snprintf(r.user, sizeof(r.user), "ana@example.com");
    n = custody_ref_key(&r, k, sizeof(k));
    assert_int_equal(n, strlen("acme") + 1 + strlen("salesforce") + 1 + 4 + 1 +
                            strlen("ana@example.com"));
    assert_int_equal(custody_ref_parse(k, n, &back), 0);
    assert_string_equal(back.ws, "acme");
    assert_string_equal(back.user, "ana@example.com");
    assert_int_equal(back.crm, CRM_SALESFORCE);
    assert_int_equal(back.scope, CUSTODY_SCOPE_USER);
    assert_int_equal(custody_ref_parse(k, 5, &back), -1);
}

static void test_select(void **state)
{
    struct config_caller chat = {.workspace = "acme", .user = "ana", .kind = CONFIG_KIND_CHAT};
    struct config_caller wf = {.workspace = "acme", .user = NULL, .kind = CONFIG_KIND_WORKFLOW};
    struct config_caller nouser = {.workspace = "acme", .kind = CONFIG_KIND_CHAT};
    struct rules_ws ws = {0};
    struct custody_ref r;
    char why[256];

    (void)state;
    assert_int_equal(custody_select(&chat, &ws, CRM_HUBSPOT, &r, why, sizeof(why)), 0);
    assert_int_equal(r.scope, CUSTODY_SCOPE_USER);
    assert_string_equal(r.user, "ana");
    assert_int_equal(custody_select(&wf, &ws, CRM_HUBSPOT, &r, why, sizeof(why)), 0);
    assert_int_equal(r.scope, CUSTODY_SCOPE_WORKSPACE);
    assert_string_equal(r.user, "");
    assert_int_equal(custody_select(&nouser, &ws, CRM_HUBSPOT, &r, why, sizeof(why)), -1);
    ws.chat_workspace = 1; /* the admin override */
    assert_int_equal(custody_select(&chat, &ws, CRM_SALESFORCE, &r, why, sizeof(why)), 0);
    assert_int_equal(r.scope, CUSTODY_SCOPE_WORKSPACE);
    assert_int_equal(r.crm, CRM_SALESFORCE);
}

static void test_url_ok(void **state)
{
    static const char *const good[] = {"https://acme.my.salesforce.com",
                                       "https://acme.my.salesforce.com/",
                                       "https://h:8443/x",
                                       "http://127.0.0.1:4010",
                                       "http://localhost:80/base",
                                       "http://[::1]:9",
                                       "http://127.10.0.200",
                                       NULL};
    /* plain http to a host that only looks like loopback, user info, and odd characters */
    static const char *const bad[] = {"http://localhost.evil.example/",
                                      "http://127.0.0.1.nip.io:80",
                                      "http://127.0.0.1@evil.example/",
                                      "http://localhost@evil.example",
                                      "https://acme.my.salesforce.com@evil.example/",
                                      "http://[::1]evil.example",
                                      "http://127.0.0.1234",
                                      "http://127.0.0",
                                      "http://evil.example",
                                      "https://",
                                      "https://:443/",
                                      "https://h/a b",
                                      "https://h/\x01",
                                      "https://h/?q",
                                      "https://h/#f",
                                      "https://h\\@evil.example/",
                                      "ftp://h/",
                                      "",
                                      NULL};

    (void)state;
    for (size_t i = 0; good[i] != NULL; i++) {
        if (!custody_url_ok(good[i]))
            fail_msg("refused: %s", good[i]);
    }
    for (size_t i = 0; bad[i] != NULL; i++) {
        if (custody_url_ok(bad[i]))
            fail_msg("accepted: %s", bad[i]);
    }
    assert_false(custody_url_ok(NULL));
    assert_true(custody_token_ok("00DHs0000000001!AQsf.token_with-every~mark"));
    assert_false(custody_token_ok("tok\r\nX-Injected: 1"));
    assert_false(custody_token_ok("tok\x0b"));
    assert_false(custody_token_ok("tok en"));
    assert_false(custody_token_ok("t\xc3\xa9"));
    assert_false(custody_token_ok(""));
    assert_false(custody_token_ok(NULL));
}

/* The Salesforce host check, row by row: the URL and whether it may be an instance URL. */
static void test_instance_url_ok(void **state)
{
    static const char *const domains[] = {"salesforce.com", "force.com"};
    static const struct {
        const char *url;
        int ok;
    } rows[] = {
        {"https://acme.my.salesforce.com", 1},
        {"https://acme.my.salesforce.com/", 1},
        {"https://acme.my.salesforce.com:443/services", 1},
        {"https://ACME.My.SalesForce.COM", 1},
        {"https://na1.salesforce.com", 1},
        {"https://salesforce.com", 1}, /* the domain itself, as the CA's constraint has it */
        {"https://acme--dev.sandbox.my.salesforce.com", 1},
        {"https://acme.lightning.force.com", 1},
        {"https://force.com", 1},
        /* the loopback exception, exactly as custody_url_ok has it */
        {"http://127.0.0.1:4010", 1},
        {"http://localhost:80/base", 1},
        {"http://[::1]:9", 1},
        {"http://localhost.evil.example/", 0},
        {"http://127.0.0.1.nip.io:80", 0},
        {"http://127.0.0.1@evil.example/", 0},
        {"http://acme.my.salesforce.com", 0}, /* a Salesforce host, but the token in clear */
        /* anything else over https */
        {"https://evil.example", 0},
        {"https://evilsalesforce.com", 0},
        {"https://salesforce.com.evil.example", 0},
        {"https://acme.my.salesforce.com.evil.example/", 0},
        {"https://acme.my.salesforce.com@evil.example/", 0},
        {"https://evil.example/acme.my.salesforce.com", 0},
        {"https://evil.example:443@acme.my.salesforce.com", 0},
        {"https://acme.my.salesforce.com./", 0},
        {"https://evil%2eexample%2f.salesforce.com", 0},
        {"https://acme_x.salesforce.com", 0},
        {"https://127.0.0.1:8443", 0},
        {"https://localhost", 0},
        {"https://[::1]:443", 0},
        {"https://13.110.0.1", 0},
        {"https://.salesforce.com", 0},
        {"https://", 0},
        {"ftp://acme.my.salesforce.com", 0},
        {"https://acme.my.salesforce.com/?q", 0},
        {"", 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (custody_instance_url_ok(rows[i].url, domains, 2) != rows[i].ok)
            fail_msg("%s: want %s", rows[i].url, rows[i].ok ? "accepted" : "refused");
    }
    assert_false(custody_instance_url_ok(NULL, domains, 2));
    /* no domains: loopback only */
    assert_false(custody_instance_url_ok("https://acme.my.salesforce.com", domains, 0));
    assert_true(custody_instance_url_ok("http://127.0.0.1:1", domains, 0));
    /* another configured domain */
    {
        static const char *const corp[] = {"sf-egress.corp.example"};
        assert_true(custody_instance_url_ok("https://sf-egress.corp.example:8443", corp, 1));
        assert_true(custody_instance_url_ok("https://eu.sf-egress.corp.example", corp, 1));
        assert_false(custody_instance_url_ok("https://acme.my.salesforce.com", corp, 1));
        assert_false(custody_instance_url_ok("https://xsf-egress.corp.example", corp, 1));
    }
}

/* Each CRM's token URLs under its own list: a HubSpot token URL never on another host. */
static void test_crm_url_ok(void **state)
{
    static const struct {
        enum crm crm;
        const char *url;
        int ok;
    } rows[] = {
        {CRM_HUBSPOT, "https://api.hubapi.com/oauth/v1/token", 1},
        {CRM_HUBSPOT, "https://api.hubspot.com/oauth/v1/token", 1},
        {CRM_HUBSPOT, "https://API.HubAPI.com/oauth/v1/token", 1},
        {CRM_HUBSPOT, "http://127.0.0.1:9/oauth/v1/token", 1},
        {CRM_HUBSPOT, "https://evil.example/oauth/v1/token", 0},
        {CRM_HUBSPOT, "https://hubapi.com/oauth/v1/token", 0},
        {CRM_HUBSPOT, "https://xapi.hubapi.com/oauth/v1/token", 0},
        {CRM_HUBSPOT, "https://api.hubapi.com.evil.example/oauth/v1/token", 0},
        {CRM_HUBSPOT, "https://api.hubapi.com@evil.example/oauth/v1/token", 0},
        {CRM_HUBSPOT, "https://login.salesforce.com/services/oauth2/token", 0},
        {CRM_HUBSPOT, "http://api.hubapi.com/oauth/v1/token", 0},
        {CRM_SALESFORCE, "https://login.salesforce.com/services/oauth2/token", 1},
        {CRM_SALESFORCE, "https://api.hubapi.com/oauth/v1/token", 0},
    };
    char *sf[] = {"salesforce.com", "force.com"}, *hs[] = {"api.hubapi.com", "api.hubspot.com"};
    struct config cfg;

    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    memcpy(cfg.sf_domains, sf, sizeof(sf));
    cfg.nsf_domains = 2;
    memcpy(cfg.hs_domains, hs, sizeof(hs));
    cfg.nhs_domains = 2;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (custody_crm_url_ok(&cfg, rows[i].crm, rows[i].url) != rows[i].ok)
            fail_msg("%s %s: expected %s", crm_name(rows[i].crm), rows[i].url,
                     rows[i].ok ? "ok" : "refused");
    }
    assert_string_equal(custody_domains_key(CRM_HUBSPOT), "vault.hubspot_domains");
    assert_string_equal(custody_domains_key(CRM_SALESFORCE), "vault.salesforce_domains");
}

/* The back-off: min doubling per failure up to max, jittered down by at most half. */
static void test_backoff(void **state)
{
    static const struct {
        int failures;
        long long full; /* the wait without jitter */
    } rows[] = {{1, 1000},    {2, 2000},    {3, 4000},    {4, 8000},     {9, 256000},
                {10, 300000}, {11, 300000}, {40, 300000}, {1000, 300000}};

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        long long lo = rows[i].full - rows[i].full / 2, hi = rows[i].full;
        assert_int_equal(custody_backoff_ms(rows[i].failures, 1000, 300000, 0), hi);
        for (unsigned rnd = 1; rnd < 2000000000u; rnd = rnd * 7 + 13) {
            long long w = custody_backoff_ms(rows[i].failures, 1000, 300000, rnd);
            if (w < lo || w > hi)
                fail_msg("failure %d, rnd %u: %lld outside [%lld, %lld]", rows[i].failures, rnd, w,
                         lo, hi);
        }
    }
    /* jitter spreads: not every random value gives the same wait */
    assert_true(custody_backoff_ms(5, 1000, 300000, 1) !=
                custody_backoff_ms(5, 1000, 300000, 4000));
    /* min above max, and zero: never more than max, never negative */
    assert_true(custody_backoff_ms(1, 5000, 2000, 0) <= 2000);
    assert_true(custody_backoff_ms(1, 0, 100, 12345) >= 0);
}

/* A stored back-off runs until its end, but never further off than the configured maximum
 * (lowered since, or the wall clock set back): then it is over. */
static void test_backoff_waiting(void **state)
{
    (void)state;
    assert_int_equal(refresh_waiting(0, 1000000, 300000), 0);
    assert_int_equal(refresh_waiting(1000000, 1000000, 300000), 0);
    assert_int_equal(refresh_waiting(1000001, 1000000, 300000), 1);
    assert_int_equal(refresh_waiting(1300000, 1000000, 300000), 1);
    /* the clock went back an hour after a 5-minute wait was set: over, not 65 minutes */
    assert_int_equal(refresh_waiting(1300000, 1000000 - 3600000, 300000), 0);
    /* the maximum lowered from 5 minutes to 1 s */
    assert_int_equal(refresh_waiting(1300000, 1000000, 1000), 0);
    assert_int_equal(refresh_waiting(1000500, 1000000, 1000), 1);
}

static void test_due(void **state)
{
    struct custody_cred c = {.type = CUSTODY_TYPE_OAUTH, .expires_ms = 1000000};

    (void)state;
    assert_int_equal(custody_cred_due(&c, 1000000 - 301000, 300), 0);
    assert_int_equal(custody_cred_due(&c, 1000000 - 300000, 300), 1);
    c.type = CUSTODY_TYPE_PRIVATE_APP;
    assert_int_equal(custody_cred_due(&c, 2000000, 300), 0);
}

/* The per-thread cache sees a revocation and an integration change at once. */
static void test_cache_generation(void **state)
{
    char dir[] = "/tmp/crmgate-cache-XXXXXX", err[512], key[CUSTODY_KEY_LEN + 1],
         id[CUSTODY_KEY_ID_LEN + 1], why[300], *value = NULL, path[512];
    unsigned char hash[32], rk[CUSTODY_MAX_KEY];
    struct store_options so = {0};
    struct custody_identity ident;
    struct custody_ref r = {.crm = CRM_HUBSPOT, .scope = CUSTODY_SCOPE_WORKSPACE};
    struct custody_cred c = {.type = CUSTODY_TYPE_PRIVATE_APP}, out;
    struct vault *v = vault_from_bytes(key_a);
    struct store *s;
    const char *live = "{\"workspace\":\"acme\",\"kind\":\"workflow\",\"revoked_ms\":0}";
    const char *dead = "{\"workspace\":\"acme\",\"kind\":\"workflow\",\"revoked_ms\":5}";
    size_t vlen = 0, klen;

    (void)state;
    assert_non_null(mkdtemp(dir));
    so.dir = dir;
    s = store_open(&so, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(custody_key_generate(key, hash, id), 0);
    assert_int_equal(
        store_kv_put_sync(s, STORE_TABLE_KEYS, hash, 32, live, strlen(live), err, sizeof(err)), 0);
    for (int i = 0; i < 2; i++) { /* the second one from the cache */
        assert_int_equal(custody_key_lookup_cached(s, hash, 1, &ident, why, sizeof(why)), 0);
        assert_string_equal(ident.caller.workspace, "acme");
        custody_identity_free(&ident);
    }
    assert_int_equal(
        store_kv_put_sync(s, STORE_TABLE_KEYS, hash, 32, dead, strlen(dead), err, sizeof(err)), 0);
    assert_int_equal(custody_key_lookup_cached(s, hash, 1, &ident, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "revoked"));

    snprintf(r.ws, sizeof(r.ws), "acme");
    c.access_token = strdup("pat-one");
    assert_int_equal(custody_cred_record(v, &r, &c, &value, &vlen), 0);
    klen = custody_ref_key(&r, rk, sizeof(rk));
    assert_int_equal(
        store_kv_put_sync(s, STORE_TABLE_CREDENTIALS, rk, klen, value, vlen, err, sizeof(err)), 0);
    free(value);
    assert_int_equal(custody_cred_read_cached(s, v, &r, &out, err, sizeof(err)), 1);
    assert_string_equal(out.access_token, "pat-one");
    custody_cred_free(&out);
    free(c.access_token);
    c.access_token = strdup("pat-two");
    assert_int_equal(custody_cred_record(v, &r, &c, &value, &vlen), 0);
    assert_int_equal(
        store_kv_put_sync(s, STORE_TABLE_CREDENTIALS, rk, klen, value, vlen, err, sizeof(err)), 0);
    free(value);
    assert_int_equal(custody_cred_read_cached(s, v, &r, &out, err, sizeof(err)), 1);
    assert_string_equal(out.access_token, "pat-two");
    custody_cred_free(&out);
    custody_cred_free(&c);
    store_close(s);
    vault_free(v);
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_aad_mismatch),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_key_parse),
        cmocka_unit_test(test_ref_keys),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_due),
        cmocka_unit_test(test_url_ok),
        cmocka_unit_test(test_instance_url_ok),
        cmocka_unit_test(test_crm_url_ok),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_backoff_waiting),
        cmocka_unit_test(test_cache_generation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
