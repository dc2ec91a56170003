/*
 * route.h - which CRM a reverse-mode request is for.
 *
 * The reverse listener serves /hubspot/... and /salesforce/...; anything
 * else is refused (crmgate is never an open proxy).
 */
#ifndef CRMGATE_ROUTE_H
#define CRMGATE_ROUTE_H

#include <stddef.h>

#include "../policy/crm.h"

/*
 * Match target (origin-form, "/hubspot/crm/v3/...?x") against the reverse
 * prefixes. Returns the CRM and sets *rest to the part after the prefix
 * ("/crm/v3/...?x", or "" for the bare prefix); CRM_NONE when nothing matches.
 * The prefix match is exact and case-sensitive: "/hubspotx" does not match.
 */
enum crm route_reverse(const char *target, const char **rest);

/*
 * Build the upstream URL: base + rest, with runs of '/' in the path part
 * collapsed to one (the HubSpot SDK with a trailing-slash basePath sends
 * "//crm/..."), and "/" when rest has no path. Returns a malloc'ed string.
 */
char *route_upstream_url(const char *base, const char *rest);

/*
 * Forward mode: which CRM a host (lower-case, no port) belongs to, if it is
 * one crmgate intercepts: api.hubapi.com and api.hubspot.com for HubSpot;
 * *.my.salesforce.com, login.salesforce.com, test.salesforce.com and
 * sf_instance_host (the configured Salesforce upstream's host, may be NULL)
 * for Salesforce. Anything else is CRM_NONE: crmgate is never an open proxy.
 */
enum crm route_forward_host(const char *host, const char *sf_instance_host);

/*
 * Split a CONNECT authority "host:port" into a lower-case host (no brackets:
 * IP literals are refused by the allow-list anyway) and its port, digits
 * only (no sign or blank strtol would skip). 0, or -1 when it is not
 * host:port.
 */
int route_authority(const char *authority, char *host, size_t hostlen, long *port);

#endif
