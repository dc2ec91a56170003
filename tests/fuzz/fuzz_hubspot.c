/*
 * fuzz_hubspot.c - libFuzzer target for the HubSpot classifier.
 *
 * Input layout (deterministic, so seeds stay readable):
 *   byte 0: method, (b % 7) into GET POST PUT PATCH DELETE HEAD "get"
 *   byte 1: flags: 1 JSON Content-Type, 2 Content-Encoding gzip,
 *           4 X-HTTP-Method-Override DELETE, 8 no query at all
 *   rest:   path '\n' query '\n' body (missing parts are empty)
 * Invariants: classification succeeds with at least one op; an unknown op
 * is alone and has a detail; every other op is HubSpot's and names an
 * object (auth aside); the ops serialise to JSON; the override and gzip
 * flags always end in a single unknown op; nothing leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crm.h"
#include "hubspot.h"

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "get"};
    struct crm_request req = {0};
    struct crm_ops ops = {0};
    struct fuzz_parts parts;
    unsigned flags;
    json_t *j;

    if (size < 2)
        return 0;
    req.method = methods[data[0] % 7];
    flags = data[1];
    fuzz_parts_split(data + 2, data + size, &parts);
    req.path = parts.path;
    req.query = (flags & 8) ? NULL : parts.query;
    req.body = parts.body;
    req.body_len = parts.body_len;
    req.content_type = (flags & 1) ? "application/json" : NULL;
    req.content_encoding = (flags & 2) ? "gzip" : NULL;
    req.method_override = (flags & 4) ? "DELETE" : NULL;

    if (hubspot_classify(&req, &ops) != 0 || ops.n == 0)
        abort();
    for (size_t i = 0; i < ops.n; i++) {
        const struct crm_op *op = &ops.v[i];
        if (op->crm != CRM_HUBSPOT)
            abort();
        if (op->verb == CRM_VERB_UNKNOWN && (ops.n != 1 || op->detail == NULL))
            abort();
        if (op->verb != CRM_VERB_UNKNOWN && op->verb != CRM_VERB_AUTH && op->object == NULL)
            abort();
    }
    if ((flags & 6) && ops.v[0].verb != CRM_VERB_UNKNOWN)
        abort();
    j = crm_ops_to_json(&ops);
    if (j == NULL)
        abort();
    json_decref(j);
    crm_ops_free(&ops);
    fuzz_parts_free(&parts);
    return 0;
}
