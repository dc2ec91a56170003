/*
 * policy_bench.c - what crmgate's policy costs per request: classify + decide
 * + (parse the CRM's answer, filter it, re-serialise it when something was
 * removed), on typical requests of both CRMs, with the shipped example rules.
 * Prints the median and p99 in microseconds. Run by `make bench`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "decide.h"
#include "jsonfilter.h"
#include "hubspot.h"
#include "rules.h"
#include "salesforce.h"

#define BENCH_ITERATIONS 20000
#define BENCH_WARMUP     2000

struct bench_case {
    const char *name;
    enum crm crm;
    const char *method, *path, *query, *body;
    const char *answer; /* the CRM's answer to filter, or NULL (204) */
};

static const struct bench_case bench_cases[] = {
    {"hubspot GET contact (3 properties)", CRM_HUBSPOT, "GET", "/crm/v3/objects/contacts/1",
     "properties=email,firstname,lastname", NULL,
     "{\"id\":\"1\",\"properties\":{\"createdate\":\"2024-01-02T03:04:05.678Z\",\"email\":"
     "\"ada@example.com\",\"firstname\":\"Ada\",\"hs_object_id\":\"1\",\"lastmodifieddate\":"
     "\"2026-08-21T10:00:00.123Z\",\"lastname\":\"Lovelace\",\"phone\":\"+1 555\"},"
     "\"createdAt\":\"2024-01-02T03:04:05.678Z\",\"updatedAt\":\"2026-08-21T10:00:00.123Z\","
     "\"archived\":false}"},
    {"hubspot PATCH deal stage", CRM_HUBSPOT, "PATCH", "/crm/v3/objects/deals/7001", NULL,
     "{\"properties\":{\"dealstage\":\"closedwon\"}}",
     "{\"id\":\"7001\",\"properties\":{\"dealstage\":\"closedwon\",\"amount\":\"12000\","
     "\"hs_lastmodifieddate\":\"2026-08-21T10:00:00.123Z\",\"hs_object_id\":\"7001\"},"
     "\"createdAt\":\"2024-01-02T03:04:05.678Z\",\"updatedAt\":\"2026-08-21T10:00:00.123Z\","
     "\"archived\":false}"},
    {"hubspot search deals (filter, sort, 2 results)", CRM_HUBSPOT, "POST",
     "/crm/v3/objects/deals/search", NULL,
     "{\"filterGroups\":[{\"filters\":[{\"propertyName\":\"dealstage\",\"operator\":\"EQ\","
     "\"value\":\"appointmentscheduled\"}]}],\"sorts\":[{\"propertyName\":\"amount\","
     "\"direction\":\"DESCENDING\"}],\"properties\":[\"dealname\",\"amount\"],\"limit\":10}",
     "{\"total\":2,\"results\":[{\"id\":\"1\",\"properties\":{\"dealname\":\"A\",\"amount\":"
     "\"5\",\"hs_object_id\":\"1\"}},{\"id\":\"2\",\"properties\":{\"dealname\":\"B\","
     "\"amount\":\"6\",\"hs_object_id\":\"2\"}}]}"},
    {"salesforce GET Opportunity row (?fields=)", CRM_SALESFORCE, "GET",
     "/services/data/v62.0/sobjects/Opportunity/006Hs00000Abc12IAB", "fields=Name,StageName", NULL,
     "{\"attributes\":{\"type\":\"Opportunity\",\"url\":\"/services/data/v62.0/sobjects/"
     "Opportunity/006Hs00000Abc12IAB\"},\"Name\":\"Acme launch\",\"StageName\":\"Prospecting\","
     "\"Id\":\"006Hs00000Abc12IAB\"}"},
    {"salesforce SOQL with a parent path", CRM_SALESFORCE, "GET", "/services/data/v62.0/query",
     "q=SELECT+Id,+Name,+StageName,+Account.Name+FROM+Opportunity+WHERE+StageName+%3D+"
     "%27Prospecting%27+ORDER+BY+CloseDate+LIMIT+10",
     NULL,
     "{\"totalSize\":1,\"done\":true,\"records\":[{\"attributes\":{\"type\":\"Opportunity\"},"
     "\"Id\":\"006Hs00000Abc12IAB\",\"Name\":\"Acme launch\",\"StageName\":\"Prospecting\","
     "\"Account\":{\"attributes\":{\"type\":\"Account\"},\"Name\":\"Acme\"}}]}"},
    {"salesforce PATCH Opportunity stage (204)", CRM_SALESFORCE, "PATCH",
     "/services/data/v62.0/sobjects/Opportunity/006Hs00000Abc12IAB", NULL,
     "{\"StageName\":\"Closed Won\"}", NULL},
};

static struct rules_ws *bench_load(const char *file)
{
    FILE *f = fopen(file, "r");
    static char buf[1 << 16];
    char err[512];
    size_t n;
    struct rules_ws *ws;

    if (f == NULL) {
        fprintf(stderr, "policy_bench: %s: cannot open\n", file);
        exit(1);
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    ws = rules_ws_parse(file, buf, n, err, sizeof(err));
    if (ws == NULL) {
        fprintf(stderr, "policy_bench: %s\n", err);
        exit(1);
    }
    return ws;
}

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

/* One request through the policy, as the proxy runs it; returns 1 when allowed. */
static int bench_once(const struct bench_case *bc, const struct rules_ws *ws)
{
    struct crm_request req = {.method = bc->method,
                              .path = bc->path,
                              .query = bc->query,
                              .content_type = bc->body ? "application/json" : NULL,
                              .body = bc->body,
                              .body_len = bc->body ? strlen(bc->body) : 0};
    struct crm_ops ops = {0};
    struct policy_verdict v;
    size_t denied = 0, removed = 0;
    int allowed;

    if ((bc->crm == CRM_HUBSPOT ? hubspot_classify(&req, &ops)
                                : salesforce_classify(&req, NULL, &ops)) < 0)
        exit(1);
    allowed = policy_decide(ws, &ops, &v, &denied);
    if (allowed && bc->answer != NULL) {
        /* As the proxy does it: one pass over the answer's bytes. */
        struct jsonfilter_out out = {0};
        char err[256];
        int rc = bc->crm == CRM_HUBSPOT
                     ? jsonfilter_hubspot(ws, ops.v[0].object, FILTER_HS_RECORDS, bc->answer,
                                          strlen(bc->answer), &out, &removed, err, sizeof(err))
                     : jsonfilter_salesforce(ws, bc->answer, strlen(bc->answer), &out, &removed,
                                             err, sizeof(err));
        if (rc < 0) {
            fprintf(stderr, "policy_bench: %s: %s\n", bc->name, err);
            exit(1);
        }
        jsonfilter_out_free(&out);
    }
    crm_ops_free(&ops);
    return allowed;
}

int main(void)
{
    struct rules_ws *hs = bench_load("rules/examples/acme-hubspot.json");
    struct rules_ws *sf = bench_load("rules/examples/globex-salesforce.json");
    long long *t = malloc(BENCH_ITERATIONS * sizeof(*t));

    printf("\n## Policy cost per request (classify + decide + filter the answer)\n\n");
    printf("%d iterations each after %d warm-up, one core, the shipped example rules.\n\n",
           BENCH_ITERATIONS, BENCH_WARMUP);
    printf("| request | decision | median µs | p99 µs |\n|---|---|---:|---:|\n");
    for (size_t c = 0; c < sizeof(bench_cases) / sizeof(bench_cases[0]); c++) {
        const struct bench_case *bc = &bench_cases[c];
        const struct rules_ws *ws = bc->crm == CRM_HUBSPOT ? hs : sf;
        int allowed = bench_once(bc, ws);

        for (int i = 0; i < BENCH_WARMUP; i++)
            bench_once(bc, ws);
        for (int i = 0; i < BENCH_ITERATIONS; i++) {
            long long t0 = bench_ns();
            bench_once(bc, ws);
            t[i] = bench_ns() - t0;
        }
        qsort(t, BENCH_ITERATIONS, sizeof(*t), bench_cmp);
        printf("| %s | %s | %.2f | %.2f |\n", bc->name, allowed ? "allow" : "deny",
               (double)t[BENCH_ITERATIONS / 2] / 1000.0,
               (double)t[BENCH_ITERATIONS * 99 / 100] / 1000.0);
    }
    printf("\n");
    free(t);
    rules_ws_free(hs);
    rules_ws_free(sf);
    return 0;
}
