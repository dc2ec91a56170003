/*
 * fuzz_synthesize.c - libFuzzer target for the dry-run synthesizer: a raw
 * request through the real classifier, then synth_response (and, for a
 * single-record read, synth_read_answer) with fixed before-states.
 *
 * Input layout (deterministic, so seeds stay readable):
 *   byte 0: method, (b % 7) into GET POST PUT PATCH DELETE HEAD "get"
 *   byte 1: flags: 1 Salesforce (else HubSpot), 2 no JSON Content-Type,
 *           4 every record missing (before NULL), 8 HubSpot before-states
 *           as the whole object (else the properties map), 16 the
 *           Salesforce schema with custom key prefixes, 32 a constant
 *           rand64 (ids collide), 64 every odd op's record missing,
 *           128 the read answer's overlay record is deleted
 *   rest:   path '\n' query '\n' body (missing parts are empty)
 * Invariants, when synth_response answers: a status 200-599; a body
 * exactly when the status is not 204, and then body_len bytes of JSON
 * (duplicate keys refused) with no NUL; a Location that is a path; every
 * overlay record an object with "fields" (an object) and ts the clock; a
 * created record's id well-formed (HubSpot 16 digits in [8*10^15,
 * 9*10^15), Salesforce 18 characters with its object's key prefix, "DR0"
 * and a valid checksum); synth_overlay_combine works on every record, and
 * synth_overlay_combine_adds says exactly when it changes one. When
 * it refuses: an error text and nothing filled. synth_read_answer: 0 with
 * a JSON body and a 200 or 404, or -1 with an error. No crash, no leak, no
 * undefined behaviour. FUZZ_SYNTH_DUMP=1 prints every answer or refusal.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crm.h"
#include "hubspot.h"
#include "salesforce.h"
#include "synthesize.h"

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW_MS 1787306400123LL

static struct sf_schema *fuzz_schema;
static json_t *fuzz_hs_props, *fuzz_hs_whole, *fuzz_sf_rec, *fuzz_overlay, *fuzz_deleted;

static const char fuzz_hs_props_text[] =
    "{\"createdate\":\"2024-01-02T03:04:05.678Z\",\"email\":\"ada@example.com\","
    "\"firstname\":\"A\",\"hs_object_id\":\"101\",\"lastmodifieddate\":"
    "\"2025-01-01T00:00:00.000Z\",\"amount\":\"15000\",\"dealname\":\"D\"}";
static const char fuzz_sf_rec_text[] =
    "{\"attributes\":{\"type\":\"Account\",\"url\":\"/services/data/v62.0/sobjects/Account/"
    "001D000000IqhSLIAZ\"},\"Id\":\"001D000000IqhSLIAZ\",\"Name\":\"Acme\",\"Amount\":15000.0,"
    "\"StageName\":\"Prospecting\",\"Email__c\":\"a@b.c\",\"CreatedDate\":"
    "\"2024-01-02T03:04:05.000+0000\",\"LastModifiedDate\":\"2025-01-01T00:00:00.000+0000\"}";
static const char fuzz_overlay_text[] =
    "{\"object\":\"contacts\",\"id\":\"8000000000000005\",\"fields\":{\"email\":\"a@b.c\","
    "\"Name\":\"Acme\",\"Id\":\"001DR0000000001YAA\"},\"written\":[\"email\",\"Name\"],"
    "\"created\":true,\"deleted\":false,\"ts\":1787306400000}";
static const char fuzz_deleted_text[] =
    "{\"object\":\"contacts\",\"id\":\"101\",\"fields\":{},\"created\":false,\"deleted\":true,"
    "\"ts\":1787306400000}";

static json_t *fuzz_load(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);

    if (v == NULL)
        abort();
    return v;
}

static void fuzz_init(void)
{
    fuzz_schema = sf_schema_new();
    if (fuzz_schema == NULL ||
        sf_schema_add(fuzz_schema, "Invoice__c", "Project__r", "Project__c", 0) < 0 ||
        sf_schema_add(fuzz_schema, "Project__c", "Invoices__r", "Invoice__c", 1) < 0 ||
        sf_schema_add_prefix(fuzz_schema, "Invoice__c", "a0B") < 0 ||
        sf_schema_add_prefix(fuzz_schema, "Project__c", "a0C") < 0)
        abort();
    fuzz_hs_props = fuzz_load(fuzz_hs_props_text);
    fuzz_hs_whole = json_pack("{s:s, s:O, s:s, s:s, s:b}", "id", "101", "properties", fuzz_hs_props,
                              "createdAt", "2024-01-02T03:04:05.678Z", "updatedAt",
                              "2025-01-01T00:00:00.000Z", "archived", 0);
    fuzz_sf_rec = fuzz_load(fuzz_sf_rec_text);
    fuzz_overlay = fuzz_load(fuzz_overlay_text);
    fuzz_deleted = fuzz_load(fuzz_deleted_text);
    if (fuzz_hs_whole == NULL)
        abort();
}

/* splitmix64 from a per-input state; a constant when *state starts odd-flagged */
struct fuzz_rand {
    uint64_t state;
    int constant;
};

static uint64_t fuzz_rand64(void *arg)
{
    struct fuzz_rand *r = arg;
    uint64_t z;

    if (r->constant)
        return 12345;
    z = (r->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void fuzz_fail(const char *what, const struct synth_response *out)
{
    fprintf(stderr, "fuzz_synthesize: %s (status %d, body %.*s)\n", what, out->status,
            out->body ? (int)out->body_len : 6, out->body ? out->body : "(none)");
    abort();
}

static int fuzz_id_ok(enum crm crm, const struct sf_schema *schema, const json_t *rec,
                      const char *id)
{
    size_t n = strlen(id);

    if (crm == CRM_HUBSPOT) {
        unsigned long long v = 0;
        if (n != 16)
            return 0;
        for (size_t i = 0; i < n; i++) {
            if (id[i] < '0' || id[i] > '9')
                return 0;
            v = v * 10 + (unsigned)(id[i] - '0');
        }
        return v >= SYNTH_HS_ID_BASE && v < SYNTH_HS_ID_BASE + SYNTH_HS_ID_SPAN;
    }
    {
        const char *object = json_string_value(json_object_get(rec, "object"));
        const char *prefix = object ? sf_prefix_for_object(schema, object) : NULL;
        return n == 18 && sf_id_valid(id, n) && memcmp(id + 3, "DR0", 3) == 0 &&
               (prefix == NULL || strncmp(id, prefix, 3) == 0);
    }
}

static void fuzz_check(enum crm crm, const struct sf_schema *schema, const struct crm_ops *ops,
                       const struct synth_response *out)
{
    if (out->status < 200 || out->status > 599)
        fuzz_fail("status out of range", out);
    if ((out->body == NULL) != (out->status == 204))
        fuzz_fail("a body where there should be none, or none where there should be one", out);
    if (out->body != NULL) {
        json_error_t jerr;
        json_t *b;
        if (strlen(out->body) != out->body_len)
            fuzz_fail("body_len is not the body's length", out);
        b = json_loadb(out->body, out->body_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        if (b == NULL) {
            fprintf(stderr, "fuzz_synthesize: %s\n", jerr.text);
            fuzz_fail("body is not JSON", out);
        }
        json_decref(b);
    }
    if (out->location != NULL && out->location[0] != '/')
        fuzz_fail("Location is not a path", out);
    if (out->ids == NULL || out->records == NULL)
        fuzz_fail("no ids or records", out);
    for (size_t i = 0; i < ops->n; i++) {
        json_t *rec = out->records[i], *c;
        if (rec == NULL)
            continue;
        if (!json_is_object(rec) || !json_is_object(json_object_get(rec, "fields")) ||
            json_integer_value(json_object_get(rec, "ts")) != FUZZ_NOW_MS)
            fuzz_fail("overlay record without fields or ts", out);
        if (json_is_true(json_object_get(rec, "created")) && out->ids[i] != NULL &&
            !fuzz_id_ok(crm, schema, rec, out->ids[i])) {
            fprintf(stderr, "fuzz_synthesize: op %zu id %s\n", i, out->ids[i]);
            fuzz_fail("malformed synthetic id", out);
        }
        c = synth_overlay_combine(fuzz_overlay, rec);
        if (c == NULL || !json_is_object(c))
            fuzz_fail("synth_overlay_combine failed", out);
        if (synth_overlay_combine_adds(fuzz_overlay, rec) == json_equal(c, rec))
            fuzz_fail("synth_overlay_combine_adds disagrees with synth_overlay_combine", out);
        json_decref(c);
        c = synth_overlay_combine(rec, fuzz_overlay);
        if (c == NULL)
            fuzz_fail("synth_overlay_combine failed", out);
        if (synth_overlay_combine_adds(rec, fuzz_overlay) == json_equal(c, fuzz_overlay))
            fuzz_fail("synth_overlay_combine_adds disagrees with synth_overlay_combine", out);
        json_decref(c);
    }
}

static void fuzz_read(enum crm crm, const struct crm_request *req, const struct crm_ops *ops,
                      int deleted)
{
    char err[512] = "", *body = NULL;
    size_t body_len = 0;
    int status = 0;
    json_t *b;

    if (ops->n == 0 || !synth_is_single_read(crm, req))
        return;
    if (synth_read_answer(crm, req, &ops->v[0], deleted ? fuzz_deleted : fuzz_overlay, FUZZ_NOW_MS,
                          &status, &body, &body_len, err, sizeof(err)) < 0) {
        if (err[0] == '\0' || body != NULL) {
            fprintf(stderr, "fuzz_synthesize: synth_read_answer refused without an error\n");
            abort();
        }
        return;
    }
    b = body ? json_loadb(body, body_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (b == NULL || (status != 200 && status != 404) || strlen(body) != body_len) {
        fprintf(stderr, "fuzz_synthesize: read answer %d %s\n", status, body ? body : "(none)");
        abort();
    }
    json_decref(b);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "get"};
    struct crm_request req = {0};
    struct crm_ops ops = {0};
    struct synth_response out;
    struct fuzz_rand rnd = {0, 0};
    const struct sf_schema *schema;
    struct fuzz_parts parts;
    char err[512];
    json_t **before = NULL;
    unsigned flags;
    enum crm crm;
    int rc;

    if (fuzz_schema == NULL)
        fuzz_init();
    if (size < 2)
        return 0;
    req.method = methods[data[0] % 7];
    flags = data[1];
    crm = (flags & 1) ? CRM_SALESFORCE : CRM_HUBSPOT;
    schema = (flags & 16) ? fuzz_schema : NULL;
    fuzz_parts_split(data + 2, data + size, &parts);
    req.path = parts.path;
    req.query = parts.query[0] ? parts.query : NULL;
    req.body = parts.body;
    req.body_len = parts.body_len;
    req.content_type = (flags & 2) ? NULL : "application/json";

    if ((crm == CRM_HUBSPOT ? hubspot_classify(&req, &ops)
                            : salesforce_classify(&req, schema, &ops)) != 0)
        abort();
    before = calloc(ops.n ? ops.n : 1, sizeof(*before));
    if (before == NULL)
        abort();
    for (size_t i = 0; i < ops.n; i++) {
        if ((flags & 4) || ((flags & 64) && (i & 1)))
            continue;
        before[i] = crm == CRM_SALESFORCE ? fuzz_sf_rec
                    : (flags & 8)         ? fuzz_hs_whole
                                          : fuzz_hs_props;
    }
    rnd.constant = (flags & 32) != 0;
    {
        struct synth_request in = {.crm = crm,
                                   .req = &req,
                                   .ops = &ops,
                                   .schema = schema,
                                   .before = before,
                                   .now_ms = FUZZ_NOW_MS,
                                   .rand64 = fuzz_rand64,
                                   .rand_arg = &rnd};
        err[0] = '\0';
        rc = synth_response(&in, &out, err, sizeof(err));
    }
    if (getenv("FUZZ_SYNTH_DUMP") != NULL)
        fprintf(stderr, "rc %d status %d: %s\n", rc, rc == 0 ? out.status : 0,
                rc == 0 ? (out.body ? out.body : "(no body)") : err);
    if (rc == 0) {
        fuzz_check(crm, schema, &ops, &out);
        synth_response_free(&out, ops.n);
    } else if (err[0] == '\0' || out.body != NULL || out.ids != NULL || out.records != NULL ||
               out.location != NULL) {
        fprintf(stderr, "fuzz_synthesize: refused without an error, or with output\n");
        abort();
    }
    fuzz_read(crm, &req, &ops, (flags & 128) != 0);
    crm_ops_free(&ops);
    free(before);
    fuzz_parts_free(&parts);
    return 0;
}
