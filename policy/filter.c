/*
 * filter.c - response filtering by read rules.
 */
#include <string.h>
#include <strings.h>

#include "filter.h"

#define FILTER_MAX_DEPTH 64 /* deeper than any CRM answer; jansson allows 2048 */

/* Remove the keys of obj that o may not read (all of them when o is NULL). */
static size_t filter_keys(const struct rules_object *o, json_t *obj)
{
    const char *key;
    json_t *v;
    void *tmp;
    size_t removed = 0;

    json_object_foreach_safe(obj, tmp, key, v)
    {
        if (o != NULL && rules_can_read(o, key))
            continue;
        json_object_del(obj, key);
        removed++;
    }
    return removed;
}

static size_t filter_hubspot_record(const struct rules_crm *rc, const struct rules_object *o,
                                    json_t *rec)
{
    json_t *props = json_object_get(rec, "properties");
    json_t *hist = json_object_get(rec, "propertiesWithHistory");
    json_t *assoc = json_object_get(rec, "associations");
    size_t removed = 0;

    if (json_is_object(props))
        removed += filter_keys(o, props);
    if (json_is_object(hist))
        removed += filter_keys(o, hist);
    if (json_is_object(assoc)) {
        const char *key;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(assoc, tmp, key, v)
        {
            if (rules_object_find(rc, key) == NULL) {
                json_object_del(assoc, key);
                removed++;
            }
        }
    }
    return removed;
}

size_t policy_filter_hubspot(const struct rules_ws *ws, const char *object, json_t *body)
{
    const struct rules_crm *rc = rules_crm_of(ws, CRM_HUBSPOT);
    const struct rules_object *o = rules_object_find(rc, object);
    json_t *results, *rec;
    size_t removed = 0, i;

    if (!json_is_object(body))
        return 0;
    if (json_is_object(json_object_get(body, "properties")) ||
        json_is_object(json_object_get(body, "propertiesWithHistory")))
        removed += filter_hubspot_record(rc, o, body);
    results = json_object_get(body, "results");
    if (json_is_array(results)) {
        json_array_foreach(results, i, rec)
        {
            if (json_is_object(rec))
                removed += filter_hubspot_record(rc, o, rec);
        }
    }
    return removed;
}

static const char *filter_sf_type(json_t *obj)
{
    json_t *attrs = json_object_get(obj, "attributes");

    return json_is_object(attrs) ? json_string_value(json_object_get(attrs, "type")) : NULL;
}

static size_t filter_sf_walk(const struct rules_crm *rc, json_t *v, int depth, int *too_deep);

/* A record of type: keep attributes, Id, readable fields, nested records. */
static size_t filter_sf_record(const struct rules_crm *rc, const char *type, json_t *rec, int depth,
                               int *too_deep)
{
    const struct rules_object *o = rules_object_find(rc, type);
    const char *key;
    json_t *v;
    void *tmp;
    size_t removed = 0;

    json_object_foreach_safe(rec, tmp, key, v)
    {
        if (strcmp(key, "attributes") == 0 || strcasecmp(key, "Id") == 0)
            continue;
        /* Nested parent record or child-query result: filtered by its own type. */
        if (json_is_object(v) &&
            (filter_sf_type(v) != NULL || json_is_array(json_object_get(v, "records")))) {
            const char *nt = filter_sf_type(v);
            if (nt != NULL && rules_object_find(rc, nt) == NULL) {
                json_object_set_new(rec, key, json_null());
                removed++;
                continue;
            }
            removed += filter_sf_walk(rc, v, depth + 1, too_deep);
            continue;
        }
        if (o != NULL && rules_can_read(o, key))
            continue;
        json_object_del(rec, key);
        removed++;
    }
    return removed;
}

static size_t filter_sf_walk(const struct rules_crm *rc, json_t *v, int depth, int *too_deep)
{
    size_t removed = 0, i;
    const char *key, *type;
    json_t *item;

    if (depth > FILTER_MAX_DEPTH) {
        *too_deep = 1; /* not inspected means not safe: the caller refuses the answer */
        return 0;
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, item) removed += filter_sf_walk(rc, item, depth + 1, too_deep);
        return removed;
    }
    if (!json_is_object(v))
        return 0;
    type = filter_sf_type(v);
    if (type != NULL)
        return filter_sf_record(rc, type, v, depth, too_deep);
    json_object_foreach(v, key, item) removed += filter_sf_walk(rc, item, depth + 1, too_deep);
    return removed;
}

int policy_filter_salesforce(const struct rules_ws *ws, json_t *body, size_t *removed)
{
    int too_deep = 0;

    *removed = filter_sf_walk(rules_crm_of(ws, CRM_SALESFORCE), body, 0, &too_deep);
    return too_deep ? -1 : 0;
}
