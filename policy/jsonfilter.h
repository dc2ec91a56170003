/*
 * jsonfilter.h - the response filter of filter.h in one pass over the
 * CRM's bytes, without building a tree; and, with the same scanner, a
 * member's span (jsonfilter_member) and a fast strict parser
 * (jsonfilter_parse). Pure (libc; jansson for the parser's tree).
 *
 * The answer is validated as strictly as jansson's json_loadb(.., 0, ..)
 * does (strings, escapes, UTF-8, numbers and their range, literals,
 * structure, nothing after the root) and copied to the output in spans: a
 * filtered member is cut out together with its comma, a nested record of a
 * type that may not be read is replaced by null. Everything else, the
 * whitespace included, is the CRM's own bytes.
 *
 * Keys are compared after JSON unescaping ("\u0070hone" is "phone").
 * Duplicate keys: what a record is, and of which type, is decided by the
 * last occurrence (as jansson, JavaScript, Python and Go decide when they
 * parse); within a HubSpot record every occurrence of properties,
 * propertiesWithHistory and associations is filtered; within a Salesforce
 * record every occurrence but the last of a key is removed. The output
 * therefore parses (last one wins) to exactly what policy_filter_hubspot /
 * policy_filter_salesforce leave, and a parser that keeps the first
 * occurrence sees nothing more.
 */
#ifndef CRMGATE_JSONFILTER_H
#define CRMGATE_JSONFILTER_H

#include <stddef.h>

#include <jansson.h>

#include "filter.h"
#include "rules.h"

/*
 * A value nested inside more than this many arrays and objects is refused
 * (filter.c refuses the same depth where it walks; here it holds anywhere).
 */
#define JSONFILTER_MAX_DEPTH 64
/* Answers larger than this are refused. */
#define JSONFILTER_MAX_BYTES ((size_t)64 << 20)

/* A growable byte buffer. Start it zeroed; the filters reuse its memory. */
struct jsonfilter_out {
    char *buf; /* not NUL-terminated */
    size_t len, cap;
};

/* Release out's memory; out is zeroed and may be used again. */
void jsonfilter_out_free(struct jsonfilter_out *out);

/*
 * HubSpot: filter the answer in[0..len) to a request on object (its type
 * name, e.g. "contacts"; NULL counts as unlisted) whose answer has the
 * given shape, as policy_filter_hubspot does. Returns 0 with out holding
 * the filtered JSON and *removed the number of values taken out; when
 * *removed is 0, out holds a copy of the input and the caller may keep the
 * original bytes. Returns -1 with err set when the input is not valid JSON,
 * is deeper than JSONFILTER_MAX_DEPTH, larger than JSONFILTER_MAX_BYTES,
 * carries record data where policy_filter_hubspot refuses it (there, any
 * occurrence of a duplicate key counts), or memory runs out: the answer
 * must then be refused. out->len is 0 after a failure.
 */
int jsonfilter_hubspot(const struct rules_ws *ws, const char *object, enum filter_hs_shape shape,
                       const char *in, size_t len, struct jsonfilter_out *out, size_t *removed,
                       char *err, size_t errlen);

/*
 * Salesforce: as jsonfilter_hubspot, with the semantics of
 * policy_filter_salesforce (records are found anywhere by
 * "attributes": {"type": T}; record data that cannot be typed fails).
 */
int jsonfilter_salesforce(const struct rules_ws *ws, const char *in, size_t len,
                          struct jsonfilter_out *out, size_t *removed, char *err, size_t errlen);

/*
 * Validate in[0..len) as the filters do (as strictly as json_loadb, nesting
 * up to JSONFILTER_MAX_DEPTH, at most JSONFILTER_MAX_BYTES) and find the
 * value of the root object's member key (compared after unescaping; of
 * duplicates the last, as jansson keeps it): a record's "properties" can
 * then be parsed without the rest of the answer. 1 with in[*off..*off +
 * *vlen) that value, 0 when the root object has no such member, -1 with err
 * when the input is not valid JSON, its root not an object, or memory ran
 * out.
 */
int jsonfilter_member(const char *in, size_t len, const char *key, size_t *off, size_t *vlen,
                      char *err, size_t errlen);

/*
 * jsonfilter_member, with the member's value parsed as jsonfilter_parse
 * would parse its span, in the same pass that validates the rest: 1 with
 * *value a new reference, 0 (absent) or -1 (as jsonfilter_member) with
 * *value NULL, and -2 when memory ran out.
 */
int jsonfilter_member_value(const char *in, size_t len, const char *key, json_t **value, char *err,
                            size_t errlen);

/*
 * Parse in[0..len) into a new jansson tree, as json_loadb(in, len, 0, ..)
 * does (the same validation, values and error cases; duplicate keys: the
 * last), but nesting only up to JSONFILTER_MAX_DEPTH, and in a fraction of
 * its time (no stream callbacks, no token copies). NULL with err when the
 * input is not JSON, its root neither an object nor an array, or memory
 * ran out.
 */
json_t *jsonfilter_parse(const char *in, size_t len, char *err, size_t errlen);

/*
 * jsonfilter_parse, leaving out of the tree every object member named skip
 * (compared after unescaping), at any depth: such a value is validated as
 * strictly as the rest, but not built (a HubSpot answer's
 * propertiesWithHistory, most of its bytes, when only its properties are
 * wanted).
 */
json_t *jsonfilter_parse_without(const char *in, size_t len, const char *skip, char *err,
                                 size_t errlen);

/*
 * jsonfilter_parse, refusing an object that repeats a key (compared after
 * unescaping), as json_loadb(.., JSON_REJECT_DUPLICATES, ..) does.
 */
json_t *jsonfilter_parse_unique(const char *in, size_t len, char *err, size_t errlen);

#endif
