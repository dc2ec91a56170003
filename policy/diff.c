/*
 * diff.c - field changes for audit records.
 */
#include <string.h>
#include <strings.h>

#include "diff.h"

static const char *const diff_hubspot_volatile[] = {"hs_lastmodifieddate",
                                                    "lastmodifieddate",
                                                    "hs_updated_by_user_id",
                                                    "hs_object_source*",
                                                    "hs_last_sales_activity*",
                                                    "hs_latest_source*",
                                                    "hs_analytics_*",
                                                    "hs_time_in_*",
                                                    "hs_date_entered_*",
                                                    "hs_date_exited_*",
                                                    "hs_v2_*",
                                                    "num_associated_*",
                                                    "num_notes",
                                                    "num_contacted_notes",
                                                    "notes_last_*",
                                                    "hs_all_*",
                                                    "hs_user_ids_of_all_*",
                                                    NULL};

static const char *const diff_salesforce_volatile[] = {
    "SystemModstamp", "LastModifiedDate",   "LastModifiedById", "LastActivityDate",
    "LastViewedDate", "LastReferencedDate", "attributes",       NULL};

int diff_volatile(enum crm crm, const char *name)
{
    const char *const *list =
        crm == CRM_SALESFORCE ? diff_salesforce_volatile : diff_hubspot_volatile;

    for (size_t i = 0; list[i] != NULL; i++) {
        size_t n = strlen(list[i]);
        if (list[i][n - 1] == '*' ? strncasecmp(list[i], name, n - 1) == 0
                                  : strcasecmp(list[i], name) == 0)
            return 1;
    }
    return 0;
}

json_t *diff_lookup(enum crm crm, const json_t *before, const char *name)
{
    const char *k;
    json_t *v;

    if (!json_is_object(before))
        return NULL;
    v = json_object_get(before, name);
    if (v != NULL || crm != CRM_SALESFORCE)
        return v;
    json_object_foreach((json_t *)before, k, v)
    {
        if (strcasecmp(k, name) == 0)
            return v;
    }
    return NULL;
}

/*
 * {"name","before","after"} appended to arr; before and after shared (a
 * reference each), absent ones null. Built member by member, in key order
 * (jsonout sorts them): json_pack's format walk cost more than the object.
 */
static int diff_add(json_t *arr, const char *name, json_t *before, json_t *after)
{
    json_t *f = json_object();
    int bad = json_object_set_nocheck(f, "after", after != NULL ? after : json_null()) < 0;

    bad |= json_object_set_nocheck(f, "before", before != NULL ? before : json_null()) < 0;
    bad |= json_object_set_new_nocheck(f, "name", json_string(name)) < 0;
    if (bad) {
        json_decref(f);
        return -1;
    }
    return json_array_append_new(arr, f);
}

json_t *diff_fields(const struct crm_op *op, const json_t *before, int keep_volatile)
{
    json_t *arr = json_array();
    const char *k;
    json_t *v;

    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < op->nwrites; i++) {
        const struct crm_write *w = &op->writes[i];
        if (!keep_volatile && diff_volatile(op->crm, w->name))
            continue;
        if (diff_add(arr, w->name, diff_lookup(op->crm, before, w->name), w->value) < 0)
            goto fail;
    }
    if (op->nwrites == 0 && json_is_object(before) &&
        (op->verb == CRM_VERB_DELETE || op->verb == CRM_VERB_GDPR_DELETE)) {
        json_object_foreach((json_t *)before, k, v)
        {
            if (!keep_volatile && diff_volatile(op->crm, k))
                continue;
            if (diff_add(arr, k, v, NULL) < 0)
                goto fail;
        }
    }
    return arr;
fail:
    json_decref(arr);
    return NULL;
}
