/*
 * identify.c - token fingerprints and caller lookup.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "identify.h"

int identify_fingerprint(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";

    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return -1;
    for (unsigned int i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[64] = '\0';
    return 0;
}

const struct config_caller *identify_caller(const struct config *cfg,
                                            const struct http_fields *headers, char fp[65],
                                            char *why, size_t whylen)
{
    const struct config_caller *caller;
    const char *v, *tok;
    size_t vlen, toklen;
    long i;

    fp[0] = '\0';
    i = http_fields_find(headers, "authorization", 0);
    if (i < 0) {
        snprintf(why, whylen, "no Authorization header: crmgate only serves registered callers");
        return NULL;
    }
    if (http_fields_count(headers, "authorization") > 1) {
        snprintf(why, whylen, "more than one Authorization header");
        return NULL;
    }
    v = http_field_value(headers, (size_t)i, &vlen);
    if (vlen > 7 && strncasecmp(v, "Bearer ", 7) == 0) {
        tok = v + 7;
        toklen = vlen - 7;
    } else if (vlen > 6 && strncasecmp(v, "OAuth ", 6) == 0) {
        tok = v + 6;
        toklen = vlen - 6;
    } else {
        snprintf(why, whylen, "the Authorization header is not a Bearer token");
        return NULL;
    }
    while (toklen > 0 && *tok == ' ') {
        tok++;
        toklen--;
    }
    if (toklen == 0 || identify_fingerprint(tok, toklen, fp) < 0) {
        snprintf(why, whylen, "empty Bearer token");
        return NULL;
    }
    caller = config_caller_find(cfg, fp);
    if (caller == NULL)
        snprintf(why, whylen,
                 "this token is not registered with crmgate (token fingerprint "
                 "sha256:%.12s...; register it in the config's callers)",
                 fp);
    return caller;
}
