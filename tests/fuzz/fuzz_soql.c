/*
 * fuzz_soql.c - libFuzzer target for the SOQL parser.
 *
 * Beyond "no crash" (ASan/UBSan do that part), it checks what the Salesforce
 * classifier relies on: an accepted query has a FROM, every ref has a
 * non-empty field and a valid clause, paths are never empty, a semi-join
 * selects exactly one field, and a rejection always says why (a NULL with
 * an empty err would mean out of memory, which the fuzzer never hits).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ipolicy \
 *       tests/fuzz/fuzz_soql.c policy/soql.c -o build/fuzz_soql
 *   build/fuzz_soql -max_total_time=600 tests/fuzz/corpus/soql
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "soql.h"

static void fuzz_check(const struct soql_query *q, int depth)
{
    if (q->from == NULL || q->from[0] == '\0' || depth > SOQL_MAX_DEPTH)
        abort();
    if ((q->nrefs > 0) != (q->refs != NULL) || (q->nsubs > 0) != (q->subs != NULL))
        abort();
    if (q->limit < -1 || q->offset < -1)
        abort();
    for (size_t i = 0; i < q->nrefs; i++) {
        const struct soql_ref *r = &q->refs[i];

        if (r->field == NULL || r->field[0] == '\0' || strchr(r->field, '.') != NULL)
            abort();
        if (r->path != NULL && (r->path[0] == '\0' || r->path[strlen(r->path) - 1] == '.'))
            abort();
        if (r->clause != SOQL_SELECT && r->clause != SOQL_WHERE && r->clause != SOQL_GROUP_BY &&
            r->clause != SOQL_HAVING && r->clause != SOQL_ORDER_BY)
            abort();
    }
    for (size_t i = 0; i < q->nsubs; i++) {
        const struct soql_query *s = q->subs[i];

        if (s == NULL)
            abort();
        if (!s->is_child) {
            /* a semi-join: one field selected, nothing nested in its SELECT */
            size_t nsel = 0;

            for (size_t k = 0; k < s->nrefs; k++)
                nsel += s->refs[k].clause == SOQL_SELECT;
            if (nsel != 1 || s->count_only)
                abort();
        }
        fuzz_check(s, depth + 1);
    }
    if (q->count_only) {
        for (size_t i = 0; i < q->nrefs; i++)
            if (q->refs[i].clause == SOQL_SELECT)
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct soql_query *q;

    /* An exact-size copy, so ASan catches any read past len. */
    char *text = malloc(size ? size : 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    q = soql_parse(text, size, err, sizeof(err));
    if (q == NULL) {
        if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
            abort();
    } else {
        if (q->is_child)
            abort();
        fuzz_check(q, 0);
        soql_free(q);
    }
    free(text);
    return 0;
}
