/*
 * jsonout.h - compact JSON with sorted object keys, the bytes of jansson's
 * json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY), written
 * straight into one growing buffer. Pure (libc and jansson).
 *
 * Why not json_dumps: it costs about 100 instructions per output byte (a
 * callback per string run, a UTF-8 decode per character, a key array per
 * object); the audit store writes two records per audited write and more
 * in dry-run, and this does the same in a fraction. Strings are not
 * re-validated (jansson holds only valid UTF-8). Reals, which audit records
 * carry only when a CRM value is one, go through jansson's own formatting.
 *
 * An audit record appended to the store gets its id from the store's
 * writer thread, after it was serialized here: jsonout_record leaves a
 * member "id":"" in its sorted place and says where its value goes.
 */
#ifndef CRMGATE_JSONOUT_H
#define CRMGATE_JSONOUT_H

#include <stddef.h>

#include <jansson.h>

/* Objects and arrays nested deeper than this are refused (jansson parses up to 2048). */
#define JSONOUT_MAX_DEPTH 2048

/* A growable buffer; start it zeroed. buf is NUL-terminated once anything was written. */
struct jsonout {
    char *buf;
    size_t len, cap;
};

/* Append v; 0, or -1 when out of memory or too deep (out->len is then unchanged). */
int jsonout_append(struct jsonout *out, const json_t *v);

/*
 * Append the object rec with its member "id" (present or not) written as
 * "id":"" in its sorted place; *id_at is the offset (in out) between those
 * two quotes. 0 / -1 as above.
 */
int jsonout_record(struct jsonout *out, const json_t *rec, size_t *id_at);

/* v as a new NUL-terminated string (*len bytes; len may be NULL), or NULL. The caller frees. */
char *jsonout_dumps(const json_t *v, size_t *len);

/*
 * The same with members in insertion order, as jansson keeps them: the
 * bytes of json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) (answers whose
 * member order mimics the CRM's).
 */
char *jsonout_dumps_ordered(const json_t *v, size_t *len);

/*
 * Pieces for a caller writing JSON of a known shape straight into out (the
 * audit records): room for n more bytes; n raw bytes (JSON the caller
 * vouches for); s (n bytes of valid UTF-8, not checked) as a JSON string,
 * escaped as above; an integer. 0, or -1 out of memory.
 */
int jsonout_reserve(struct jsonout *out, size_t n);
int jsonout_raw(struct jsonout *out, const void *p, size_t n);
int jsonout_str(struct jsonout *out, const char *s, size_t n);
int jsonout_int(struct jsonout *out, long long v);

/* Release the buffer; out is zeroed. */
void jsonout_free(struct jsonout *out);

#endif
