/*
 * query.c - audit filters from text: timestamps and the parameter set of
 * GET /v1/audit and `crmgate diffs`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

#define QUERY_MAX_AGE_MS (100LL * 365 * 24 * 3600 * 1000) /* a relative time further back: typo */

static const char *const query_outcomes[] = {
    "allowed", "denied",   "dry_run",         "upstream_error", "unknown",
    "held",    "approved", "approved_edited", "rejected",       "expired",
};

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's algorithm). */
static long long query_days_from_civil(long long y, unsigned m, unsigned d)
{
    long long era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static int query_leap(long long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Exactly n digits at *p into *out; advances *p. */
static int query_digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int query_parse_absolute(const char *s, long long *out_ms)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, off = 0;

    if (query_digits(&p, 4, &y) < 0 || *p++ != '-' || query_digits(&p, 2, &mo) < 0 || *p++ != '-' ||
        query_digits(&p, 2, &d) < 0)
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
        d > mdays[mo - 1] + (mo == 2 && query_leap(y) ? 1 : 0))
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (query_digits(&p, 2, &h) < 0 || *p++ != ':' || query_digits(&p, 2, &mi) < 0)
            return -1;
        if (*p == ':') {
            p++;
            if (query_digits(&p, 2, &sec) < 0)
                return -1;
            if (*p == '.') {
                int scale = 100;
                p++;
                if (*p < '0' || *p > '9')
                    return -1;
                for (; *p >= '0' && *p <= '9'; p++) {
                    ms += (*p - '0') * scale;
                    scale /= 10;
                }
            }
        }
        if (h > 23 || mi > 59 || sec > 59)
            return -1;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om;
            p++;
            if (query_digits(&p, 2, &oh) < 0)
                return -1;
            if (*p == ':')
                p++;
            if (query_digits(&p, 2, &om) < 0 || oh > 23 || om > 59)
                return -1;
            off = sign * (oh * 60 + om);
        }
    }
    if (*p != '\0')
        return -1;
    *out_ms = ((query_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400LL + h * 3600LL +
                mi * 60LL + sec - off * 60LL) *
               1000LL) +
              ms;
    return 0;
}

int query_parse_time(const char *s, long long now_ms, long long *out_ms, char *err, size_t errlen)
{
    size_t n = strlen(s), digits = strspn(s, "0123456789");

    if (n == 0) {
        snprintf(err, errlen, "empty time");
        return -1;
    }
    if (digits == n) {
        char *end;
        long long v;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0' || n > 16) {
            snprintf(err, errlen, "\"%s\" is out of range", s);
            return -1;
        }
        *out_ms = v;
        return 0;
    }
    if (digits > 0 && digits <= 9 && digits + 1 == n && strchr("smhd", s[n - 1]) != NULL) {
        long long v = strtoll(s, NULL, 10), unit = 1000;
        if (s[n - 1] == 'm')
            unit = 60 * 1000LL;
        else if (s[n - 1] == 'h')
            unit = 3600 * 1000LL;
        else if (s[n - 1] == 'd')
            unit = 86400 * 1000LL;
        if (v * unit > QUERY_MAX_AGE_MS || v * unit > now_ms) {
            snprintf(err, errlen, "\"%s\" reaches back too far", s);
            return -1;
        }
        *out_ms = now_ms - v * unit;
        return 0;
    }
    if (query_parse_absolute(s, out_ms) == 0)
        return 0;
    snprintf(err, errlen,
             "\"%s\" is not a time: use 2026-12-07, 2026-12-07T12:30:00Z, an age like 15m, 2h, "
             "7d, or milliseconds since the epoch",
             s);
    return -1;
}

static int query_u64(const char *s, unsigned long long *out)
{
    char *end;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno != 0 || *end != '\0' ? -1 : 0;
}

int query_audit_from_params(const char *const *names, const char *const *values, size_t n,
                            long long now_ms, struct store_query *q, const char **bad, char *err,
                            size_t errlen)
{
    memset(q, 0, sizeof(*q));
    *bad = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i], *v = values[i];
        const char **slot = NULL;
        *bad = name;
        if (v[0] == '\0') {
            snprintf(err, errlen, "\"%s\" is empty", name);
            return -1;
        }
        if (strlen(v) > QUERY_MAX_VALUE) {
            snprintf(err, errlen, "\"%s\" is longer than %d characters", name, QUERY_MAX_VALUE);
            return -1;
        }
        if (strcmp(name, "workspace") == 0) {
            slot = &q->workspace;
        } else if (strcmp(name, "object") == 0) {
            slot = &q->object;
        } else if (strcmp(name, "record") == 0) {
            slot = &q->record;
        } else if (strcmp(name, "workflow") == 0) {
            slot = &q->workflow;
        } else if (strcmp(name, "call") == 0) {
            slot = &q->call;
        } else if (strcmp(name, "crm") == 0) {
            if (strcmp(v, "hubspot") != 0 && strcmp(v, "salesforce") != 0) {
                snprintf(err, errlen, "crm \"%s\": expected hubspot or salesforce", v);
                return -1;
            }
            slot = &q->crm;
        } else if (strcmp(name, "outcome") == 0) {
            size_t k = 0, nout = sizeof(query_outcomes) / sizeof(query_outcomes[0]);
            while (k < nout && strcmp(query_outcomes[k], v) != 0)
                k++;
            if (k == nout) {
                snprintf(err, errlen,
                         "outcome \"%s\": expected allowed, denied, dry_run, upstream_error, "
                         "unknown, held, approved, approved_edited, rejected or expired",
                         v);
                return -1;
            }
            slot = &q->outcome;
        } else if (strcmp(name, "since") == 0 || strcmp(name, "until") == 0) {
            char why[300];
            long long *t = name[0] == 's' ? &q->since_ms : &q->until_ms;
            if (query_parse_time(v, now_ms, t, why, sizeof(why)) < 0) {
                snprintf(err, errlen, "%s: %s", name, why);
                return -1;
            }
            if (*t <= 0) {
                snprintf(err, errlen, "%s: \"%s\" is not after the epoch", name, v);
                return -1;
            }
        } else if (strcmp(name, "limit") == 0) {
            unsigned long long l;
            if (query_u64(v, &l) < 0 || l < 1 || l > STORE_QUERY_MAX) {
                snprintf(err, errlen, "limit \"%s\": expected a number from 1 to %d", v,
                         STORE_QUERY_MAX);
                return -1;
            }
            q->limit = (size_t)l;
        } else if (strcmp(name, "cursor") == 0) {
            unsigned long long c;
            if (query_u64(v, &c) < 0 || c == 0) {
                snprintf(err, errlen, "cursor \"%s\": expected the \"next\" of an earlier page", v);
                return -1;
            }
            q->cursor = c;
        } else {
            snprintf(err, errlen,
                     "unknown filter \"%s\" (known: workspace, crm, object, record, workflow, "
                     "call, outcome, since, until, limit, cursor)",
                     name);
            return -1;
        }
        if (slot != NULL) {
            if (*slot != NULL) {
                snprintf(err, errlen, "\"%s\" is given twice", name);
                return -1;
            }
            *slot = v;
        }
    }
    if (q->since_ms > 0 && q->until_ms > 0 && q->since_ms > q->until_ms) {
        *bad = "since";
        snprintf(err, errlen, "since is after until");
        return -1;
    }
    *bad = NULL;
    return 0;
}
