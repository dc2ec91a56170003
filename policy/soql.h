/*
 * soql.h - a recursive-descent parser for the safe subset of SOQL that
 * crmgate lets agents run, reporting every field each clause touches.
 *
 * Accepted: SELECT (fields, relationship paths, COUNT(), aggregate and
 * allow-listed functions of fields, child subqueries), FROM one object,
 * WHERE (AND/OR/NOT, comparison operators, IN/NOT IN with value lists or
 * semi-/anti-joins, INCLUDES/EXCLUDES, LIKE, literals incl. date literals),
 * WITH SECURITY_ENFORCED|USER_MODE, GROUP BY, HAVING, ORDER BY (ASC/DESC,
 * NULLS FIRST/LAST), LIMIT, OFFSET, FOR VIEW|REFERENCE, UPDATE
 * TRACKING|VIEWSTAT. Rejected, with a message naming the construct:
 * FIELDS(...), TYPEOF, bind variables, comments, aliases (column and FROM),
 * USING SCOPE, WITH DATA CATEGORY, GROUP BY ROLLUP/CUBE, unknown functions,
 * and anything else it cannot parse.
 *
 * Pure: no I/O. Identifiers are reported as written (SOQL is
 * case-insensitive; compare with strcasecmp).
 */
#ifndef CRMGATE_SOQL_H
#define CRMGATE_SOQL_H

#include <stddef.h>

#define SOQL_MAX_LEN   100000 /* Salesforce's own cap on a SOQL statement */
#define SOQL_MAX_DEPTH 16     /* nesting of parentheses, NOT, functions and subqueries */

enum soql_clause { SOQL_SELECT, SOQL_WHERE, SOQL_GROUP_BY, SOQL_HAVING, SOQL_ORDER_BY };

/* One field reference: Account.Owner.Email is {path "Account.Owner", field "Email"}. */
struct soql_ref {
    char *path; /* relationship path relative to the query's FROM, or NULL */
    char *field;
    enum soql_clause clause;
};

struct soql_query {
    char *from;   /* object (top level, semi-join) or child relationship (subquery) */
    int is_child; /* 1: a subquery in SELECT; from is a child relationship name */
    struct soql_ref *refs;
    size_t nrefs;
    struct soql_query **subs; /* child subqueries and semi-/anti-joins, in text order */
    size_t nsubs;
    int count_only; /* SELECT COUNT() */
    long limit;     /* -1 when absent */
    long offset;    /* -1 when absent */
};

/*
 * Parse text[0..len) (already URL-decoded). Returns the query tree, or NULL
 * with err set to a MALFORMED_QUERY-style reason that names the construct
 * ("construct not allowed: TYPEOF", "unexpected ',' at offset 24"). A NULL
 * return with an empty err means out of memory.
 */
struct soql_query *soql_parse(const char *text, size_t len, char *err, size_t errlen);

/* Free a tree returned by soql_parse; NULL is ignored. */
void soql_free(struct soql_query *q);

/* "SELECT", "WHERE", "GROUP BY", "HAVING" or "ORDER BY"; a static string. */
const char *soql_clause_name(enum soql_clause clause);

#endif
