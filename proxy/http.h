/*
 * http.h - HTTP/1.1 message pieces shared by the client side (conn) and the
 * upstream side: a compact header list, the raw header-block pre-scan that
 * closes the holes Debian's llhttp 8.1.0 leaves open, and hop-by-hop rules.
 *
 * No I/O here, so everything is table-tested in tests/unit/.
 */
#ifndef CRMGATE_HTTP_H
#define CRMGATE_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* Header fields, stored back to back in one buffer; names keep their case. */
struct http_fields {
    char *buf;
    size_t len, cap;
    struct http_field {
        uint32_t name, nlen, value, vlen; /* offsets into buf */
    } * f;
    size_t n, fcap;
};

/* Release the memory of fs (the struct itself is the caller's). */
void http_fields_free(struct http_fields *fs);

/* Append every field of src to dst; 0 / -1 (out of memory: dst holds part of them). */
int http_fields_copy(struct http_fields *dst, const struct http_fields *src);

/* Zero the bytes of fs (it carried a credential), then free them. */
void http_fields_cleanse(struct http_fields *fs);

/* Forget every field but keep the memory for reuse. */
void http_fields_reset(struct http_fields *fs);

/* Append a field (copies both spans); 0, or -1 when out of memory. */
int http_fields_add(struct http_fields *fs, const char *name, size_t nlen, const char *value,
                    size_t vlen);

/* Append a field whose value is v in decimal (crmgate's own ids and counts); 0 / -1. */
int http_fields_add_u64(struct http_fields *fs, const char *name, size_t nlen, uint64_t v);

/* Append bytes to the value of the last field (llhttp delivers spans); 0 / -1. */
int http_fields_append_value(struct http_fields *fs, const char *p, size_t n);

/* Append bytes to the name of the last field; 0 / -1. */
int http_fields_append_name(struct http_fields *fs, const char *p, size_t n);

/* Field i's name and value; pointers valid until the next add/append. */
const char *http_field_name(const struct http_fields *fs, size_t i, size_t *len);
const char *http_field_value(const struct http_fields *fs, size_t i, size_t *len);

/* Index of the first field named name (case-insensitive) at or after from, or -1. */
long http_fields_find(const struct http_fields *fs, const char *name, size_t from);

/* Number of fields named name. */
size_t http_fields_count(const struct http_fields *fs, const char *name);

/* Trim optional whitespace (SP, HTAB) from both ends of every value. */
void http_fields_trim(struct http_fields *fs);

/*
 * Raw header-block pre-scan, run on the bytes of a request head before llhttp
 * sees them. It is incremental: the state survives between calls, and each
 * call looks only at bytes it has not seen yet.
 */
struct http_prescan {
    size_t pos; /* bytes examined so far */
    int state;
    int line_empty;
};

enum http_prescan_result {
    HTTP_PRESCAN_MORE,  /* no end of headers yet, nothing wrong so far */
    HTTP_PRESCAN_DONE,  /* *end = offset just past the CRLF CRLF */
    HTTP_PRESCAN_ERROR, /* *why says what: bare CR, bare LF, obs-fold */
};

/* Start a new message. */
void http_prescan_init(struct http_prescan *ps);

/*
 * Examine buf[0..len) (the whole head so far, starting at the request line).
 * Rejects a CR not followed by LF, an LF not preceded by CR, and any line
 * starting with SP or HTAB (obs-fold, or whitespace before the request line).
 */
enum http_prescan_result http_prescan_run(struct http_prescan *ps, const char *buf, size_t len,
                                          size_t *end, const char **why);

/*
 * Whether a header must not be forwarded: the hop-by-hop set of RFC 9110
 * §7.6.1 (Connection, Keep-Alive, Proxy-Connection, Proxy-Authenticate,
 * Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade) plus every
 * name listed in the message's Connection header(s).
 */
int http_is_hop_by_hop(const struct http_fields *fs, const char *name, size_t nlen);

/* Case-insensitive comparison of a counted name with a C string. */
int http_name_eq(const char *name, size_t nlen, const char *want);

/* Whether the comma-separated list value contains token (case-insensitive). */
int http_list_has(const char *value, size_t vlen, const char *token);

#endif
