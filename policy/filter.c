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

/* Record members: v3's, then legacy companies v2 and deals v1's. */
const struct filter_name filter_hs_record_keys[] = {
    FILTER_SCALAR("id"),         FILTER_NAME("properties"),   FILTER_NAME("propertiesWithHistory"),
    FILTER_NAME("associations"), FILTER_SCALAR("createdAt"),  FILTER_SCALAR("updatedAt"),
    FILTER_SCALAR("archived"),   FILTER_SCALAR("archivedAt"), FILTER_SCALAR("objectWriteTraceId"),
    FILTER_SCALAR("url"),        FILTER_NAME("warnings"),     FILTER_SCALAR("new"),
    FILTER_SCALAR("portalId"),   FILTER_SCALAR("companyId"),  FILTER_SCALAR("dealId"),
    FILTER_SCALAR("vid"),        FILTER_SCALAR("isDeleted"),  {NULL, 0, 0}};

/* Root members: collections and batches, errors and rate limits, legacy write answers, v4 label
 * pairs. */
const struct filter_name filter_hs_root_keys[] = {FILTER_NAME("results"),
                                                  FILTER_NAME("paging"),
                                                  FILTER_NAME("total"),
                                                  FILTER_NAME("status"),
                                                  FILTER_NAME("requestedAt"),
                                                  FILTER_NAME("startedAt"),
                                                  FILTER_NAME("completedAt"),
                                                  FILTER_NAME("links"),
                                                  FILTER_NAME("numErrors"),
                                                  FILTER_NAME("errors"),
                                                  FILTER_NAME("message"),
                                                  FILTER_NAME("correlationId"),
                                                  FILTER_NAME("category"),
                                                  FILTER_NAME("subCategory"),
                                                  FILTER_NAME("context"),
                                                  FILTER_NAME("errorType"),
                                                  FILTER_NAME("policyName"),
                                                  FILTER_NAME("groupName"),
                                                  FILTER_NAME("requestId"),
                                                  FILTER_NAME("error"),
                                                  FILTER_NAME("isNew"),
                                                  FILTER_NAME("deleted"),
                                                  FILTER_NAME("reason"),
                                                  FILTER_NAME("fromObjectTypeId"),
                                                  FILTER_NAME("fromObjectId"),
                                                  FILTER_NAME("toObjectTypeId"),
                                                  FILTER_NAME("toObjectId"),
                                                  FILTER_NAME("labels"),
                                                  {NULL, 0, 0}};

const struct filter_name filter_sf_attributes_keys[] = {
    FILTER_NAME("type"), FILTER_NAME("url"), FILTER_NAME("referenceId"), {NULL, 0, 0}};

const struct filter_name filter_sf_compound_keys[] = {FILTER_NAME("street"),
                                                      FILTER_NAME("city"),
                                                      FILTER_NAME("state"),
                                                      FILTER_NAME("stateCode"),
                                                      FILTER_NAME("postalCode"),
                                                      FILTER_NAME("country"),
                                                      FILTER_NAME("countryCode"),
                                                      FILTER_NAME("latitude"),
                                                      FILTER_NAME("longitude"),
                                                      FILTER_NAME("geocodeAccuracy"),
                                                      {NULL, 0, 0}};

/* The entry of names called key, or NULL. */
static const struct filter_name *filter_in(const char *key, const struct filter_name *names)
{
    for (; names->s != NULL; names++) {
        if (strcmp(key, names->s) == 0)
            return names;
    }
    return NULL;
}

/*
 * Whether key is a known HubSpot member (a record's; at the root, also an
 * answer's): 1 kept, 0 cut, -1 the answer is refused (a record's identity
 * member holding an object or array, which may be record data).
 */
static int filter_hs_known(const char *key, int root, json_t *v)
{
    const struct filter_name *k = filter_in(key, filter_hs_record_keys);

    if (k == NULL && root)
        k = filter_in(key, filter_hs_root_keys);
    if (k != NULL && k->scalar && (json_is_object(v) || json_is_array(v)))
        return -1;
    return k != NULL;
}

static int filter_is_bag_key(const char *key)
{
    return strcmp(key, "properties") == 0 || strcmp(key, "propertiesWithHistory") == 0;
}

/* A bag-named value outside a record position: record data unless null, [] or (schema) an array. */
static int filter_hs_stray_bag(enum filter_hs_shape shape, json_t *v)
{
    if (json_is_object(v))
        return 1;
    return json_is_array(v) && json_array_size(v) > 0 && shape != FILTER_HS_SCHEMA;
}

/* Whether v holds record data anywhere (in depth levels at most: else *too_deep). */
static int filter_hs_stray(enum filter_hs_shape shape, json_t *v, int depth, int *too_deep)
{
    const char *key;
    json_t *item;
    size_t i;

    if (depth > FILTER_MAX_DEPTH) {
        *too_deep = 1;
        return 1;
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, item)
        {
            if (filter_hs_stray(shape, item, depth + 1, too_deep))
                return 1;
        }
        return 0;
    }
    if (!json_is_object(v))
        return 0;
    json_object_foreach(v, key, item)
    {
        if ((filter_is_bag_key(key) && filter_hs_stray_bag(shape, item)) ||
            filter_hs_stray(shape, item, depth + 1, too_deep))
            return 1;
    }
    return 0;
}

/*
 * A record (root: the answer's root) of a FILTER_HS_RECORDS answer. -1
 * when it holds record data elsewhere than its bags.
 */
static int filter_hubspot_record(const struct rules_crm *rc, const struct rules_object *o,
                                 json_t *rec, int root, int is_record, int depth, size_t *removed)
{
    const char *key;
    json_t *v;
    void *tmp;
    int too_deep = 0, known;

    json_object_foreach_safe(rec, tmp, key, v)
    {
        if (filter_is_bag_key(key)) {
            if (json_is_object(v))
                *removed += filter_keys(o, v);
            else if (filter_hs_stray_bag(FILTER_HS_RECORDS, v))
                return -1;
        } else if (strcmp(key, "associations") == 0 && json_is_object(v) && is_record) {
            const char *k;
            json_t *a;
            void *t;
            json_object_foreach_safe(v, t, k, a)
            {
                if (rules_object_find(rc, k) == NULL) {
                    json_object_del(v, k);
                    (*removed)++;
                } else if (filter_hs_stray(FILTER_HS_RECORDS, a, depth + 3, &too_deep)) {
                    return -1;
                }
            }
        } else if (root && strcmp(key, "results") == 0 && json_is_array(v)) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
            {
                if (json_is_object(e)
                        ? filter_hubspot_record(rc, o, e, 0, 1, depth + 2, removed) < 0
                        : filter_hs_stray(FILTER_HS_RECORDS, e, depth + 2, &too_deep))
                    return -1;
            }
        } else if ((known = filter_hs_known(key, root, v)) != 0) {
            if (known < 0 || filter_hs_stray(FILTER_HS_RECORDS, v, depth + 1, &too_deep))
                return -1;
        } else {
            json_object_del(rec, key);
            (*removed)++;
        }
    }
    return 0;
}

int policy_filter_hubspot(const struct rules_ws *ws, const char *object, enum filter_hs_shape shape,
                          json_t *body, size_t *removed)
{
    const struct rules_crm *rc = rules_crm_of(ws, CRM_HUBSPOT);
    const struct rules_object *o = rules_object_find(rc, object);
    const char *key;
    json_t *v;
    void *tmp;
    int too_deep = 0;

    *removed = 0;
    if (json_is_object(body) && shape == FILTER_HS_RECORDS)
        return filter_hubspot_record(
            rc, o, body, 1,
            json_is_object(json_object_get(body, "properties")) ||
                json_is_object(json_object_get(body, "propertiesWithHistory")),
            0, removed);
    if (json_is_object(body) && shape == FILTER_HS_LINKS) {
        json_object_foreach_safe(body, tmp, key, v)
        {
            if (filter_is_bag_key(key) && filter_hs_stray_bag(shape, v))
                return -1;
            int known = filter_hs_known(key, 1, v);
            if (known < 0)
                return -1;
            if (known) {
                if (filter_hs_stray(shape, v, 1, &too_deep))
                    return -1;
            } else {
                json_object_del(body, key);
                (*removed)++;
            }
        }
        return 0;
    }
    return filter_hs_stray(shape, body, 0, &too_deep) ? -1 : 0;
}

static const char *filter_sf_type(json_t *obj)
{
    json_t *attrs = json_object_get(obj, "attributes");

    return json_is_object(attrs) ? json_string_value(json_object_get(attrs, "type")) : NULL;
}

static size_t filter_sf_walk(const struct rules_crm *rc, json_t *v, int depth, int *too_deep);

/*
 * An object kept whole: a readable field's compound value (names) or a
 * record's attributes: only scalars with the given names pass.
 */
static int filter_sf_flat(json_t *v, const struct filter_name *names)
{
    const char *key;
    json_t *item;

    json_object_foreach(v, key, item)
    {
        if (!filter_in(key, names) || json_is_object(item) || json_is_array(item))
            return 0;
    }
    return 1;
}

/*
 * A record of type: keep attributes, Id, readable fields, nested records.
 * Record data it cannot type sets *too_deep (uninspectable).
 */
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
        int readable;

        if (strcmp(key, "attributes") == 0 || strcasecmp(key, "Id") == 0) {
            /* kept whole: no record data in them */
            if (json_is_array(v) ||
                (json_is_object(v) && (strcmp(key, "attributes") != 0 ||
                                       !filter_sf_flat(v, filter_sf_attributes_keys)))) {
                *too_deep = 1;
                return removed;
            }
            continue;
        }
        if (json_is_object(v) && json_object_get(v, "attributes") != NULL &&
            filter_sf_type(v) == NULL) {
            *too_deep = 1;
            return removed;
        }
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
        readable = o != NULL && rules_can_read(o, key);
        if (readable && ((json_is_object(v) && !filter_sf_flat(v, filter_sf_compound_keys)) ||
                         (json_is_array(v) && json_array_size(v) > 0))) {
            *too_deep = 1;
            return removed;
        }
        if (readable)
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
    if (json_object_get(v, "attributes") != NULL || json_object_get(v, "Id") != NULL) {
        *too_deep = 1; /* a record that cannot be typed */
        return 0;
    }
    json_object_foreach(v, key, item)
    {
        if (json_is_array(item) &&
            (strcmp(key, "records") == 0 || strcmp(key, "searchRecords") == 0)) {
            json_t *e;
            json_array_foreach(item, i, e)
            {
                if (json_is_null(e))
                    continue;
                if (!json_is_object(e) || filter_sf_type(e) == NULL) {
                    *too_deep = 1;
                    return removed;
                }
                removed += filter_sf_walk(rc, e, depth + 2, too_deep);
            }
            continue;
        }
        removed += filter_sf_walk(rc, item, depth + 1, too_deep);
    }
    return removed;
}

int policy_filter_salesforce(const struct rules_ws *ws, json_t *body, size_t *removed)
{
    int too_deep = 0;

    *removed = filter_sf_walk(rules_crm_of(ws, CRM_SALESFORCE), body, 0, &too_deep);
    return too_deep ? -1 : 0;
}
