/*
 * route.c - reverse path prefixes and upstream URLs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* Whether host ends with "." + suffix and has a non-empty label before it. */
static int route_has_suffix(const char *host, const char *suffix)
{
    size_t hl = strlen(host), sl = strlen(suffix);

    return hl > sl + 1 && host[hl - sl - 1] == '.' && strcasecmp(host + hl - sl, suffix) == 0;
}

enum crm route_forward_host(const char *host, const char *sf_instance_host)
{
    /* Names only: an IP literal is never a CRM host, whatever the config says. */
    if (host[strspn(host, "0123456789.")] == '\0' || strchr(host, ':') != NULL)
        return CRM_NONE;
    if (strcasecmp(host, "api.hubapi.com") == 0 || strcasecmp(host, "api.hubspot.com") == 0)
        return CRM_HUBSPOT;
    if (strcasecmp(host, "login.salesforce.com") == 0 ||
        strcasecmp(host, "test.salesforce.com") == 0)
        return CRM_SALESFORCE;
    /* one label of My Domain before .my.salesforce.com, nothing deeper */
    if (route_has_suffix(host, "my.salesforce.com") &&
        strchr(host, '.') == host + strlen(host) - strlen("my.salesforce.com") - 1)
        return CRM_SALESFORCE;
    if (sf_instance_host != NULL && strcasecmp(host, sf_instance_host) == 0)
        return CRM_SALESFORCE;
    return CRM_NONE;
}

int route_authority(const char *authority, char *host, size_t hostlen, long *port)
{
    const char *colon = strrchr(authority, ':');
    size_t n;
    char *end;

    if (colon == NULL || colon == authority || authority[0] == '[')
        return -1;
    n = (size_t)(colon - authority);
    if (n >= hostlen)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char ch = authority[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-'))
            return -1;
        host[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    host[n] = '\0';
    /* port = *DIGIT: strtol alone would also take "+443", " 443" or "-0" */
    if (colon[1] == '\0' || colon[1 + strspn(colon + 1, "0123456789")] != '\0')
        return -1;
    errno = 0;
    *port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || *port <= 0 || *port > 65535)
        return -1;
    return 0;
}
