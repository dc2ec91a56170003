/*
 * soql_dump.c - prints, for each query in a corpus (one per line; blank
 * lines and lines starting with '#' skipped), one line of canonical JSON:
 *
 *   {"line":N,"query":{"from":...,"child":false,"count_only":false,"limit":-1,
 *    "offset":-1,"refs":[{"path":...,"field":...,"clause":...}],"subs":[...]}}
 *   {"line":N,"error":"..."}
 *
 * refs are sorted and deduplicated (their order and repetition carry no
 * meaning for the whitelist); subs keep text order. tests/unit/
 * soql_crosscheck.js derives the same form from soql-parser-js's AST.
 *
 *   soql_dump tests/unit/cases/soql_corpus.txt
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "soql.h"

static int dump_ref_cmp(const void *a, const void *b)
{
    const struct soql_ref *x = *(const struct soql_ref *const *)a;
    const struct soql_ref *y = *(const struct soql_ref *const *)b;
    int c = strcmp(x->path ? x->path : "", y->path ? y->path : "");

    if (c == 0)
        c = strcmp(x->field, y->field);
    if (c == 0)
        c = strcmp(soql_clause_name(x->clause), soql_clause_name(y->clause));
    return c;
}

static json_t *dump_query(const struct soql_query *q)
{
    json_t *o = json_object(), *refs = json_array(), *subs = json_array();
    const struct soql_ref **v = calloc(q->nrefs ? q->nrefs : 1, sizeof(*v));

    for (size_t i = 0; i < q->nrefs; i++)
        v[i] = &q->refs[i];
    qsort(v, q->nrefs, sizeof(*v), dump_ref_cmp);
    for (size_t i = 0; i < q->nrefs; i++) {
        if (i > 0 && dump_ref_cmp(&v[i - 1], &v[i]) == 0)
            continue;
        json_array_append_new(refs,
                              json_pack("{s:s?,s:s,s:s}", "path", v[i]->path, "field", v[i]->field,
                                        "clause", soql_clause_name(v[i]->clause)));
    }
    free(v);
    for (size_t i = 0; i < q->nsubs; i++)
        json_array_append_new(subs, dump_query(q->subs[i]));
    json_object_set_new(o, "from", json_string(q->from));
    json_object_set_new(o, "child", json_boolean(q->is_child));
    json_object_set_new(o, "count_only", json_boolean(q->count_only));
    json_object_set_new(o, "limit", json_integer(q->limit));
    json_object_set_new(o, "offset", json_integer(q->offset));
    json_object_set_new(o, "refs", refs);
    json_object_set_new(o, "subs", subs);
    return o;
}

int main(int argc, char **argv)
{
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: soql_dump CORPUS\n");
        return 2;
    }
    if ((f = fopen(argv[1], "r")) == NULL) {
        perror(argv[1]);
        return 2;
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        char err[256];
        struct soql_query *q;
        json_t *out;
        char *s;

        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        q = soql_parse(line, (size_t)n, err, sizeof(err));
        if (q != NULL)
            out = json_pack("{s:I,s:o}", "line", (json_int_t)lineno, "query", dump_query(q));
        else
            out = json_pack("{s:I,s:s}", "line", (json_int_t)lineno, "error",
                            err[0] ? err : "out of memory");
        soql_free(q);
        s = json_dumps(out, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (s == NULL) {
            fprintf(stderr, "line %ld: cannot encode\n", lineno);
            return 1;
        }
        puts(s);
        free(s);
        json_decref(out);
    }
    free(line);
    fclose(f);
    return 0;
}
