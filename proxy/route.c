/*
 * route.c - reverse path prefixes and upstream URLs.
 */
#include <stdlib.h>
#include <string.h>

#include "route.h"

static const struct route_prefix {
    const char *prefix;
    enum crm crm;
} route_prefixes[] = {
    {"/hubspot", CRM_HUBSPOT},
    {"/salesforce", CRM_SALESFORCE},
};

enum crm route_reverse(const char *target, const char **rest)
{
    for (size_t i = 0; i < sizeof(route_prefixes) / sizeof(route_prefixes[0]); i++) {
        size_t n = strlen(route_prefixes[i].prefix);
        if (strncmp(target, route_prefixes[i].prefix, n) == 0 &&
            (target[n] == '/' || target[n] == '?' || target[n] == '\0')) {
            *rest = target + n;
            return route_prefixes[i].crm;
        }
    }
    *rest = NULL;
    return CRM_NONE;
}

char *route_upstream_url(const char *base, const char *rest)
{
    size_t blen = strlen(base), rlen = strlen(rest);
    char *out = malloc(blen + rlen + 2), *o;
    const char *p = rest;
    int in_query = 0;

    if (out == NULL)
        return NULL;
    memcpy(out, base, blen);
    o = out + blen;
    if (*p != '/')
        *o++ = '/';
    for (; *p != '\0'; p++) {
        if (*p == '?')
            in_query = 1;
        if (!in_query && *p == '/' && o > out + blen && o[-1] == '/')
            continue;
        *o++ = *p;
    }
    *o = '\0';
    return out;
}
