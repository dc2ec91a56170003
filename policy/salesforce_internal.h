/*
 * salesforce_internal.h - what the Salesforce classifier (salesforce.c)
 * and its schema (salesforce_schema.c) share beyond salesforce.h. Not for
 * other modules.
 */
#ifndef CRMGATE_SALESFORCE_INTERNAL_H
#define CRMGATE_SALESFORCE_INTERNAL_H

#include <stddef.h>

#include "salesforce.h"

#define SF_MAX_NAME 128 /* API names (objects, fields, relationships) */

/* 1 when s[0..len) is an API name: [A-Za-z][A-Za-z0-9_]*, at most SF_MAX_NAME chars. */
int sf_ident(const char *s, size_t len);

/* 1 when the NUL-terminated name equals s[0..len), compared case-insensitively. */
int sf_eq(const char *name, const char *s, size_t len);

/*
 * 1 when object[0..len) has a known key prefix, in schema (may be NULL) or
 * built in, so that an id with a foreign prefix proves a wrong id; else 0.
 */
int sf_object_has_prefix(const struct sf_schema *schema, const char *object, size_t len);

#endif
