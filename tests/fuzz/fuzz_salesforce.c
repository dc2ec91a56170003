/*
 * fuzz_salesforce.c - libFuzzer target for the Salesforce classifier.
 *
 * Input layout (deterministic, so seeds stay readable):
 *   byte 0: method, (b % 7) into GET POST PUT PATCH DELETE HEAD "get"
 *   byte 1: flags: 1 JSON Content-Type, 2 Content-Encoding gzip,
 *           4 X-HTTP-Method-Override DELETE, 8 no query at all,
 *           16 classify with a schema holding custom relationships
 *   rest:   path '\n' query '\n' body (missing parts are empty)
 * Invariants: classification succeeds with at least one op; an unknown op
 * is alone and has a detail; every op is Salesforce's; only create, update
 * and upsert write; every op but auth, schema_read and a queryMore list
 * names an object; the ops serialise to JSON; the gzip flag always ends in
 * a single unknown op; nothing leaks.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ipolicy \
 *       tests/fuzz/fuzz_salesforce.c policy/salesforce.c policy/soql.c policy/crm.c \
 *       -ljansson -o build/fuzz_salesforce
 *   build/fuzz_salesforce -dict=tests/fuzz/salesforce.dict -max_total_time=600 \
 *       tests/fuzz/corpus/salesforce
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crm.h"
#include "salesforce.h"

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sf_schema *fuzz_schema;

static void fuzz_check(const struct crm_ops *ops, unsigned flags)
{
    json_t *j;

    if (ops->n == 0)
        abort();
    for (size_t i = 0; i < ops->n; i++) {
        const struct crm_op *op = &ops->v[i];

        if (op->crm != CRM_SALESFORCE)
            abort();
        if (op->verb == CRM_VERB_UNKNOWN) {
            if (ops->n != 1 || op->detail == NULL || op->detail[0] == '\0')
                abort();
            continue;
        }
        if (flags & 2)
            abort();
        if (op->nwrites > 0 && op->verb != CRM_VERB_CREATE && op->verb != CRM_VERB_UPDATE &&
            op->verb != CRM_VERB_UPSERT)
            abort();
        if (op->object == NULL && op->verb != CRM_VERB_AUTH && op->verb != CRM_VERB_SCHEMA_READ &&
            !(op->verb == CRM_VERB_LIST && op->locator != NULL))
            abort();
        if (op->id_property != NULL && op->record_id == NULL)
            abort();
    }
    j = crm_ops_to_json(ops);
    if (j == NULL)
        abort();
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "get"};
    struct crm_request req = {0};
    struct crm_ops ops = {0};
    struct fuzz_parts parts;
    unsigned flags;

    if (fuzz_schema == NULL) {
        fuzz_schema = sf_schema_new();
        if (fuzz_schema == NULL ||
            sf_schema_add(fuzz_schema, "Invoice__c", "Project__r", "Project__c", 0) < 0 ||
            sf_schema_add(fuzz_schema, "Project__c", "Invoices__r", "Invoice__c", 1) < 0 ||
            sf_schema_add(fuzz_schema, "Project__c", "Owner", "User", 0) < 0 ||
            sf_schema_add(fuzz_schema, "Project__c", "Owner", "Group", 0) < 0 ||
            sf_schema_add_prefix(fuzz_schema, "Invoice__c", "a0B") < 0)
            abort();
    }
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
    if (salesforce_classify(&req, (flags & 16) ? fuzz_schema : NULL, &ops) != 0)
        abort();
    fuzz_check(&ops, flags);
    crm_ops_free(&ops);
    fuzz_parts_free(&parts);
    return 0;
}
