/*
 * custody_bench.c - what credential custody costs per request on the hot
 * path, against a real LMDB store in a temporary directory: parse and hash
 * the crmgate key, look it up (a read transaction and a JSON record), choose
 * the integration, read and open its sealed record (AES-256-GCM), and
 * release it all; and, for scale, the vault's seal and open alone. Prints
 * the median and p99 in microseconds. Run by `make bench`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "custody.h"
#include "store.h"
#include "vault.h"

#define BENCH_ITERATIONS 20000
#define BENCH_WARMUP     2000

static long long bench_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int bench_cmp(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;

    return x < y ? -1 : x > y;
}

static void bench_report(const char *name, long long *ns, size_t n)
{
    qsort(ns, n, sizeof(*ns), bench_cmp);
    printf("| %-52s | %8.2f | %8.2f |\n", name, (double)ns[n / 2] / 1000.0,
           (double)ns[n * 99 / 100] / 1000.0);
}

/* The request path's custody steps, BENCH_ITERATIONS times into ns; 0 / -1. */
static int bench_path(struct store *s, const struct vault *v, const char *key, int cached,
                      long long *ns)
{
    struct rules_ws ws = {0};

    for (int i = 0; i < BENCH_WARMUP + BENCH_ITERATIONS; i++) {
        struct custody_identity ident;
        struct custody_ref sel;
        struct custody_cred out;
        unsigned char h[32];
        char why[300];
        long long t0 = bench_ns();
        int rc = !custody_key_parse(key, strlen(key), h)
                     ? -1
                     : (cached ? custody_key_lookup_cached : custody_key_lookup)(
                           s, h, custody_now_ms(), &ident, why, sizeof(why));
        if (rc < 0 || custody_select(&ident.caller, &ws, CRM_HUBSPOT, &sel, why, sizeof(why)) < 0 ||
            (cached ? custody_cred_read_cached : custody_cred_read)(s, v, &sel, &out, why,
                                                                    sizeof(why)) != 1) {
            fprintf(stderr, "custody_bench: the custody path failed: %s\n", why);
            return -1;
        }
        custody_cred_free(&out);
        custody_identity_free(&ident);
        if (i >= BENCH_WARMUP)
            ns[i - BENCH_WARMUP] = bench_ns() - t0;
    }
    return 0;
}

int main(void)
{
    static const unsigned char raw[VAULT_KEY_BYTES] = {7, 7, 7};
    char dir[] = "/tmp/crmgate-custody-bench-XXXXXX", err[512], key[CUSTODY_KEY_LEN + 1],
         id[CUSTODY_KEY_ID_LEN + 1], *value = NULL;
    unsigned char hash[32], rkey[CUSTODY_MAX_KEY];
    struct store_options so = {0};
    struct custody_cred c = {0};
    struct custody_ref r = {.crm = CRM_HUBSPOT, .scope = CUSTODY_SCOPE_USER};
    struct store *s;
    struct vault *v = vault_from_bytes(raw);
    long long *ns = calloc(BENCH_ITERATIONS, sizeof(*ns));
    size_t vlen = 0, klen;
    char *rec;
    int rc = 1;

    if (v == NULL || ns == NULL || mkdtemp(dir) == NULL)
        return 1;
    so.dir = dir;
    s = store_open(&so, err, sizeof(err));
    if (s == NULL) {
        fprintf(stderr, "custody_bench: %s\n", err);
        return 1;
    }
    /* one key and its user's integration, as the admin API writes them */
    snprintf(r.ws, sizeof(r.ws), "acme");
    snprintf(r.user, sizeof(r.user), "ana@acme.test");
    c.type = CUSTODY_TYPE_OAUTH;
    c.access_token = strdup("CJSP5qf1KhICAQEYs-gDIIGOBii1hQIyGQAf3xBKmlwHjX7OIpuIFEavB2-qYAGQsF4");
    c.refresh_token = strdup("de9b2a1c-9f6e-4f45-9b5f-6d0f7f0b9e32");
    c.client_id = strdup("5fd8a6c2-1111-2222-3333-444455556666");
    c.client_secret = strdup("a1b2c3d4-e5f6-7777-8888-99990000aaaa");
    c.expires_ms = custody_now_ms() + 3600 * 1000;
    if (custody_key_generate(key, hash, id) < 0 ||
        custody_cred_record(v, &r, &c, &value, &vlen) < 0)
        goto done;
    rec = "{\"id\":\"x\",\"workspace\":\"acme\",\"user\":\"ana@acme.test\",\"kind\":\"chat\","
          "\"workflow\":null,\"created_ms\":1,\"expires_ms\":0,\"revoked_ms\":0}";
    klen = custody_ref_key(&r, rkey, sizeof(rkey));
    if (store_kv_put_sync(s, STORE_TABLE_KEYS, hash, 32, rec, strlen(rec), err, sizeof(err)) < 0 ||
        store_kv_put_sync(s, STORE_TABLE_CREDENTIALS, rkey, klen, value, vlen, err, sizeof(err)) <
            0) {
        fprintf(stderr, "custody_bench: %s\n", err);
        goto done;
    }
    printf("| custody step | median µs | p99 µs |\n|---|---:|---:|\n");
    if (bench_path(s, v, key, 0, ns) < 0)
        goto done;
    bench_report("key lookup + integration read and open, uncached", ns, BENCH_ITERATIONS);
    if (bench_path(s, v, key, 1, ns) < 0)
        goto done;
    bench_report("the same through the per-thread cache (what requests do)", ns, BENCH_ITERATIONS);
    for (int i = 0; i < BENCH_WARMUP + BENCH_ITERATIONS; i++) {
        unsigned char h[32];
        struct custody_identity ident;
        char why[300];
        long long t0 = bench_ns();
        if (!custody_key_parse(key, strlen(key), h) ||
            custody_key_lookup(s, h, custody_now_ms(), &ident, why, sizeof(why)) < 0)
            goto done;
        custody_identity_free(&ident);
        if (i >= BENCH_WARMUP)
            ns[i - BENCH_WARMUP] = bench_ns() - t0;
    }
    bench_report("key parse, SHA-256 and lookup", ns, BENCH_ITERATIONS);
    for (int i = 0; i < BENCH_WARMUP + BENCH_ITERATIONS; i++) {
        unsigned char *blob, *pt;
        size_t blen, plen;
        long long t0 = bench_ns();
        if (vault_seal(v, "aad", 3, c.access_token, strlen(c.access_token), &blob, &blen) < 0 ||
            vault_open(v, "aad", 3, blob, blen, &pt, &plen) < 0)
            goto done;
        free(blob);
        free(pt);
        if (i >= BENCH_WARMUP)
            ns[i - BENCH_WARMUP] = bench_ns() - t0;
    }
    bench_report("vault seal + open of one token", ns, BENCH_ITERATIONS);
    rc = 0;
done:
    free(value);
    custody_cred_free(&c);
    store_close(s);
    vault_free(v);
    free(ns);
    {
        char path[512];
        snprintf(path, sizeof(path), "%s/data.mdb", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/lock.mdb", dir);
        unlink(path);
        rmdir(dir);
    }
    return rc;
}
