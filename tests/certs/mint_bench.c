/*
 * mint_bench.c - median leaf mint time (warm provider), P-256 key generation,
 * and a cache hit, for `make bench` and issue 5's numbers.
 *
 *   mint_bench [N]     N timed mints (default 2000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "mint.h"

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    printf("%-34s median %8.2f us   p90 %8.2f us   p99 %8.2f us   (n=%d)\n", what, v[n / 2],
           v[n * 9 / 10], v[n * 99 / 100], n);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 2000;
    char dir[] = "/tmp/crmgate-mint-bench-XXXXXX", path[2][300], host[64], err[512];
    struct certs_cache *cache;
    struct certs_ca *ca;
    EVP_PKEY *key, *k;
    double *v, t0;
    time_t now = time(NULL);
    int w;
    X509 *leaf;

    if (n < 100 || (v = calloc((size_t)n, sizeof(*v))) == NULL || mkdtemp(dir) == NULL)
        return 2;
    snprintf(path[0], sizeof(path[0]), "%s/ca.pem", dir);
    snprintf(path[1], sizeof(path[1]), "%s/ca.key", dir);
    t0 = now_us();
    if (certs_ca_init(dir, NULL, 0, err, sizeof(err)) != 0 ||
        (ca = certs_ca_load(path[0], path[1], err, sizeof(err))) == NULL ||
        (key = certs_key_new(err, sizeof(err))) == NULL) {
        fprintf(stderr, "mint_bench: %s\n", err);
        return 1;
    }
    printf("%-34s %8.2f us (cold provider: CA keygen, sign, write, load)\n", "ca init + load",
           now_us() - t0);

    for (int i = 0; i < 100; i++) { /* warm the provider and the allocator */
        snprintf(host, sizeof(host), "warm%d.my.salesforce.com", i);
        X509_free(certs_mint_leaf(ca, host, now, key, err, sizeof(err)));
    }
    for (int i = 0; i < n; i++) {
        snprintf(host, sizeof(host), "org%d.my.salesforce.com", i);
        t0 = now_us();
        leaf = certs_mint_leaf(ca, host, now, key, err, sizeof(err));
        v[i] = now_us() - t0;
        if (leaf == NULL) {
            fprintf(stderr, "mint_bench: %s\n", err);
            return 1;
        }
        X509_free(leaf);
    }
    report("mint leaf (shared key)", v, n);

    for (int i = 0; i < n; i++) {
        t0 = now_us();
        k = certs_key_new(err, sizeof(err));
        v[i] = now_us() - t0;
        EVP_PKEY_free(k);
    }
    report("P-256 keygen (per-leaf key cost)", v, n);

    /* The first w calls mint (misses); the rest are hits on a w-entry working set. */
    w = n / 4 < 500 ? n / 4 : 500;
    if ((cache = certs_cache_new(1000)) == NULL)
        return 1;
    for (int i = 0; i < n; i++) {
        X509 *l;
        EVP_PKEY *lk;

        snprintf(host, sizeof(host), "org%d.my.salesforce.com", i % w);
        t0 = now_us();
        if (certs_cache_get_or_mint(cache, ca, host, now, &l, &lk, err, sizeof(err)) != 0) {
            fprintf(stderr, "mint_bench: %s\n", err);
            return 1;
        }
        v[i] = now_us() - t0;
        X509_free(l);
        EVP_PKEY_free(lk);
    }
    snprintf(host, sizeof(host), "cache hit (%d hosts cached)", w);
    report(host, v + w, n - w);
    {
        struct certs_cache_stats st;
        certs_cache_stats(cache, &st);
        printf("cache: hits %llu misses %llu evictions %llu\n", (unsigned long long)st.hits,
               (unsigned long long)st.misses, (unsigned long long)st.evictions);
    }
    certs_cache_free(cache);
    EVP_PKEY_free(key);
    certs_ca_free(ca);
    unlink(path[0]);
    unlink(path[1]);
    rmdir(dir);
    free(v);
    return 0;
}
